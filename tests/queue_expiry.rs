//! Queue expiry (`x-expires`), as RabbitMQ's "Queue TTL" documents it: a
//! queue with no consumers that nobody redeclared or polled with
//! basic.get for its expiry is deleted, messages and all; each of those
//! uses restarts the count, a consumer keeps it alive however long it
//! stays; a durable queue's timer restarts when the broker starts and its
//! deletion survives the next restart. Each test runs with 1 and 2 shards
//! and the queue on each shard, and (but the restart) against RabbitMQ.

mod common;

use common::*;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

use std::time::Duration;

fn expiring(placement: Option<usize>, ms: i64) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    t.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    t
}

async fn declare_expiring(
    conn: &lapin::Connection,
    q: &str,
    durable: bool,
    placement: Option<usize>,
    ms: i64,
) {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        expiring(placement, ms),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {q}: {e}"));
    let _ = ch.close(200, "".into()).await;
}

/// Whether `q` exists (a passive declare, which itself counts as a use).
async fn exists(conn: &lapin::Connection, q: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel");
    match ch
        .queue_declare(q.into(), passive(), FieldTable::default())
        .await
    {
        Ok(_) => {
            let _ = ch.close(200, "".into()).await;
            true
        }
        Err(e) => {
            assert_eq!(lapin_amqp_error(&e).map(|(c, _)| c), Some(404), "{e}");
            false
        }
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_queue_is_deleted_after_its_expiry() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                for durable in [false, true] {
                    let q = unique_name(&format!("expires-{durable}-{placement:?}"));
                    declare_expiring(&conn, &q, durable, placement, 300).await;
                    // Messages do not keep it.
                    let ch = confirm_channel(&conn).await;
                    publish_confirmed(&ch, &q, &strings(&["a", "b"]), persistent()).await;
                    let _ = ch.close(200, "".into()).await;
                    sleep_ms(1000).await;
                    assert!(!exists(&conn, &q).await, "{q} outlived its expiry");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclare_get_and_consumers_keep_a_queue_alive() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                // Redeclared every 300 ms: lives well past its 800 ms.
                let q = unique_name(&format!("expires-redeclare-{placement:?}"));
                declare_expiring(&conn, &q, false, placement, 800).await;
                for _ in 0..6 {
                    sleep_ms(300).await;
                    declare_expiring(&conn, &q, false, placement, 800).await;
                }
                // basic.get every 300 ms (on an empty queue too).
                let ch = conn.create_channel().await.expect("channel");
                for _ in 0..6 {
                    sleep_ms(300).await;
                    ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("basic.get");
                }
                // A consumer keeps it for longer than its expiry.
                let consumer = ch
                    .basic_consume(
                        q.as_str().into(),
                        "keeper".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                sleep_ms(1800).await;
                // The count starts again when it leaves.
                ch.basic_cancel(consumer.tag(), Default::default())
                    .await
                    .expect("cancel");
                sleep_ms(400).await;
                assert!(exists(&conn, &q).await, "{q} expired while in use");
                // Left alone now: gone after its expiry.
                sleep_ms(1500).await;
                assert!(!exists(&conn, &q).await, "{q} outlived its expiry");
                let _ = ch.close(200, "".into()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_queue_expires_after_a_restart() {
    if skip_if_external("it restarts a local warren") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-expiry-");
        let mut b = Broker::start_in(shards, dir.path());
        let mut names = Vec::new();
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let q = unique_name(&format!("expires-restart-{placement:?}"));
                declare_expiring(&conn, &q, true, placement, 1500).await;
                let ch = confirm_channel(&conn).await;
                publish_confirmed(&ch, &q, &strings(&["kept"]), persistent()).await;
                names.push(q);
            }
            let _ = conn.close(200, "".into()).await;
        })
        .await;
        // Stopped before it expired (SIGKILL: nothing flushed on the way
        // out), it comes back with its message and a fresh timer.
        b.kill();
        let mut b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            for q in &names {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("basic.get")
                    .expect("the message came back");
                assert_eq!(got.delivery.data, b"kept");
            }
            // Unused from here on (the unacked get goes back on close).
            let _ = conn.close(200, "".into()).await;
            let conn = lapin_connect(&b).await;
            sleep_ms(2500).await;
            for q in &names {
                assert!(!exists(&conn, q).await, "{q} outlived its expiry");
            }
        })
        .await;
        // The deletion was journaled: still gone after another restart.
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            for q in &names {
                assert!(!exists(&conn, q).await, "{q} came back");
            }
            // And a new declare of the name is a fresh, empty queue.
            let ch = conn.create_channel().await.expect("channel");
            let q = &names[0];
            let ok = ch
                .queue_declare(q.as_str().into(), durable(), FieldTable::default())
                .await
                .expect("declare");
            assert_eq!(ok.message_count(), 0);
        })
        .await;
    }
}
