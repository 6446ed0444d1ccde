//! The consumer timeout, as RabbitMQ's: a channel whose oldest unacked
//! delivery (a consumer's, or a basic.get's in ack mode) has waited longer
//! than its timeout is closed with 406 PRECONDITION_FAILED and RabbitMQ's
//! text (`rabbit_channel:handle_consumer_timed_out/3`), and its unacked
//! messages go back to the queue, redelivered. The timeout is the queue's
//! `x-consumer-timeout` argument or `consumer-timeout` policy key (the
//! lower of the two), else `--consumer-timeout`; off by default. The
//! argument and the policy key are validated like RabbitMQ's other numeric
//! ones. With 1 and 2 shards, the queue on each shard (so the consumer is
//! also on a queue owned by the other shard).
//!
//! A consumer's own `x-consumer-timeout` (a basic.consume argument,
//! RabbitMQ 4.x's) wins over all of those, larger or smaller, and is
//! validated as RabbitMQ 4.x's `consume_args/0` validates it (a
//! non-negative integer).
//!
//! Against RabbitMQ 3.10.8 these tests skip: its timeout is the global
//! `consumer_timeout` only (30 minutes there, and not to be reconfigured
//! under other engineers' feet), and it ignores `x-consumer-timeout` (queue
//! and consumer argument) and refuses the policy key. The text and the
//! behaviour were checked against RabbitMQ's source (3.10.8 and 3.12.0
//! `rabbit_channel.erl`, 3.12.0 `rabbit_policies.erl`, `rabbit_amqqueue.erl`
//! of 4.x for the arguments, `rabbit_queue_type:consume/3` of 4.x for the
//! consumer argument's precedence). Deliberate difference: RabbitMQ 4.3
//! takes the consumer argument on quorum queues only (classic queues
//! refuse it as another type's); Warren takes it on every queue type, as
//! it takes the queue argument.

mod common;

use common::raw::RawConn;
use common::*;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

const WARREN_ONLY: &str = "RabbitMQ 3.10.8 has only the global consumer_timeout (30 min on the \
     reference broker, which is not reconfigured for a test) and ignores x-consumer-timeout";

/// RabbitMQ's text for a timeout of `ms` on channel `channel`.
fn timed_out_text(channel: u16, ms: u64) -> String {
    format!(
        "PRECONDITION_FAILED - delivery acknowledgement on channel {channel} timed out. \
         Timeout value used: {ms} ms. This timeout value can be configured, see consumers \
         doc guide to learn more"
    )
}

fn with_timeout(placement: Option<usize>, ms: Option<i64>) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    if let Some(ms) = ms {
        t.insert("x-consumer-timeout".into(), AMQPValue::LongLongInt(ms));
    }
    t
}

/// A broker whose global timeout is far away (10 min), with a policy
/// giving the queues matching `pattern` a consumer timeout of `ms`.
fn broker_with_policy(shards: usize, pattern: &str, ms: u64) -> Broker {
    let b = Broker::start_with_args(shards, &["--consumer-timeout", "600000"]);
    let definition = format!(r#"{{"consumer-timeout":{ms}}}"#);
    broker_ctl_ok(
        &b,
        &[
            "set_policy",
            "ct",
            pattern,
            &definition,
            "--apply-to",
            "queues",
        ],
    );
    b
}

/// Declares `q` with `args` and publishes `n` messages to it.
async fn fill(b: &Broker, q: &str, args: FieldTable, n: usize) {
    let conn = lapin_connect(b).await;
    let ch = confirm_channel(&conn).await;
    ch.queue_declare(q.into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap_or_else(|e| panic!("declare {q}: {e}"));
    publish_confirmed(&ch, q, &padded_bodies("t", n), Default::default()).await;
    conn.close(200, "".into()).await.ok();
}

/// The encoded entries of a consume arguments table holding
/// `x-consumer-timeout` = `ms` (a long-long), or none.
fn consumer_args(ms: Option<i64>) -> Vec<u8> {
    let Some(ms) = ms else {
        return Vec::new();
    };
    let key = "x-consumer-timeout";
    let mut t = vec![key.len() as u8];
    t.extend_from_slice(key.as_bytes());
    t.push(b'l');
    t.extend_from_slice(&ms.to_be_bytes());
    t
}

/// A raw client consumes `q` on channel 1 without acking, takes `n`
/// deliveries, and expects its channel closed with the timeout of `ms`;
/// then the messages are back in the queue, redelivered.
async fn consume_until_closed(b: &Broker, q: &str, n: usize, ms: u64) {
    consume_with_until_closed(b, q, None, n, ms).await
}

/// `consume_until_closed` by a consumer whose own `x-consumer-timeout` is
/// `own` (None: it sets none).
async fn consume_with_until_closed(b: &Broker, q: &str, own: Option<i64>, n: usize, ms: u64) {
    let addr = b.addr();
    let q2 = q.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = RawConn::connect(&addr);
        c.handshake("guest", "guest");
        c.channel_open(1);
        c.basic_consume_with(1, &q2, "slow", &consumer_args(own));
        for _ in 0..n {
            let d = c.read_delivery();
            assert!(!d.redelivered);
        }
        let close = c.expect_method();
        assert_eq!(
            (close.channel, close.class, close.method),
            (1, 20, 40),
            "channel.close: {close:?}"
        );
        assert_eq!(close.close_reason(), (406, timed_out_text(1, ms)));
        let mut r = close.reader();
        let (_, _) = (r.short(), r.shortstr());
        assert_eq!((r.short(), r.short()), (0, 0), "no method caused it");
        c.send_method(1, 20, 41, &[]);
        // The connection goes on: another channel works.
        c.channel_open(2);
    })
    .await
    .expect("raw client");
    let conn = lapin_connect(b).await;
    let ch = conn.create_channel().await.expect("channel");
    for _ in 0..n {
        let m = within(async {
            loop {
                if let Some(m) = ch
                    .basic_get(q.into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get")
                {
                    return m;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(m.delivery.redelivered, "requeued messages are redelivered");
    }
    conn.close(200, "".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_timeout_closes_the_channel_and_requeues() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--consumer-timeout", "1000"]);
        within_secs(120, async {
            for placement in placements(&b) {
                let q = unique_name(&format!("ct-global-{placement:?}"));
                fill(&b, &q, lapin_placement_args(placement), 3).await;
                consume_until_closed(&b, &q, 3, 1000).await;
            }
        })
        .await;
        assert!(
            b.logs_within("has timed out waiting for delivery acknowledgement"),
            "the broker logs the timeout"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_argument_and_policy_set_the_timeout_the_lower_wins() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        // A global timeout far away: the queue's own takes precedence.
        let b = broker_with_policy(shards, "^ct-policy", 1200);
        within_secs(180, async {
            for placement in placements(&b) {
                let q = unique_name(&format!("ct-arg-{placement:?}"));
                fill(&b, &q, with_timeout(placement, Some(800)), 2).await;
                consume_until_closed(&b, &q, 2, 800).await;
                // The policy alone.
                let q = unique_name(&format!("ct-policy-{placement:?}"));
                fill(&b, &q, with_timeout(placement, None), 1).await;
                consume_until_closed(&b, &q, 1, 1200).await;
                // Argument 5000, policy 1200: the lower.
                let q = unique_name(&format!("ct-policy-arg-{placement:?}"));
                fill(&b, &q, with_timeout(placement, Some(5000)), 1).await;
                consume_until_closed(&b, &q, 1, 1200).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumers_own_timeout_wins_over_the_queues_and_the_global_one() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = broker_with_policy(shards, "^ct-own-policy", 400);
        within_secs(180, async {
            for placement in placements(&b) {
                // Below the global timeout.
                let q = unique_name(&format!("ct-own-global-{placement:?}"));
                fill(&b, &q, with_timeout(placement, None), 2).await;
                consume_with_until_closed(&b, &q, Some(900), 2, 900).await;
                // Below the queue's argument.
                let q = unique_name(&format!("ct-own-below-{placement:?}"));
                fill(&b, &q, with_timeout(placement, Some(600_000)), 1).await;
                consume_with_until_closed(&b, &q, Some(700), 1, 700).await;
                // Above the queue's argument and policy: used as it is.
                let q = unique_name(&format!("ct-own-policy-{placement:?}"));
                fill(&b, &q, with_timeout(placement, Some(300)), 1).await;
                consume_with_until_closed(&b, &q, Some(1500), 1, 1500).await;
                // 0: the first check finds the delivery late.
                let q = unique_name(&format!("ct-own-zero-{placement:?}"));
                fill(&b, &q, with_timeout(placement, None), 1).await;
                consume_with_until_closed(&b, &q, Some(0), 1, 0).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consumer_timeouts_are_refused_as_rabbitmq_4_refuses_them() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    let b = Broker::start(1);
    let conn = lapin_connect(&b).await;
    for quorum in [false, true] {
        let q = unique_name(if quorum { "ct-bad-qq" } else { "ct-bad-cq" });
        let mut args = FieldTable::default();
        if quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        let ch = conn.create_channel().await.expect("channel");
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(q.as_str().into(), durable, args)
            .await
            .expect("declare");
        for (value, reason) in [
            (AMQPValue::LongLongInt(-1), "{value_negative,-1}"),
            (
                AMQPValue::LongString("60000".into()),
                "\"expected integer, got longstr\"",
            ),
        ] {
            let ch = conn.create_channel().await.expect("channel");
            let mut args = FieldTable::default();
            args.insert("x-consumer-timeout".into(), value);
            let r = ch
                .basic_consume(
                    q.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    args,
                )
                .await;
            assert_lapin_error(
                r,
                406,
                &format!(
                    "PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '{q}' \
                     in vhost '/': {reason}"
                ),
            );
        }
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .expect("delete");
    }
    conn.close(200, "".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_basic_get_times_out_too() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within_secs(60, async {
            let q = unique_name("ct-get");
            fill(&b, &q, with_timeout(last_shard(shards), Some(500)), 1).await;
            let addr = b.addr();
            let q2 = q.clone();
            tokio::task::spawn_blocking(move || {
                let mut c = RawConn::connect(&addr);
                c.handshake("guest", "guest");
                c.channel_open(3);
                let get = common::raw::Args::new()
                    .short(0)
                    .shortstr(&q2)
                    .bits(&[false])
                    .done();
                c.send_method(3, 60, 70, &get);
                let ok = c.expect_method();
                assert_eq!((ok.class, ok.method), (60, 71), "get-ok: {ok:?}");
                let _ = c.read_frame().expect("header");
                let _ = c.read_frame().expect("body");
                let close = c.expect_method();
                assert_eq!(close.close_reason(), (406, timed_out_text(3, 500)));
            })
            .await
            .expect("raw client");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_timeouts_are_refused_like_rabbitmqs_numeric_arguments() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    let b = Broker::start(1);
    let conn = lapin_connect(&b).await;
    for (value, reason) in [
        (AMQPValue::LongInt(-1), "{value_negative,-1}"),
        (
            AMQPValue::LongString("x".into()),
            "\"expected integer, got longstr\"",
        ),
    ] {
        let ch = conn.create_channel().await.expect("channel");
        let mut args = FieldTable::default();
        args.insert("x-consumer-timeout".into(), value);
        let r = ch
            .queue_declare("bad-ct".into(), QueueDeclareOptions::default(), args)
            .await;
        assert_lapin_error(
            r,
            406,
            &format!(
                "PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue 'bad-ct' \
                 in vhost '/': {reason}"
            ),
        );
    }
    // Redeclared with another timeout: inequivalent, as any argument.
    let q = unique_name("ct-eq");
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        with_timeout(None, Some(1000)),
    )
    .await
    .expect("declare");
    let r = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            with_timeout(None, Some(2000)),
        )
        .await;
    assert_lapin_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-consumer-timeout' for queue '{q}' \
             in vhost '/': received '2000' but current is '1000'"
        ),
    );
    for bad in [
        r#"{"consumer-timeout":-5}"#,
        r#"{"consumer-timeout":"soon"}"#,
    ] {
        let (ok, text) = broker_ctl(
            &b,
            &["set_policy", "bad", "^x", bad, "--apply-to", "queues"],
        );
        assert!(!ok, "{bad} is refused");
        assert!(text.contains("is not a valid consumer timeout"), "{text}");
    }
    conn.close(200, "".into()).await.ok();
}
