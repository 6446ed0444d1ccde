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
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use std::time::{Duration, Instant};

/// Why the tests that need the Warren binary skip against an external broker.
const NEEDS_WARREN: &str =
    "it needs the Warren binary (test-only environment variables, the admin endpoint, restarts)";

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
    if skip_if_external(NEEDS_WARREN) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-confirms-");
        let refused = "confirms-refused";
        let node = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_LOG_REFUSE_ROUTING_KEY", refused)],
        );
        within(async {
            let conn = lapin_connect(&node).await;
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
                node.logs_within("injected append failure"),
                "the refusal is logged:\n{}",
                node.log().join("\n")
            );
            assert_eq!(ctl_num(&node, "status", "total", "confirmed"), 2);
            assert_eq!(ctl_num(&node, "status", "total", "nacked"), 2);
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
    if skip_if_external(NEEDS_WARREN) {
        return;
    }
    const DELAY_MS: u64 = 600;
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-confirms-");
        let node = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", &DELAY_MS.to_string())],
        );
        let owner = last_shard(shards).unwrap_or(0).to_string();
        within(async {
            let conn = lapin_connect(&node).await;
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
            let before = ctl_num(&node, "status", &owner, "fsyncs");
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
                ctl_num(&node, "status", &owner, "fsyncs"),
                before,
                "{shards} shards: the batch is still waiting"
            );
            let c = confirm.await.expect("confirm task");
            let after = ctl_num(&node, "status", &owner, "fsyncs");
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
            assert!(ctl_num(&node, "status", "total", "fsyncs") >= after);
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
    if skip_if_external(NEEDS_WARREN) {
        return;
    }
    const N: usize = 20;
    const ACKED: usize = 10;
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-confirms-");
        let q = unique_name("confirms-sigterm");
        let mut node = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", "1500")],
        );
        within_secs(60, async {
            let conn = lapin_connect(&node).await;
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
                ctl_num(&node, "list_queues", &q, "messages_unacknowledged") == (N - ACKED) as u64
            })
            .await;
            assert!(settled, "{shards} shards: acks not applied");
        })
        .await;
        node.stop();
        drop(node);
        let node = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&node).await;
            let got = drain(&conn, &q).await;
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
