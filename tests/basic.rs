//! basic.* behaviour: publish + get, missing exchanges, mandatory returns,
//! consumers (server tags, exclusive, round-robin, cancel, no-ack), acks,
//! nacks, rejects, recover, prefetch, requeue when a consumer's channel,
//! connection or socket goes away, publisher confirms, large bodies, and
//! property round-trips. Core publish→consume→ack runs with the queue pinned
//! to each shard when the broker has several.

mod common;

use std::time::Duration;

use common::raw::{Args, RawConn};
use common::*;
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRecoverOptions, BasicRejectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, Connection, Consumer};

/// Declares a non-durable queue named `prefix-…` with the placement argument.
async fn declare(ch: &Channel, prefix: &str, placement: Option<usize>) -> String {
    let name = unique_name(prefix);
    let q = ch
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::default(),
            lapin_placement_args(placement),
        )
        .await
        .expect("queue.declare");
    assert_eq!(q.name().as_str(), name);
    name
}

async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await
    .expect("basic.publish");
}

/// Publishes `bodies` to `queue` on a confirm channel and waits for the acks.
async fn publish_all(conn: &Connection, queue: &str, bodies: &[&str]) {
    let ch = confirm_channel(conn).await;
    for body in bodies {
        publish(&ch, "", queue, body.as_bytes()).await;
    }
    let returned = ch.wait_for_confirms().await.expect("confirms");
    assert!(returned.is_empty());
    ch.close(200, "".into()).await.expect("close");
}

async fn consume(ch: &Channel, queue: &str, tag: &str, no_ack: bool) -> Consumer {
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("basic.consume")
}

async fn next(consumer: &mut Consumer) -> Delivery {
    within_secs(10, consumer.next())
        .await
        .expect("consumer stream ended")
        .expect("delivery error")
}

/// Asserts that no delivery arrives within `ms` milliseconds.
async fn assert_quiet(consumer: &mut Consumer, ms: u64) {
    if let Ok(d) = tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        panic!("unexpected delivery {d:?}");
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8(d.data.clone()).expect("utf8 body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_get() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "get", placement).await;
                publish_all(&conn, &q, &["one", "two"]).await;

                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"one");
                assert_eq!(got.delivery.delivery_tag, 1);
                assert!(!got.delivery.redelivered);
                assert_eq!(got.delivery.exchange.as_str(), "");
                assert_eq!(got.delivery.routing_key.as_str(), q);
                assert_eq!(got.message_count, 1, "messages left after this one");
                got.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .expect("ack");

                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"two");
                assert_eq!(got.delivery.delivery_tag, 2);
                assert_eq!(got.message_count, 0);

                let empty = ch
                    .basic_get(q.as_str().into(), BasicGetOptions::default())
                    .await
                    .expect("get");
                assert!(empty.is_none(), "get-empty");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }

            // amqprs: publish + get, get-empty.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            let mut props = amqprs::BasicProperties::default();
            props
                .with_content_type("text/plain")
                .with_message_id("id-1");
            ach.basic_publish(
                props,
                b"from amqprs".to_vec(),
                amqprs::channel::BasicPublishArguments::new("", &q),
            )
            .await
            .expect("publish");
            let mut got = None;
            for _ in 0..100 {
                got = ach
                    .basic_get(amqprs::channel::BasicGetArguments::new(&q))
                    .await
                    .expect("get");
                if got.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (get_ok, props, content) = got.expect("the message arrives");
            assert_eq!(content, b"from amqprs");
            assert_eq!(get_ok.delivery_tag(), 1);
            assert!(!get_ok.redelivered());
            assert_eq!(get_ok.exchange(), "");
            assert_eq!(get_ok.routing_key(), &q);
            assert_eq!(get_ok.message_count(), 0);
            assert_eq!(props.content_type().map(String::as_str), Some("text/plain"));
            assert_eq!(props.message_id().map(String::as_str), Some("id-1"));
            ach.basic_ack(amqprs::channel::BasicAckArguments::new(1, false))
                .await
                .expect("ack");
            let none = ach
                .basic_get(amqprs::channel::BasicGetArguments::new(&q))
                .await
                .expect("get");
            assert!(none.is_none());
            ach.close().await.expect("close");
            aconn.close().await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_missing_exchange_closes_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let ex = unique_name("no-such-exchange");
            // The channel.close arrives asynchronously, as the answer to the
            // next synchronous method on the channel (basic.qos); only the
            // channel is closed. Probed with the raw client, which shows the
            // exact close the broker sends.
            assert_publish_closes_channel(
                &b,
                RefusedPublish {
                    exchange: &ex,
                    routing_key: "rk",
                    reply_to: None,
                    body: b"lost",
                },
                404,
                &format!("NOT_FOUND - no exchange '{ex}' in vhost '/'"),
            )
            .await;

            // amqprs sees the channel.close in its callback.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            ach.basic_publish(
                amqprs::BasicProperties::default(),
                b"lost".to_vec(),
                amqprs::channel::BasicPublishArguments::new(&ex, "rk"),
            )
            .await
            .expect("publish is fire-and-forget");
            let closes = rec.closes.clone();
            assert!(eventually(10, || !closes.lock().unwrap().is_empty()).await);
            assert_eq!(
                rec.closes.lock().unwrap()[0],
                (404, format!("NOT_FOUND - no exchange '{ex}' in vhost '/'"))
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_is_returned() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            ch.confirm_select(Default::default())
                .await
                .expect("confirm");
            let rk = unique_name("nobody-home");
            let confirm = ch
                .basic_publish(
                    "".into(),
                    rk.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    b"bounce",
                    BasicProperties::default().with_message_id("m-1".into()),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack(), "unroutable messages are still acked");
            let ret = confirm.take_message().expect("basic.return");
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(ret.delivery.exchange.as_str(), "");
            assert_eq!(ret.delivery.routing_key.as_str(), rk);
            assert_eq!(ret.delivery.data, b"bounce");
            assert_eq!(
                ret.delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str()),
                Some("m-1")
            );
            // Non-mandatory unroutable messages are silently dropped.
            let confirm = ch
                .basic_publish(
                    "".into(),
                    rk.as_str().into(),
                    BasicPublishOptions::default(),
                    b"dropped",
                    BasicProperties::default(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack());
            assert!(confirm.take_message().is_none());

            // amqprs gets the return in its callback.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            let mut args = amqprs::channel::BasicPublishArguments::new("", &rk);
            args.mandatory(true);
            ach.basic_publish(
                amqprs::BasicProperties::default(),
                b"bounce2".to_vec(),
                args,
            )
            .await
            .expect("publish");
            let returns = rec.returns.clone();
            assert!(eventually(10, || !returns.lock().unwrap().is_empty()).await);
            assert_eq!(
                rec.returns.lock().unwrap()[0],
                (312, "NO_ROUTE".to_string(), b"bounce2".to_vec())
            );
            assert!(rec.closes.lock().unwrap().is_empty(), "channel stays open");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_ack_on_each_shard() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "core", placement).await;
                let mut consumer = consume(&ch, &q, "", false).await;
                assert!(
                    consumer.tag().as_str().starts_with("amq.ctag-"),
                    "server-generated tag {:?}",
                    consumer.tag()
                );
                let bodies: Vec<String> = (0..20).map(|i| format!("msg-{i}")).collect();
                let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
                publish_all(&conn, &q, &refs).await;
                for (i, expected) in bodies.iter().enumerate() {
                    let d = next(&mut consumer).await;
                    assert_eq!(&body(&d), expected, "in order");
                    assert_eq!(d.delivery_tag, i as u64 + 1);
                    assert!(!d.redelivered);
                    assert_eq!(d.routing_key.as_str(), q);
                    d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                }
                // Everything acked: closing the channel requeues nothing.
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }

            // amqprs consumer with a server-generated tag.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            let (tag, mut rx) = ach
                .basic_consume_rx(amqprs::channel::BasicConsumeArguments::new(&q, ""))
                .await
                .expect("consume");
            assert!(tag.starts_with("amq.ctag-"), "{tag:?}");
            for i in 0..3 {
                ach.basic_publish(
                    amqprs::BasicProperties::default(),
                    format!("a{i}").into_bytes(),
                    amqprs::channel::BasicPublishArguments::new("", &q),
                )
                .await
                .expect("publish");
            }
            for i in 0..3u64 {
                let m = within_secs(10, rx.recv()).await.expect("delivery");
                let deliver = m.deliver.expect("deliver");
                assert_eq!(deliver.consumer_tag(), &tag);
                assert_eq!(deliver.delivery_tag(), i + 1);
                assert_eq!(m.content.expect("content"), format!("a{i}").into_bytes());
                ach.basic_ack(amqprs::channel::BasicAckArguments::new(i + 1, false))
                    .await
                    .expect("ack");
            }
            let cancelled = ach
                .basic_cancel(amqprs::channel::BasicCancelArguments::new(&tag))
                .await
                .expect("cancel");
            assert_eq!(cancelled, tag);
            ach.close().await.expect("close");
            aconn.close().await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consumer_refuses_others() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = declare(&ch, "excl-consumer", None).await;
            let _exclusive = ch
                .basic_consume(
                    q.as_str().into(),
                    "owner".into(),
                    BasicConsumeOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("exclusive consume");
            let ch2 = conn.create_channel().await.expect("channel");
            let r = ch2
                .basic_consume(
                    q.as_str().into(),
                    "second".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(
                r,
                403,
                &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
            );

            // An exclusive consume on a queue that has a consumer is refused too.
            let q2 = declare(&ch, "excl-consumer2", None).await;
            let _plain = consume(&ch, &q2, "plain", false).await;
            let ch3 = conn.create_channel().await.expect("channel");
            let r = ch3
                .basic_consume(
                    q2.as_str().into(),
                    "wants-exclusive".into(),
                    BasicConsumeOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(
                r,
                403,
                &format!("ACCESS_REFUSED - queue '{q2}' in vhost '/' in exclusive use"),
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_share_round_robin() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch1 = conn.create_channel().await.expect("channel");
                let ch2 = conn.create_channel().await.expect("channel");
                let q = declare(&ch1, "rr", placement).await;
                let mut c1 = consume(&ch1, &q, "c1", true).await;
                let mut c2 = consume(&ch2, &q, "c2", true).await;
                let bodies: Vec<String> = (0..10).map(|i| format!("{i}")).collect();
                let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
                publish_all(&conn, &q, &refs).await;
                let mut got1 = Vec::new();
                let mut got2 = Vec::new();
                for _ in 0..5 {
                    got1.push(body(&next(&mut c1).await));
                    got2.push(body(&next(&mut c2).await));
                }
                got1.sort();
                got2.sort();
                let (evens, odds): (Vec<String>, Vec<String>) = bodies
                    .iter()
                    .cloned()
                    .partition(|b| b.parse::<u32>().unwrap() % 2 == 0);
                assert!(
                    (got1 == evens && got2 == odds) || (got1 == odds && got2 == evens),
                    "strict alternation: c1 {got1:?}, c2 {got2:?}"
                );
                assert_quiet(&mut c1, 100).await;
                ch1.close(200, "".into()).await.expect("close");
                ch2.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_reject_requeue_and_discard() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "nack", placement).await;
                publish_all(&conn, &q, &["a", "b", "c", "d"]).await;
                let mut c = consume(&ch, &q, "c", false).await;
                let a = next(&mut c).await;
                let bb = next(&mut c).await;
                let cc = next(&mut c).await;
                let d = next(&mut c).await;
                assert_eq!(
                    [body(&a), body(&bb), body(&cc), body(&d)],
                    ["a", "b", "c", "d"].map(String::from)
                );
                // reject without requeue: dropped
                a.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .expect("reject");
                // nack without requeue: dropped
                bb.acker
                    .nack(BasicNackOptions {
                        requeue: false,
                        multiple: false,
                    })
                    .await
                    .expect("nack");
                // reject with requeue: redelivered
                cc.acker
                    .reject(BasicRejectOptions { requeue: true })
                    .await
                    .expect("reject");
                let again = next(&mut c).await;
                assert_eq!(body(&again), "c");
                assert!(again.redelivered, "requeued message is redelivered");
                assert_eq!(again.delivery_tag, 5, "a new delivery tag");
                // nack with requeue: redelivered
                d.acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await
                    .expect("nack");
                let again_d = next(&mut c).await;
                assert_eq!(body(&again_d), "d");
                assert!(again_d.redelivered);
                // nack multiple with requeue covers both outstanding.
                ch.basic_nack(
                    again_d.delivery_tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .expect("nack multiple");
                let mut redelivered: Vec<String> = Vec::new();
                for _ in 0..2 {
                    let m = next(&mut c).await;
                    assert!(m.redelivered);
                    redelivered.push(body(&m));
                }
                redelivered.sort();
                assert_eq!(redelivered, ["c", "d"]);
                // ack multiple up to the last one settles everything.
                let last = 8;
                ch.basic_ack(last, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack multiple");
                ch.basic_cancel("c".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0, "a and b were discarded");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "ackmulti", placement).await;
                publish_all(&conn, &q, &["1", "2", "3", "4", "5"]).await;
                let mut c = consume(&ch, &q, "c", false).await;
                let mut tags = Vec::new();
                for _ in 0..5 {
                    tags.push(next(&mut c).await.delivery_tag);
                }
                assert_eq!(tags, [1, 2, 3, 4, 5]);
                ch.basic_ack(3, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack 1..=3");
                // 4 and 5 are still unacked: recover requeues just those.
                ch.basic_recover(BasicRecoverOptions { requeue: true })
                    .await
                    .expect("recover");
                let mut back = Vec::new();
                for _ in 0..2 {
                    let d = next(&mut c).await;
                    assert!(d.redelivered);
                    back.push(body(&d));
                }
                back.sort();
                assert_eq!(back, ["4", "5"]);
                ch.basic_ack(0, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack all");
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }
        })
        .await;
    }
}

/// Acks an unknown tag on a raw connection and returns the channel.close
/// the server answers with (a client library may already have marked the
/// channel closing before its next call, hiding the reason).
fn raw_ack_unknown_tag(b: &Broker, ack_tag: u64, ack_first: bool) -> (u16, String) {
    let (mut c, tune) = RawConn::open(&b.addr());
    c.channel_open(1);
    let (q, _, _) = c.queue_declare(1, &unique_name("badtag"));
    c.basic_publish(1, "", &q, b"x", tune.frame_max);
    c.basic_consume(1, &q, "t");
    let d = c.read_delivery();
    assert_eq!(d.delivery_tag, 1);
    let ack = |tag: u64| Args::new().longlong(tag).bits(&[false]).done();
    if ack_first {
        c.send_method(1, 60, 80, &ack(d.delivery_tag));
    }
    c.send_method(1, 60, 80, &ack(ack_tag));
    let m = c.expect_method();
    assert_eq!(
        (m.class, m.method),
        (20, 40),
        "channel.close expected: {m:?}"
    );
    m.close_reason()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_delivery_tag_closes_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (code, text) = raw_ack_unknown_tag(&b, 99, false);
        assert_eq!(code, 406);
        assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 99");
        // Double ack is an unknown tag too.
        let (code, text) = raw_ack_unknown_tag(&b, 1, true);
        assert_eq!(code, 406);
        assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 1");
        // The closed channel's unacked message went back to its queue and
        // reaches another consumer, redelivered.
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = declare(&ch, "badtag-requeue", None).await;
            publish_all(&conn, &q, &["x"]).await;
            let ch2 = conn.create_channel().await.expect("channel");
            let got = ch2
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .expect("get")
                .expect("get-ok");
            assert!(!got.delivery.redelivered);
            ch2.basic_ack(99, BasicAckOptions::default())
                .await
                .expect("ack is async");
            wait_ready(&conn, &q, 1).await;
            let got = ch
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .expect("get")
                .expect("get-ok");
            assert!(got.delivery.redelivered);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_one_dispatches_fairly() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch1 = conn.create_channel().await.expect("channel");
                let ch2 = conn.create_channel().await.expect("channel");
                ch1.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                ch2.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let q = declare(&ch1, "prefetch", placement).await;
                let mut slow = consume(&ch1, &q, "slow", false).await;
                let mut fast = consume(&ch2, &q, "fast", false).await;
                publish_all(&conn, &q, &["0", "1", "2", "3", "4", "5"]).await;
                // Each consumer holds one unacked message.
                let s0 = next(&mut slow).await;
                let f0 = next(&mut fast).await;
                assert_quiet(&mut slow, 200).await;
                assert_quiet(&mut fast, 1).await;
                assert_eq!(ready_count(&conn, &q).await, 4);
                // The fast one acks and gets the rest, one at a time.
                let mut fast_bodies = vec![body(&f0)];
                f0.acker.ack(BasicAckOptions::default()).await.expect("ack");
                for _ in 0..4 {
                    let d = next(&mut fast).await;
                    fast_bodies.push(body(&d));
                    d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                }
                assert_quiet(&mut slow, 100).await;
                let mut all = fast_bodies.clone();
                all.push(body(&s0));
                all.sort();
                assert_eq!(all, ["0", "1", "2", "3", "4", "5"]);
                s0.acker.ack(BasicAckOptions::default()).await.expect("ack");
                assert_quiet(&mut slow, 100).await;
                assert_eq!(ready_count(&conn, &q).await, 0);
                ch1.close(200, "".into()).await.expect("close");
                ch2.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_deliveries() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "cancel", placement).await;
                let mut c = consume(&ch, &q, "to-cancel", true).await;
                publish_all(&conn, &q, &["before"]).await;
                assert_eq!(body(&next(&mut c).await), "before");
                ch.basic_cancel("to-cancel".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                publish_all(&conn, &q, &["after1", "after2"]).await;
                // The stream ends (or stays silent) and the queue keeps them.
                if let Ok(Some(d)) =
                    tokio::time::timeout(Duration::from_millis(200), c.next()).await
                {
                    panic!("delivery after cancel: {d:?}");
                }
                assert_eq!(ready_count(&conn, &q).await, 2);
                // Cancelling an unknown tag is not an error (RabbitMQ).
                ch.basic_cancel("never-existed".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel unknown tag");
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_consumers_settle_on_delivery() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "noack", placement).await;
                let mut c = consume(&ch, &q, "", true).await;
                publish_all(&conn, &q, &["1", "2", "3"]).await;
                for expected in ["1", "2", "3"] {
                    let d = next(&mut c).await;
                    assert_eq!(body(&d), expected);
                    assert!(!d.redelivered);
                }
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0, "nothing requeued");
            }
        })
        .await;
    }
}

/// How the first consumer goes away in [`unacked_requeued_in_order`].
#[derive(Clone, Copy, Debug)]
enum Departure {
    ChannelClose,
    ConnectionClose,
    SocketDrop,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_requeued_in_order() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let observer = lapin_connect(&b).await;
            for placement in placements(&b) {
                for how in [
                    Departure::ChannelClose,
                    Departure::ConnectionClose,
                    Departure::SocketDrop,
                ] {
                    let ch = observer.create_channel().await.expect("channel");
                    let q = declare(&ch, "requeue", placement).await;
                    let bodies = ["r0", "r1", "r2", "r3", "r4"];
                    publish_all(&observer, &q, &bodies).await;

                    // The first consumer takes everything without acking.
                    match how {
                        Departure::SocketDrop => {
                            let addr = b.addr();
                            let qq = q.clone();
                            tokio::task::spawn_blocking(move || {
                                let (mut raw, _) = RawConn::open(&addr);
                                raw.channel_open(1);
                                raw.basic_consume(1, &qq, "raw");
                                for expected in bodies {
                                    let d = raw.read_delivery();
                                    assert_eq!(d.body, expected.as_bytes());
                                    assert!(!d.redelivered);
                                }
                                raw.drop_socket();
                            })
                            .await
                            .expect("raw consumer");
                        }
                        Departure::ChannelClose | Departure::ConnectionClose => {
                            let conn = lapin_connect(&b).await;
                            let cch = conn.create_channel().await.expect("channel");
                            let mut c = consume(&cch, &q, "first", false).await;
                            for expected in bodies {
                                let d = next(&mut c).await;
                                assert_eq!(body(&d), expected);
                            }
                            assert_eq!(ready_count(&observer, &q).await, 0);
                            match how {
                                Departure::ChannelClose => {
                                    cch.close(200, "".into()).await.expect("close")
                                }
                                _ => conn.close(200, "".into()).await.expect("close"),
                            }
                        }
                    }

                    // Another consumer receives them, in order, redelivered.
                    let mut second = consume(&ch, &q, "second", false).await;
                    for expected in bodies {
                        let d = next(&mut second).await;
                        assert_eq!(body(&d), expected, "{how:?}: original order");
                        assert!(d.redelivered, "{how:?}: redelivered flag");
                        d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                    }
                    ch.close(200, "".into()).await.expect("close");
                    assert_eq!(ready_count(&observer, &q).await, 0);
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_ack_every_publish() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "confirms", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm.select");
                let mut pending = Vec::new();
                for i in 0..100 {
                    let p = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            format!("{i}").as_bytes(),
                            BasicProperties::default(),
                        )
                        .await
                        .expect("publish");
                    pending.push(p);
                }
                for p in pending {
                    let c = p.await.expect("confirmation");
                    assert!(c.is_ack(), "{c:?}");
                }
                assert_eq!(ready_count(&conn, &q).await, 100);
                ch.close(200, "".into()).await.expect("close");
            }

            // amqprs: the acks (possibly coalesced with multiple) cover 1..=50.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            ach.confirm_select(amqprs::channel::ConfirmSelectArguments::new(false))
                .await
                .expect("confirm.select");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            for i in 0..50 {
                ach.basic_publish(
                    amqprs::BasicProperties::default(),
                    format!("{i}").into_bytes(),
                    amqprs::channel::BasicPublishArguments::new("", &q),
                )
                .await
                .expect("publish");
            }
            let acks = rec.acks.clone();
            let covered = move || {
                let acks = acks.lock().unwrap();
                let mut seen = [false; 51];
                let mut prev = 0u64;
                for &(tag, multiple) in acks.iter() {
                    assert!(tag > prev, "ack tags increase: {acks:?}");
                    assert!(tag <= 50, "ack for an unknown tag: {acks:?}");
                    let from = if multiple { prev + 1 } else { tag };
                    for t in from..=tag {
                        seen[t as usize] = true;
                    }
                    prev = tag;
                }
                seen[1..].iter().all(|s| *s)
            };
            assert!(eventually(10, covered).await, "all 50 publishes acked");
            aconn.close().await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_arrive_intact() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let big: Vec<u8> = (0..(1024 * 1024 + 17)).map(|i| (i % 251) as u8).collect();
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "big", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm");
                // lapin splits the body by the negotiated frame_max (128 KiB).
                let c = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &big,
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(c.is_ack());
                // A raw client splits it into small frames.
                let addr = b.addr();
                let (qq, bb) = (q.clone(), big.clone());
                tokio::task::spawn_blocking(move || {
                    let (mut raw, _) = RawConn::open(&addr);
                    raw.channel_open(1);
                    raw.basic_publish(1, "", &qq, &bb, 4096);
                    // A round trip so the publish is processed before we go.
                    raw.queue_declare(1, &qq);
                    raw.drop_socket();
                })
                .await
                .expect("raw publisher");
                let empty = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        b"",
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(empty.is_ack());
                let mut c = consume(&ch, &q, "", true).await;
                assert!(next(&mut c).await.data == big, "lapin-published body");
                assert!(next(&mut c).await.data == big, "raw-published body");
                assert!(next(&mut c).await.data.is_empty(), "empty body");
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_properties_round_trip() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let mut headers = FieldTable::default();
            headers.insert("string".into(), AMQPValue::LongString("value".into()));
            headers.insert("int".into(), AMQPValue::LongInt(-42));
            headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
            headers.insert("bool".into(), AMQPValue::Boolean(true));
            headers.insert("double".into(), AMQPValue::Double(2.5));
            headers.insert("timestamp".into(), AMQPValue::Timestamp(1_700_000_000));
            headers.insert("void".into(), AMQPValue::Void);
            let mut nested = FieldTable::default();
            nested.insert("inner".into(), AMQPValue::ShortInt(7));
            headers.insert("table".into(), AMQPValue::FieldTable(nested));
            headers.insert(
                "array".into(),
                AMQPValue::FieldArray(FieldArray::from(vec![
                    AMQPValue::LongInt(1),
                    AMQPValue::LongString("two".into()),
                ])),
            );
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("gzip".into())
                .with_headers(headers)
                .with_delivery_mode(2)
                .with_priority(5)
                .with_correlation_id("corr-1".into())
                .with_reply_to("reply-queue".into())
                .with_expiration("600000".into())
                .with_message_id("msg-1".into())
                .with_timestamp(1_700_000_123)
                .with_type("order.created".into())
                .with_user_id("guest".into())
                .with_app_id("warren-tests".into())
                .with_cluster_id("cluster-x".into());
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "props", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm");
                for p in [props.clone(), BasicProperties::default()] {
                    let c = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            b"{}",
                            p,
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    assert!(c.is_ack());
                }
                let mut c = consume(&ch, &q, "", true).await;
                let d = next(&mut c).await;
                assert_eq!(d.properties, props, "every property unchanged");
                let d = next(&mut c).await;
                assert_eq!(d.properties, BasicProperties::default(), "no properties");
                // basic.get returns them too.
                ch.basic_cancel(c.tag().as_str().into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    b"again",
                    props.clone(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
                let mut got = None;
                for _ in 0..100 {
                    got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("get");
                    if got.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let got = got.expect("get-ok");
                assert_eq!(got.delivery.data, b"again");
                assert_eq!(got.delivery.properties, props);
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_prefetch_limits_the_whole_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            // Two queues (on different shards when there are two).
            let placements = placements(&b);
            let qa = declare(&ch, "global-a", placements[0]).await;
            let qb = declare(&ch, "global-b", *placements.last().unwrap()).await;
            publish_all(&conn, &qa, &["a1", "a2", "a3"]).await;
            publish_all(&conn, &qb, &["b1", "b2", "b3"]).await;
            ch.basic_qos(2, BasicQosOptions { global: true })
                .await
                .expect("qos global");
            let mut ca = consume(&ch, &qa, "ca", false).await;
            let mut cb = consume(&ch, &qb, "cb", false).await;
            // Two deliveries in total across both consumers, then nothing.
            let mut got = Vec::new();
            for _ in 0..2 {
                tokio::select! {
                    d = next(&mut ca) => got.push(d),
                    d = next(&mut cb) => got.push(d),
                }
            }
            let more = tokio::time::timeout(Duration::from_millis(300), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await;
            assert!(more.is_err(), "a third delivery beyond global prefetch 2");
            // One ack makes room for exactly one more.
            got[0].ack(BasicAckOptions::default()).await.expect("ack");
            let third = tokio::time::timeout(Duration::from_secs(5), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await
            .expect("a delivery after the ack");
            assert!(third.is_some());
            let fourth = tokio::time::timeout(Duration::from_millis(300), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await;
            assert!(fourth.is_err(), "still at most 2 unacked");
        })
        .await;
    }
}
