//! I/O failures on the metadata and page-in paths never confirm or drop
//! without the disk. Page-in reads that fail a few times are retried and
//! every message arrives in order; reads that keep failing stop the queue
//! (`state` `crashed` in `warren ctl list_queues`) without dropping a
//! paged message or its segment, other queues keep working, and a restart
//! without the fault brings every durable message back. A durable declare,
//! bind or delete whose definitions cannot be stored closes the connection
//! with 541 INTERNAL_ERROR, is not durable after a restart, and other
//! connections keep working. Faults are injected with test-only environment
//! variables, so these tests need the Warren binary and skip against an
//! external broker. Each runs with 1 and 2 shards.

mod common;

use common::*;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, Connection};

/// Small enough that a few hundred messages page out.
const BUDGET: &str = "65536";

/// Why these tests skip against an external broker.
const INJECTS_FAULTS: &str =
    "it injects faults into a local warren process (test-only environment variables)";

/// The value of `column` in `queue`'s row of `warren ctl list_queues`.
fn listed(b: &Broker, queue: &str, column: &str) -> String {
    ctl_cell(b, "list_queues", queue, column)
}

fn listed_num(b: &Broker, queue: &str, column: &str) -> u64 {
    ctl_num(b, "list_queues", queue, column)
}

/// Consumes `n` messages with manual acks (prefetch 50), in arrival order.
async fn consume(conn: &Connection, queue: &str, n: usize) -> Vec<String> {
    bodies_only(consume_acked(conn, queue, n).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_in_read_errors_are_retried_and_nothing_is_lost() {
    if skip_if_external(INJECTS_FAULTS) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-faults-");
        let b = Broker::start_in_with_env(
            shards,
            dir.path(),
            &["--memory-budget", BUDGET],
            &[("WARREN_TEST_PAGE_IN_FAIL", "4")],
        );
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            for (durable, props) in [(true, persistent()), (false, BasicProperties::default())] {
                let q = unique_name(&format!("retry-{durable}"));
                declare_queue(&ch, &q, durable, placement).await;
                let sent = padded_bodies("r", 3000);
                publish_confirmed(&ch, &q, &sent, props).await;
                assert!(listed_num(&b, &q, "messages_paged_out") >= 2000, "{q}");
                let got = consume(&conn, &q, sent.len()).await;
                assert!(
                    got == sent,
                    "{q} (shards {shards}): order or content differs"
                );
                assert_eq!(listed(&b, &q, "state"), "running", "{q}");
                assert_eq!(listed_num(&b, &q, "messages_ready"), 0, "{q}");
            }
        })
        .await;
        b.logs_within("retrying");
        let log = b.log().join("\n");
        assert!(
            log.contains("retrying"),
            "the injected read errors were not retried:\n{log}"
        );
        assert!(!log.contains("stops serving"), "a retry gave up:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_paged_messages_stop_the_queue_and_survive_a_restart() {
    if skip_if_external(INJECTS_FAULTS) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-faults-");
        let mut b = Broker::start_in_with_env(
            shards,
            dir.path(),
            &["--memory-budget", BUDGET],
            &[("WARREN_TEST_PAGE_IN_FAIL", "all")],
        );
        let placement = last_shard(shards);
        let durable_q = unique_name("unreadable-durable");
        let transient_q = unique_name("unreadable-transient");
        let other_q = unique_name("unreadable-other");
        let sent = padded_bodies("d", 3000);
        let consumed = within_secs(60, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &durable_q, true, placement).await;
            declare_queue(&ch, &transient_q, false, placement).await;
            declare_queue(&ch, &other_q, true, placement).await;
            publish_confirmed(&ch, &durable_q, &sent, persistent()).await;
            publish_confirmed(
                &ch,
                &transient_q,
                &padded_bodies("t", 3000),
                BasicProperties::default(),
            )
            .await;
            let mut consumed = 0;
            for q in [&durable_q, &transient_q] {
                let ram = listed_num(&b, q, "messages_ready_ram") as usize;
                let paged = listed_num(&b, q, "messages_paged_out");
                assert!(paged >= 2000, "{q}: only {paged} paged out");
                // The messages in memory still arrive; the paged ones cannot
                // be read back.
                let got = consume(&conn, q, ram).await;
                if q == &durable_q {
                    assert!(got[..] == sent[..ram], "{q}: order or content differs");
                    consumed = ram;
                }
                let stopped = eventually(20, || listed(&b, q, "state") == "crashed").await;
                assert!(stopped, "{q} never showed state crashed");
                // basic.get answers get-empty rather than waiting.
                let gch = conn.create_channel().await.expect("channel.open");
                let got = gch
                    .basic_get(
                        q.as_str().into(),
                        lapin::options::BasicGetOptions { no_ack: false },
                    )
                    .await
                    .expect("basic.get");
                assert!(got.is_none(), "{q}: basic.get on a stopped queue");
                let _ = gch.close(200, "".into()).await;
                // Nothing dropped: every paged message is still counted.
                assert_eq!(listed_num(&b, q, "messages_paged_out"), paged, "{q}");
                assert_eq!(
                    listed_num(&b, q, "messages_ready"),
                    3000 - ram as u64,
                    "{q}"
                );
            }
            // Other queues on the same shard keep working.
            let few = padded_bodies("o", 10);
            publish_confirmed(&ch, &other_q, &few, persistent()).await;
            assert!(consume(&conn, &other_q, few.len()).await == few);
            assert_eq!(listed(&b, &other_q, "state"), "running");
            consumed
        })
        .await;
        b.logs_within("state crashed");
        let log = b.log().join("\n");
        assert!(
            log.contains(&format!("cannot read queue '{durable_q}'"))
                && log.contains("state crashed"),
            "no clear log line for the stopped queue:\n{log}"
        );
        b.stop();
        // Without the fault, every durable message is there, in order.
        let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        within(async {
            let conn = lapin_connect(&b).await;
            let want = &sent[consumed..];
            assert_eq!(
                listed_num(&b, &durable_q, "messages_ready"),
                want.len() as u64
            );
            let got = consume(&conn, &durable_q, want.len()).await;
            assert!(got[..] == want[..], "durable messages lost or reordered");
            assert_eq!(listed(&b, &durable_q, "state"), "running");
        })
        .await;
    }
}

/// Expects the connection to be closed with 541 INTERNAL_ERROR.
#[track_caller]
fn assert_internal_error<T: std::fmt::Debug>(r: Result<T, lapin::Error>, what: &str) {
    let text = assert_lapin_code(r, 541);
    assert!(
        text.starts_with("INTERNAL_ERROR - "),
        "{what}: reply text {text:?}"
    );
}

async fn passive_exists(conn: &Connection, queue: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel.open");
    let r = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match r {
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

async fn exchange_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.expect("channel.open");
    let r = ch
        .exchange_declare(
            name.into(),
            lapin::ExchangeKind::Direct,
            lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match r {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_changes_that_cannot_be_stored_close_the_connection_with_541() {
    if skip_if_external(INJECTS_FAULTS) {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-faults-");
        // The first definitions write (the generation the first durable
        // change starts) succeeds, every later one fails.
        let mut b = Broker::start_in_with_env(
            shards,
            dir.path(),
            &[],
            &[("WARREN_TEST_DEFINITIONS_FAIL_AFTER", "1")],
        );
        let placement = last_shard(shards);
        let kept = unique_name("defs-kept");
        let lost = unique_name("defs-lost");
        let lost_x = unique_name("defs-lost-x");
        within(async {
            let other = lapin_connect(&b).await;
            let a = lapin_connect(&b).await;
            let ch = a.create_channel().await.expect("channel.open");
            declare_queue(&ch, &kept, true, placement).await;
            // Not stored: no declare-ok, the connection closes.
            let r = ch
                .queue_declare(
                    lost.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    lapin_placement_args(placement),
                )
                .await;
            assert_internal_error(r, "durable queue.declare");
            // Rolled back, and other connections keep working.
            assert!(!passive_exists(&other, &lost).await, "{lost} still exists");
            let och = confirm_channel(&other).await;
            let t = unique_name("defs-transient");
            declare_queue(&och, &t, false, placement).await;
            publish_confirmed(&och, &t, &padded_bodies("t", 5), BasicProperties::default()).await;
            assert_eq!(consume(&other, &t, 5).await, padded_bodies("t", 5));

            // A durable binding.
            let c = lapin_connect(&b).await;
            let ch = c.create_channel().await.expect("channel.open");
            let r = ch
                .queue_bind(
                    kept.as_str().into(),
                    "amq.direct".into(),
                    "k".into(),
                    lapin::options::QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_internal_error(r, "durable queue.bind");
            // Rolled back: nothing routes through it.
            let r = och
                .basic_publish(
                    "amq.direct".into(),
                    "k".into(),
                    BasicPublishOptions::default(),
                    b"routed?",
                    BasicProperties::default(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(matches!(r, Confirmation::Ack(_)), "{r:?}");
            let got = och
                .basic_get(
                    kept.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .expect("basic.get");
            assert!(got.is_none(), "the failed binding routed a message");

            // A durable exchange.
            let c = lapin_connect(&b).await;
            let ch = c.create_channel().await.expect("channel.open");
            let r = ch
                .exchange_declare(
                    lost_x.as_str().into(),
                    lapin::ExchangeKind::Fanout,
                    lapin::options::ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            assert_internal_error(r, "durable exchange.declare");
            assert!(!exchange_exists(&other, &lost_x).await, "{lost_x} exists");

            // A durable queue's deletion.
            let c = lapin_connect(&b).await;
            let ch = c.create_channel().await.expect("channel.open");
            let r = ch
                .queue_delete(
                    kept.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
            assert_internal_error(r, "durable queue.delete");
            assert!(other.status().connected(), "the other connection closed");
        })
        .await;
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            assert!(!passive_exists(&conn, &lost).await, "{lost} came back");
            assert!(!exchange_exists(&conn, &lost_x).await, "{lost_x} came back");
            // The deletion never reached the disk: the queue stored before
            // the fault is still there.
            assert!(passive_exists(&conn, &kept).await, "{kept} lost");
        })
        .await;
    }
}
