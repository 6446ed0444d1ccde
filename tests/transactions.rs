//! Transactions (tx.select / tx.commit / tx.rollback) end to end, as
//! RabbitMQ: publishes on a transactional channel are invisible until the
//! commit and dropped by a rollback; acks, nacks and rejects reach the
//! queue only at the commit (the message stays unacked until then, and a
//! rollback leaves it unacked); a commit spans queues on every shard; a
//! mandatory publish that reached no queue is returned at the commit;
//! commit-ok waits for the fsync of durable copies (only); persistent
//! messages committed to a durable queue survive SIGKILL; a delayed
//! publish is held only at the commit and dropped by a rollback (Warren
//! only: the reference RabbitMQ has no delayed-message plugin);
//! confirm and tx mode exclude each other; commit / rollback without
//! select are 406; Warren bounds a transaction's memory (a deliberate
//! difference, skipped against RabbitMQ); and the pika program
//! `examples/tutorials/transactions.py`.

mod common;

use common::*;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn tx_channel(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("channel.open");
    ch.tx_select().await.expect("tx.select");
    ch
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &str, props: BasicProperties) {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body.as_bytes(),
        props,
    )
    .await
    .unwrap_or_else(|e| panic!("publish {body}: {e}"));
}

async fn delete(conn: &Connection, queue: &str) {
    let ch = conn.create_channel().await.expect("channel.open");
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = ch.close(200, "".into()).await;
}

/// basic.get (manual ack) of the next message: its delivery tag and body.
async fn get(ch: &Channel, queue: &str) -> (u64, String) {
    let m = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
        .unwrap_or_else(|| panic!("{queue} is empty"));
    (
        m.delivery.delivery_tag,
        String::from_utf8(m.delivery.data.clone()).expect("utf-8"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_invisible_until_commit_and_rollback_drops_them() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            for placement in placements(&broker) {
                let q = unique_name("tx-pub");
                let setup = conn.create_channel().await.expect("channel.open");
                declare_queue(&setup, &q, false, placement).await;
                let ch = tx_channel(&conn).await;
                // A second select is fine.
                ch.tx_select().await.expect("tx.select again");
                for i in 0..3 {
                    publish(&ch, "", &q, &format!("m{i}"), BasicProperties::default()).await;
                }
                assert_eq!(
                    ready_count(&conn, &q).await,
                    0,
                    "{placement:?}: before commit"
                );
                ch.tx_commit().await.expect("tx.commit");
                assert_eq!(
                    ready_count(&conn, &q).await,
                    3,
                    "{placement:?}: after commit"
                );

                publish(&ch, "", &q, "dropped", BasicProperties::default()).await;
                ch.tx_rollback().await.expect("tx.rollback");
                ch.tx_commit().await.expect("an empty commit");
                assert_eq!(
                    ready_count(&conn, &q).await,
                    3,
                    "{placement:?}: rolled back"
                );

                // The channel stays transactional after a commit.
                publish(&ch, "", &q, "m3", BasicProperties::default()).await;
                assert_eq!(ready_count(&conn, &q).await, 3);
                ch.tx_commit().await.expect("tx.commit");
                let got = bodies_only(drain(&conn, &q).await);
                assert_eq!(got, strings(&["m0", "m1", "m2", "m3"]), "{placement:?}");
                let _ = ch.close(200, "".into()).await;
                delete(&conn, &q).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_spans_queues_on_every_shard() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            let setup = conn.create_channel().await.expect("channel.open");
            let fanout = unique_name("tx-fanout");
            setup
                .exchange_declare(
                    fanout.as_str().into(),
                    lapin::ExchangeKind::Fanout,
                    Default::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange.declare");
            let mut queues = Vec::new();
            for shard in 0..shards {
                let q = unique_name("tx-span");
                declare_queue(&setup, &q, true, Some(shard).filter(|_| shards > 1)).await;
                setup
                    .queue_bind(
                        q.as_str().into(),
                        fanout.as_str().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("queue.bind");
                queues.push(q);
            }
            let ch = tx_channel(&conn).await;
            for i in 0..50 {
                publish(&ch, &fanout, "", &format!("f{i:02}"), persistent()).await;
                publish(&ch, "", &queues[0], &format!("d{i:02}"), persistent()).await;
            }
            for q in &queues {
                assert_eq!(ready_count(&conn, q).await, 0);
            }
            ch.tx_commit().await.expect("tx.commit");
            // Everything is in place when commit-ok arrives: no waiting.
            for (n, q) in queues.iter().enumerate() {
                let got = bodies_only(drain(&conn, q).await);
                let mut want: Vec<String> = (0..50).map(|i| format!("f{i:02}")).collect();
                if n == 0 {
                    want = (0..50)
                        .flat_map(|i| [format!("f{i:02}"), format!("d{i:02}")])
                        .collect();
                }
                assert_eq!(got, want, "queue {n} of {shards} shards");
                delete(&conn, q).await;
            }
            let _ = setup
                .exchange_delete(fanout.as_str().into(), Default::default())
                .await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_in_a_transaction_apply_at_commit_and_rollback_leaves_them_unacked() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            for placement in placements(&broker) {
                let q = unique_name("tx-ack");
                let setup = conn.create_channel().await.expect("channel.open");
                declare_queue(&setup, &q, false, placement).await;
                for i in 0..4 {
                    publish(&setup, "", &q, &format!("a{i}"), BasicProperties::default()).await;
                }
                wait_ready(&conn, &q, 4).await;

                // Ack in a transaction, roll back, close: all 4 come back.
                let ch = tx_channel(&conn).await;
                let mut tags = Vec::new();
                for _ in 0..4 {
                    tags.push(get(&ch, &q).await.0);
                }
                ch.basic_ack(tags[1], BasicAckOptions { multiple: true })
                    .await
                    .expect("ack");
                ch.tx_rollback().await.expect("tx.rollback");
                // The rolled-back tags are unacked again: they can be acked.
                ch.basic_ack(tags[0], BasicAckOptions::default())
                    .await
                    .expect("ack after rollback");
                ch.close(200, "".into()).await.expect("close");
                wait_ready(&conn, &q, 4).await;

                // Ack two, nack one with requeue, in a transaction.
                let ch = tx_channel(&conn).await;
                let mut got = Vec::new();
                for _ in 0..4 {
                    got.push(get(&ch, &q).await);
                }
                let bodies: Vec<&str> = got.iter().map(|(_, b)| b.as_str()).collect();
                assert_eq!(bodies, ["a0", "a1", "a2", "a3"], "{placement:?}");
                ch.basic_ack(got[1].0, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack");
                ch.basic_nack(
                    got[2].0,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                )
                .await
                .expect("nack");
                // Nothing applied yet: no message is ready.
                assert_eq!(
                    ready_count(&conn, &q).await,
                    0,
                    "{placement:?}: before commit"
                );
                ch.tx_commit().await.expect("tx.commit");
                // The nacked one is back (redelivered), the acked ones gone,
                // the fourth still unacked.
                let ch2 = conn.create_channel().await.expect("channel.open");
                let m = ch2
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get")
                    .expect("the nacked message");
                assert_eq!(m.delivery.data, b"a2");
                assert!(m.delivery.redelivered);
                assert_eq!(ready_count(&conn, &q).await, 0);
                // An uncommitted ack is undone when the channel closes.
                ch.basic_ack(got[3].0, BasicAckOptions::default())
                    .await
                    .expect("ack");
                ch.close(200, "".into()).await.expect("close");
                let left = drain(&conn, &q).await;
                assert_eq!(left, vec![("a3".to_string(), true)], "{placement:?}");
                let _ = ch2.close(200, "".into()).await;
                delete(&conn, &q).await;
            }
        })
        .await;
    }
}

/// A consumer's prefetch (per consumer, and global) is freed by the commit
/// of an ack, not by the ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_freed_by_the_commit_of_an_ack() {
    use futures_lite::StreamExt;
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            for global in [false, true] {
                let q = unique_name("tx-prefetch");
                let setup = conn.create_channel().await.expect("channel.open");
                declare_queue(&setup, &q, false, last_shard(shards)).await;
                for i in 0..2 {
                    publish(&setup, "", &q, &format!("p{i}"), BasicProperties::default()).await;
                }
                wait_ready(&conn, &q, 2).await;
                let ch = tx_channel(&conn).await;
                ch.basic_qos(1, lapin::options::BasicQosOptions { global })
                    .await
                    .expect("qos");
                let mut consumer = ch
                    .basic_consume(
                        q.as_str().into(),
                        "c".into(),
                        Default::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                let first = consumer.next().await.expect("stream").expect("delivery");
                assert_eq!(first.data, b"p0");
                ch.basic_ack(first.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
                let early = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
                assert!(
                    early.is_err(),
                    "global={global}: delivered before the commit"
                );
                ch.tx_commit().await.expect("tx.commit");
                let second = consumer.next().await.expect("stream").expect("delivery");
                assert_eq!(second.data, b"p1", "global={global}");
                let _ = ch.close(200, "".into()).await;
                delete(&conn, &q).await;
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_publishes_are_returned_at_commit() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            let q = unique_name("tx-mandatory");
            let ch = tx_channel(&conn).await;
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            let mandatory = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            let nowhere = unique_name("tx-nowhere");
            for (key, body) in [(nowhere.as_str(), "lost"), (q.as_str(), "kept")] {
                ch.basic_publish(
                    "".into(),
                    key.into(),
                    mandatory,
                    body.as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            }
            // A round trip on the channel: nothing returned before the commit.
            declare_queue(&ch, &q, false, last_shard(shards)).await;
            assert!(ch.wait_for_confirms().await.expect("returns").is_empty());
            ch.tx_commit()
                .await
                .expect("an unroutable publish does not fail the commit");
            let returned = ch.wait_for_confirms().await.expect("returns");
            assert_eq!(returned.len(), 1, "{returned:?}");
            assert_eq!(returned[0].delivery.data, b"lost");
            assert_eq!(returned[0].reply_code, 312);
            assert_eq!(returned[0].reply_text.as_str(), "NO_ROUTE");
            assert_eq!(bodies_only(drain(&conn, &q).await), strings(&["kept"]));
            delete(&conn, &q).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_persistent_messages_survive_sigkill() {
    if skip_if_external("it restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-tx-");
        let mut broker = Broker::start_in(shards, dir.path());
        let q = "tx-durable";
        let bodies = padded_bodies("c", 200);
        within(async {
            let conn = lapin_connect(&broker).await;
            let setup = conn.create_channel().await.expect("channel.open");
            declare_queue(&setup, q, true, last_shard(shards)).await;
            let ch = tx_channel(&conn).await;
            for b in &bodies {
                publish(&ch, "", q, b, persistent()).await;
            }
            ch.tx_commit().await.expect("tx.commit");
            // An open transaction at the crash is lost.
            publish(&ch, "", q, "uncommitted", persistent()).await;
            assert_eq!(ready_count(&conn, q).await, 200);
        })
        .await;
        // commit-ok came after the fsync: SIGKILL at once loses nothing.
        broker.kill();
        let broker = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&broker).await;
            let got = bodies_only(drain(&conn, q).await);
            assert_eq!(got, bodies, "{shards} shards");
        })
        .await;
    }
}

/// A publish to an `x-delayed-message` exchange on a transactional channel
/// is held by the scheduler only at tx.commit (nothing is pending before
/// it, `messages_delayed` counts it right after commit-ok) and a rollback
/// drops it; a committed persistent one to a durable exchange is on disk
/// at commit-ok and arrives after a SIGKILL. Deliberate difference: the
/// delayed-message plugin holds the message when it is routed, at publish
/// time, even in a transaction (it does not support transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_publish_is_held_at_commit_and_dropped_by_rollback() {
    if skip_if_external("the reference RabbitMQ has no delayed-message plugin") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-tx-delayed-");
        let mut broker = Broker::start_in(shards, dir.path());
        let (x, q) = (unique_name("tx-delayed"), unique_name("tx-delayed-q"));
        let delayed = |ms: i64| {
            let mut h = FieldTable::default();
            h.insert("x-delay".into(), lapin::types::AMQPValue::LongLongInt(ms));
            persistent().with_headers(h)
        };
        let pending = |b: &Broker| cell_num(&ctl(b, "list_exchanges"), &x, "messages_delayed");
        within(async {
            let conn = lapin_connect(&broker).await;
            let setup = conn.create_channel().await.expect("channel.open");
            let mut args = FieldTable::default();
            args.insert(
                "x-delayed-type".into(),
                lapin::types::AMQPValue::LongString("direct".into()),
            );
            setup
                .exchange_declare(
                    x.as_str().into(),
                    lapin::ExchangeKind::Custom("x-delayed-message".into()),
                    lapin::options::ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    args,
                )
                .await
                .expect("declare the delayed exchange");
            declare_queue(&setup, &q, true, last_shard(shards)).await;
            setup
                .queue_bind(
                    q.as_str().into(),
                    x.as_str().into(),
                    "k".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            let ch = tx_channel(&conn).await;
            publish(&ch, &x, "k", "rolled-back", delayed(100)).await;
            // A round trip on the channel: the publish has been read.
            ch.basic_qos(10, Default::default()).await.expect("qos");
            assert_eq!(pending(&broker), 0, "held before the commit");
            ch.tx_rollback().await.expect("tx.rollback");
            assert_eq!(pending(&broker), 0, "held after a rollback");
            publish(&ch, &x, "k", "committed", delayed(1500)).await;
            ch.basic_qos(10, Default::default()).await.expect("qos");
            assert_eq!(pending(&broker), 0, "held before the commit");
            ch.tx_commit().await.expect("tx.commit");
            assert_eq!(pending(&broker), 1, "not held by the commit");
        })
        .await;
        // commit-ok came after the fsync of the delayed record.
        broker.kill();
        let broker = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&broker).await;
            let deadline = Instant::now() + Duration::from_secs(15);
            while ready_count(&conn, &q).await == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the committed delayed message never arrived"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Only the committed one (the rolled-back one was due long before).
            assert_eq!(bodies_only(drain(&conn, &q).await), strings(&["committed"]));
        })
        .await;
    }
}

/// tx.commit-ok of a persistent publish to a durable queue comes only
/// after the owner's fsync (every log batch delayed: no commit-ok while the
/// batch waits, and the fsync counter moved when it comes); a commit of
/// transient messages does not wait for the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_ok_waits_for_the_fsync_of_durable_copies_only() {
    if skip_if_external("it needs the Warren binary (a test-only log delay, the admin endpoint)") {
        return;
    }
    const DELAY_MS: u64 = 600;
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-tx-");
        let node = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_LOG_SYNC_DELAY_MS", &DELAY_MS.to_string())],
        );
        let owner = last_shard(shards).unwrap_or(0).to_string();
        within(async {
            let conn = lapin_connect(&node).await;
            let (durable_q, transient_q) = (unique_name("tx-fsync"), unique_name("tx-mem"));
            let ch = tx_channel(&conn).await;
            declare_queue(&ch, &durable_q, true, last_shard(shards)).await;
            declare_queue(&ch, &transient_q, false, last_shard(shards)).await;
            // Let any batch of the declarations finish.
            tokio::time::sleep(Duration::from_millis(2 * DELAY_MS)).await;

            publish(&ch, "", &transient_q, "t", BasicProperties::default()).await;
            let started = Instant::now();
            ch.tx_commit().await.expect("tx.commit");
            assert!(
                started.elapsed() < Duration::from_millis(DELAY_MS / 2),
                "{shards} shards: a transient commit waited {:?}",
                started.elapsed()
            );

            let before = ctl_num(&node, "status", &owner, "fsyncs");
            publish(&ch, "", &durable_q, "d", persistent()).await;
            let started = Instant::now();
            let commit = {
                let ch = ch.clone();
                tokio::spawn(async move { ch.tx_commit().await })
            };
            tokio::time::sleep(Duration::from_millis(DELAY_MS / 3)).await;
            assert!(
                !commit.is_finished(),
                "{shards} shards: commit-ok before its fsync"
            );
            commit.await.expect("task").expect("tx.commit");
            assert!(
                started.elapsed() >= Duration::from_millis(DELAY_MS),
                "{shards} shards: commit-ok after {:?}",
                started.elapsed()
            );
            let after = ctl_num(&node, "status", &owner, "fsyncs");
            assert!(
                after > before,
                "{shards} shards: fsyncs {before} -> {after}"
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_and_confirm_modes_exclude_each_other() {
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            let ch = confirm_channel(&conn).await;
            assert_lapin_error(
                ch.tx_select().await,
                406,
                "PRECONDITION_FAILED - cannot switch from confirm to tx mode",
            );
            let ch = tx_channel(&conn).await;
            assert_lapin_error(
                ch.confirm_select(Default::default()).await,
                406,
                "PRECONDITION_FAILED - cannot switch from tx to confirm mode",
            );
            for rollback in [false, true] {
                let ch = conn.create_channel().await.expect("channel.open");
                let r = if rollback {
                    ch.tx_rollback().await
                } else {
                    ch.tx_commit().await
                };
                assert_lapin_error(r, 406, "PRECONDITION_FAILED - channel is not transactional");
            }
            // Channel errors only: the connection carries on.
            let ch = tx_channel(&conn).await;
            ch.tx_commit().await.expect("tx.commit");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_delivery_tag_fails_at_the_ack_not_the_commit() {
    let broker = Broker::start(1);
    within(async {
        let conn = lapin_connect(&broker).await;
        let ch = tx_channel(&conn).await;
        ch.basic_ack(99, BasicAckOptions::default())
            .await
            .expect("ack is async");
        // The ack's close (406) either fails the commit in flight, or, if it
        // arrived first, lapin refuses to send the commit on a closing
        // channel: both say the ack failed before any commit.
        match ch.tx_commit().await {
            Err(e) if matches!(e.kind(), lapin::ErrorKind::InvalidChannelState(..)) => {}
            r => assert_lapin_error(r, 406, "PRECONDITION_FAILED - unknown delivery tag 99"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_bounded_in_memory() {
    if skip_if_external("RabbitMQ does not bound a transaction; Warren does (deliberately)") {
        return;
    }
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&broker).await;
            let q = unique_name("tx-bound");
            let setup = conn.create_channel().await.expect("channel.open");
            declare_queue(&setup, &q, false, last_shard(shards)).await;
            let body = "x".repeat(4 << 20);
            let ch = tx_channel(&conn).await;
            // 128 MiB per connection: the 32nd 4 MiB publish is over it
            // (no more after it, so that none is in flight at the close).
            for _ in 0..32 {
                publish(&ch, "", &q, &body, BasicProperties::default()).await;
            }
            let err = ch.tx_commit().await;
            let text = assert_lapin_code(err, 406);
            assert!(
                text.starts_with("PRECONDITION_FAILED - transaction too large"),
                "{text}"
            );
            assert_eq!(ready_count(&conn, &q).await, 0, "nothing of it applied");
            // The closed channel's bytes are released: a new transaction
            // on the same connection may use the whole bound again.
            let ch = tx_channel(&conn).await;
            for _ in 0..30 {
                publish(&ch, "", &q, &body, BasicProperties::default()).await;
            }
            ch.tx_commit().await.expect("tx.commit");
            assert_eq!(ready_count(&conn, &q).await, 30);
            delete(&conn, &q).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pika_transactions_program() {
    let py = std::env::var("WARREN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tutorials/transactions.py");
    for shards in SHARD_COUNTS {
        let broker = Broker::start(shards);
        let q = unique_name("tx-pika");
        let mut child = Command::new(&py)
            .arg(&script)
            .arg(&q)
            .env("AMQP_URL", broker.uri())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("the pika test needs `{py}` with pika: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("transactions.py did not finish in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "transactions.py failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            [
                " [x] Published 3 in a transaction, ready before commit: 0",
                " [x] Committed, ready: 3",
                " [x] Rolled back a publish, ready: 3",
                " [x] Got order 0",
                " [x] Got order 1",
                " [x] Got order 2",
                " [x] Acked, rolled back, closed the channel, ready: 3",
                " [x] Acked and committed, ready: 0",
            ],
            "{shards} shards"
        );
    }
}
