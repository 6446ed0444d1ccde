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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
}

impl Node {
    fn start(shards: usize) -> Node {
        Node::start_with(shards, &[])
    }

    fn start_with(shards: usize, args: &'static [&'static str]) -> Node {
        let dir = temp_dir("warren-durability-");
        let broker = Broker::start_in_with(shards, dir.path(), args);
        Node {
            broker,
            dir,
            shards,
            args,
        }
    }

    /// Starts the broker again on the same data dir (after `down`).
    fn up(&mut self) {
        self.broker = Broker::start_in_with(self.shards, self.dir.path(), self.args);
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

// --------------------------------------------------------------- crash ----

/// A small xorshift64* generator; the seed comes from `WARREN_TEST_SEED`
/// or the clock and is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("WARREN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1);
                t ^ (u64::from(std::process::id()) << 32)
            });
        eprintln!("durability crash test seed: {seed} (set WARREN_TEST_SEED to replay)");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo < hi);
        lo + self.next() % (hi - lo)
    }
}

/// Confirms outstanding at once in the crash publisher.
const WINDOW: usize = 128;

/// Upper bound of messages one crash cycle publishes.
const MAX_PER_CYCLE: u64 = 50_000;

/// What a crash-cycle publisher saw.
#[derive(Default)]
struct Published {
    /// Ids the broker confirmed (ack).
    confirmed: Mutex<Vec<u64>>,
    /// Ids below this were handed to the client library.
    sent: AtomicU64,
    /// Nacks received (never expected).
    nacked: AtomicU64,
}

/// Publishes `c{cycle}-{id}` to `queues[id % len]` with confirms until the
/// connection dies or `MAX_PER_CYCLE` is reached.
async fn crash_publisher(ch: Channel, cycle: usize, queues: Vec<String>, out: Arc<Published>) {
    let mut window: VecDeque<(u64, lapin::PublisherConfirm)> = VecDeque::new();
    let settle = |id: u64, r: Result<Confirmation, lapin::Error>| match r {
        Ok(c) if c.is_ack() => {
            out.confirmed.lock().unwrap().push(id);
            true
        }
        Ok(_) => {
            out.nacked.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    };
    for id in 0..MAX_PER_CYCLE {
        let q = &queues[(id % queues.len() as u64) as usize];
        let body = format!("c{cycle}-{id}");
        let r = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                persistent(),
            )
            .await;
        out.sent.store(id + 1, Ordering::Relaxed);
        match r {
            Ok(c) => window.push_back((id, c)),
            Err(_) => break,
        }
        if window.len() >= WINDOW {
            let (id, c) = window.pop_front().expect("non-empty window");
            if !settle(id, c.await) {
                break;
            }
        }
    }
    // Whatever is left resolves (ack, or an error once the connection died).
    for (id, c) in window {
        match tokio::time::timeout(Duration::from_secs(5), c).await {
            Ok(r) => {
                settle(id, r);
            }
            Err(_) => break,
        }
    }
}

/// Parses `c{cycle}-{id}`.
fn parse_crash_body(body: &str) -> Option<(usize, u64)> {
    let (c, id) = body.strip_prefix('c')?.split_once('-')?;
    Some((c.parse().ok()?, id.parse().ok()?))
}

/// Consumes (no-ack) exactly `n` messages from `queue`; their bodies.
async fn consume_n(conn: &Connection, queue: &str, n: u32) -> Vec<String> {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    let mut out = Vec::with_capacity(n as usize);
    while out.len() < n as usize {
        let d = within_secs(20, consumer.next())
            .await
            .unwrap_or_else(|| panic!("consumer of {queue} ended after {} of {n}", out.len()))
            .expect("delivery");
        out.push(String::from_utf8(d.data).expect("utf-8 body"));
    }
    ch.basic_cancel(
        consumer.tag().as_str().into(),
        BasicCancelOptions::default(),
    )
    .await
    .expect("basic.cancel");
    let _ = ch.close(200, "".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_every_confirmed_message() {
    crash_cycles(&[]).await;
}

/// The same with a memory budget so small that nearly every message is
/// paged out, read back and (for the ones left in memory) compacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_every_confirmed_message_while_paging() {
    crash_cycles(&["--memory-budget", "4096"]).await;
}

/// Cycles of: publish persistent messages in confirm mode, SIGKILL at a
/// random moment, restart, check every confirmed message is there once and
/// in order, consume them all.
async fn crash_cycles(args: &'static [&'static str]) {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    const CYCLES: usize = 3;
    let mut rng = Rng::seeded();
    for shards in SHARD_COUNTS {
        let mut node = Node::start_with(shards, args);
        let queue_placements: Vec<Option<usize>> = if shards == 1 {
            vec![None]
        } else {
            (0..shards).map(Some).collect()
        };
        let queues: Vec<String> = queue_placements
            .iter()
            .map(|p| unique_name(&format!("crash-{p:?}")))
            .collect();
        // Ids sent per cycle, for judging extras.
        let mut sent_per_cycle: Vec<u64> = Vec::new();
        let mut total_confirmed = 0usize;
        for cycle in 0..CYCLES {
            let delay = rng.range(100, 800);
            let published = Arc::new(Published::default());
            within_secs(60, async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&queue_placements) {
                    declare_queue(&ch, q, true, *p).await;
                }
                let task = tokio::spawn(crash_publisher(
                    ch,
                    cycle,
                    queues.clone(),
                    Arc::clone(&published),
                ));
                // Start the clock at the first confirm so every cycle has
                // something to lose.
                let first =
                    eventually(20, || !published.confirmed.lock().unwrap().is_empty()).await;
                assert!(
                    first,
                    "no confirm within 20 s (cycle {cycle}, {shards} shards)"
                );
                tokio::time::sleep(Duration::from_millis(delay)).await;
                node.down(Down::Kill);
                within_secs(20, task)
                    .await
                    .expect("publisher task did not panic");
                drop(conn);
            })
            .await;
            let confirmed: Vec<u64> = published.confirmed.lock().unwrap().clone();
            let sent = published.sent.load(Ordering::Relaxed);
            assert_eq!(
                published.nacked.load(Ordering::Relaxed),
                0,
                "the broker nacked persistent publishes"
            );
            eprintln!(
                "crash cycle {cycle} ({shards} shards): killed after {delay} ms, \
                 {} confirmed, {sent} sent",
                confirmed.len()
            );
            total_confirmed += confirmed.len();
            sent_per_cycle.push(sent);

            node.up();
            within_secs(60, async {
                let conn = lapin_connect(&node.broker).await;
                let nq = queues.len() as u64;
                for (qi, q) in queues.iter().enumerate() {
                    let n = ready_count(&conn, q).await;
                    let got = consume_n(&conn, q, n).await;
                    assert_eq!(ready_count(&conn, q).await, 0, "{q} drained");
                    let mut present = HashSet::new();
                    let mut last_this_cycle: Option<u64> = None;
                    for body in &got {
                        let (c, id) = parse_crash_body(body)
                            .unwrap_or_else(|| panic!("unexpected body {body:?} in {q}"));
                        assert!(
                            c <= cycle && id < sent_per_cycle[c] && id % nq == qi as u64,
                            "{q} holds {body:?}, which was never published to it"
                        );
                        // Earlier cycles' messages were consumed and their
                        // acks made durable (barrier below): never back.
                        assert_eq!(c, cycle, "{q}: consumed message {body:?} came back");
                        if let Some(prev) = last_this_cycle {
                            assert!(prev <= id, "{q}: c{c}-{id} came after c{c}-{prev}");
                        }
                        last_this_cycle = Some(id);
                        present.insert(id);
                    }
                    let missing: Vec<u64> = confirmed
                        .iter()
                        .copied()
                        .filter(|id| id % nq == qi as u64 && !present.contains(id))
                        .collect();
                    assert!(
                        missing.is_empty(),
                        "cycle {cycle}, {shards} shards, queue {q}: {} confirmed messages lost \
                         after SIGKILL (first: {:?}); {} recovered",
                        missing.len(),
                        &missing[..missing.len().min(10)],
                        got.len()
                    );
                }
                // The no-ack deliveries above were recorded as acks; make
                // them durable before the next crash.
                let ch = confirm_channel(&conn).await;
                for p in &queue_placements {
                    barrier(&ch, *p).await;
                }
            })
            .await;
        }
        assert!(total_confirmed > 0, "nothing was confirmed");
    }
}

// ------------------------------------------------------------- restart ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_definitions_come_back_others_do_not() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let x = unique_name("dx");
            let nx = unique_name("nx");
            // A durable fanout bound into `x` (exchange-to-exchange).
            let xs = unique_name("dxs");
            // A durable exchange deleted before the restart.
            let xd = unique_name("dxd");
            let names: Vec<(String, String, String)> = placements
                .iter()
                .map(|p| {
                    (
                        unique_name(&format!("dq-{p:?}")),
                        unique_name(&format!("nq-{p:?}")),
                        unique_name(&format!("eq-{p:?}")),
                    )
                })
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("declare durable exchange");
                ch.exchange_declare(
                    nx.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("declare transient exchange");
                for (name, kind) in [(&xs, ExchangeKind::Fanout), (&xd, ExchangeKind::Topic)] {
                    ch.exchange_declare(
                        name.as_str().into(),
                        kind,
                        ExchangeDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .expect("declare durable exchange");
                }
                ch.exchange_bind(
                    x.as_str().into(),
                    xs.as_str().into(),
                    "".into(),
                    ExchangeBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange.bind");
                ch.exchange_delete(xd.as_str().into(), ExchangeDeleteOptions::default())
                    .await
                    .expect("exchange.delete");
                for ((dq, nq, eq), p) in names.iter().zip(&placements) {
                    declare_queue(&ch, dq, true, *p).await;
                    ch.queue_declare(
                        nq.as_str().into(),
                        QueueDeclareOptions::default(),
                        lapin_placement_args(*p),
                    )
                    .await
                    .expect("declare transient queue");
                    ch.queue_declare(
                        eq.as_str().into(),
                        QueueDeclareOptions {
                            durable: true,
                            exclusive: true,
                            ..Default::default()
                        },
                        lapin_placement_args(*p),
                    )
                    .await
                    .expect("declare exclusive durable queue");
                    let bind = |q: String, ex: String, key: String| {
                        let ch = ch.clone();
                        async move {
                            ch.queue_bind(
                                q.as_str().into(),
                                ex.as_str().into(),
                                key.as_str().into(),
                                QueueBindOptions::default(),
                                FieldTable::default(),
                            )
                            .await
                            .unwrap_or_else(|e| panic!("bind {q} to {ex} with {key}: {e}"))
                        }
                    };
                    bind(dq.clone(), x.clone(), dq.clone()).await;
                    bind(dq.clone(), x.clone(), format!("{dq}-unbound")).await;
                    bind(dq.clone(), nx.clone(), dq.clone()).await;
                    ch.queue_unbind(
                        dq.as_str().into(),
                        x.as_str().into(),
                        format!("{dq}-unbound").as_str().into(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("unbind");
                    // The binding routes before the restart.
                    publish_ok(&ch, &x, dq, "before", persistent()).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                assert_no_exchange(&conn, &nx).await;
                assert_no_exchange(&conn, &xd).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("durable exchange gone after {how:?}: {e}"));
                for (dq, nq, eq) in &names {
                    assert_no_queue(&conn, nq).await;
                    assert_no_queue(&conn, eq).await;
                    assert_eq!(ready_count(&conn, dq).await, 1, "{dq} after {how:?}");
                    // The durable binding routes after the restart.
                    publish_ok(&ch, &x, dq, "after", persistent()).await;
                    // So does the exchange-to-exchange binding.
                    publish_ok(&ch, &xs, dq, "via-e2e", persistent()).await;
                    wait_ready(&conn, dq, 3).await;
                    assert_eq!(
                        drain(&conn, dq).await,
                        fresh(&["before".into(), "after".into(), "via-e2e".into()]),
                        "{dq} after {how:?}"
                    );
                    // The unbound key does not route any more.
                    let c = ch
                        .basic_publish(
                            x.as_str().into(),
                            format!("{dq}-unbound").as_str().into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..Default::default()
                            },
                            b"unroutable",
                            persistent(),
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    assert!(
                        matches!(&c, Confirmation::Ack(Some(_))),
                        "unbound key routed after {how:?}: {c:?}"
                    );
                    assert_eq!(ready_count(&conn, dq).await, 0);
                    // The exclusive queue's name is free: a new connection
                    // may declare it.
                    declare_queue(&ch, eq, true, None).await;
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_messages_are_dropped_persistent_ones_kept_in_order() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("mix-{p:?}")))
                .collect();
            let kept = bodies("p", 0..30);
            let props_queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("props-{p:?}")))
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in props_queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_ok(&ch, "", q, "props", rich_properties()).await;
                }
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    for (i, body) in kept.iter().enumerate() {
                        publish_ok(&ch, "", q, body, persistent()).await;
                        publish_ok(&ch, "", q, &format!("t1-{i}"), transient()).await;
                        publish_ok(&ch, "", q, &format!("t-{i}"), BasicProperties::default()).await;
                    }
                    wait_ready(&conn, q, 90).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&kept), "{q} after {how:?}");
                }
                let ch = conn.create_channel().await.expect("channel.open");
                for q in &props_queues {
                    let got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert_eq!(got.delivery.data, b"props");
                    assert_eq!(
                        got.delivery.properties,
                        rich_properties(),
                        "properties after {how:?}"
                    );
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_come_back_redelivered() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("unacked-{p:?}")))
                .collect();
            let all = bodies("m", 0..10);
            // The connection (and its unacked deliveries) stays open until
            // the broker goes down.
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for (q, p) in queues.iter().zip(&placements) {
                    let ch = confirm_channel(&conn).await;
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &all).await;
                    // m0..m3 to a consumer (prefetch 4), m4 by basic.get;
                    // none acked.
                    ch.basic_qos(4, BasicQosOptions::default())
                        .await
                        .expect("basic.qos");
                    let mut consumer = ch
                        .basic_consume(
                            q.as_str().into(),
                            "".into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .expect("basic.consume");
                    for want in &all[..4] {
                        let d = within_secs(10, consumer.next())
                            .await
                            .expect("consumer open")
                            .expect("delivery");
                        assert_eq!(&String::from_utf8(d.data).unwrap(), want);
                        assert!(!d.redelivered);
                    }
                    let got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert_eq!(got.delivery.data, all[4].as_bytes());
                    barrier(&ch, *p).await;
                    open.push((ch, consumer));
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let want: Vec<(String, bool)> = all
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (b.clone(), i < 5))
                    .collect();
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, want, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_and_rejected_messages_do_not_come_back_requeued_ones_do() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("acked-{p:?}")))
                .collect();
            let all = bodies("m", 0..10);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for (q, p) in queues.iter().zip(&placements) {
                    let ch = confirm_channel(&conn).await;
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &all).await;
                    // m0..m6 by basic.get: delivery tags 1..7.
                    for (i, want) in all[..7].iter().enumerate() {
                        let got = ch
                            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                            .await
                            .expect("basic.get")
                            .expect("get-ok");
                        assert_eq!(got.delivery.data, want.as_bytes());
                        assert_eq!(got.delivery.delivery_tag, i as u64 + 1);
                    }
                    // m1 alone, then m0, m2, m3 with multiple; m5 rejected
                    // without requeue; m6 rejected with requeue (back in the
                    // queue, delivered once); m4 stays unacked.
                    ch.basic_reject(7, BasicRejectOptions { requeue: true })
                        .await
                        .expect("reject with requeue");
                    ch.basic_ack(2, BasicAckOptions::default())
                        .await
                        .expect("ack");
                    ch.basic_ack(4, BasicAckOptions { multiple: true })
                        .await
                        .expect("ack multiple");
                    ch.basic_reject(6, BasicRejectOptions { requeue: false })
                        .await
                        .expect("reject");
                    barrier(&ch, *p).await;
                    open.push(ch);
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut want = vec![(all[4].clone(), true), (all[6].clone(), true)];
                want.extend(fresh(&all[7..]));
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, want, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_persists() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("purge-{p:?}")))
                .collect();
            let after = bodies("after", 0..2);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &bodies("before", 0..5)).await;
                    let n = ch
                        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                        .await
                        .expect("queue.purge");
                    assert_eq!(n, 5, "purge-ok count");
                    // Also the barrier for the purge record: same queue.
                    publish_all(&ch, q, &after).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&after), "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delete_persists() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            // (deleted for good, deleted then redeclared)
            let queues: Vec<(String, String)> = placements
                .iter()
                .map(|p| {
                    (
                        unique_name(&format!("deleted-{p:?}")),
                        unique_name(&format!("redeclared-{p:?}")),
                    )
                })
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for ((gone, again), p) in queues.iter().zip(&placements) {
                    for q in [gone, again] {
                        declare_queue(&ch, q, true, *p).await;
                        publish_all(&ch, q, &bodies("old", 0..3)).await;
                        let n = ch
                            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                            .await
                            .expect("queue.delete");
                        assert_eq!(n, 3, "delete-ok count");
                    }
                    declare_queue(&ch, again, true, *p).await;
                    assert_eq!(ready_count(&conn, again).await, 0);
                    // Also the barrier for both deletions: same shard.
                    publish_all(&ch, again, &["new".to_string()]).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = conn.create_channel().await.expect("channel.open");
                for ((gone, again), p) in queues.iter().zip(&placements) {
                    assert_no_queue(&conn, gone).await;
                    let q = ch
                        .queue_declare(gone.as_str().into(), durable(), lapin_placement_args(*p))
                        .await
                        .expect("redeclare");
                    assert_eq!(q.message_count(), 0, "{gone} after {how:?}");
                    assert_eq!(
                        drain(&conn, again).await,
                        fresh(&["new".to_string()]),
                        "{again} after {how:?}"
                    );
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_are_not_reused_across_restarts() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("ids-{p:?}")))
                .collect();
            let a = bodies("a", 0..3);
            let b = bodies("b", 0..3);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &a).await;
                }
            })
            .await;
            node.restart(how);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for q in &queues {
                    let ch = confirm_channel(&conn).await;
                    // Published after the restart: queued after a0..a2.
                    publish_all(&ch, q, &b).await;
                    assert_eq!(ready_count(&conn, q).await, 6);
                    // Ack a0 and a1 (kill records naming their ids; had b0
                    // and b1 been given the same ids they would die too).
                    for want in &a[..2] {
                        let got = ch
                            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                            .await
                            .expect("basic.get")
                            .expect("get-ok");
                        assert_eq!(got.delivery.data, want.as_bytes());
                        ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                            .await
                            .expect("ack");
                    }
                    // The barrier: one more confirmed message, last in line.
                    publish_all(&ch, q, &["c".to_string()]).await;
                    open.push(ch);
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut want = vec![a[2].clone()];
                want.extend(b.iter().cloned());
                want.push("c".to_string());
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&want), "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_to_durable_queues_survives_restart() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            // Three queues: two on one shard, one on the other (when there
            // are two).
            let placements: Vec<Option<usize>> = if shards == 1 {
                vec![None, None, None]
            } else {
                vec![Some(0), Some(1), Some(0)]
            };
            let x = unique_name("fan");
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("fan-{p:?}")))
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("declare fanout");
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    ch.queue_bind(
                        q.as_str().into(),
                        x.as_str().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("bind");
                }
                publish_ok(&ch, &x, "", "fan-1", persistent()).await;
            })
            .await;
            node.restart(how);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(ready_count(&conn, q).await, 1, "{q} after {how:?}");
                }
                // Take the copy of the first queue only; the others keep
                // theirs (one record, three owners).
                let ch = confirm_channel(&conn).await;
                let got = ch
                    .basic_get(queues[0].as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"fan-1");
                assert!(!got.delivery.redelivered);
                ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
                // A second fan-out message, also the barrier for the ack.
                publish_ok(&ch, &x, "", "fan-2", persistent()).await;
                (conn, ch)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let two = fresh(&["fan-1".to_string(), "fan-2".to_string()]);
                assert_eq!(
                    drain(&conn, &queues[0]).await,
                    fresh(&["fan-2".to_string()]),
                    "{} after {how:?}",
                    queues[0]
                );
                for q in &queues[1..] {
                    assert_eq!(drain(&conn, q).await, two, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_message_does_not_pin_the_log() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    // One message stays unacked and one ready in a durable queue while
    // ~200 MiB of persistent traffic goes through another queue of the same
    // shard. Without compaction their first segment would stay, and with it
    // every later one (their dead records hold acks for older segments).
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        // Both queues on the last shard (with 2 shards, the connection may be
        // on the other one).
        let placement = last_shard(shards);
        let shard_dir = node
            .path()
            .join(format!("shard-{}", placement.unwrap_or(0)));
        let stuck = unique_name("stuck");
        let busy = unique_name("busy");
        let held = within_secs(180, async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &stuck, true, placement).await;
            declare_queue(&ch, &busy, true, placement).await;
            publish_ok(&ch, "", &stuck, "stuck-1", persistent()).await;
            publish_ok(&ch, "", &stuck, "stuck-2", persistent()).await;
            let holder = conn.create_channel().await.expect("channel.open");
            let got = holder
                .basic_get(stuck.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("basic.get")
                .expect("get-ok");
            assert_eq!(got.delivery.data, b"stuck-1");
            // Batches of 16: the acks of a segment's last messages land in the
            // next segment, so each segment holds kill-records for the one
            // before it.
            for batch in 0..13 {
                let mut confirms = Vec::new();
                for i in batch * 16..(batch + 1) * 16 {
                    let c = ch
                        .basic_publish(
                            "".into(),
                            busy.as_str().into(),
                            BasicPublishOptions::default(),
                            &big_body(i),
                            persistent(),
                        )
                        .await
                        .expect("publish");
                    confirms.push(c);
                }
                for c in confirms {
                    assert!(c.await.expect("confirm").is_ack());
                }
                for i in batch * 16..(batch + 1) * 16 {
                    let got = ch
                        .basic_get(busy.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert!(got.delivery.data == big_body(i), "body of big-{i}");
                }
            }
            let rolled = segment_files(&shard_dir);
            let last: u64 = rolled
                .last()
                .and_then(|p| p.file_stem()?.to_str()?.parse().ok())
                .expect("a segment");
            assert!(last >= 4, "the traffic rolled to segment 4: {rolled:?}");
            let reclaimed = eventually(30, || segment_files(&shard_dir).len() <= 2).await;
            assert!(
                reclaimed,
                "segments still on disk: {:?}",
                segment_files(&shard_dir)
            );
            barrier(&ch, placement).await;
            (conn, holder)
        })
        .await;
        node.restart(Down::Kill);
        drop(held);
        within(async {
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(
                drain(&conn, &stuck).await,
                vec![
                    ("stuck-1".to_string(), true),
                    ("stuck-2".to_string(), false)
                ],
                "the compacted messages survive, stuck-1 redelivered"
            );
            assert_eq!(
                ready_count(&conn, &busy).await,
                0,
                "nothing acked comes back"
            );
        })
        .await;
    }
}

/// A 1 MiB body starting with its name, the rest a pattern derived from `i`.
fn big_body(i: usize) -> Vec<u8> {
    let mut body = format!("big-{i}:").into_bytes();
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    while body.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body.push(x as u8);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_across_segments_survive_and_dead_segments_go() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    // 70 MiB of persistent messages: more than one 64 MiB segment.
    const N: usize = 70;
    const ACKED: usize = 66;
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let placement = last_shard(shards);
        let shard_dir = node
            .path()
            .join(format!("shard-{}", placement.unwrap_or(0)));
        let q = unique_name("big");
        let kept = within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, placement).await;
            let mut pending = Vec::new();
            for i in 0..N {
                let c = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &big_body(i),
                        persistent(),
                    )
                    .await
                    .expect("publish");
                pending.push(c);
            }
            for c in pending {
                assert!(c.await.expect("confirm").is_ack());
            }
            let segs = segment_files(&shard_dir);
            assert!(segs.len() >= 2, "70 MiB rolled over to a second segment");
            // Take and ack the first ACKED: every message of the first
            // segment dies.
            for i in 0..ACKED {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert!(got.delivery.data == big_body(i), "body of big-{i} intact");
                ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
            }
            barrier(&ch, placement).await;
            (conn, ch, segs[0].clone())
        })
        .await;
        let first = kept.2.clone();
        node.restart(Down::Kill);
        drop(kept);
        within(async {
            // The dead first segment is reclaimed (before the crash or at
            // recovery at the latest).
            let gone = eventually(10, || !first.exists()).await;
            assert!(gone, "dead segment {} still on disk", first.display());
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(ready_count(&conn, &q).await, (N - ACKED) as u32);
            let ch = conn.create_channel().await.expect("channel.open");
            for i in ACKED..N {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert!(
                    got.delivery.data == big_body(i),
                    "body of big-{i} intact after SIGKILL"
                );
                assert!(!got.delivery.redelivered, "big-{i} was never delivered");
            }
            assert_eq!(ready_count(&conn, &q).await, 0);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_restarts_do_not_pile_up_segments() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let q = unique_name("idle");
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, placement).await;
            publish_all(&ch, &q, &["kept".to_string()]).await;
        })
        .await;
        for i in 0..4 {
            node.restart(if i % 2 == 0 { Down::Term } else { Down::Kill });
        }
        within(async {
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(drain(&conn, &q).await, fresh(&["kept".to_string()]));
        })
        .await;
        // Each start opens a fresh 64 MiB segment; the empty ones of earlier
        // runs must not accumulate (one holding "kept", the active one, and
        // at most one not yet reclaimed).
        for shard in 0..shards {
            let dir = node.path().join(format!("shard-{shard}"));
            let segs = segment_files(&dir);
            assert!(
                segs.len() <= 3,
                "{} segments in {} after 4 idle restarts: {segs:?}",
                segs.len(),
                dir.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_data_dir_of_another_shard_count() {
    if skip_if_external("it runs the warren binary on a data dir made for another shard count") {
        return;
    }
    let mut node = Node::start(2);
    within(async {
        let conn = lapin_connect(&node.broker).await;
        let ch = conn.create_channel().await.expect("channel.open");
        declare_queue(&ch, &unique_name("placed"), true, Some(1)).await;
    })
    .await;
    node.down(Down::Term);
    let (status, stderr) = Broker::run_to_exit(1, node.path(), &[], 20);
    assert!(
        !status.success(),
        "warren exited 0 on a 2-shard data dir with --shards 1: {stderr}"
    );
    assert!(
        stderr.contains("--shards 2"),
        "the error names the shard count to use: {stderr}"
    );
    // The data dir is intact: the right shard count still starts.
    node.broker = Broker::start_in(2, node.path());
}

// ------------------------------------------------------------ torn tail ----

/// How the tail of a shard's log is damaged while the broker is down.
#[derive(Clone, Copy, Debug)]
enum Tear {
    /// The second half of the last record reads as zeroes (a torn write
    /// into the preallocated file).
    ZeroedHalf,
    /// The file ends a few bytes into the last record.
    Cut,
    /// Garbage right after the last record (the last record is intact).
    Garbage,
}

/// The segment files of a shard log directory, ascending by id.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let digits = name.strip_suffix(".seg")?;
            if digits.len() != 20 {
                return None;
            }
            Some((digits.parse().ok()?, e.path()))
        })
        .collect();
    segs.sort();
    segs.into_iter().map(|(_, p)| p).collect()
}

/// `(offset, length incl. header)` of each record of a segment file: they
/// are contiguous from offset 0 until eight zero bytes or EOF.
fn records(file: &File) -> Vec<(u64, u64)> {
    let size = file.metadata().expect("stat segment").len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos + 8 <= size {
        let mut header = [0u8; 8];
        file.read_exact_at(&mut header, pos).expect("read header");
        if header == [0; 8] {
            break;
        }
        let len = u64::from(u32::from_le_bytes(header[..4].try_into().unwrap()));
        let total = 8 + len;
        assert!(
            len >= 1 && pos + total <= size,
            "record at {pos} (len {len}) runs past the end of the segment ({size})"
        );
        out.push((pos, total));
        pos += total;
    }
    out
}

/// Damages the last record of the last non-empty segment of `shard_dir`,
/// which must be a message record whose body is `last_body`.
fn tear(shard_dir: &Path, tear: Tear, last_body: &str) {
    let segs = segment_files(shard_dir);
    let (path, file, recs) = segs
        .iter()
        .rev()
        .find_map(|p| {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .expect("open segment");
            let r = records(&f);
            (!r.is_empty()).then(|| (p.clone(), f, r))
        })
        .unwrap_or_else(|| panic!("no records under {}", shard_dir.display()));
    let &(off, total) = recs.last().expect("non-empty");
    let mut rec = vec![0u8; total as usize];
    file.read_exact_at(&mut rec, off).expect("read last record");
    assert_eq!(
        rec[8],
        1,
        "the last record of {} is a message",
        path.display()
    );
    assert!(
        rec.ends_with(last_body.as_bytes()),
        "the last record of {} ends with body {last_body:?}",
        path.display()
    );
    match tear {
        Tear::ZeroedHalf => {
            let from = off + total / 2;
            let zeros = vec![0u8; (off + total - from) as usize];
            file.write_all_at(&zeros, from).expect("zero the tail");
        }
        Tear::Cut => file.set_len(off + 8 + 3).expect("truncate"),
        Tear::Garbage => {
            let garbage: Vec<u8> = (0..37u8).map(|i| 0xA5 ^ i.wrapping_mul(31)).collect();
            file.write_all_at(&garbage, off + total)
                .expect("write garbage");
        }
    }
    file.sync_all().expect("sync segment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_cut_off() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for kind in [Tear::ZeroedHalf, Tear::Cut, Tear::Garbage] {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("torn-{p:?}")))
                .collect();
            let old = bodies("m", 0..20);
            let new = bodies("n", 0..3);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &old).await;
                }
            })
            .await;
            node.down(Down::Kill);
            // One queue per shard: each shard's log ends with its last message.
            for p in &placements {
                let dir = node.path().join(format!("shard-{}", p.unwrap_or(0)));
                tear(&dir, kind, old.last().expect("messages"));
            }
            node.broker = Broker::start_in(shards, node.path());
            let survivors: Vec<String> = match kind {
                Tear::Garbage => old.clone(),
                Tear::ZeroedHalf | Tear::Cut => old[..old.len() - 1].to_vec(),
            };
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for q in &queues {
                    assert_eq!(
                        drain(&conn, q).await,
                        fresh(&survivors),
                        "{q} after {kind:?}"
                    );
                    publish_all(&ch, q, &new).await;
                }
            })
            .await;
            node.restart(Down::Term);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(
                        drain(&conn, q).await,
                        fresh(&new),
                        "{q}: new messages after {kind:?} and a restart"
                    );
                }
            })
            .await;
        }
    }
}

// ------------------------------------------------- definitions journal ----
//
// Durable definitions are journaled (`definitions.journal`, one entry per
// change, group-committed) next to the `definitions` snapshot, which is
// rewritten only when the journal outgrows it. These tests check that after
// a SIGKILL exactly the definitions whose -ok was sent come back (plus, at
// most, the change in flight on each connection), also when the crash hits
// a rotation.

use std::collections::BTreeSet;

/// A binding as the admin listing shows it: source, destination kind,
/// destination, routing key.
type BindingRow = (String, String, String, String);

/// The durable definitions of one test (its names share a prefix).
#[derive(Clone, Debug, Default, PartialEq)]
struct DefsState {
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
    bindings: BTreeSet<BindingRow>,
}

impl DefsState {
    fn delete_queue(&mut self, q: &str) {
        self.queues.remove(q);
        self.bindings.retain(|b| !(b.1 == "queue" && b.2 == q));
    }

    fn delete_exchange(&mut self, x: &str) {
        self.exchanges.remove(x);
        self.bindings
            .retain(|b| b.0 != x && !(b.1 == "exchange" && b.2 == x));
    }

    fn extend(&mut self, other: DefsState) {
        self.queues.extend(other.queues);
        self.exchanges.extend(other.exchanges);
        self.bindings.extend(other.bindings);
    }
}

fn binding_row(source: &str, kind: &str, dest: &str, key: &str) -> BindingRow {
    (source.into(), kind.into(), dest.into(), key.into())
}

/// `GET /<what>` on the admin endpoint (plain HTTP/1.0): the listing.
fn admin_listing(admin: &str, what: &str) -> String {
    let response = admin_request(
        admin,
        &format!("GET /{what} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    );
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("bad admin response: {response:?}"));
    assert!(head.starts_with("HTTP/1.0 200"), "GET /{what}: {head}");
    body.to_string()
}

/// The durable definitions whose names (queues, exchanges; either end of a
/// binding) start with `prefix`, as the broker at `admin` lists them.
fn listed_state(admin: &str, prefix: &str) -> DefsState {
    let rows = |what: &str| -> Vec<Vec<String>> {
        admin_listing(admin, what)
            .lines()
            .skip(2)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    let mut st = DefsState::default();
    for r in rows("queues") {
        if r[0].starts_with(prefix) {
            assert_eq!(r[4], "true", "a transient queue after a restart: {r:?}");
            st.queues.insert(r[0].clone());
        }
    }
    for r in rows("exchanges") {
        if r[0].starts_with(prefix) {
            assert_eq!(r[2], "true", "a transient exchange after a restart: {r:?}");
            st.exchanges.insert(r[0].clone());
        }
    }
    for r in rows("bindings") {
        if r[0].starts_with(prefix) || r[2].starts_with(prefix) {
            st.bindings.insert(binding_row(&r[0], &r[1], &r[2], &r[3]));
        }
    }
    st
}

fn durable_exchange_options() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// One connection's share of the big workload: 15 durable exchanges (some
/// bound to each other), 75 durable queues each bound to two of them, and
/// transient queues and exchanges bound to and from them; then unbinds,
/// queue deletions, redeclarations and exchange deletions. Returns the
/// durable state it should leave.
async fn definitions_workload(
    conn: Connection,
    prefix: String,
    w: usize,
    placements: Vec<Option<usize>>,
) -> DefsState {
    let ch = conn.create_channel().await.expect("channel.open");
    let mut st = DefsState::default();
    let kinds = [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
    ];
    let xn = |i: usize| format!("{prefix}-x{w}-{i}");
    let qn = |i: usize| format!("{prefix}-q{w}-{i}");
    for i in 0..15 {
        ch.exchange_declare(
            xn(i).as_str().into(),
            kinds[i % 3].clone(),
            durable_exchange_options(),
            FieldTable::default(),
        )
        .await
        .expect("declare durable exchange");
        st.exchanges.insert(xn(i));
    }
    let tx = format!("{prefix}-tx{w}");
    ch.exchange_declare(
        tx.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("declare transient exchange");
    for i in 0..5 {
        let key = format!("e{i}");
        ch.exchange_bind(
            xn(i + 1).as_str().into(),
            xn(i).as_str().into(),
            key.as_str().into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        st.bindings
            .insert(binding_row(&xn(i), "exchange", &xn(i + 1), &key));
    }
    // Durable exchange to transient exchange: not durable.
    ch.exchange_bind(
        tx.as_str().into(),
        xn(0).as_str().into(),
        "to-transient".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind to a transient exchange");
    let bind = |q: String, x: String, key: String| {
        let ch = ch.clone();
        async move {
            ch.queue_bind(
                q.as_str().into(),
                x.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("bind {q} to {x}: {e}"))
        }
    };
    for i in 0..75 {
        let q = qn(i);
        let placement = placements[i % placements.len()];
        declare_queue(&ch, &q, true, placement).await;
        st.queues.insert(q.clone());
        for (x, key) in [
            (xn(i % 15), format!("k{i}")),
            (xn((i + 1) % 15), format!("k{i}-b")),
        ] {
            bind(q.clone(), x.clone(), key.clone()).await;
            st.bindings.insert(binding_row(&x, "queue", &q, &key));
        }
        // From a transient exchange: not durable.
        bind(q.clone(), tx.clone(), "t".into()).await;
        if i % 15 == 0 {
            let tq = format!("{prefix}-tq{w}-{i}");
            ch.queue_declare(
                tq.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(placement),
            )
            .await
            .expect("declare transient queue");
            bind(tq, xn(i % 15), "tq".into()).await;
        }
    }
    for i in (0..75).filter(|i| i % 4 == 1) {
        let (q, x, key) = (qn(i), xn((i + 1) % 15), format!("k{i}-b"));
        ch.queue_unbind(
            q.as_str().into(),
            x.as_str().into(),
            key.as_str().into(),
            FieldTable::default(),
        )
        .await
        .expect("unbind");
        st.bindings.remove(&binding_row(&x, "queue", &q, &key));
    }
    for i in (0..75).filter(|i| i % 3 == 0) {
        ch.queue_delete(qn(i).as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("queue.delete");
        st.delete_queue(&qn(i));
    }
    // Declared again: it comes back without its old bindings.
    for i in (0..75).filter(|i| i % 6 == 0) {
        declare_queue(&ch, &qn(i), true, placements[i % placements.len()]).await;
        st.queues.insert(qn(i));
    }
    for i in [4, 9, 14] {
        ch.exchange_delete(xn(i).as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("exchange.delete");
        st.delete_exchange(&xn(i));
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_journaled_definitions_come_back_exactly_after_sigkill() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let prefix = unique_name("jd");
        let placements = placements(&node.broker);
        let expected = within_secs(120, async {
            let mut tasks = Vec::new();
            for w in 0..4 {
                let conn = lapin_connect(&node.broker).await;
                tasks.push(tokio::spawn(definitions_workload(
                    conn,
                    prefix.clone(),
                    w,
                    placements.clone(),
                )));
            }
            let mut st = DefsState::default();
            for t in tasks {
                st.extend(t.await.expect("workload task"));
            }
            st
        })
        .await;
        assert_eq!(expected.queues.len(), 4 * (75 - 25 + 13));
        assert_eq!(expected.exchanges.len(), 4 * 12);
        let journal = node.path().join("definitions.journal");
        let journaled = std::fs::metadata(&journal).map_or(0, |m| m.len());
        assert!(
            journaled > 4 * 75 * 100,
            "the changes went to the journal ({journaled} bytes)"
        );
        // Every -ok above has been received: SIGKILL at once.
        node.restart(Down::Kill);
        let admin = admin_addr(&node.broker);
        let got = listed_state(&admin, &prefix);
        assert_eq!(got.queues, expected.queues, "queues, {shards} shards");
        assert_eq!(
            got.exchanges, expected.exchanges,
            "exchanges, {shards} shards"
        );
        assert_eq!(got.bindings, expected.bindings, "bindings, {shards} shards");
        // The bindings route, and queues are on the shard they were pinned to.
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            let q = format!("{prefix}-q0-1");
            publish_ok(&ch, &format!("{prefix}-x0-1"), "k1", "routed", persistent()).await;
            // x0-0 -> x0-1 (exchange-to-exchange), then k1 to q0-1.
            publish_ok(&ch, &format!("{prefix}-x0-0"), "e0", "e2e", persistent()).await;
            wait_ready(&conn, &q, 2).await;
        })
        .await;
        if shards > 1 {
            let queues = admin_listing(&admin, "queues");
            let r = row(&queues, &format!("{prefix}-q0-1"));
            assert_eq!(r[7], "1", "q0-1 was pinned to shard 1: {r:?}");
        }
        // A clean restart after the recovery (which starts a new journal
        // generation on the first change) keeps everything too.
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = conn.create_channel().await.expect("channel.open");
            declare_queue(&ch, &format!("{prefix}-after"), true, None).await;
        })
        .await;
        node.restart(Down::Kill);
        let mut expected = expected;
        expected.queues.insert(format!("{prefix}-after"));
        let got = listed_state(&admin_addr(&node.broker), &prefix);
        assert_eq!(got, expected, "after a second SIGKILL, {shards} shards");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_deleted_durable_exchanges_stay_deleted() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let prefix = unique_name("ad");
        let ad = format!("{prefix}-ad");
        let ad2 = format!("{prefix}-ad2");
        let x = format!("{prefix}-x");
        let kept = format!("{prefix}-kept");
        let dq = format!("{prefix}-dq");
        let tq = format!("{prefix}-tq");
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = conn.create_channel().await.expect("channel.open");
            let auto_delete = ExchangeDeclareOptions {
                durable: true,
                auto_delete: true,
                ..Default::default()
            };
            for name in [&ad, &ad2, &kept] {
                ch.exchange_declare(
                    name.as_str().into(),
                    ExchangeKind::Direct,
                    auto_delete,
                    FieldTable::default(),
                )
                .await
                .expect("declare durable auto-delete exchange");
            }
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Direct,
                durable_exchange_options(),
                FieldTable::default(),
            )
            .await
            .expect("declare durable exchange");
            declare_queue(&ch, &dq, true, None).await;
            ch.queue_declare(
                tq.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare transient queue");
            for (q, key) in [(&dq, "d"), (&tq, "t")] {
                ch.queue_bind(
                    q.as_str().into(),
                    ad.as_str().into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            }
            ch.queue_bind(
                dq.as_str().into(),
                kept.as_str().into(),
                "k".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
            ch.exchange_bind(
                x.as_str().into(),
                ad2.as_str().into(),
                "".into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("exchange.bind");
            // `ad` keeps its binding to the transient queue: it stays.
            ch.queue_unbind(
                dq.as_str().into(),
                ad.as_str().into(),
                "d".into(),
                FieldTable::default(),
            )
            .await
            .expect("unbind");
            // Its last binding goes with a transient queue: `ad` is deleted.
            ch.queue_delete(tq.as_str().into(), QueueDeleteOptions::default())
                .await
                .expect("delete transient queue");
            // Its only binding's destination is deleted: `ad2` is deleted.
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .expect("exchange.delete");
            assert_no_exchange(&conn, &ad).await;
            assert_no_exchange(&conn, &ad2).await;
        })
        .await;
        node.restart(Down::Kill);
        let expected = DefsState {
            queues: [dq.clone()].into(),
            exchanges: [kept.clone()].into(),
            bindings: [binding_row(&kept, "queue", &dq, "k")].into(),
        };
        assert_eq!(
            listed_state(&admin_addr(&node.broker), &prefix),
            expected,
            "{shards} shards"
        );
    }
}

/// What one client of the crash workload saw: the queues whose
/// declare-ok and delete-ok it got, and the operation that was in flight
/// when the connection died.
#[derive(Debug, Default)]
struct ClientLog {
    declared: Vec<String>,
    deleted: Vec<String>,
    in_flight: Option<String>,
}

/// Declares durable queues `<prefix>-c<client>-<i>` (and deletes every
/// third one again) until the connection fails or `max` operations were
/// done.
async fn declare_until_the_broker_dies(
    uri: String,
    prefix: String,
    client: usize,
    max: usize,
) -> ClientLog {
    let mut log = ClientLog::default();
    let Ok(conn) = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await
    else {
        return log;
    };
    let Ok(ch) = conn.create_channel().await else {
        return log;
    };
    for i in 0..max {
        let q = format!("{prefix}-c{client}-{i}");
        log.in_flight = Some(q.clone());
        let declared = ch
            .queue_declare(q.as_str().into(), durable(), FieldTable::default())
            .await;
        if declared.is_err() {
            return log;
        }
        log.declared.push(q.clone());
        if i % 3 == 2 {
            let deleted = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
            if deleted.is_err() {
                return log;
            }
            log.deleted.push(q);
        }
        log.in_flight = None;
    }
    log
}

/// Checks the durable queues of `prefix` after a crash against what the
/// clients saw: everything declared and not deleted is there, nothing
/// deleted is, and nothing else is except an operation in flight.
fn check_after_crash(admin: &str, prefix: &str, logs: &[ClientLog], what: &str) {
    let got = listed_state(admin, prefix).queues;
    let mut must: BTreeSet<String> = BTreeSet::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut maybe: BTreeSet<String> = BTreeSet::new();
    for l in logs {
        must.extend(l.declared.iter().cloned());
        for d in &l.deleted {
            must.remove(d);
            gone.insert(d.clone());
        }
        maybe.extend(l.in_flight.iter().cloned());
    }
    for q in &must {
        if !maybe.contains(q) {
            assert!(got.contains(q), "{what}: declared queue {q} is missing");
        }
    }
    for q in &gone {
        assert!(!got.contains(q), "{what}: deleted queue {q} came back");
    }
    for q in &got {
        assert!(
            must.contains(q) || maybe.contains(q),
            "{what}: queue {q} was never declared (or its delete-ok was sent)"
        );
    }
}

/// Runs four crash-workload clients against `uri`.
async fn crash_clients(uri: &str, prefix: &str, max: usize) -> Vec<ClientLog> {
    let tasks: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(declare_until_the_broker_dies(
                uri.to_string(),
                prefix.to_string(),
                c,
                max,
            ))
        })
        .collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("client task"));
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_journal_rotation_loses_nothing_acknowledged() {
    if skip_if_external(
        "it makes a local warren crash mid-rotation (test-only environment variables)",
    ) {
        return;
    }
    // The broker kills itself while it starts its fourth journal generation
    // (start-up, then rotations every ~2 KiB of entries), at each step of
    // the switch in turn.
    for shards in SHARD_COUNTS {
        for point in ["snapshot-written", "snapshot-renamed", "journal-truncated"] {
            let dir = temp_dir("warren-defs-rotation-");
            let prefix = unique_name(&format!("rot-{point}"));
            let crash = format!("{point}:4");
            let mut broker = Broker::start_in_with_env(
                shards,
                dir.path(),
                &["--admin-port", "off"],
                &[
                    ("WARREN_DEFINITIONS_JOURNAL_MAX", "2048"),
                    ("WARREN_TEST_DEFINITIONS_CRASH", &crash),
                ],
            );
            let logs = within(crash_clients(&broker.uri(), &prefix, 2_000)).await;
            let status = broker.wait_exit(20);
            assert!(
                status.is_some_and(|s| !s.success()),
                "{point}: the broker did not crash at its rotation (status {status:?}); stderr:\n{}",
                broker.log().join("\n")
            );
            assert!(
                broker.log().iter().any(|l| l.contains("test crash point")),
                "{point}: crashed elsewhere; stderr:\n{}",
                broker.log().join("\n")
            );
            let declared: usize = logs.iter().map(|l| l.declared.len()).sum();
            assert!(
                declared > 20,
                "{point}: only {declared} declares before the crash"
            );
            drop(broker);
            let what = format!("{point}, {shards} shards");
            let mut b = Broker::start_in(shards, dir.path());
            check_after_crash(&admin_addr(&b), &prefix, &logs, &what);
            if point == "snapshot-renamed" {
                assert!(
                    b.log().iter().any(|l| l.contains("interrupted rotation")),
                    "{what}: the stale journal was not reported: {:?}",
                    b.log()
                );
            }
            // The next generation after the crash is consistent too: more
            // changes, another SIGKILL.
            let more = within(async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel.open");
                let q = format!("{prefix}-more");
                declare_queue(&ch, &q, true, None).await;
                q
            })
            .await;
            b.kill();
            let b = Broker::start_in(shards, dir.path());
            let mut logs = logs;
            logs.push(ClientLog {
                declared: vec![more],
                ..ClientLog::default()
            });
            check_after_crash(&admin_addr(&b), &prefix, &logs, &format!("{what}, again"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_while_the_journal_rotates_constantly() {
    if skip_if_external(
        "it SIGKILLs a local warren that rotates its journal constantly (test-only environment variable)",
    ) {
        return;
    }
    let mut rng = Rng::seeded();
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-defs-random-");
        let prefix = unique_name("rnd");
        let mut all: Vec<ClientLog> = Vec::new();
        for cycle in 0..3 {
            // A new journal generation after (about) every group commit.
            let mut broker = Broker::start_in_with_env(
                shards,
                dir.path(),
                &[],
                &[("WARREN_DEFINITIONS_JOURNAL_MAX", "256")],
            );
            let uri = broker.uri();
            let admin = admin_addr(&broker);
            let cycle_prefix = format!("{prefix}-{cycle}");
            let clients = tokio::spawn({
                let cycle_prefix = cycle_prefix.clone();
                async move { crash_clients(&uri, &cycle_prefix, 100_000).await }
            });
            // The random moment is counted from the first declare the
            // broker made durable, not from the start: on a loaded machine
            // the clients may need seconds to get going.
            let started = {
                let (admin, cycle_prefix) = (admin.clone(), cycle_prefix.clone());
                eventually(60, move || {
                    !listed_state(&admin, &cycle_prefix).queues.is_empty()
                })
                .await
            };
            assert!(started, "cycle {cycle}: no durable declare within 60 s");
            let delay = rng.range(0, 600);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            broker.kill();
            let logs = within(clients).await.expect("clients");
            all.extend(logs);
            drop(broker);
            let b = Broker::start_in(shards, dir.path());
            check_after_crash(
                &admin_addr(&b),
                &prefix,
                &all,
                &format!("cycle {cycle} (killed after {delay} ms), {shards} shards"),
            );
            // A queue in flight at the crash may or may not have come
            // back; either is fine, but from now on it is what it is.
            let now = listed_state(&admin_addr(&b), &prefix).queues;
            for l in &mut all {
                if let Some(q) = l.in_flight.take() {
                    if now.contains(&q) {
                        if !l.declared.contains(&q) {
                            l.declared.push(q);
                        } else {
                            // Its delete was in flight and did not happen.
                        }
                    } else if l.declared.contains(&q) {
                        l.deleted.push(q);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------- failing log ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_nacks_publishes_and_loses_nothing_it_confirmed() {
    if skip_if_external(
        "it injects log write failures into a local warren (test-only environment variables)",
    ) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-failing-log-");
        // Every shard's log fails its 30th write as a broken disk would; a
        // tiny memory budget makes transient copies go to the log too.
        let mut broker = Broker::start_in_with_env(
            shards,
            dir.path(),
            &["--admin-port", "off"],
            &[
                ("WARREN_TEST_LOG_FAIL_AFTER_BATCHES", "30"),
                ("WARREN_MEMORY_BUDGET", "4096"),
            ],
        );
        let placement = last_shard(shards);
        let durable_q = unique_name("failing-durable");
        let transient_q = unique_name("failing-transient");
        let acked = within_secs(120, async {
            let conn = lapin_connect(&broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &durable_q, true, placement).await;
            ch.queue_declare(
                transient_q.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(placement),
            )
            .await
            .expect("declare");
            let mut acked = Vec::new();
            let (mut nacked_durable, mut nacked_transient) = (0, 0);
            for i in 0..400 {
                for (q, props) in [(&durable_q, persistent()), (&transient_q, transient())] {
                    let body = format!("{q}-{i}");
                    // Every publish gets an answer, ack or nack: none hangs.
                    let confirmation = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            body.as_bytes(),
                            props,
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    match confirmation {
                        Confirmation::Ack(_) => {
                            if q == &durable_q {
                                acked.push(body);
                            }
                        }
                        Confirmation::Nack(_) if q == &durable_q => nacked_durable += 1,
                        Confirmation::Nack(_) => nacked_transient += 1,
                        Confirmation::NotRequested => panic!("confirm mode"),
                    }
                }
            }
            assert!(acked.len() >= 10, "the log worked for a while");
            assert!(
                nacked_durable > 0,
                "persistent publishes nacked after the failure"
            );
            assert!(nacked_transient > 0, "paged transient publishes nacked too");
            assert!(
                broker
                    .log()
                    .iter()
                    .any(|l| l.contains("injected write failure")),
                "the failure is logged:\n{}",
                broker.log().join("\n")
            );
            acked
        })
        .await;
        broker.kill();
        drop(broker);
        // A healthy restart: every persistent message that was acked is there.
        let node = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&node).await;
            let got = bodies_only(drain(&conn, &durable_q).await);
            let got: HashSet<&String> = got.iter().collect();
            let lost: Vec<&String> = acked.iter().filter(|b| !got.contains(b)).collect();
            assert!(lost.is_empty(), "acked messages lost: {lost:?}");
        })
        .await;
    }
}
