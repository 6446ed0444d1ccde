//! End-to-end durability of the real broker: confirmed persistent messages
//! survive SIGKILL at a random moment (also with a memory budget so small
//! that they are paged out); durable exchanges, queues and bindings
//! come back after SIGTERM and SIGKILL restarts while non-durable and
//! exclusive ones do not; transient messages are dropped; unacked messages
//! come back redelivered, acked, purged and deleted ones do not; message ids
//! are never reused across restarts; message properties survive; a torn log
//! tail is cut off; a fan-out to durable queues on one and on several shards
//! survives; 1 MiB messages across segment roll-over survive and the dead
//! segment is reclaimed; a failing log nacks publishes and loses nothing
//! it confirmed; a long-lived message is compacted forward instead
//! of pinning the log; idle restarts do not pile up segments; a data dir
//! is refused under another shard count.
//!
//! Where a SIGKILL must not lose an ack (or purge, or delete) the test first
//! publishes a confirmed persistent "barrier" message to a durable queue on
//! the same shard over the same channel: the broker appends records of one
//! shard in order and confirms only after an fsync covering them, so the
//! confirm proves the earlier record is on disk.

#[path = "../common/mod.rs"]
mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod compaction_order;
mod crash;
mod definitions_journal;
mod failing_log;
mod log_segments;
mod purge_unacked;
mod restart_definitions;
mod restart_messages;
mod torn_tail;

use torn_tail::segment_files;

// ------------------------------------------------------------ harness ----

/// How a broker goes down before a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Down {
    /// SIGTERM: graceful shutdown.
    Term,
    /// SIGKILL: crash.
    Kill,
}

const DOWNS: [Down; 2] = [Down::Term, Down::Kill];

/// A broker on a data dir that outlives its restarts.
struct Node {
    // Declared before `dir`: the broker is killed before the dir is removed.
    broker: Broker,
    dir: tempfile::TempDir,
    shards: usize,
    /// Extra command-line flags, for every start.
    args: &'static [&'static str],
    /// Extra environment (test-only knobs), for every start.
    env: &'static [(&'static str, &'static str)],
}

impl Node {
    fn start(shards: usize) -> Node {
        Node::start_with(shards, &[])
    }

    fn start_with(shards: usize, args: &'static [&'static str]) -> Node {
        Node::start_with_env(shards, args, &[])
    }

    /// A node whose every start gets `args` and the environment `env`.
    fn start_with_env(
        shards: usize,
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    ) -> Node {
        let dir = temp_dir("warren-durability-");
        let broker = Node::spawn(shards, dir.path(), args, env);
        Node {
            broker,
            dir,
            shards,
            args,
            env,
        }
    }

    /// Starts the broker again on the same data dir (after `down`).
    fn up(&mut self) {
        self.broker = Node::spawn(self.shards, self.dir.path(), self.args, self.env);
    }

    /// A broker on `dir` (with an environment only locally: the harness
    /// never hands one to an external broker).
    fn spawn(
        shards: usize,
        dir: &Path,
        args: &[&str],
        env: &[(&'static str, &'static str)],
    ) -> Broker {
        if env.is_empty() {
            Broker::start_in_with(shards, dir, args)
        } else {
            Broker::start_in_with_env(shards, dir, args, env)
        }
    }

    fn down(&mut self, how: Down) {
        match how {
            Down::Term => self.broker.stop(),
            Down::Kill => self.broker.kill(),
        }
    }

    /// Takes the broker down and starts a new one on the same data dir.
    fn restart(&mut self, how: Down) {
        self.down(how);
        self.up();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Why these tests skip against an external broker.
const NEEDS_LOCAL: &str = "it stops, kills and restarts a local warren process";

fn transient() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(1)
}

/// A persistent message's properties with every field set.
fn rich_properties() -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("s".into(), AMQPValue::LongString("value".into()));
    headers.insert("i".into(), AMQPValue::LongInt(-42));
    headers.insert("b".into(), AMQPValue::Boolean(true));
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("gzip".into())
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(5)
        .with_correlation_id("corr-1".into())
        .with_reply_to("reply-queue".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_123)
        .with_type("order.created".into())
        .with_app_id("warren-tests".into())
}

/// Publishes one message and asserts it was confirmed (and routed).
async fn publish_ok(ch: &Channel, exchange: &str, key: &str, body: &str, props: BasicProperties) {
    let c = ch
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body.as_bytes(),
            props,
        )
        .await
        .unwrap_or_else(|e| panic!("publish {body}: {e}"))
        .await
        .unwrap_or_else(|e| panic!("confirm of {body}: {e}"));
    match c {
        Confirmation::Ack(None) => {}
        other => {
            panic!("publish {body} to {exchange:?}/{key:?}: expected a plain ack, got {other:?}")
        }
    }
}

/// Publishes persistent messages with the given bodies to `queue` through
/// the default exchange, each confirmed.
async fn publish_all(ch: &Channel, queue: &str, bodies: &[String]) {
    for body in bodies {
        publish_ok(ch, "", queue, body, persistent()).await;
    }
}

fn bodies(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// Makes every record the broker appended to `placement`'s shard log before
/// now durable: a confirmed persistent publish on `ch` (a confirm channel)
/// to a durable queue on the same shard.
async fn barrier(ch: &Channel, placement: Option<usize>) {
    let q = unique_name("barrier");
    declare_queue(ch, &q, true, placement).await;
    publish_ok(ch, "", &q, "barrier", persistent()).await;
}

/// Asserts that a passive declare of queue `name` fails with 404.
async fn assert_no_queue(conn: &Connection, name: &str) {
    let ch = conn.create_channel().await.expect("channel.open");
    let r = ch
        .queue_declare(name.into(), passive(), FieldTable::default())
        .await;
    assert_lapin_error(
        r.map(|q| q.message_count()),
        404,
        &format!("NOT_FOUND - no queue '{name}' in vhost '/'"),
    );
}

/// Asserts that a passive declare of exchange `name` fails with 404.
async fn assert_no_exchange(conn: &Connection, name: &str) {
    let ch = conn.create_channel().await.expect("channel.open");
    let r = ch
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(
        r,
        404,
        &format!("NOT_FOUND - no exchange '{name}' in vhost '/'"),
    );
}
