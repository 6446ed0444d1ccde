//! Delayed messages (`x-delayed-message` exchanges, as RabbitMQ's
//! delayed-message plugin): declare validation, order by deadline, timing,
//! `x-delay` absent / negative = now, each `x-delayed-type`, mandatory
//! (returned at once, delivered later, as the plugin), durable pending
//! messages across SIGKILL, confirms after the fsync, `messages_delayed`
//! in `warren ctl list_exchanges`, and bounded memory for 100 k pending.
//! Each runs with 1 and 2 shards, the queue on each shard. The reference
//! RabbitMQ has no delayed-message plugin: every test skips against it.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use std::time::{Duration, Instant};

const NO_PLUGIN: &str = "the reference RabbitMQ has no rabbitmq_delayed_message_exchange plugin";

fn delayed_args(kind: &str) -> FieldTable {
    let mut a = FieldTable::default();
    a.insert("x-delayed-type".into(), AMQPValue::LongString(kind.into()));
    a
}

fn with_delay(props: BasicProperties, delay: Option<i64>) -> BasicProperties {
    let mut h = FieldTable::default();
    if let Some(d) = delay {
        h.insert("x-delay".into(), AMQPValue::LongLongInt(d));
    }
    props.with_headers(h)
}

async fn declare_delayed(ch: &lapin::Channel, name: &str, kind: &str, durable: bool) {
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Custom("x-delayed-message".into()),
        ExchangeDeclareOptions {
            durable,
            ..Default::default()
        },
        delayed_args(kind),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

async fn bind(ch: &lapin::Channel, q: &str, x: &str, key: &str, args: FieldTable) {
    ch.queue_bind(
        q.into(),
        x.into(),
        key.into(),
        QueueBindOptions::default(),
        args,
    )
    .await
    .expect("bind");
}

/// Publishes on a confirm channel and waits for the ack.
async fn publish(
    ch: &lapin::Channel,
    x: &str,
    key: &str,
    body: &str,
    props: BasicProperties,
    mandatory: bool,
) -> lapin::Confirmation {
    ch.basic_publish(
        x.into(),
        key.into(),
        BasicPublishOptions {
            mandatory,
            ..Default::default()
        },
        body.as_bytes(),
        props,
    )
    .await
    .expect("publish")
    .await
    .expect("confirm")
}

/// Consumes `n` messages (auto-ack): (body, when it arrived).
async fn consume(conn: &lapin::Connection, q: &str, n: usize) -> Vec<(String, Instant)> {
    let ch = conn.create_channel().await.expect("channel");
    let mut c = ch
        .basic_consume(
            q.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut out = Vec::new();
    while out.len() < n {
        let d = c.next().await.expect("delivery").expect("delivery ok");
        out.push((String::from_utf8(d.data).unwrap(), Instant::now()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_requires_a_known_delayed_type() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let declare = |args: FieldTable| {
                let conn = &conn;
                async move {
                    let ch = conn.create_channel().await.unwrap();
                    ch.exchange_declare(
                        unique_name("dx").as_str().into(),
                        ExchangeKind::Custom("x-delayed-message".into()),
                        ExchangeDeclareOptions::default(),
                        args,
                    )
                    .await
                }
            };
            assert_lapin_error(
                declare(FieldTable::default()).await,
                406,
                "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type",
            );
            assert_lapin_code(declare(delayed_args("x-delayed-message")).await, 406);
            for kind in ["direct", "fanout", "topic", "headers"] {
                declare(delayed_args(kind)).await.expect("known type");
            }
            // An unknown type is unknown as exchange.declare says (503 closes
            // the connection): last.
            assert_lapin_error(
                declare(delayed_args("nope")).await,
                503,
                "COMMAND_INVALID - unknown exchange type 'nope'",
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_shorter_delay_arrives_first_and_on_time() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for p in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let (x, q) = (unique_name("dx"), unique_name("dq"));
                declare_delayed(&ch, &x, "direct", false).await;
                declare_queue(&ch, &q, false, p).await;
                bind(&ch, &q, &x, "k", FieldTable::default()).await;
                let t0 = Instant::now();
                let props = BasicProperties::default();
                publish(
                    &ch,
                    &x,
                    "k",
                    "late",
                    with_delay(props.clone(), Some(700)),
                    false,
                )
                .await;
                let t1 = Instant::now();
                publish(&ch, &x, "k", "early", with_delay(props, Some(300)), false).await;
                assert_eq!(ready_count(&conn, &q).await, 0, "held, not queued");
                let got = consume(&conn, &q, 2).await;
                assert_eq!(got[0].0, "early");
                assert_eq!(got[1].0, "late");
                let early = got[0].1 - t1;
                let late = got[1].1 - t0;
                eprintln!(
                    "shards {shards} {p:?}: 300 ms delay took {early:?}, 700 ms took {late:?}"
                );
                assert!(early >= Duration::from_millis(300), "{early:?}");
                assert!(late >= Duration::from_millis(700), "{late:?}");
                // Generous bounds for a loaded CI machine.
                assert!(early < Duration::from_millis(800), "{early:?}");
                assert!(late < Duration::from_millis(1200), "{late:?}");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_zero_or_negative_delay_routes_now() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for p in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let (x, q) = (unique_name("dx"), unique_name("dq"));
                declare_delayed(&ch, &x, "direct", false).await;
                declare_queue(&ch, &q, false, p).await;
                bind(&ch, &q, &x, "k", FieldTable::default()).await;
                let props = BasicProperties::default();
                for (body, d) in [("absent", None), ("zero", Some(0)), ("neg", Some(-5000))] {
                    let c = publish(&ch, &x, "k", body, with_delay(props.clone(), d), true).await;
                    // Routed now: mandatory finds the queue, nothing returned.
                    assert_eq!(c, lapin::Confirmation::Ack(None));
                }
                assert_eq!(ready_count(&conn, &q).await, 3);
                // Routed now to nothing: returned now, as any exchange.
                let c = publish(&ch, &x, "nokey", "x", BasicProperties::default(), true).await;
                assert!(matches!(c, lapin::Confirmation::Ack(Some(_))), "{c:?}");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mandatory_delayed_message_is_returned_now_and_delivered_later() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let (x, q) = (unique_name("dx"), unique_name("dq"));
            declare_delayed(&ch, &x, "direct", false).await;
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            bind(&ch, &q, &x, "k", FieldTable::default()).await;
            let props = with_delay(BasicProperties::default(), Some(200));
            let c = publish(&ch, &x, "k", "m", props, true).await;
            match c {
                lapin::Confirmation::Ack(Some(r)) => {
                    let r = Some(r.reply_text.as_str().to_string());
                    assert_eq!(r.as_deref(), Some("NO_ROUTE"));
                }
                other => panic!("the plugin returns it at publish time: {other:?}"),
            }
            assert_eq!(consume(&conn, &q, 1).await[0].0, "m");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delayed_type_routes_as_its_type_at_delivery_time() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for p in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let mut hdr = FieldTable::default();
                hdr.insert("x-match".into(), AMQPValue::LongString("all".into()));
                hdr.insert("h".into(), AMQPValue::LongString("v".into()));
                for (kind, key, bind_key, bind_args) in [
                    ("direct", "k", "k", FieldTable::default()),
                    ("fanout", "whatever", "", FieldTable::default()),
                    ("topic", "a.b.c", "a.#", FieldTable::default()),
                    ("headers", "", "", hdr.clone()),
                ] {
                    let (x, q, other) = (unique_name("dx"), unique_name("dq"), unique_name("do"));
                    declare_delayed(&ch, &x, kind, false).await;
                    declare_queue(&ch, &q, false, p).await;
                    declare_queue(&ch, &other, false, p).await;
                    let mut props = BasicProperties::default();
                    let mut h = FieldTable::default();
                    h.insert("x-delay".into(), AMQPValue::LongInt(200));
                    h.insert("h".into(), AMQPValue::LongString("v".into()));
                    props = props.with_headers(h);
                    publish(&ch, &x, key, kind, props, false).await;
                    // Bound after the publish, before its time: the bindings
                    // at delivery time count.
                    bind(&ch, &q, &x, bind_key, bind_args).await;
                    if kind != "fanout" {
                        let mut miss = FieldTable::default();
                        miss.insert("h".into(), AMQPValue::LongString("w".into()));
                        bind(&ch, &other, &x, "nomatch.x", miss).await;
                    }
                    assert_eq!(consume(&conn, &q, 1).await[0].0, kind);
                    if kind != "fanout" {
                        assert_eq!(ready_count(&conn, &other).await, 0, "{kind}");
                    }
                }
            })
            .await;
        }
    }
}

/// The delay of the messages that must survive the SIGKILL.
const DELAY_MS: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_delayed_messages_survive_sigkill_and_arrive_on_time() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-delayed-");
        let mut b = Broker::start_in(shards, dir.path());
        let (x, tx) = (unique_name("dx"), unique_name("tx"));
        let queues: Vec<(String, Option<usize>)> = placements(&b)
            .into_iter()
            .map(|p| (unique_name("dq"), p))
            .collect();
        let deadline = within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_delayed(&ch, &x, "fanout", true).await;
            declare_delayed(&ch, &tx, "fanout", false).await;
            for (q, p) in &queues {
                declare_queue(&ch, q, true, *p).await;
                bind(&ch, q, &x, "", FieldTable::default()).await;
            }
            // Long enough that a loaded machine still holds all of them
            // when the restarted broker is first asked.
            let first_deadline = Instant::now() + Duration::from_millis(DELAY_MS as u64);
            for i in 0..10 {
                let props = with_delay(persistent(), Some(DELAY_MS + i * 10));
                publish(&ch, &x, "", &format!("m{i}"), props, false).await;
                // A transient delayed message need not survive.
                let props = with_delay(BasicProperties::default(), Some(DELAY_MS));
                publish(&ch, &x, "", "transient", props, false).await;
                let props = with_delay(persistent(), Some(DELAY_MS));
                publish(&ch, &tx, "", "transient-x", props, false).await;
            }
            first_deadline
        })
        .await;
        // The publishes were not confirmed: wait until the broker holds
        // all of them before the kill.
        let held = eventually(30, || {
            cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed") == 20
        })
        .await;
        assert!(held, "20 delayed messages held before the kill");
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        let held = cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed");
        // On a machine slow enough that the delay ran out before this
        // answer, some were rightly routed already; the consumers below
        // check that every one arrives.
        if Instant::now() < deadline {
            assert_eq!(held, 10, "the persistent ones on the durable exchange");
        } else {
            assert!(held <= 10, "{held} held");
        }
        within(async {
            let conn = lapin_connect(&b).await;
            for (q, _) in &queues {
                let got = consume(&conn, q, 10).await;
                let bodies: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
                let want: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
                assert_eq!(bodies, want);
                assert!(got[0].1 >= deadline, "delivered before its time");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            for (q, _) in &queues {
                assert_eq!(ready_count(&conn, q).await, 0, "no transient one came back");
            }
        })
        .await;
        assert_eq!(
            cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed"),
            0
        );
        drop(b);
        // Delivered (and recorded done) before this restart: not again.
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            for (q, _) in &queues {
                assert_eq!(
                    ready_count(&conn, q).await,
                    0,
                    "consumed (no-ack) and not routed again"
                );
            }
        })
        .await;
        assert_eq!(
            cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed"),
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_delayed_publish_is_confirmed_after_the_fsync() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-delayed-");
        let b = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", "400")],
        );
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let x = unique_name("dx");
            declare_delayed(&ch, &x, "direct", true).await;
            let t = Instant::now();
            publish(
                &ch,
                &x,
                "k",
                "d",
                with_delay(persistent(), Some(60_000)),
                false,
            )
            .await;
            let durable = t.elapsed();
            let t = Instant::now();
            publish(
                &ch,
                &x,
                "k",
                "t",
                with_delay(BasicProperties::default(), Some(60_000)),
                false,
            )
            .await;
            let transient = t.elapsed();
            eprintln!("confirm: durable {durable:?}, transient {transient:?}");
            assert!(durable >= Duration::from_millis(400), "{durable:?}");
            assert!(transient < Duration::from_millis(300), "{transient:?}");
        })
        .await;
    }
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_pending_delayed_messages_keep_rss_small() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let pid = b.pid().expect("local broker");
        let n = 100_000;
        let body = "x".repeat(1024);
        let before = rss(pid);
        within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let x = unique_name("dx");
            declare_delayed(&ch, &x, "direct", false).await;
            let props = with_delay(BasicProperties::default(), Some(600_000));
            let mut pending = Vec::new();
            for _ in 0..n {
                let c = ch
                    .basic_publish(
                        x.as_str().into(),
                        "k".into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        props.clone(),
                    )
                    .await
                    .expect("publish");
                pending.push(c);
                if pending.len() >= 1000 {
                    for c in pending.drain(..) {
                        c.await.expect("confirm");
                    }
                }
            }
            for c in pending.drain(..) {
                c.await.expect("confirm");
            }
            assert_eq!(
                cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed"),
                n as u64
            );
        })
        .await;
        let after = rss(pid);
        let grew = after.saturating_sub(before);
        eprintln!(
            "shards {shards}: RSS {} MiB -> {} MiB for {n} pending 1 KiB delayed messages",
            before >> 20,
            after >> 20
        );
        // The bodies alone are 100 MiB; the index is 32 bytes a message.
        assert!(grew < 40 << 20, "RSS grew by {} MiB", grew >> 20);
    }
}

/// Segment files (`<20 digits>.seg`) in a shard's log directory.
fn segment_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.strip_suffix(".seg").is_some_and(|d| d.len() == 20))
                .count()
        })
        .unwrap_or(0)
}

/// A long-delayed durable message does not pin the log: compaction moves
/// its record forward, so the segments that persistent traffic rolled
/// through (and whose kill records chain back to its segment) are deleted
/// while it is pending; it still arrives after a SIGKILL and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delay_does_not_pin_log_segments() {
    if skip_if_external(NO_PLUGIN) {
        return;
    }
    // Long enough to outlast the traffic below on a loaded machine.
    const DELAY_MS: i64 = 30_000;
    // Small segments (64 KiB), so the traffic rolls through many.
    let env = [("WARREN_TEST_LOG_SEGMENT_SIZE", "65536")];
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-delayed-compact-");
        let mut b = Broker::start_in_with_env(shards, dir.path(), &[], &env);
        let (x, q) = (unique_name("dx-long"), unique_name("dq-long"));
        let started = within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_delayed(&ch, &x, "fanout", true).await;
            declare_queue(&ch, &q, true, None).await;
            bind(&ch, &q, &x, "", FieldTable::default()).await;
            let started = Instant::now();
            let props = with_delay(persistent(), Some(DELAY_MS));
            assert!(publish(&ch, &x, "", "later", props, false).await.is_ack());
            // Persistent traffic through a queue on every shard, consumed in
            // batches of 4 (a quarter segment): the acks of a segment's last
            // messages land in the next segment, so each segment holds kill
            // records for the one before it, back to the delayed record's.
            let body = "t".repeat(4096);
            for p in placements(&b) {
                let busy = unique_name("busy");
                declare_queue(&ch, &busy, true, p).await;
                for _ in 0..40 {
                    let batch = vec![body.clone(); 4];
                    publish_confirmed(&ch, &busy, &batch, persistent()).await;
                    assert_eq!(drain(&conn, &busy).await.len(), 4);
                }
            }
            started
        })
        .await;
        let dirs: Vec<_> = (0..shards)
            .map(|s| dir.path().join(format!("shard-{s}")))
            .collect();
        let reclaimed = eventually(15, || dirs.iter().all(|d| segment_count(d) <= 3)).await;
        let counts: Vec<usize> = dirs.iter().map(|d| segment_count(d)).collect();
        assert!(reclaimed, "segments per shard still on disk: {counts:?}");
        // Still pending: the test proved something only if so.
        assert!(
            started.elapsed() < Duration::from_millis(DELAY_MS as u64),
            "the traffic took longer than the delay: {:?}",
            started.elapsed()
        );
        assert_eq!(
            cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed"),
            1
        );
        b.kill();
        let b = Broker::start_in_with_env(shards, dir.path(), &[], &env);
        assert_eq!(
            cell_num(&ctl(&b, "list_exchanges"), &x, "messages_delayed"),
            1,
            "the moved record is recovered once"
        );
        within_secs(DELAY_MS as u64 / 1000 + 60, async {
            let conn = lapin_connect(&b).await;
            let got = consume(&conn, &q, 1).await;
            assert_eq!(got[0].0, "later");
            assert!(got[0].1 >= started + Duration::from_millis(DELAY_MS as u64));
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(ready_count(&conn, &q).await, 0, "delivered once");
        })
        .await;
    }
}
