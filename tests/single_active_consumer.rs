//! Single active consumer (`x-single-active-consumer`): one consumer gets
//! the deliveries, the others wait; takeover on cancel and on connection
//! close (the departed consumer's unacked messages first, in order);
//! `x-priority` picks the active consumer (RabbitMQ 3.12+); exclusive
//! consumes refused; the active consumer in `warren ctl`; a durable SAC
//! queue keeps the behaviour across a restart.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use std::time::Duration;

fn sac_args(placement: Option<usize>) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    t.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    t
}

async fn declare_sac(conn: &Connection, name: &str, durable: bool, placement: Option<usize>) {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        sac_args(placement),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// A consumer on a fresh channel of `conn` (prefetch `prefetch`, 0: none).
async fn consumer(
    conn: &Connection,
    queue: &str,
    tag: &str,
    prefetch: u16,
    priority: Option<i32>,
) -> (Channel, Consumer) {
    let ch = conn.create_channel().await.expect("channel");
    if prefetch > 0 {
        ch.basic_qos(prefetch, BasicQosOptions::default())
            .await
            .expect("qos");
    }
    let mut args = FieldTable::default();
    if let Some(p) = priority {
        args.insert("x-priority".into(), AMQPValue::LongInt(p));
    }
    let c = ch
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await
        .expect("consume");
    (ch, c)
}

/// The next `n` deliveries of `c`: (body, redelivered, delivery tag).
async fn take(c: &mut Consumer, n: usize) -> Vec<(String, bool, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let d = c.next().await.expect("stream ended").expect("delivery");
        out.push((
            String::from_utf8(d.data.clone()).unwrap(),
            d.redelivered,
            d.delivery_tag,
        ));
    }
    out
}

/// Asserts `c` gets nothing for a while.
async fn quiet(c: &mut Consumer, who: &str) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), c.next()).await {
        panic!("{who} got a delivery it should not: {d:?}");
    }
}

fn bodies(d: &[(String, bool, u64)]) -> Vec<String> {
    d.iter().map(|(b, _, _)| b.clone()).collect()
}

async fn ack_all(ch: &Channel, got: &[(String, bool, u64)]) {
    for (_, _, tag) in got {
        ch.basic_ack(*tag, BasicAckOptions::default())
            .await
            .expect("ack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_receives_and_the_next_takes_over_on_cancel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let q = unique_name("sac-cancel");
                declare_sac(&conn, &q, false, placement).await;
                let (cha, mut a) = consumer(&conn, &q, "a", 0, None).await;
                let other = lapin_connect(&b).await;
                let (_chb, mut bc) = consumer(&other, &q, "b", 0, None).await;
                let pubch = confirm_channel(&conn).await;
                let first = padded_bodies("m", 10);
                publish_confirmed(&pubch, &q, &first, Default::default()).await;
                let got = take(&mut a, 10).await;
                assert_eq!(bodies(&got), first);
                quiet(&mut bc, "the waiting consumer").await;
                if !b.is_external() {
                    let listing = ctl(&b, "list_queues");
                    assert_eq!(cell(&listing, &q, "single_active_consumer_tag"), "a");
                    let consumers = ctl(&b, "list_consumers");
                    let active: Vec<(String, String)> = consumers
                        .lines()
                        .filter(|l| l.starts_with(&format!("{q}\t")))
                        .map(|l| {
                            let cols: Vec<&str> = l.split('\t').collect();
                            (cols[1].to_string(), cols[cols.len() - 1].to_string())
                        })
                        .collect();
                    assert_eq!(
                        active,
                        vec![("a".into(), "true".into()), ("b".into(), "false".into())]
                    );
                }
                ack_all(&cha, &got).await;
                cha.basic_cancel("a".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                let second = padded_bodies("n", 5);
                publish_confirmed(&pubch, &q, &second, Default::default()).await;
                assert_eq!(bodies(&take(&mut bc, 5).await), second);
                if !b.is_external() {
                    let listing = ctl(&b, "list_queues");
                    assert_eq!(cell(&listing, &q, "single_active_consumer_tag"), "b");
                }
                let _ = conn.close(200, "".into()).await;
                let _ = other.close(200, "".into()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_hands_over_with_the_unacked_first() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let q = unique_name("sac-close");
                declare_sac(&conn, &q, false, placement).await;
                let first_conn = lapin_connect(&b).await;
                let (_cha, mut a) = consumer(&first_conn, &q, "a", 3, None).await;
                let (chb, mut bc) = consumer(&conn, &q, "b", 0, None).await;
                let pubch = confirm_channel(&conn).await;
                let all = padded_bodies("m", 10);
                publish_confirmed(&pubch, &q, &all, Default::default()).await;
                // a holds three unacked (its prefetch); b waits.
                let held = take(&mut a, 3).await;
                assert_eq!(bodies(&held), all[..3].to_vec());
                quiet(&mut bc, "the waiting consumer").await;
                first_conn.close(200, "".into()).await.expect("close");
                let got = take(&mut bc, 10).await;
                let order: Vec<(String, bool)> =
                    got.iter().map(|(b, r, _)| (b.clone(), *r)).collect();
                let want: Vec<(String, bool)> = all
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (b.clone(), i < 3))
                    .collect();
                assert_eq!(order, want, "the requeued unacked come first, in order");
                ack_all(&chb, &got).await;
                let _ = conn.close(200, "".into()).await;
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_picks_the_active_consumer() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("sac-priority");
            declare_sac(&conn, &q, false, placement).await;
            let (cha, mut a) = consumer(&conn, &q, "low", 0, Some(0)).await;
            let (chb, mut bc) = consumer(&conn, &q, "high", 0, Some(5)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pubch = confirm_channel(&conn).await;
            let first = padded_bodies("m", 5);
            publish_confirmed(&pubch, &q, &first, Default::default()).await;
            if b.is_external() {
                // RabbitMQ 3.10 ignores consumer priorities on SAC queues:
                // the first consumer attached stays active (3.12+ picks the
                // highest priority, as Warren does).
                let got = take(&mut a, 5).await;
                assert_eq!(bodies(&got), first);
                quiet(&mut bc, "the later consumer").await;
                ack_all(&cha, &got).await;
                let _ = conn.close(200, "".into()).await;
                return;
            }
            let got = take(&mut bc, 5).await;
            assert_eq!(bodies(&got), first);
            quiet(&mut a, "the lower-priority consumer").await;
            // A higher one arrives while "high" holds unacked messages:
            // nobody gets new messages until they are settled, then the
            // newcomer is active.
            let (_chc, mut cc) = consumer(&conn, &q, "highest", 0, Some(10)).await;
            let second = padded_bodies("n", 3);
            publish_confirmed(&pubch, &q, &second, Default::default()).await;
            quiet(&mut bc, "the consumer being replaced").await;
            quiet(&mut cc, "the newcomer, before the handover").await;
            assert_eq!(
                cell(&ctl(&b, "list_queues"), &q, "single_active_consumer_tag"),
                "high"
            );
            ack_all(&chb, &got).await;
            assert_eq!(bodies(&take(&mut cc, 3).await), second);
            quiet(&mut a, "the lower-priority consumer").await;
            assert_eq!(
                cell(&ctl(&b, "list_queues"), &q, "single_active_consumer_tag"),
                "highest"
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consume_is_refused() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("sac-excl");
            declare_sac(&conn, &q, false, last_shard(shards)).await;
            let ch = conn.create_channel().await.expect("channel");
            let r = ch
                .basic_consume(
                    q.as_str().into(),
                    "x".into(),
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
                &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
            );
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_sac_queue_keeps_one_active_consumer_after_restart() {
    if skip_if_external("restarts the broker") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-sac-");
        let q = unique_name("sac-durable");
        let mut b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            declare_sac(&conn, &q, true, last_shard(shards)).await;
            let pubch = confirm_channel(&conn).await;
            publish_confirmed(&pubch, &q, &padded_bodies("m", 4), persistent()).await;
            let _ = conn.close(200, "".into()).await;
        })
        .await;
        b.stop();
        let b = Broker::start_in(shards, dir.path());
        within(async {
            let conn = lapin_connect(&b).await;
            let (cha, mut a) = consumer(&conn, &q, "a", 0, None).await;
            let (_chb, mut bc) = consumer(&conn, &q, "b", 0, None).await;
            let got = take(&mut a, 4).await;
            assert_eq!(bodies(&got), padded_bodies("m", 4));
            quiet(&mut bc, "the waiting consumer").await;
            ack_all(&cha, &got).await;
            let _ = conn.close(200, "".into()).await;
        })
        .await;
    }
}
