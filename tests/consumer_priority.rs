//! Consumer priorities (`x-priority` on basic.consume): deliveries go to
//! the highest-priority consumers with credit, round-robin among equals;
//! lower ones get messages only while every higher one is blocked (its
//! prefetch full). An `x-priority` that is not an integer is refused.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use std::time::Duration;

/// A consumer on a fresh channel (prefetch 0: none; no_ack as given).
async fn consumer(
    conn: &Connection,
    queue: &str,
    tag: &str,
    prefetch: u16,
    no_ack: bool,
    priority: Option<AMQPValue>,
) -> (Channel, Consumer) {
    let ch = conn.create_channel().await.expect("channel");
    if prefetch > 0 {
        ch.basic_qos(prefetch, BasicQosOptions::default())
            .await
            .expect("qos");
    }
    let mut args = FieldTable::default();
    if let Some(p) = priority {
        args.insert("x-priority".into(), p);
    }
    let c = ch
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions {
                no_ack,
                ..Default::default()
            },
            args,
        )
        .await
        .expect("consume");
    (ch, c)
}

/// The next `n` deliveries of `c`: (body, delivery tag).
async fn take(c: &mut Consumer, n: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let d = c.next().await.expect("stream ended").expect("delivery");
        out.push((String::from_utf8(d.data.clone()).unwrap(), d.delivery_tag));
    }
    out
}

/// Asserts `c` gets nothing for a while.
async fn quiet(c: &mut Consumer, who: &str) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), c.next()).await {
        panic!("{who} got a delivery it should not: {d:?}");
    }
}

fn bodies(d: &[(String, u64)]) -> Vec<String> {
    d.iter().map(|(b, _)| b.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_higher_consumer_gets_everything_until_its_prefetch_is_full() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let q = unique_name("cprio");
                let ch = conn.create_channel().await.expect("channel");
                declare_queue(&ch, &q, false, placement).await;
                // The low one attaches first: order must not matter.
                let (_chl, mut low) =
                    consumer(&conn, &q, "low", 0, false, Some(AMQPValue::LongInt(-3))).await;
                let (chh, mut high) =
                    consumer(&conn, &q, "high", 5, false, Some(AMQPValue::LongInt(7))).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let pubch = confirm_channel(&conn).await;
                let first = padded_bodies("a", 3);
                publish_confirmed(&pubch, &q, &first, Default::default()).await;
                let got = take(&mut high, 3).await;
                assert_eq!(bodies(&got), first);
                quiet(&mut low, "the low consumer while the high one has credit").await;
                // Seven more: two fill the high one's prefetch, five go low.
                let second = padded_bodies("b", 7);
                publish_confirmed(&pubch, &q, &second, Default::default()).await;
                let more = take(&mut high, 2).await;
                assert_eq!(bodies(&more), second[..2].to_vec());
                assert_eq!(bodies(&take(&mut low, 5).await), second[2..].to_vec());
                quiet(&mut high, "the full high consumer").await;
                // Credit back: the high one gets everything again.
                for (_, tag) in got.iter().chain(more.iter()) {
                    chh.basic_ack(*tag, BasicAckOptions::default())
                        .await
                        .expect("ack");
                }
                let third = padded_bodies("c", 4);
                publish_confirmed(&pubch, &q, &third, Default::default()).await;
                assert_eq!(bodies(&take(&mut high, 4).await), third);
                quiet(&mut low, "the low consumer once the high one has credit").await;
                let _ = conn.close(200, "".into()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_priorities_share_round_robin() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("cprio-rr");
            let ch = conn.create_channel().await.expect("channel");
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            let (_c0, mut low) = consumer(&conn, &q, "low", 0, true, None).await;
            let (_c1, mut h1) =
                consumer(&conn, &q, "h1", 0, true, Some(AMQPValue::ShortShortInt(2))).await;
            let (_c2, mut h2) =
                consumer(&conn, &q, "h2", 0, true, Some(AMQPValue::LongLongInt(2))).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pubch = confirm_channel(&conn).await;
            let all = padded_bodies("m", 10);
            publish_confirmed(&pubch, &q, &all, Default::default()).await;
            let a = take(&mut h1, 5).await;
            let b2 = take(&mut h2, 5).await;
            let mut seen: Vec<String> = bodies(&a).into_iter().chain(bodies(&b2)).collect();
            seen.sort();
            assert_eq!(seen, all);
            quiet(&mut low, "the default-priority consumer").await;
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_that_is_not_an_integer_is_refused() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("cprio-bad");
            let ch = conn.create_channel().await.expect("channel");
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            let mut args = FieldTable::default();
            args.insert(
                "x-priority".into(),
                AMQPValue::LongString("high".as_bytes().to_vec().into()),
            );
            let r = ch
                .basic_consume(
                    q.as_str().into(),
                    "bad".into(),
                    BasicConsumeOptions::default(),
                    args,
                )
                .await;
            assert_lapin_error(
                r,
                406,
                &format!(
                    "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost '/': \
                     \"expected integer, got longstr\""
                ),
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}
