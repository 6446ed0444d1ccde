//! `x-max-unacked` (Warren's own; asked for in issue 13, beyond RabbitMQ and
//! LavinMQ): a queue with that many unacknowledged deliveries, across all
//! its consumers and basic.get, delivers nothing until acks, nacks or
//! rejects free room. Set by the declare argument or the policy key
//! `max-unacked` (the lower wins); validated with the texts RabbitMQ gives
//! its other numeric arguments; works with priorities, single active
//! consumer and paged-out backlogs; survives a restart (it is an argument).
//!
//! RabbitMQ ignores the argument, so these tests skip against it.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};
use std::time::Duration;

const WARREN_ONLY: &str = "x-max-unacked is Warren's own argument (RabbitMQ ignores it)";

fn capped(placement: Option<usize>, cap: i64) -> FieldTable {
    let mut t = lapin_placement_args(placement);
    t.insert("x-max-unacked".into(), AMQPValue::LongLongInt(cap));
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

async fn consume(conn: &Connection, queue: &str, tag: &str, args: FieldTable) -> Consumer {
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions::default(),
        args,
    )
    .await
    .expect("consume")
}

/// The next delivery of any of `consumers` (60 s at most).
async fn next_of(consumers: &mut [Consumer]) -> lapin::message::Delivery {
    within(async {
        loop {
            for c in consumers.iter_mut() {
                let next = tokio::time::timeout(Duration::from_millis(20), c.next()).await;
                if let Ok(Some(d)) = next {
                    return d.expect("delivery");
                }
            }
        }
    })
    .await
}

/// basic.get in ack mode answers get-empty while `queue` still holds
/// `ready` messages: the cap, not an empty queue, stops it.
async fn get_is_held_back(conn: &Connection, queue: &str, ready: u32) {
    let ch = conn.create_channel().await.expect("channel");
    let got = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get");
    assert!(got.is_none(), "basic.get at the cap delivers nothing");
    assert_eq!(ready_count(conn, queue).await, ready, "the rest is ready");
    let _ = ch.close(200, "".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_stop_at_the_cap_across_consumers_and_resume_as_acks_free_room() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let other = lapin_connect(&b).await;
        let q = unique_name("cap");
        let ch = confirm_channel(&conn).await;
        declare(&ch, &q, false, capped(last_shard(shards), 3)).await;
        publish_confirmed(&ch, &q, &padded_bodies("m", 10), Default::default()).await;
        // Two consumers, on two connections (two shards with --shards 2),
        // neither with a prefetch: only the cap holds them back.
        let mut consumers = vec![
            consume(&conn, &q, "a", FieldTable::default()).await,
            consume(&other, &q, "b", FieldTable::default()).await,
        ];
        let mut outstanding = Vec::new();
        for _ in 0..3 {
            outstanding.push(next_of(&mut consumers).await);
        }
        get_is_held_back(&conn, &q, 7).await;
        // Each ack lets exactly one more through; never more than 3 out.
        let mut seen = outstanding.len();
        while seen < 10 {
            let d = outstanding.remove(0);
            d.ack(BasicAckOptions::default()).await.expect("ack");
            outstanding.push(next_of(&mut consumers).await);
            seen += 1;
            let ready = 10 - seen as u32;
            if ready > 0 {
                get_is_held_back(&conn, &q, ready).await;
            }
        }
        // A nack with requeue frees room too (and the message comes back).
        let d = outstanding.remove(0);
        let body = d.data.clone();
        d.nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .expect("nack");
        let again = next_of(&mut consumers).await;
        assert_eq!(again.data, body, "the requeued message is redelivered");
        assert!(again.redelivered);
        outstanding.push(again);
        for d in outstanding {
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        wait_ready(&conn, &q, 0).await;
        conn.close(200, "".into()).await.ok();
        other.close(200, "".into()).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_are_refused_as_rabbitmq_refuses_its_numeric_arguments() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        for (value, reason) in [
            (AMQPValue::LongInt(-1), "{value_negative,-1}"),
            (AMQPValue::LongInt(0), "{value_zero,0}"),
            (
                AMQPValue::LongString("x".into()),
                "\"expected integer, got longstr\"",
            ),
        ] {
            let ch = conn.create_channel().await.expect("channel");
            let mut args = FieldTable::default();
            args.insert("x-max-unacked".into(), value);
            let r = ch
                .queue_declare("bad-cap".into(), QueueDeclareOptions::default(), args)
                .await;
            assert_lapin_error(
                r,
                406,
                &format!(
                    "PRECONDITION_FAILED - invalid arg 'x-max-unacked' for queue 'bad-cap' \
                     in vhost '/': {reason}"
                ),
            );
        }
        // Redeclared with another cap: inequivalent, as any argument.
        let q = unique_name("cap-eq");
        let ch = conn.create_channel().await.expect("channel");
        declare(&ch, &q, false, capped(None, 5)).await;
        declare(&ch, &q, false, capped(None, 5)).await;
        let r = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                capped(None, 6),
            )
            .await;
        assert_lapin_error(
            r,
            406,
            &format!(
                "PRECONDITION_FAILED - inequivalent arg 'x-max-unacked' for queue '{q}' \
                 in vhost '/': received '6' but current is '5'"
            ),
        );
        conn.close(200, "".into()).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_key_caps_and_clearing_it_releases_the_rest() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (ok, text) = broker_ctl(
            &b,
            &[
                "set_policy",
                "bad",
                "^x",
                "{\"max-unacked\":0}",
                "--apply-to",
                "queues",
            ],
        );
        assert!(!ok, "max-unacked 0 is refused");
        assert!(
            text.contains("0 is not a valid maximum unacked count"),
            "{text}"
        );
        let q = unique_name("pcap");
        broker_ctl_ok(
            &b,
            &[
                "set_policy",
                "cap",
                "^pcap",
                "{\"max-unacked\":2}",
                "--apply-to",
                "queues",
            ],
        );
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        // The lower of argument (4) and policy (2) applies.
        declare(&ch, &q, false, capped(last_shard(shards), 4)).await;
        publish_confirmed(&ch, &q, &padded_bodies("p", 6), Default::default()).await;
        let mut consumers = vec![consume(&conn, &q, "c", FieldTable::default()).await];
        let first = [next_of(&mut consumers).await, next_of(&mut consumers).await];
        get_is_held_back(&conn, &q, 4).await;
        // Without the policy the argument's 4 applies: two more come.
        broker_ctl_ok(&b, &["clear_policy", "cap"]);
        let more = [next_of(&mut consumers).await, next_of(&mut consumers).await];
        get_is_held_back(&conn, &q, 2).await;
        for d in first.into_iter().chain(more) {
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        for _ in 0..2 {
            next_of(&mut consumers)
                .await
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
        wait_ready(&conn, &q, 0).await;
        conn.close(200, "".into()).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priorities_and_a_single_active_consumer_keep_their_order_under_the_cap() {
    if skip_if_external(WARREN_ONLY) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let conn = lapin_connect(&b).await;
        let q = unique_name("cap-prio");
        let ch = confirm_channel(&conn).await;
        let mut args = capped(last_shard(shards), 2);
        args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(9));
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        declare(&ch, &q, false, args).await;
        for (body, priority) in [("low-1", 1u8), ("low-2", 1), ("high-1", 9), ("high-2", 9)] {
            let props = lapin::BasicProperties::default().with_priority(priority);
            publish_confirmed(&ch, &q, &[body.to_string()], props).await;
        }
        let mut active = vec![consume(&conn, &q, "active", FieldTable::default()).await];
        let mut waiting = consume(&conn, &q, "waiting", FieldTable::default()).await;
        let a = next_of(&mut active).await;
        let b2 = next_of(&mut active).await;
        assert_eq!(
            (&a.data[..], &b2.data[..]),
            (&b"high-1"[..], &b"high-2"[..])
        );
        get_is_held_back(&conn, &q, 2).await;
        a.ack(BasicAckOptions::default()).await.expect("ack");
        let c = next_of(&mut active).await;
        assert_eq!(&c.data[..], b"low-1", "one more, to the active consumer");
        b2.ack(BasicAckOptions::default()).await.expect("ack");
        c.ack(BasicAckOptions::default()).await.expect("ack");
        let d = next_of(&mut active).await;
        assert_eq!(&d.data[..], b"low-2");
        d.ack(BasicAckOptions::default()).await.expect("ack");
        wait_ready(&conn, &q, 0).await;
        let idle = tokio::time::timeout(Duration::from_millis(100), waiting.next()).await;
        assert!(idle.is_err(), "the waiting consumer got nothing");
        conn.close(200, "".into()).await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_backlog_is_delivered_whole_in_order_under_the_cap_and_the_cap_survives_restart() {
    if skip_if_external("it restarts a local warren with a small --memory-budget") {
        return;
    }
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-max-unacked-");
        let args = ["--memory-budget", "262144"];
        let q = unique_name("cap-paged");
        let n = 600;
        let bodies: Vec<String> = (0..n)
            .map(|i| format!("{i:06}{}", "x".repeat(1000)))
            .collect();
        {
            let mut b = Broker::start_in_with(shards, dir.path(), &args);
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            declare(&ch, &q, true, capped(last_shard(shards), 5)).await;
            publish_confirmed(&ch, &q, &bodies, persistent()).await;
            let paged = ctl_num(&b, "list_queues", &q, "messages_paged_out");
            assert!(paged > 0, "the backlog is partly paged out");
            conn.close(200, "".into()).await.ok();
            b.stop();
        }
        let b = Broker::start_in_with(shards, dir.path(), &args);
        let conn = lapin_connect(&b).await;
        let mut consumers = vec![consume(&conn, &q, "c", FieldTable::default()).await];
        let mut outstanding = Vec::new();
        for _ in 0..5 {
            outstanding.push(next_of(&mut consumers).await);
        }
        get_is_held_back(&conn, &q, n as u32 - 5).await;
        let mut got: Vec<String> = Vec::new();
        while !outstanding.is_empty() {
            let d = outstanding.remove(0);
            got.push(String::from_utf8(d.data.clone()).unwrap());
            d.ack(BasicAckOptions::default()).await.expect("ack");
            if got.len() + outstanding.len() < n {
                outstanding.push(next_of(&mut consumers).await);
            }
            assert!(outstanding.len() <= 5);
        }
        assert_eq!(got, bodies, "every message, in order");
        wait_ready(&conn, &q, 0).await;
        conn.close(200, "".into()).await.ok();
    }
}
