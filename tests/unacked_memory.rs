//! Unacked messages count against the memory budget: a consumer with no
//! prefetch limit that never acks does not pull a paged backlog into
//! memory. It gets about its share of `--memory-budget` in unacked
//! messages, then nothing more (the paged tail is not read back for it),
//! while the broker's RSS stays bounded however large the backlog; once
//! it acks, delivery goes on, in order, to the end of the backlog. A
//! channel calling basic.get in ack mode without acking is held the same
//! way: past its share its gets answer get-empty (and nothing is read
//! back for them) until it acks.
//!
//! RabbitMQ differs: it keeps delivering to such a consumer (its answer is
//! the consumer timeout) and answers every get while messages are ready,
//! so these tests run against Warren only.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::time::{Duration, Instant};

/// The whole broker's budget: 1 MiB.
const BUDGET: u64 = 1 << 20;

/// Body size of the backlog's messages.
const BODY: usize = 8 << 10;

/// Messages in the backlog: about 96 MiB of bodies, ~96 times the budget.
const BACKLOG: usize = 12_000;

const NEEDS_LOCAL: &str = "it sets warren's --memory-budget and reads its RSS; RabbitMQ keeps \
     delivering to a consumer that never acks (its answer is the consumer timeout) and \
     answering basic.get";

/// Body `i` of the backlog: its index, padded to `BODY` bytes.
fn body(i: usize) -> String {
    let mut s = format!("{i:08}-");
    s.extend(std::iter::repeat_n('x', BODY - s.len()));
    s
}

fn index_of(data: &[u8]) -> usize {
    std::str::from_utf8(&data[..8])
        .expect("utf-8 index")
        .parse()
        .expect("index")
}

/// Declares `q` (on the last shard) and fills it with the backlog, which
/// ends up paged out.
async fn paged_backlog(b: &Broker, conn: &lapin::Connection, q: &str) {
    let ch = confirm_channel(conn).await;
    // With two shards the queue is on the last one, so the consumer is
    // usually on another shard than the queue.
    declare_queue(&ch, q, false, last_shard(b.shards())).await;
    for start in (0..BACKLOG).step_by(500) {
        let bodies: Vec<String> = (start..(start + 500).min(BACKLOG)).map(body).collect();
        publish_confirmed(&ch, q, &bodies, BasicProperties::default()).await;
    }
    let listing = ctl(b, "list_queues");
    let paged = cell_num(&listing, q, "messages_paged_out");
    assert!(
        paged > (BACKLOG as u64) * 9 / 10,
        "the backlog is paged out: {paged} of {BACKLOG}"
    );
}

/// A broker with the 1 MiB budget, and its pid.
fn budget_broker(shards: usize) -> (Broker, u32) {
    let budget = BUDGET.to_string();
    let b = Broker::start_with_args(shards, &["--memory-budget", &budget]);
    let pid = b.pid().expect("a local broker has a pid");
    (b, pid)
}

/// `who` (a consumer, a getting channel) holds `held` messages of the
/// backlog unacked: at most what fits its share of the budget (the room
/// left in its shard's budget, at least 128 KiB, plus the one that crosses
/// it), and the rest of the backlog stays ready.
fn assert_holds_its_share(b: &Broker, q: &str, held: usize, who: &str) {
    let most = (BUDGET / (BODY + 448) as u64) as usize + 2;
    assert!(
        held <= most,
        "{} shard(s): {who} that never acks got {held} messages ({} KiB); at most {most} fit \
         the budget",
        b.shards(),
        (held * (BODY + 448)) >> 10
    );
    let listing = ctl(b, "list_queues");
    assert_eq!(
        cell_num(&listing, q, "messages_unacknowledged"),
        held as u64,
        "unacked"
    );
    assert_eq!(
        cell_num(&listing, q, "messages_ready"),
        (BACKLOG - held) as u64,
        "the rest stays ready"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_never_acks_holds_about_the_budget_and_resumes_when_it_acks() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let (b, pid) = budget_broker(shards);
        within_secs(600, async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("never-acks");
            paged_backlog(&b, &conn, &q).await;
            let base = rss_bytes(pid);

            // A consumer without a prefetch limit that does not ack.
            let consumer_ch = conn.create_channel().await.expect("channel.open");
            let mut consumer = consumer_ch
                .basic_consume(
                    q.as_str().into(),
                    "hog".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consume");
            let sampler = RssSampler::start(pid);
            let mut got = Vec::new();
            // What it gets first, then for an observation window of 5 s:
            // without the bound it would pull the whole backlog in well
            // under that.
            let mut window_end: Option<Instant> = None;
            loop {
                let wait = match window_end {
                    None => Duration::from_secs(60),
                    Some(end) => end.saturating_duration_since(Instant::now()),
                };
                match tokio::time::timeout(wait, consumer.next()).await {
                    Ok(Some(d)) => got.push(d.expect("delivery")),
                    Ok(None) => panic!("consumer stream ended"),
                    Err(_) if window_end.is_none() => panic!("no delivery within 60 s"),
                    Err(_) => break,
                }
                if window_end.is_none() {
                    window_end = Some(Instant::now() + Duration::from_secs(5));
                }
                if got.len() >= BACKLOG {
                    break;
                }
            }
            let held = got.len();
            let per_message = (BODY + 448) as u64;
            assert_holds_its_share(&b, &q, held, "a consumer");
            let grown = sampler.peak().saturating_sub(base);
            eprintln!(
                "{shards} shard(s): the consumer holds {held} unacked ({} KiB); RSS {} MiB \
                 before it, peak growth {} KiB",
                (held as u64 * per_message) >> 10,
                base >> 20,
                grown >> 10
            );
            assert!(
                grown < 32 << 20,
                "{shards} shard(s): RSS grew by {} MiB while a consumer held {held} \
                 unacked messages of a {} MiB backlog",
                grown >> 20,
                (BACKLOG * BODY) >> 20
            );

            // It acks: delivery goes on, in order, to the end.
            let last = got.last().expect("some deliveries").delivery_tag;
            consumer_ch
                .basic_ack(last, BasicAckOptions { multiple: true })
                .await
                .expect("ack");
            let mut next = 0;
            for d in &got {
                assert_eq!(index_of(&d.data), next, "delivery order");
                next += 1;
            }
            while next < BACKLOG {
                let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
                    .await
                    .expect("delivery goes on once acked")
                    .expect("consumer stream")
                    .expect("delivery");
                assert_eq!(index_of(&d.data), next, "delivery order");
                assert!(!d.redelivered);
                next += 1;
                d.ack(BasicAckOptions::default()).await.expect("ack");
            }
            let peak = sampler.peak().saturating_sub(base);
            eprintln!(
                "{shards} shard(s): peak RSS growth {} KiB consuming the backlog",
                peak >> 10
            );
            assert!(
                peak < 32 << 20,
                "{shards} shard(s): RSS grew by {} MiB consuming the backlog",
                peak >> 20
            );
            let listing = ctl(&b, "list_queues");
            assert_eq!(cell_num(&listing, &q, "messages_ready"), 0);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_gets_without_acking_holds_about_the_budget_and_resumes_when_it_acks() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let (b, pid) = budget_broker(shards);
        within_secs(600, async {
            let conn = lapin_connect(&b).await;
            let q = unique_name("gets-never-ack");
            paged_backlog(&b, &conn, &q).await;
            let base = rss_bytes(pid);
            let sampler = RssSampler::start(pid);

            // basic.get in ack mode until get-empty, never acking: without
            // the bound every get would read the backlog further back in.
            let getter = conn.create_channel().await.expect("channel.open");
            let get = |ch: &lapin::Channel| {
                let ch = ch.clone();
                let q = q.clone();
                async move {
                    ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                        .await
                        .expect("basic.get")
                }
            };
            let mut got = Vec::new();
            while let Some(m) = get(&getter).await {
                got.push(m);
                assert!(got.len() < BACKLOG, "every get answered: no bound");
            }
            let held = got.len();
            assert!(held > 0, "a channel holding nothing may always get one");
            // Get-empty again, however often it asks: nothing is read back.
            for _ in 0..20 {
                assert!(get(&getter).await.is_none(), "still at its share");
            }
            assert_holds_its_share(&b, &q, held, "a channel");
            let grown = sampler.peak().saturating_sub(base);
            eprintln!(
                "{shards} shard(s): the getting channel holds {held} unacked; RSS {} MiB before \
                 it, peak growth {} KiB",
                base >> 20,
                grown >> 10
            );
            assert!(
                grown < 32 << 20,
                "{shards} shard(s): RSS grew by {} MiB while a channel held {held} unacked gets",
                grown >> 20
            );

            // Another channel holding nothing may still get one.
            let other = conn.create_channel().await.expect("channel.open");
            let one = get(&other).await.expect("another channel gets one");
            assert_eq!(index_of(&one.delivery.data), held, "in order");
            other
                .basic_reject(
                    one.delivery.delivery_tag,
                    BasicRejectOptions { requeue: true },
                )
                .await
                .expect("requeue");

            // It acks: its gets go on, in order, to the end of the backlog.
            for (i, m) in got.iter().enumerate() {
                assert_eq!(index_of(&m.delivery.data), i, "get order");
            }
            let last = got.last().expect("some gets").delivery.delivery_tag;
            getter
                .basic_ack(last, BasicAckOptions { multiple: true })
                .await
                .expect("ack");
            let mut next = held;
            while next < BACKLOG {
                let m = get(&getter).await.expect("gets go on once acked");
                assert_eq!(index_of(&m.delivery.data), next, "get order");
                next += 1;
                getter
                    .basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
            }
            assert!(get(&getter).await.is_none(), "all taken");
            let peak = sampler.peak().saturating_sub(base);
            eprintln!(
                "{shards} shard(s): peak RSS growth {} KiB getting the backlog",
                peak >> 10
            );
            assert!(
                peak < 32 << 20,
                "{shards} shard(s): RSS grew by {} MiB getting the backlog",
                peak >> 20
            );
            let listing = ctl(&b, "list_queues");
            assert_eq!(cell_num(&listing, &q, "messages_ready"), 0);
            assert_eq!(cell_num(&listing, &q, "messages_unacknowledged"), 0);
        })
        .await;
    }
}
