//! Memory during a flood: publishers filling a queue faster than the disk
//! takes paged-out messages are slowed down (the log's write window, then
//! TCP backpressure), so the broker's RSS stays within `--memory-budget`
//! plus a small constant however many messages arrive. Runs with 1 and 2
//! shards, the queue on each shard.

mod common;

use common::*;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::AMQPValue;
use lapin::BasicProperties;

/// The broker's budget in this test.
const BUDGET: u64 = 8 << 20;

/// What the broker may grow by over its RSS before the fill: the budget,
/// the log's write window and its DMA copy, socket buffers and allocator
/// slack (measured +8..40 MiB on a loaded 2-CPU machine, debug build, and
/// flat in the size of the fill: +26 MiB for 1 M and +27 MiB for 2 M in
/// release runs). Before the window was bounded by the budget, a fill of
/// 200 k grew the broker by 57 MiB and bigger fills by up to 64 MiB pending
/// per shard plus its copy (+100..165 MiB for 1 M..2 M).
const GROWTH_LIMIT: u64 = BUDGET + (56 << 20);

/// Messages and their size: 400 MiB in all, 50 times the budget, so that
/// an unbounded write window shows well over the limit.
const N: usize = 400_000;
const SIZE: usize = 1024;

/// Publisher confirms outstanding at most (as `loadgen`'s window).
const WINDOW: usize = 1000;

// Not part of the default run: a debug broker's RSS on a shared 2-CPU
// machine grew anywhere from +8 to +66 MiB for this fill (the 66 in a
// full `.ci/run`), so no limit both passes reliably and fails the old
// code. The bound is measured in release by loadgen's `ttl-1m-memory`
// scenario (`scripts/bench-features.sh`, BENCHMARKS.md); run this with
// `cargo test --test fill_memory -- --ignored`.
#[ignore = "RSS of a debug broker on a shared machine is too noisy for a fixed limit; see the comment"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_fill_of_a_ttl_queue_stays_within_the_memory_budget() {
    if skip_if_external("it sets a local warren's --memory-budget and reads its RSS") {
        return;
    }
    // A fresh broker per run: memory the allocator kept from an earlier
    // fill would hide growth.
    for (shards, placement) in [(1, None), (2, Some(0)), (2, Some(1))] {
        let budget = BUDGET.to_string();
        let b = Broker::start_with_args(shards, &["--memory-budget", &budget]);
        let pid = b.pid().expect("a local broker has a pid");
        {
            within_secs(300, async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name(&format!("fill-{placement:?}"));
                let mut args = lapin_placement_args(placement);
                // Long enough that nothing expires during the test.
                args.insert("x-message-ttl".into(), AMQPValue::LongUInt(600_000));
                ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), args)
                    .await
                    .expect("declare");
                let before = rss_bytes(pid);
                let sampler = RssSampler::start(pid);
                let body = vec![b'x'; SIZE];
                let mut pending = std::collections::VecDeque::with_capacity(WINDOW);
                for _ in 0..N {
                    let c = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            &body,
                            BasicProperties::default(),
                        )
                        .await
                        .expect("publish");
                    pending.push_back(c);
                    if pending.len() > WINDOW {
                        let c = pending.pop_front().expect("a confirm outstanding");
                        assert!(c.await.expect("confirm").is_ack(), "a publish was nacked");
                    }
                }
                for c in pending {
                    assert!(c.await.expect("confirm").is_ack(), "a publish was nacked");
                }
                let peak = sampler.peak();
                drop(sampler);
                assert_eq!(ready_count(&conn, &q).await as usize, N, "all queued");
                let growth = peak.saturating_sub(before);
                eprintln!(
                    "shards {shards}, queue on {placement:?}: RSS {} MiB before, peak {} MiB \
                     (+{} MiB) during the fill of {N} x {SIZE} B",
                    before >> 20,
                    peak >> 20,
                    growth >> 20
                );
                assert!(
                    growth <= GROWTH_LIMIT,
                    "RSS grew {} MiB during the fill, over the budget of {} MiB + 56 MiB",
                    growth >> 20,
                    BUDGET >> 20
                );
                ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .expect("delete");
            })
            .await;
        }
    }
}
