//! Priority queues (`x-max-priority`), as RabbitMQ: the highest priority
//! first, FIFO within a priority, no priority counts as 0 and a priority
//! above the maximum as the maximum; requeued messages go back to their
//! place; a paged-out backlog (tiny `--memory-budget`) comes back in
//! priority order; a durable priority queue keeps its order across SIGTERM
//! and SIGKILL restarts. Each test runs with 1 and 2 shards, with the queue
//! on each shard.

mod common;

use common::*;
use lapin::options::{BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;

/// The queues' `x-max-priority`.
const MAX: u8 = 5;

/// Small enough that a few hundred messages page out.
const BUDGET: &str = "65536";

/// The priority of message `i` of a series: a mix of every level, none,
/// and values above `MAX` (6 to 9, 255).
fn priority_of(i: usize) -> Option<u8> {
    match i % 11 {
        0 => None,
        1 => Some(255),
        k => Some(((i * 7 + k) % 10) as u8),
    }
}

/// The level a priority counts as in a queue of maximum `MAX`.
fn level(p: Option<u8>) -> u8 {
    p.unwrap_or(0).min(MAX)
}

/// Declare arguments: `x-max-priority` MAX plus the placement.
fn priority_args(placement: Option<usize>) -> FieldTable {
    let mut args = lapin_placement_args(placement);
    args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(MAX));
    args
}

async fn declare_priority_queue(ch: &lapin::Channel, name: &str, durable: bool, p: Option<usize>) {
    ch.queue_declare(
        name.into(),
        lapin::options::QueueDeclareOptions {
            durable,
            ..Default::default()
        },
        priority_args(p),
    )
    .await
    .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Messages `0..n` of a series: (body, priority).
fn series(prefix: &str, n: usize) -> Vec<(String, Option<u8>)> {
    (0..n)
        .map(|i| (padded_body(prefix, i), priority_of(i)))
        .collect()
}

/// The bodies in the order a priority queue hands them out (stable: FIFO
/// within a level).
fn priority_order(sent: &[(String, Option<u8>)]) -> Vec<String> {
    let mut v: Vec<&(String, Option<u8>)> = sent.iter().collect();
    v.sort_by_key(|(_, p)| std::cmp::Reverse(level(*p)));
    v.into_iter().map(|(b, _)| b.clone()).collect()
}

/// Publishes each (body, priority) to `queue` on a confirm channel,
/// pipelined, and checks every confirm is an ack.
async fn publish_priorities(
    ch: &lapin::Channel,
    queue: &str,
    messages: &[(String, Option<u8>)],
    persistent: bool,
) {
    let mut confirms = Vec::with_capacity(messages.len());
    for (body, priority) in messages {
        let mut props = BasicProperties::default();
        if persistent {
            props = props.with_delivery_mode(2);
        }
        if let Some(p) = priority {
            props = props.with_priority(*p);
        }
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                Default::default(),
                body.as_bytes(),
                props,
            )
            .await
            .unwrap_or_else(|e| panic!("publish {body}: {e}"));
        confirms.push(c);
    }
    for c in confirms {
        match c.await.expect("confirm") {
            lapin::Confirmation::Ack(None) => {}
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highest_priority_first_fifo_within_none_is_zero_above_max_is_max() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for durable in [false, true] {
                    let sent = series("p", 120);
                    let want = priority_order(&sent);
                    // basic.get
                    let q = unique_name(&format!("prio-get-{durable}-{placement:?}"));
                    declare_priority_queue(&ch, &q, durable, placement).await;
                    publish_priorities(&ch, &q, &sent, durable).await;
                    assert_eq!(ready_count(&conn, &q).await, 120);
                    assert_eq!(bodies_only(drain(&conn, &q).await), want, "{q}");
                    // A consumer.
                    let q = unique_name(&format!("prio-consume-{durable}-{placement:?}"));
                    declare_priority_queue(&ch, &q, durable, placement).await;
                    publish_priorities(&ch, &q, &sent, durable).await;
                    let got = consume_acked(&conn, &q, sent.len()).await;
                    assert_eq!(got, fresh(&want), "{q}");
                    // A plain queue ignores priorities (FIFO).
                    let q = unique_name(&format!("plain-{durable}-{placement:?}"));
                    declare_queue(&ch, &q, durable, placement).await;
                    publish_priorities(&ch, &q, &sent, durable).await;
                    let fifo: Vec<String> = sent.iter().map(|(b, _)| b.clone()).collect();
                    assert_eq!(bodies_only(drain(&conn, &q).await), fifo, "{q}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_messages_go_back_to_their_place() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name(&format!("prio-requeue-{placement:?}"));
                declare_priority_queue(&ch, &q, false, placement).await;
                let sent = series("r", 60);
                publish_priorities(&ch, &q, &sent, false).await;
                let want = priority_order(&sent);
                // Take the first 25 (several levels) in ack mode, then a
                // message of level 0 arrives, then the 25 are requeued.
                let get = conn.create_channel().await.expect("channel.open");
                let mut last = 0;
                for w in &want[..25] {
                    let m = get
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                        .await
                        .expect("basic.get")
                        .expect("a message");
                    assert_eq!(&String::from_utf8(m.delivery.data).unwrap(), w);
                    last = m.delivery.delivery_tag;
                }
                let late = vec![("late".to_string(), None)];
                publish_priorities(&ch, &q, &late, false).await;
                get.basic_nack(
                    last,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .expect("nack");
                wait_ready(&conn, &q, 61).await;
                let mut expected: Vec<(String, bool)> = want
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (b.clone(), i < 25))
                    .collect();
                expected.push(("late".to_string(), false));
                assert_eq!(drain(&conn, &q).await, expected, "{q}");
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_backlog_comes_back_in_priority_order() {
    if skip_if_external("it sets a local warren's --memory-budget and reads `warren ctl`") {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", BUDGET]);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for durable in [false, true] {
                    let sent = series("g", 3000);
                    let want = priority_order(&sent);
                    let q = unique_name(&format!("prio-page-{durable}-{placement:?}"));
                    declare_priority_queue(&ch, &q, durable, placement).await;
                    publish_priorities(&ch, &q, &sent, durable).await;
                    let listing = ctl(&b, "list_queues");
                    let paged = cell_num(&listing, &q, "messages_paged_out");
                    assert!(paged >= 2000, "{q}: only {paged} of 3000 paged out");
                    assert_eq!(cell_num(&listing, &q, "messages_ready"), 3000);
                    // A consumer gets everything in priority order.
                    let got = consume_acked(&conn, &q, sent.len()).await;
                    assert!(got == fresh(&want), "{q}: order differs");
                    assert_eq!(ready_count(&conn, &q).await, 0);
                    // basic.get too, and a late top-priority message jumps
                    // the paged backlog.
                    publish_priorities(&ch, &q, &sent, durable).await;
                    let top = vec![("top".to_string(), Some(MAX))];
                    publish_priorities(&ch, &q, &top, durable).await;
                    let want_get = priority_order(&[sent.clone(), top].concat());
                    let got = bodies_only(drain(&conn, &q).await);
                    assert_eq!(got.len(), want_get.len());
                    assert!(got == want_get, "{q}: basic.get order differs");
                    let listing = ctl(&b, "list_queues");
                    assert_eq!(cell_num(&listing, &q, "messages_paged_out"), 0);
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_priority_queue_keeps_its_order_across_restarts() {
    if skip_if_external("it restarts a local warren") {
        return;
    }
    for shards in SHARD_COUNTS {
        for kill in [false, true] {
            for budget in [None, Some(BUDGET)] {
                let dir = temp_dir("warren-priority-");
                let args: Vec<&str> = budget.map_or(vec![], |b| vec!["--memory-budget", b]);
                let mut b = Broker::start_in_with(shards, dir.path(), &args);
                let queues: Vec<(String, Option<usize>)> = placements(&b)
                    .into_iter()
                    .map(|p| (unique_name(&format!("prio-restart-{p:?}")), p))
                    .collect();
                let n = if budget.is_some() { 2000 } else { 300 };
                let sent = series("d", n);
                let want = priority_order(&sent);
                within(async {
                    let conn = lapin_connect(&b).await;
                    let ch = confirm_channel(&conn).await;
                    for (q, p) in &queues {
                        declare_priority_queue(&ch, q, true, *p).await;
                        publish_priorities(&ch, q, &sent, true).await;
                        // The first 10 are handed out and left unacked: they
                        // come back redelivered.
                        let get = conn.create_channel().await.expect("channel.open");
                        for w in &want[..10] {
                            let m = get
                                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                                .await
                                .expect("basic.get")
                                .expect("a message");
                            assert_eq!(&String::from_utf8(m.delivery.data).unwrap(), w);
                        }
                        // A confirmed publish makes the deliveries durable too.
                        publish_priorities(&ch, q, &[("z".into(), None)], true).await;
                    }
                })
                .await;
                if kill {
                    b.kill();
                } else {
                    b.stop();
                }
                let b = Broker::start_in_with(shards, dir.path(), &args);
                within(async {
                    let conn = lapin_connect(&b).await;
                    for (q, _) in &queues {
                        let mut expected: Vec<(String, bool)> = want
                            .iter()
                            .enumerate()
                            .map(|(i, b)| (b.clone(), i < 10))
                            .collect();
                        expected.push(("z".into(), false));
                        assert_eq!(ready_count(&conn, q).await as usize, n + 1);
                        let got = consume_acked(&conn, q, n + 1).await;
                        assert!(
                            got == expected,
                            "{q} kill={kill} budget={budget:?}: order differs"
                        );
                    }
                })
                .await;
            }
        }
    }
}

/// A priority queue honours the other queue arguments: message TTL expires
/// messages in every level, and a length limit drops the message the queue
/// would deliver next (RabbitMQ's priority queue drops from its head too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_queues_expire_and_keep_their_length_limit() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        for p in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                // TTL: five messages over three levels all expire.
                let ttl_q = unique_name("prio-ttl");
                let mut args = priority_args(p);
                args.insert("x-message-ttl".into(), AMQPValue::LongInt(300));
                ch.queue_declare(ttl_q.as_str().into(), Default::default(), args)
                    .await
                    .expect("declare");
                for (i, prio) in [1u8, 5, 3, 5, 1].iter().enumerate() {
                    ch.basic_publish(
                        "".into(),
                        ttl_q.as_str().into(),
                        Default::default(),
                        format!("t{i}").as_bytes(),
                        BasicProperties::default().with_priority(*prio),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                }
                assert_eq!(ready_count(&conn, &ttl_q).await, 5);
                // Wait for the event (count 0), with a generous deadline.
                let mut expired = false;
                for _ in 0..200 {
                    if ready_count(&conn, &ttl_q).await == 0 {
                        expired = true;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                assert!(expired, "every level's messages expired");
                let got = ch
                    .basic_get(ttl_q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("get");
                assert!(got.is_none(), "an expired message was delivered");

                // Length limit: at most two messages stay.
                let max_q = unique_name("prio-max");
                let mut args = priority_args(p);
                args.insert("x-max-length".into(), AMQPValue::LongInt(2));
                ch.queue_declare(max_q.as_str().into(), Default::default(), args)
                    .await
                    .expect("declare");
                for (i, prio) in [1u8, 5, 3, 2].iter().enumerate() {
                    ch.basic_publish(
                        "".into(),
                        max_q.as_str().into(),
                        Default::default(),
                        format!("m{i}").as_bytes(),
                        BasicProperties::default().with_priority(*prio),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                }
                wait_ready(&conn, &max_q, 2).await;
                assert_eq!(ready_count(&conn, &max_q).await, 2);
            })
            .await;
        }
    }
}

/// A priority queue whose backlog is paged out (tiny `--memory-budget`)
/// applies message TTL and length limits to its paged levels too: expired
/// paged messages stop counting and are dead-lettered (or dropped unread
/// without a dead-letter exchange) without a consumer reading them, and
/// drop-head drops what the queue would deliver next (the highest level
/// first, as RabbitMQ's priority queue does), reading paged levels back to
/// find it. Against RabbitMQ the same (it pages nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_levels_expire_and_count_against_the_length_limit() {
    const N: usize = 600;
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", BUDGET]);
        for p in placements(&b) {
            within_secs(120, async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let dead = unique_name("prio-dead");
                declare_priority_queue(&ch, &dead, false, p.map(|p| (p + 1) % shards)).await;
                let declare = |name: String, extra: Vec<(&'static str, AMQPValue)>| {
                    let ch = ch.clone();
                    async move {
                        let mut args = priority_args(p);
                        for (k, v) in extra {
                            args.insert(k.into(), v);
                        }
                        ch.queue_declare(name.as_str().into(), Default::default(), args)
                            .await
                            .expect("declare");
                        name
                    }
                };
                let dlx = || {
                    vec![
                        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                        (
                            "x-dead-letter-routing-key",
                            AMQPValue::LongString(dead.as_str().into()),
                        ),
                    ]
                };
                // Message TTL, with and without a dead-letter exchange.
                let ttl = ("x-message-ttl", AMQPValue::LongInt(4000));
                let mut with_dlx = dlx();
                with_dlx.push(ttl.clone());
                let ttl_dlx = declare(unique_name("prio-ttl-dlx"), with_dlx).await;
                let ttl_plain = declare(unique_name("prio-ttl"), vec![ttl]).await;
                let sent = series("e", N);
                publish_priorities(&ch, &ttl_dlx, &sent, false).await;
                publish_priorities(&ch, &ttl_plain, &sent, false).await;
                if !b.is_external() {
                    let out = ctl(&b, "list_queues");
                    for q in [&ttl_dlx, &ttl_plain] {
                        assert!(cell_num(&out, q, "messages_paged_out") > 0, "{q}: {out}");
                    }
                }
                wait_ready_long(&conn, &ttl_plain, 0).await;
                wait_ready_long(&conn, &ttl_dlx, 0).await;
                wait_ready_long(&conn, &dead, N as u32).await;
                let mut got = bodies_only(drain(&conn, &dead).await);
                got.sort();
                let mut want: Vec<String> = sent.iter().map(|(b, _)| b.clone()).collect();
                want.sort();
                assert_eq!(got, want, "every expired message dead-lettered once");

                // A length limit of 100: the 100 the queue would deliver last
                // stay, the others are dead-lettered.
                let mut limited = dlx();
                limited.push(("x-max-length", AMQPValue::LongInt(100)));
                let max_q = declare(unique_name("prio-max-paged"), limited).await;
                let sent = series("l", N);
                publish_priorities(&ch, &max_q, &sent, false).await;
                wait_ready_long(&conn, &max_q, 100).await;
                wait_ready_long(&conn, &dead, (N - 100) as u32).await;
                let order = priority_order(&sent);
                assert_eq!(
                    bodies_only(drain(&conn, &max_q).await),
                    order[N - 100..].to_vec()
                );
                let mut got = bodies_only(drain(&conn, &dead).await);
                got.sort();
                let mut want = order[..N - 100].to_vec();
                want.sort();
                assert_eq!(got, want, "the dropped ones dead-lettered");
                for q in [&ttl_dlx, &ttl_plain, &max_q, &dead] {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
            })
            .await;
        }
    }
}

/// The same after a restart: a durable priority queue's paged levels,
/// recovered from the log (nothing read into memory), still expire
/// without a consumer, and a length-limited one keeps what the queue would
/// deliver last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_paged_levels_expire_and_keep_their_limit() {
    if skip_if_external("it restarts a local warren with a --memory-budget") {
        return;
    }
    const N: usize = 600;
    for shards in SHARD_COUNTS {
        let dir = temp_dir("warren-prio-restart-");
        let args = ["--memory-budget", BUDGET];
        let mut b = Broker::start_in_with(shards, dir.path(), &args);
        let p = last_shard(shards);
        let (ttl_q, max_q) = (unique_name("prio-ttl-r"), unique_name("prio-max-r"));
        let kept = within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let mut args = priority_args(p);
            args.insert("x-message-ttl".into(), AMQPValue::LongInt(8000));
            ch.queue_declare(ttl_q.as_str().into(), durable(), args)
                .await
                .expect("declare");
            let mut args = priority_args(p);
            args.insert("x-max-length".into(), AMQPValue::LongInt(100));
            ch.queue_declare(max_q.as_str().into(), durable(), args)
                .await
                .expect("declare");
            publish_priorities(&ch, &ttl_q, &series("e", N), true).await;
            let sent = series("l", N);
            publish_priorities(&ch, &max_q, &sent, true).await;
            wait_ready_long(&conn, &max_q, 100).await;
            let out = ctl(&b, "list_queues");
            assert!(cell_num(&out, &ttl_q, "messages_paged_out") > 0, "{out}");
            priority_order(&sent)[N - 100..].to_vec()
        })
        .await;
        b.stop();
        let b = Broker::start_in_with(shards, dir.path(), &args);
        within_secs(120, async {
            let conn = lapin_connect(&b).await;
            assert_eq!(ready_count(&conn, &max_q).await, 100);
            // Recovered paged, not read back: they expire all the same.
            wait_ready_long(&conn, &ttl_q, 0).await;
            assert_eq!(bodies_only(drain(&conn, &max_q).await), kept);
        })
        .await;
    }
}
