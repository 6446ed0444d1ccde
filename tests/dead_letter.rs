//! Dead-lettering end to end: basic.reject / basic.nack without requeue
//! republish through the queue's dead-letter exchange with RabbitMQ's
//! `x-death` and `x-first-death-*` / `x-last-death-*` headers, an ack does
//! not, the routing key override, a missing dead-letter exchange drops, a
//! cycle of rejections keeps going, and a durable dead-lettered message
//! survives a SIGKILL right after the reject (in the target or the source).
//! With one and two shards, source and target pinned to different shards.

mod common;

use common::*;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::time::Duration;

const SHARD_COUNTS: [usize; 2] = [1, 2];

/// (source shard, target shard) pairs: unpinned with one shard, then both
/// ways across shards.
fn pairs(b: &Broker) -> Vec<(Option<usize>, Option<usize>)> {
    if b.shards() <= 1 || b.is_external() {
        vec![(None, None)]
    } else {
        vec![(Some(0), Some(1)), (Some(1), Some(0))]
    }
}

fn dlx_args(
    placement: Option<usize>,
    exchange: Option<&str>,
    routing_key: Option<&str>,
) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    if let Some(x) = exchange {
        t.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(x.into()),
        );
    }
    if let Some(k) = routing_key {
        t.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(k.into()),
        );
    }
    t
}

async fn declare(ch: &Channel, name: &str, durable: bool, args: FieldTable) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

async fn direct_exchange(ch: &Channel, name: &str) {
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare");
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue.bind");
}

async fn publish(ch: &Channel, queue: &str, body: &str, props: BasicProperties) {
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props,
        )
        .await
        .expect("publish");
    assert!(
        matches!(
            confirm.await.expect("confirm"),
            lapin::Confirmation::Ack(None)
        ),
        "publish not acked"
    );
}

async fn get(ch: &Channel, queue: &str) -> Option<BasicGetMessage> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap_or_else(|e| panic!("basic.get {queue}: {e}"))
}

/// basic.get on `queue` until a message comes (5 s at most).
async fn get_eventually(ch: &Channel, queue: &str) -> BasicGetMessage {
    for _ in 0..250 {
        if let Some(m) = get(ch, queue).await {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing arrived in {queue}");
}

fn header<'a>(m: &'a BasicGetMessage, key: &str) -> Option<&'a AMQPValue> {
    m.delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

fn field<'a>(t: &'a FieldTable, key: &str) -> &'a AMQPValue {
    t.inner()
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {t:?}"))
}

fn long_str(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8(s.as_bytes().to_vec()).expect("utf-8"),
        other => panic!("expected a longstr, got {other:?}"),
    }
}

/// The `x-death` entries of a message.
fn x_death(m: &BasicGetMessage) -> Vec<FieldTable> {
    match header(m, "x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry {other:?}"),
            })
            .collect(),
        other => panic!("x-death is {other:?}"),
    }
}

/// Checks one `x-death` entry: count, reason, queue, exchange,
/// routing-keys, and a timestamp `time`.
fn check_death(
    t: &FieldTable,
    count: i64,
    reason: &str,
    queue: &str,
    exchange: &str,
    keys: &[&str],
) {
    assert_eq!(field(t, "count"), &AMQPValue::LongLongInt(count), "{t:?}");
    assert_eq!(long_str(field(t, "reason")), reason);
    assert_eq!(long_str(field(t, "queue")), queue);
    assert_eq!(long_str(field(t, "exchange")), exchange);
    let want: Vec<AMQPValue> = keys
        .iter()
        .map(|k| AMQPValue::LongString(LongString::from(*k)))
        .collect();
    match field(t, "routing-keys") {
        AMQPValue::FieldArray(a) => assert_eq!(a.as_slice(), want.as_slice()),
        other => panic!("routing-keys {other:?}"),
    }
    match field(t, "time") {
        AMQPValue::Timestamp(secs) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(secs.abs_diff(now) < 120, "time {secs} vs now {now}");
        }
        other => panic!("time is {other:?}"),
    }
}

fn check_death_headers(b: &Broker, m: &BasicGetMessage, prefix: &str, reason: &str, queue: &str) {
    let h = |k: &str| {
        long_str(header(m, &format!("{prefix}-{k}")).unwrap_or_else(|| panic!("no {prefix}-{k}")))
    };
    if prefix == "x-last-death" && b.is_external() {
        // RabbitMQ 3.10 writes no x-last-death-* headers (3.13 does).
        return;
    }
    assert_eq!(h("reason"), reason);
    assert_eq!(h("queue"), queue);
    assert_eq!(h("exchange"), "");
}

fn body(m: &BasicGetMessage) -> String {
    String::from_utf8(m.delivery.data.clone()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_and_nack_without_requeue_dead_letter_with_x_death() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for (src_shard, dst_shard) in pairs(&b) {
            within(async {
                let dlx = unique_name("dlx");
                let src = unique_name("dl-src");
                let dst = unique_name("dl-dst");
                direct_exchange(&ch, &dlx).await;
                declare(&ch, &src, false, dlx_args(src_shard, Some(&dlx), None)).await;
                declare(&ch, &dst, false, lapin_placement_args(dst_shard)).await;
                bind(&ch, &dst, &dlx, &src).await;
                publish(&ch, &src, "rejected", BasicProperties::default()).await;
                publish(&ch, &src, "nacked", BasicProperties::default()).await;
                publish(&ch, &src, "acked", BasicProperties::default()).await;

                let m = get(&ch, &src).await.expect("first");
                ch.basic_reject(
                    m.delivery.delivery_tag,
                    BasicRejectOptions { requeue: false },
                )
                .await
                .expect("reject");
                let m = get(&ch, &src).await.expect("second");
                ch.basic_nack(
                    m.delivery.delivery_tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: false,
                    },
                )
                .await
                .expect("nack");
                let m = get(&ch, &src).await.expect("third");
                ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");

                for want in ["rejected", "nacked"] {
                    let m = get_eventually(&ch, &dst).await;
                    assert_eq!(body(&m), want);
                    assert_eq!(m.delivery.exchange.as_str(), dlx);
                    assert_eq!(m.delivery.routing_key.as_str(), src);
                    let deaths = x_death(&m);
                    assert_eq!(deaths.len(), 1, "{deaths:?}");
                    check_death(&deaths[0], 1, "rejected", &src, "", &[&src]);
                    check_death_headers(&b, &m, "x-first-death", "rejected", &src);
                    check_death_headers(&b, &m, "x-last-death", "rejected", &src);
                    ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
                        .await
                        .expect("ack");
                }
                // The acked one was not dead-lettered; the source is empty.
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert!(get(&ch, &dst).await.is_none(), "an ack dead-lettered");
                assert_eq!(ready_count(&conn, &src).await, 0);
            })
            .await;
        }
        if !b.is_external() {
            assert_eq!(
                ctl_num(&b, "status", "total", "dead_lettered"),
                2 * pairs(&b).len() as u64
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_routing_key_replaces_the_keys() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for (src_shard, dst_shard) in pairs(&b) {
            within(async {
                let dlx = unique_name("dlx");
                let src = unique_name("dl-src");
                let dst = unique_name("dl-dst");
                direct_exchange(&ch, &dlx).await;
                declare(
                    &ch,
                    &src,
                    false,
                    dlx_args(src_shard, Some(&dlx), Some("elsewhere")),
                )
                .await;
                declare(&ch, &dst, false, lapin_placement_args(dst_shard)).await;
                bind(&ch, &dst, &dlx, "elsewhere").await;
                publish(&ch, &src, "m", BasicProperties::default()).await;
                let m = get(&ch, &src).await.expect("message");
                ch.basic_reject(
                    m.delivery.delivery_tag,
                    BasicRejectOptions { requeue: false },
                )
                .await
                .expect("reject");
                let m = get_eventually(&ch, &dst).await;
                assert_eq!(m.delivery.routing_key.as_str(), "elsewhere");
                // x-death keeps the keys the message died with.
                check_death(&x_death(&m)[0], 1, "rejected", &src, "", &[&src]);
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_exchange_drops_the_message() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for (src_shard, _) in pairs(&b) {
            within(async {
                let src = unique_name("dl-src");
                let missing = unique_name("no-such-dlx");
                declare(&ch, &src, false, dlx_args(src_shard, Some(&missing), None)).await;
                publish(&ch, &src, "m", BasicProperties::default()).await;
                let m = get(&ch, &src).await.expect("message");
                ch.basic_reject(
                    m.delivery.delivery_tag,
                    BasicRejectOptions { requeue: false },
                )
                .await
                .expect("reject");
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert_eq!(ready_count(&conn, &src).await, 0);
                assert!(get(&ch, &src).await.is_none());
                // The channel and the broker carry on.
                publish(&ch, &src, "after", BasicProperties::default()).await;
                assert_eq!(body(&get_eventually(&ch, &src).await), "after");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_rejecting_into_each_other_keep_going() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        for (a_shard, b_shard) in pairs(&b) {
            within(async {
                let qa = unique_name("dl-a");
                let qb = unique_name("dl-b");
                declare(&ch, &qa, false, dlx_args(a_shard, Some(""), Some(&qb))).await;
                declare(&ch, &qb, false, dlx_args(b_shard, Some(""), Some(&qa))).await;
                publish(&ch, &qa, "ping", BasicProperties::default()).await;
                let mut at = get_eventually(&ch, &qa).await;
                // Round r rejects in qa (odd) or qb (even).
                for round in 1..=6i64 {
                    let (from, to) = if round % 2 == 1 {
                        (&qa, &qb)
                    } else {
                        (&qb, &qa)
                    };
                    ch.basic_reject(
                        at.delivery.delivery_tag,
                        BasicRejectOptions { requeue: false },
                    )
                    .await
                    .expect("reject");
                    at = get_eventually(&ch, to).await;
                    assert_eq!(body(&at), "ping");
                    let deaths = x_death(&at);
                    // The latest death first: `from`'s, counted (round+1)/2 times.
                    let from_count = (round + 1) / 2;
                    assert_eq!(long_str(field(&deaths[0], "queue")), from.as_str());
                    assert_eq!(
                        field(&deaths[0], "count"),
                        &AMQPValue::LongLongInt(from_count)
                    );
                    if round > 1 {
                        assert_eq!(deaths.len(), 2);
                        assert_eq!(
                            field(&deaths[1], "count"),
                            &AMQPValue::LongLongInt(round / 2)
                        );
                    }
                    check_death_headers(&b, &at, "x-first-death", "rejected", &qa);
                    check_death_headers(&b, &at, "x-last-death", "rejected", from);
                }
                ch.basic_ack(at.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
            })
            .await;
        }
        if !b.is_external() {
            assert_eq!(ctl_num(&b, "status", "total", "dead_letter_cycles"), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_dead_letter_survives_sigkill_right_after_the_reject() {
    if skip_if_external("kills and restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-dlx-");
        let mut b = Broker::start_in(shards, dir.path());
        let (src_shard, dst_shard) = pairs(&b)[0];
        let src = unique_name("dl-src");
        let dst = unique_name("dl-dst");
        let n = 50;
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &src, true, dlx_args(src_shard, Some(""), Some(&dst))).await;
            declare(&ch, &dst, true, lapin_placement_args(dst_shard)).await;
            publish_confirmed(&ch, &src, &padded_bodies("d", n), persistent()).await;
            let ch2 = conn.create_channel().await.expect("channel");
            ch2.basic_qos(n as u16, Default::default())
                .await
                .expect("qos");
            let mut tags = Vec::new();
            for _ in 0..n {
                tags.push(
                    get(&ch2, &src)
                        .await
                        .expect("message")
                        .delivery
                        .delivery_tag,
                );
            }
            for tag in tags {
                ch2.basic_reject(tag, BasicRejectOptions { requeue: false })
                    .await
                    .expect("reject");
            }
        })
        .await;
        b.kill();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            let mut got: Vec<String> = bodies_only(drain(&conn, &dst).await);
            got.extend(bodies_only(drain(&conn, &src).await));
            got.sort();
            got.dedup();
            assert_eq!(
                got,
                padded_bodies("d", n),
                "a dead-lettered message was lost"
            );
        })
        .await;
        // Without a crash, every message ends up in the target, once.
        let src2 = unique_name("dl-src");
        let dst2 = unique_name("dl-dst");
        let mut b = b;
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &src2, true, dlx_args(src_shard, Some(""), Some(&dst2))).await;
            declare(&ch, &dst2, true, lapin_placement_args(dst_shard)).await;
            publish_confirmed(&ch, &src2, &padded_bodies("e", 3), persistent()).await;
            for _ in 0..3 {
                let m = get(&ch, &src2).await.expect("message");
                ch.basic_reject(
                    m.delivery.delivery_tag,
                    BasicRejectOptions { requeue: false },
                )
                .await
                .expect("reject");
            }
            wait_ready(&conn, &dst2, 3).await;
        })
        .await;
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            assert_eq!(
                bodies_only(drain(&conn, &dst2).await),
                padded_bodies("e", 3)
            );
            assert!(drain(&conn, &src2).await.is_empty());
        })
        .await;
    }
}
