//! Quorum queue delivery counting and limit (poison message handling):
//! every return to the queue (nack / reject with requeue, channel closed)
//! counts; redeliveries carry `x-delivery-count` (a signed 64-bit integer);
//! a message returned more often than `x-delivery-limit` (20 when unset,
//! as RabbitMQ 4.x) is dropped. Classic queues add no header.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection};
use std::time::Duration;

async fn declare_quorum(
    conn: &Connection,
    name: &str,
    limit: Option<i32>,
    placement: Option<usize>,
) {
    let ch = conn.create_channel().await.expect("channel");
    let mut args = lapin_placement_args(placement);
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(l) = limit {
        args.insert("x-delivery-limit".into(), AMQPValue::LongInt(l));
    }
    ch.queue_declare(name.into(), durable(), args)
        .await
        .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// The `x-delivery-count` header, if any (it must be a `long long`).
fn delivery_count(p: &BasicProperties) -> Option<i64> {
    let v = p
        .headers()
        .as_ref()?
        .inner()
        .get("x-delivery-count")?
        .clone();
    match v {
        AMQPValue::LongLongInt(n) => Some(n),
        other => panic!("x-delivery-count is not a long long: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_count_up_then_the_message_is_dropped() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let q = unique_name("dlimit");
                declare_quorum(&conn, &q, Some(2), placement).await;
                let ch = conn.create_channel().await.expect("channel");
                ch.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let mut c = ch
                    .basic_consume(
                        q.as_str().into(),
                        "c".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                let pubch = confirm_channel(&conn).await;
                publish_confirmed(&pubch, &q, &strings(&["poison"]), persistent()).await;
                let mut counts = Vec::new();
                for i in 0..3 {
                    let d = c.next().await.expect("stream").expect("delivery");
                    assert_eq!(d.data, b"poison");
                    assert_eq!(d.redelivered, i > 0);
                    counts.push(delivery_count(&d.properties));
                    if i % 2 == 0 {
                        ch.basic_nack(
                            d.delivery_tag,
                            BasicNackOptions {
                                requeue: true,
                                multiple: false,
                            },
                        )
                        .await
                        .expect("nack");
                    } else {
                        ch.basic_reject(d.delivery_tag, BasicRejectOptions { requeue: true })
                            .await
                            .expect("reject");
                    }
                }
                // A first delivery to a consumer has no header (RabbitMQ 3.10
                // and 4.x alike; 3.10 writes 0 on a basic.get's, Warren not).
                assert_eq!(counts, vec![None, Some(1), Some(2)]);
                // Returned a third time: over the limit of 2, dropped.
                if let Ok(Some(d)) =
                    tokio::time::timeout(Duration::from_millis(400), c.next()).await
                {
                    panic!("delivered past the limit: {d:?}");
                }
                wait_ready(&conn, &q, 0).await;
                // The queue goes on: a new message is delivered fresh.
                publish_confirmed(&pubch, &q, &strings(&["next"]), persistent()).await;
                let d = c.next().await.expect("stream").expect("delivery");
                assert_eq!(d.data, b"next");
                assert_eq!(delivery_count(&d.properties), None);
                let _ = conn.close(200, "".into()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limit_is_twenty() {
    if skip_if_external("RabbitMQ 3.10 has no default delivery limit (4.x defaults it to 20)") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("dlimit-default");
            declare_quorum(&conn, &q, None, last_shard(shards)).await;
            let pubch = confirm_channel(&conn).await;
            publish_confirmed(&pubch, &q, &strings(&["poison"]), persistent()).await;
            let ch = conn.create_channel().await.expect("channel");
            let mut counts = Vec::new();
            for _ in 0..21 {
                let m = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("get")
                    .expect("a message");
                counts.push(delivery_count(&m.delivery.properties));
                ch.basic_nack(
                    m.delivery.delivery_tag,
                    BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    },
                )
                .await
                .expect("nack");
            }
            let want: Vec<Option<i64>> = (0..21).map(|i| (i > 0).then_some(i)).collect();
            assert_eq!(counts, want);
            wait_ready(&conn, &q, 0).await;
            let none = ch
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("get");
            assert!(none.is_none(), "delivered past the default limit");
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_channel_counts_and_classic_queues_add_nothing() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let quorum = unique_name("dlimit-close");
                declare_quorum(&conn, &quorum, Some(5), placement).await;
                let classic = unique_name("dlimit-classic");
                let ch = conn.create_channel().await.expect("channel");
                declare_queue(&ch, &classic, true, placement).await;
                let pubch = confirm_channel(&conn).await;
                for q in [&quorum, &classic] {
                    publish_confirmed(&pubch, q, &strings(&["m"]), persistent()).await;
                    // Delivered on a channel that then closes without acking.
                    let dying = conn.create_channel().await.expect("channel");
                    let m = dying
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                        .await
                        .expect("get")
                        .expect("a message");
                    assert!(!m.delivery.redelivered);
                    dying.close(200, "".into()).await.expect("close");
                    wait_ready(&conn, q, 1).await;
                    let m = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("get")
                        .expect("a message");
                    assert!(m.delivery.redelivered);
                    let want = if q == &quorum { Some(1) } else { None };
                    assert_eq!(delivery_count(&m.delivery.properties), want, "queue {q}");
                }
                let _ = conn.close(200, "".into()).await;
            })
            .await;
        }
    }
}

/// basic.get in ack mode, then basic.nack with requeue; returns the
/// delivery's `x-delivery-count` and redelivered flag.
async fn get_and_return(ch: &lapin::Channel, q: &str) -> (Option<i64>, bool) {
    let m = ch
        .basic_get(q.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("get")
        .expect("a message");
    assert_eq!(m.delivery.data, b"kept");
    ch.basic_nack(
        m.delivery.delivery_tag,
        BasicNackOptions {
            requeue: true,
            multiple: false,
        },
    )
    .await
    .expect("nack");
    (
        delivery_count(&m.delivery.properties),
        m.delivery.redelivered,
    )
}

/// The delivery count of a durable message survives a restart, graceful
/// (SIGTERM) or not (SIGKILL): `x-delivery-count` goes on from where it
/// was, and the message goes once the limit is passed in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_count_survives_a_restart() {
    if skip_if_external("restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        for kill in [false, true] {
            let dir = temp_dir("warren-dlimit-");
            let q = unique_name("dlimit-restart");
            let placement = last_shard(shards);
            let mut b = Broker::start_in(shards, dir.path());
            within(async {
                let conn = lapin_connect(&b).await;
                declare_quorum(&conn, &q, Some(3), placement).await;
                let ch = confirm_channel(&conn).await;
                publish_confirmed(&ch, &q, &strings(&["kept"]), persistent()).await;
                assert_eq!(get_and_return(&ch, &q).await, (None, false));
                assert_eq!(get_and_return(&ch, &q).await, (Some(1), true));
                // Returned twice. A confirmed persistent publish on the same
                // channel to the same shard puts the returns on disk first.
                let barrier = unique_name("barrier");
                declare_queue(&ch, &barrier, true, placement).await;
                publish_confirmed(&ch, &barrier, &strings(&["barrier"]), persistent()).await;
                wait_ready(&conn, &q, 1).await;
            })
            .await;
            if kill {
                b.kill();
            } else {
                b.stop();
            }
            let b = Broker::start_in(shards, dir.path());
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel");
                assert_eq!(
                    get_and_return(&ch, &q).await,
                    (Some(2), true),
                    "kill: {kill}"
                );
                assert_eq!(get_and_return(&ch, &q).await, (Some(3), true));
                // Returned a fourth time: over the limit of 3, gone.
                wait_ready(&conn, &q, 0).await;
                let none = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("get");
                assert!(none.is_none(), "delivered past the limit");
                let _ = conn.close(200, "".into()).await;
            })
            .await;
        }
    }
}
