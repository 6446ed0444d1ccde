//! Integration-test harness: starts a Warren broker process per test (or points
//! at an external broker named by `WARREN_TEST_EXTERNAL_URI`, to check the
//! tests themselves against real RabbitMQ), connects lapin and amqprs clients,
//! and offers small helpers (unique names, timeouts, error inspection,
//! queue-placement arguments, `warren ctl` listings, and the lapin helpers
//! several test files share: confirm channels, confirmed publishes, drains,
//! ready counts). `raw` is a minimal hand-rolled AMQP client for tests that
//! need byte-level control of the socket. `watchdog_record` notes how often
//! each broker's watchdog fired when the harness stops it (summed by
//! `.ci/run`).
//!
//! A test (or a part of one) that cannot run against an external broker
//! starts with `if skip_if_external("why") { return; }`, which says so.

#![allow(dead_code)]

mod admin;
mod amqprs_helpers;
mod harness;
pub mod hostile;
mod lapin_helpers;
mod management;
mod probes;
pub mod raw;
mod rng;
mod watchdog_record;

#[allow(unused_imports)]
pub use admin::*;
#[allow(unused_imports)]
pub use amqprs_helpers::*;
#[allow(unused_imports)]
pub use harness::*;
#[allow(unused_imports)]
pub use lapin_helpers::*;
#[allow(unused_imports)]
pub use management::*;
#[allow(unused_imports)]
pub use probes::*;
#[allow(unused_imports)]
pub use rng::*;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shard counts every behaviour test runs with.
pub const SHARD_COUNTS: [usize; 2] = [1, 2];

/// How long a broker may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `stop`/`kill` wait for the process to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default per-test time limit used by [`within`].
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable naming an external broker to test instead of Warren.
pub const EXTERNAL_ENV: &str = "WARREN_TEST_EXTERNAL_URI";

/// Most stderr lines kept per broker (older ones are dropped).
const MAX_LOG_LINES: usize = 10_000;
