//! The confirm contract end to end: a publish is acked only once every copy
//! that must survive a restart is on disk. A copy whose log record was not
//! written is nacked; a persistent publish to a durable queue is confirmed
//! only after the shard's fsync counter moved past it; the `confirmed` and
//! `nacked` counters count the acks and nacks actually sent; a SIGTERM
//! flushes every shard's log, so acked messages stay gone after a restart.
//!
//! Tests that need the Warren binary (test-only environment variables, the
//! admin endpoint, restarts) skip against an external broker and say so.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const SHARD_COUNTS: [usize; 2] = [1, 2];

fn external() -> bool {
    std::env::var("WARREN_TEST_EXTERNAL_URI").is_ok_and(|v| !v.is_empty())
}

fn skip(test: &str) -> bool {
    if external() {
        eprintln!(
            "{test}: skipped against an external broker (it needs the Warren binary: \
             test-only environment variables, the admin endpoint, restarts)"
        );
    }
    external()
}

/// A Warren process started with test-only environment variables, with its
/// admin endpoint on.
struct EnvNode {
    child: Option<Child>,
    port: u16,
    admin: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl EnvNode {
    fn start(shards: usize, dir: &Path, env: &[(&str, &str)]) -> EnvNode {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(["--bind", "127.0.0.1", "--port", "0", "--admin-port", "0"])
            .args(["--shards", &shards.to_string(), "--data-dir"])
            .arg(dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warren");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut admin = None;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "warren did not start; stderr:\n{}",
                    log.lock().unwrap().join("\n")
                );
            };
            if let Some(rest) = line.split("admin endpoint on ").nth(1) {
                admin = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("warren: listening on ") {
                let addr = rest.split_whitespace().next().expect("address");
                break addr
                    .rsplit_once(':')
                    .expect("port")
                    .1
                    .parse()
                    .expect("port");
            }
        };
        EnvNode {
            child: Some(child),
            port,
            admin: admin.expect("the broker prints its admin endpoint"),
            log,
        }
    }

    fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// `warren ctl <command>` against this broker.
    fn ctl(&self, command: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(["ctl", "--admin", &self.admin, command])
            .output()
            .expect("run warren ctl");
        assert!(
            out.status.success(),
            "warren ctl {command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Column `column` of the row `row` of a `warren ctl` listing.
    fn cell(&self, command: &str, row_name: &str, column: &str) -> u64 {
        let listing = self.ctl(command);
        // The header is the first tab-separated line (after "Listing …").
        let header: Vec<&str> = listing
            .lines()
            .find(|l| l.contains('\t'))
            .expect("header")
            .split('\t')
            .collect();
        let i = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("no column {column} in:\n{listing}"));
        row(&listing, row_name)[i]
            .parse()
            .unwrap_or_else(|_| panic!("column {column} of {row_name} is not a number"))
    }

    /// SIGTERM; asserts a clean exit within 30 s.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit within 30 s of SIGTERM; stderr:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit {status:?}; stderr:\n{}", self.log());
    }
}

impl Drop for EnvNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- warren stderr ----\n{}\n---- end ----", self.log());
        }
    }
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// The last shard: with 2 shards the queue's owner is not the shard the
/// publisher's connection landed on (most of the time), so confirms cross
/// the rings.
fn last_shard(shards: usize) -> Option<usize> {
    (shards > 1).then_some(shards - 1)
}

async fn connect(uri: &str) -> Connection {
    Connection::connect(uri, lapin::ConnectionProperties::default())
        .await
        .expect("connect")
}

async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("channel.open");
    ch.confirm_select(Default::default())
        .await
        .expect("confirm.select");
    ch
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &str) -> Confirmation {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        persistent(),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm")
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warren-confirms-")
        .tempdir()
        .expect("temp dir")
}

// ---------------------------------------------------------------- tests ----

/// Runs against RabbitMQ too: a stream mixing persistent publishes to durable
/// queues (one on each shard, and a fan-out to all of them), transient and
/// unroutable publishes is acked, every publish, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_publish_is_acked_in_order() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            let ch = confirm_channel(&conn).await;
            let exchange = unique_name("confirms-fanout");
            ch.exchange_declare(
                exchange.as_str().into(),
                lapin::ExchangeKind::Fanout,
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange.declare");
            let mut queues = Vec::new();
            for placement in placements(&broker) {
                let q = unique_name("confirms-mixed");
                ch.queue_declare(
                    q.as_str().into(),
                    durable(),
                    lapin_placement_args(placement),
                )
                .await
                .expect("queue.declare");
                ch.queue_bind(
                    q.as_str().into(),
                    exchange.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("queue.bind");
                queues.push(q);
            }
            let mut pending = Vec::new();
            for i in 0..30 {
                let (exchange, key, props) = match i % 4 {
                    0 => ("", queues[i % queues.len()].as_str(), persistent()),
                    1 => (exchange.as_str(), "", persistent()),
                    2 => ("", queues[0].as_str(), BasicProperties::default()),
                    _ => ("", "confirms-no-such-queue", persistent()),
                };
                pending.push(
                    ch.basic_publish(
                        exchange.into(),
                        key.into(),
                        BasicPublishOptions::default(),
                        format!("m{i}").as_bytes(),
                        props,
                    )
                    .await
                    .expect("publish"),
                );
            }
            for (i, p) in pending.into_iter().enumerate() {
                let c = p.await.expect("confirm");
                assert!(c.is_ack(), "publish {i}: {c:?}");
            }
            let mut total = 0;
            for q in &queues {
                let n = ch
                    .queue_declare(
                        q.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .expect("passive declare")
                    .message_count();
                total += n;
                ch.queue_delete(q.as_str().into(), Default::default())
                    .await
                    .expect("queue.delete");
            }
            // 8 direct + 8 fan-outs to every queue + 7 transient (queue 0).
            assert_eq!(total as usize, 8 + 8 * queues.len() + 7);
        })
        .await;
    }
}

/// A copy whose log record is not written (here an injected append error;
/// in the wild e.g. an encoder refusal) fails its publish with a nack even
/// though the log stays healthy and later fsyncs complete. The counters
/// count what the publishers were told: acks in `confirmed`, nacks in
/// `nacked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_whose_record_was_not_written_is_nacked() {
    if skip("a_copy_whose_record_was_not_written_is_nacked") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir();
        let refused = "confirms-refused";
        let node = EnvNode::start(
            shards,
            dir.path(),
            &[("WARREN_TEST_LOG_REFUSE_ROUTING_KEY", refused)],
        );
        within(async {
            let conn = connect(&node.uri()).await;
            let ch = confirm_channel(&conn).await;
            for q in [refused, "confirms-kept"] {
                ch.queue_declare(
                    q.into(),
                    durable(),
                    lapin_placement_args(last_shard(shards)),
                )
                .await
                .expect("queue.declare");
            }
            let c = publish(&ch, "", refused, "lost").await;
            assert!(c.is_nack(), "{shards} shards: unwritten copy: {c:?}");
            // A later fsync does not confirm it after the fact: the next
            // publishes are acked, the refused ones nacked, in order.
            let c = publish(&ch, "", "confirms-kept", "kept-1").await;
            assert!(c.is_ack(), "{shards} shards: written copy: {c:?}");
            let c = publish(&ch, "", refused, "lost-2").await;
            assert!(c.is_nack(), "{shards} shards: unwritten copy: {c:?}");
            let c = publish(&ch, "", "confirms-kept", "kept-2").await;
            assert!(c.is_ack(), "{shards} shards: written copy: {c:?}");
            assert!(
                node.log().contains("injected append failure"),
                "the refusal is logged:\n{}",
                node.log()
            );
            assert_eq!(node.cell("status", "total", "confirmed"), 2);
            assert_eq!(node.cell("status", "total", "nacked"), 2);
        })
        .await;
    }
}

/// A persistent publish to a durable queue in confirm mode is confirmed
/// only after the owner shard's fsync counter moved past it: with every log
/// batch delayed, the counter has not moved and no confirm has come while
/// the batch waits; when the confirm comes, the counter has moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_publish_is_confirmed_only_after_its_fsync() {
    if skip("a_durable_publish_is_confirmed_only_after_its_fsync") {
        return;
    }
    const DELAY_MS: u64 = 600;
    for shards in SHARD_COUNTS {
        let dir = temp_dir();
        let node = EnvNode::start(
            shards,
            dir.path(),
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", &DELAY_MS.to_string())],
        );
        let owner = last_shard(shards).unwrap_or(0).to_string();
        within(async {
            let conn = connect(&node.uri()).await;
            let ch = confirm_channel(&conn).await;
            let q = unique_name("confirms-fsync");
            ch.queue_declare(
                q.as_str().into(),
                durable(),
                lapin_placement_args(last_shard(shards)),
            )
            .await
            .expect("queue.declare");
            // Let any batch of the declaration finish.
            tokio::time::sleep(Duration::from_millis(2 * DELAY_MS)).await;
            let before = node.cell("status", &owner, "fsyncs");
            let started = Instant::now();
            let confirm = ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    b"durable",
                    persistent(),
                )
                .await
                .expect("publish");
            let confirm = tokio::spawn(async move { confirm.await.expect("confirm") });
            tokio::time::sleep(Duration::from_millis(DELAY_MS / 3)).await;
            assert!(
                !confirm.is_finished(),
                "{shards} shards: confirmed before its fsync"
            );
            assert_eq!(
                node.cell("status", &owner, "fsyncs"),
                before,
                "{shards} shards: the batch is still waiting"
            );
            let c = confirm.await.expect("confirm task");
            let after = node.cell("status", &owner, "fsyncs");
            assert!(c.is_ack(), "{c:?}");
            assert!(
                started.elapsed() >= Duration::from_millis(DELAY_MS),
                "{shards} shards: confirmed after {:?}, before the delayed batch",
                started.elapsed()
            );
            assert!(
                after > before,
                "{shards} shards: confirmed, but fsyncs went {before} -> {after}"
            );
            assert!(node.cell("status", "total", "fsyncs") >= after);
        })
        .await;
    }
}

/// SIGTERM flushes and closes every shard's log: acks processed before it
/// are on disk, so after a restart none of the acked messages come back and
/// every other one does (redelivered). The log's batches are slowed down so
/// the acks' records are still pending when the signal arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_log_and_acked_messages_stay_gone() {
    if skip("sigterm_flushes_the_log_and_acked_messages_stay_gone") {
        return;
    }
    const N: usize = 20;
    const ACKED: usize = 10;
    for shards in SHARD_COUNTS {
        let dir = temp_dir();
        let q = unique_name("confirms-sigterm");
        let mut node = EnvNode::start(
            shards,
            dir.path(),
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", "1500")],
        );
        within_secs(60, async {
            let conn = connect(&node.uri()).await;
            let ch = confirm_channel(&conn).await;
            ch.queue_declare(
                q.as_str().into(),
                durable(),
                lapin_placement_args(last_shard(shards)),
            )
            .await
            .expect("queue.declare");
            let mut pending = Vec::new();
            for i in 0..N {
                pending.push(
                    ch.basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        format!("m{i}").as_bytes(),
                        persistent(),
                    )
                    .await
                    .expect("publish"),
                );
            }
            for p in pending {
                assert!(p.await.expect("confirm").is_ack());
            }
            let consumer_ch = conn.create_channel().await.expect("channel");
            consumer_ch
                .basic_qos(N as u16, BasicQosOptions::default())
                .await
                .expect("qos");
            let mut consumer = consumer_ch
                .basic_consume(
                    q.as_str().into(),
                    "c".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            for i in 0..N {
                let d = consumer.next().await.expect("delivery").expect("delivery");
                assert_eq!(d.data, format!("m{i}").as_bytes());
                if i < ACKED {
                    d.ack(BasicAckOptions::default()).await.expect("ack");
                }
            }
            // The owner has applied the acks.
            let settled = eventually(20, || {
                node.cell("list_queues", &q, "messages_unacknowledged") == (N - ACKED) as u64
            })
            .await;
            assert!(settled, "{shards} shards: acks not applied");
        })
        .await;
        node.terminate();
        drop(node);
        let node = EnvNode::start(shards, dir.path(), &[]);
        within(async {
            let conn = connect(&node.uri()).await;
            let ch = conn.create_channel().await.expect("channel");
            let mut got = Vec::new();
            while let Some(m) = ch
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
            {
                got.push((
                    String::from_utf8(m.delivery.data).expect("utf-8"),
                    m.delivery.redelivered,
                ));
            }
            let want: Vec<(String, bool)> = (ACKED..N).map(|i| (format!("m{i}"), true)).collect();
            assert_eq!(
                got, want,
                "{shards} shards: after SIGTERM and a restart, exactly the unacked messages \
                 come back, redelivered"
            );
        })
        .await;
    }
}
