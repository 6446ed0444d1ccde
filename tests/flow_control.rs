//! Publish flow control: a publisher flooding a queue without confirms
//! while a consumer keeps up does not make the queue grow (the owner holds
//! the publisher's credit while the queue is ahead of its consumer), nor
//! the bytes waiting unread in the broker's socket (a held publisher's
//! receive buffer is limited), and
//! no arrangement makes a publisher wait for good: a queue with no
//! consumer, a consumer that stopped acking on the publisher's own
//! connection, a fan-out to queues of every kind with confirms. Each runs
//! with 1 and 2 shards and with the queue on each shard (so the publisher,
//! the queue and the consumer are on different shards in some of them).

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Messages each flood publishes.
const FLOOD: u64 = 200_000;

/// Most ready messages the queue of a flood may hold at any sample. Flow
/// control keeps it near `HOLD_READY` + one publisher's credit + a read
/// buffer of publishes (about 5,000), plus what arrives while the test's
/// consumer stalls for longer than `flow::STALL_TICKS` (the machine is
/// shared); without flow control the queue grows by the difference of the
/// two rates (over 150,000 of the 200,000 in a debug build here).
const DEPTH_BOUND: u32 = 40_000;

/// Most bytes a socket of the broker may hold unread at any sample while
/// a flood is paced: a held publisher's receive buffer is fixed at 64 KiB
/// (`connection::credit::HELD_RCVBUF`, which the kernel doubles), where
/// the kernel's autotuning let it reach megabytes before.
const UNREAD_BOUND: u64 = 256 * 1024;

/// The largest receive queue (bytes received, not yet read) among the
/// TCP sockets listening on or accepted by `port` here, from
/// /proc/net/tcp{,6}.
fn broker_unread_bytes(port: u16) -> u64 {
    let mut max = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(queues)) = (cols.get(1), cols.get(4)) else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port != Some(port) {
                continue;
            }
            if let Some(rx) = queues
                .split(':')
                .nth(1)
                .and_then(|q| u64::from_str_radix(q, 16).ok())
            {
                max = max.max(rx);
            }
        }
    }
    max
}

/// A consumer on `conn` with prefetch 1000, acking every 100th delivery
/// (multiple): counts what it received.
async fn keeping_up_consumer(conn: &lapin::Connection, queue: &str, received: Arc<AtomicU64>) {
    let ch = conn.create_channel().await.expect("channel.open");
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "keeping-up".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(d)) = consumer.next().await {
            n += 1;
            if n.is_multiple_of(100) {
                let _ = d.ack(BasicAckOptions { multiple: true }).await;
            }
            received.store(n, Ordering::Relaxed);
        }
    });
}

/// Publishes `n` 16-byte messages to `queue` on a plain channel (no
/// confirms), as fast as the broker reads them.
async fn flood(ch: &lapin::Channel, queue: &str, n: u64) {
    for i in 0..n {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            format!("{i:016}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_to_a_queue_whose_consumer_keeps_up_leaves_the_queue_short() {
    if skip_if_external(
        "RabbitMQ lets the queue grow (its credit flow throttles only processes that \
         cannot keep up; it reached ~100,000 ready here): a deliberate difference",
    ) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within_secs(180, async {
                let q = unique_name(&format!("flow-flood-{placement:?}"));
                let admin = lapin_connect(&b).await;
                let ach = admin.create_channel().await.expect("channel.open");
                declare_queue(&ach, &q, false, placement).await;
                let received = Arc::new(AtomicU64::new(0));
                let consumer = lapin_connect(&b).await;
                keeping_up_consumer(&consumer, &q, received.clone()).await;
                // Sample the queue's depth while the flood runs.
                let done = Arc::new(AtomicBool::new(false));
                let port = b.port();
                let sampler = {
                    let (done, q) = (done.clone(), q.clone());
                    tokio::spawn(async move {
                        let (mut max, mut unread, mut samples) = (0u32, 0u64, 0u32);
                        while !done.load(Ordering::Relaxed) {
                            max = max.max(ready_count(&admin, &q).await);
                            unread = unread.max(broker_unread_bytes(port));
                            samples += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                        (max, unread, samples)
                    })
                };
                let publisher = lapin_connect(&b).await;
                let pch = publisher.create_channel().await.expect("channel.open");
                flood(&pch, &q, FLOOD).await;
                let all = eventually(120, || received.load(Ordering::Relaxed) >= FLOOD).await;
                done.store(true, Ordering::Relaxed);
                let (max, unread, samples) = sampler.await.expect("sampler");
                assert!(
                    all,
                    "{shards} shards, {placement:?}: the consumer got {} of {FLOOD}",
                    received.load(Ordering::Relaxed)
                );
                assert!(samples > 0, "the depth was never sampled");
                assert!(
                    max <= DEPTH_BOUND,
                    "{shards} shards, {placement:?}: the queue reached {max} ready messages \
                     while its consumer kept up ({samples} samples)"
                );
                assert!(
                    unread <= UNREAD_BOUND,
                    "{shards} shards, {placement:?}: {unread} bytes waited unread in a socket \
                     of the broker while the flood was paced ({samples} samples)"
                );
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_queue_holds_a_publisher_for_good() {
    const N: usize = 30_000;
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within_secs(180, async {
                let conn = lapin_connect(&b).await;
                let ch = conn.create_channel().await.expect("channel.open");
                // No consumer: the queue takes the whole flood.
                let idle = unique_name(&format!("flow-idle-{placement:?}"));
                declare_queue(&ch, &idle, false, placement).await;
                flood(&ch, &idle, N as u64).await;
                wait_ready_long(&conn, &idle, N as u32).await;

                // A consumer on the publisher's own connection that stopped
                // acking (prefetch full): publishes still get in.
                let stuck = unique_name(&format!("flow-stuck-{placement:?}"));
                declare_queue(&ch, &stuck, false, placement).await;
                let cch = conn.create_channel().await.expect("channel.open");
                cch.basic_qos(5, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let _held = cch
                    .basic_consume(
                        stuck.as_str().into(),
                        "stuck".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                flood(&ch, &stuck, N as u64).await;
                wait_ready_long(&conn, &stuck, N as u32 - 5).await;

                // A confirmed fan-out to an idle queue, the stuck one and
                // one whose consumer keeps up on the publisher's connection
                // (its acks come in behind the publishes): every publish is
                // confirmed and the live consumer gets them all.
                let x = unique_name("flow-fanout");
                ch.exchange_declare(
                    x.as_str().into(),
                    lapin::ExchangeKind::Fanout,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange.declare");
                let live = unique_name(&format!("flow-live-{placement:?}"));
                declare_queue(&ch, &live, false, placement).await;
                for queue in [&idle, &stuck, &live] {
                    ch.queue_bind(
                        queue.as_str().into(),
                        x.as_str().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("queue.bind");
                }
                let received = Arc::new(AtomicU64::new(0));
                keeping_up_consumer(&conn, &live, received.clone()).await;
                let confirming = confirm_channel(&conn).await;
                let mut confirms = Vec::with_capacity(N);
                for i in 0..N {
                    confirms.push(
                        confirming
                            .basic_publish(
                                x.as_str().into(),
                                "".into(),
                                BasicPublishOptions::default(),
                                format!("{i:016}").as_bytes(),
                                BasicProperties::default(),
                            )
                            .await
                            .expect("publish"),
                    );
                }
                for c in confirms {
                    assert!(
                        matches!(c.await.expect("confirm"), lapin::Confirmation::Ack(None)),
                        "every fan-out publish is acked"
                    );
                }
                assert!(
                    eventually(120, || received.load(Ordering::Relaxed) >= N as u64).await,
                    "{shards} shards, {placement:?}: the live consumer got {} of {N}",
                    received.load(Ordering::Relaxed)
                );
                wait_ready_long(&conn, &idle, 2 * N as u32).await;
            })
            .await;
        }
    }
}
