//! How often the glommio watchdog fired in each broker a test ran: when
//! the harness stops a broker it reads the broker's shutdown line
//! (`watchdog: woke a stalled shard … watchdog_fires=N … startup_fires=M`,
//! `src/server.rs`) from its stderr and appends one line per broker to
//! [`record_path`] (`target/tmp/watchdog-fires.log` unless
//! `WARREN_TEST_WATCHDOG_LOG` names another file), which `.ci/run` sums up
//! at the end of the suite. A broker that printed no shutdown line —
//! killed with SIGKILL, crashed, or not stopped in time — is recorded as
//! not reported (with the firings its log showed before it went, a
//! floor), never as 0.
//!
//! Line format, tab-separated: `reported` `fires=N` `startup=M`
//! `parked=K` `starved=W` `pid=P` `shards=S` `test=T` (K of the N serving
//! firings found the shard asleep in the kernel: the lost wake-up itself;
//! the rest found it running a task that did not yield; W quiet spells
//! were the shard waiting for a CPU, not stalls: `shard::watchdog`), or
//! `not_reported` `why=W` `seen=N` `pid=P` `shards=S` `test=T`.

use std::io::Write;
use std::path::PathBuf;

/// The shutdown line's message (`server::run`).
const SHUTDOWN_LINE: &str = "watchdog: woke a stalled shard ";

/// A serving firing's line (`shard::watchdog`): one per firing.
const FIRING_LINE: &str = "; waking it";

/// How a broker's run ended, as the harness saw it.
pub enum RunEnd<'a> {
    /// It exited after a SIGTERM (or on its own) with this success.
    Exited { success: bool },
    /// The harness killed it with SIGKILL: `why`.
    Killed { why: &'a str },
}

/// Where the records go.
pub fn record_path() -> PathBuf {
    match std::env::var_os("WARREN_TEST_WATCHDOG_LOG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("watchdog-fires.log"),
    }
}

/// The value of `key=` (a number) in `line`.
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// (serving, starting, serving while parked) firings and starved quiet
/// spells from the shutdown line of `log`, if it has one.
pub fn reported(log: &[String]) -> Option<(u64, u64, u64, u64)> {
    let line = log.iter().rev().find(|l| l.contains(SHUTDOWN_LINE))?;
    Some((
        field(line, "watchdog_fires")?,
        field(line, "startup_fires")?,
        field(line, "parked_fires")?,
        field(line, "starved_windows")?,
    ))
}

/// The serving firings `log` shows one line each (a floor: the ring of
/// captured lines may have dropped older ones).
fn seen(log: &[String]) -> usize {
    log.iter()
        .filter(|l| l.contains(FIRING_LINE) && l.contains("watchdog_fires="))
        .count()
}

/// Appends the record of one broker run. Never fails a test: a record
/// that cannot be written is reported on stderr.
pub fn record(log: &[String], pid: u32, shards: usize, end: RunEnd<'_>) {
    let test = std::thread::current()
        .name()
        .unwrap_or("?")
        .replace(['\t', '\n'], " ");
    let line = match (end, reported(log)) {
        (RunEnd::Exited { success: true }, Some((fires, startup, parked, starved))) => format!(
            "reported\tfires={fires}\tstartup={startup}\tparked={parked}\tstarved={starved}\tpid={pid}\tshards={shards}\ttest={test}\n"
        ),
        (RunEnd::Exited { success }, _) => {
            let why = if success {
                "no-shutdown-line"
            } else {
                "failed-exit"
            };
            not_reported(why, log, pid, shards, &test)
        }
        (RunEnd::Killed { why }, _) => not_reported(why, log, pid, shards, &test),
    };
    let path = record_path();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        // One write per line: O_APPEND keeps concurrent tests' lines whole.
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot record watchdog firings in {}: {e}", path.display());
    }
}

fn not_reported(why: &str, log: &[String], pid: u32, shards: usize, test: &str) -> String {
    format!(
        "not_reported\twhy={why}\tseen={}\tpid={pid}\tshards={shards}\ttest={test}\n",
        seen(log)
    )
}
