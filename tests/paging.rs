//! A queue is bounded by disk, not memory: with a small `--memory-budget`,
//! a backlog pages out to the log (transient and persistent messages,
//! durable and non-durable queues) and comes back in order for consumers
//! and basic.get; `warren ctl list_queues` shows what is paged out; paged
//! persistent messages survive SIGTERM and SIGKILL restarts with their
//! redelivered flags, paged transient ones do not; purge drops the paged
//! part for good; segments full of paged copies are deleted once consumed;
//! and a large backlog leaves the broker's RSS small. Each test runs with 1
//! and 2 shards and with the queue on each shard.

mod common;

use common::*;
use lapin::options::{BasicGetOptions, QueuePurgeOptions};
use lapin::BasicProperties;
use std::path::Path;

/// Small enough that a few hundred messages page out.
const BUDGET: &str = "65536";

/// Why these tests skip against an external broker.
const NEEDS_LOCAL: &str =
    "it sets a local warren's --memory-budget and reads `warren ctl`, its data dir or its RSS";

/// A broker with the small budget on a data dir that outlives restarts.
fn paging_broker_on_disk(shards: usize) -> (tempfile::TempDir, Broker) {
    let dir = temp_dir("warren-paging-");
    let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
    (dir, b)
}

/// One queue name per placement (each shard, or the hash placement).
fn queue_per_placement(b: &Broker, prefix: &str) -> Vec<(String, Option<usize>)> {
    placements(b)
        .into_iter()
        .map(|p| (unique_name(&format!("{prefix}-{p:?}")), p))
        .collect()
}

/// (ready, ready in RAM, paged out) of `queue` from `warren ctl list_queues`.
fn listed(b: &Broker, queue: &str) -> (u64, u64, u64) {
    let out = ctl(b, "list_queues");
    let num = |column: &str| cell_num(&out, queue, column);
    (
        num("messages_ready"),
        num("messages_ready_ram"),
        num("messages_paged_out"),
    )
}

/// (paged_out, paged_in) of the `total` row of `warren ctl status` counters.
fn paged_counters(b: &Broker) -> (u64, u64) {
    let out = ctl(b, "status");
    (
        cell_num(&out, "total", "paged_out"),
        cell_num(&out, "total", "paged_in"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_budget_pages_out_and_comes_back_in_order() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", BUDGET]);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                // A non-durable queue (transient copies page as Paged
                // records) and a durable one with persistent messages.
                for (durable, props) in [(false, BasicProperties::default()), (true, persistent())]
                {
                    let q = unique_name(&format!("page-{durable}-{placement:?}"));
                    declare_queue(&ch, &q, durable, placement).await;
                    let sent = padded_bodies("a", 3000);
                    publish_confirmed(&ch, &q, &sent, props.clone()).await;
                    let (ready, ram, paged) = listed(&b, &q);
                    assert_eq!(ready, 3000, "{q}");
                    assert_eq!(ram + paged, 3000, "{q}");
                    assert!(paged >= 2000, "{q}: only {paged} of 3000 paged out");
                    // Consumers get everything, in order, while more arrives.
                    let more = padded_bodies("b", 1000);
                    let (got, ()) = tokio::join!(consume_acked(&conn, &q, 4000), async {
                        publish_confirmed(&ch, &q, &more, props.clone()).await
                    });
                    let mut want = fresh(&sent);
                    want.extend(fresh(&more));
                    assert_eq!(got.len(), want.len());
                    assert!(got == want, "{q}: order or content differs");
                    assert_eq!(listed(&b, &q), (0, 0, 0), "{q}");
                    // The live counters saw every paged copy come back.
                    let (out, back) = paged_counters(&b);
                    assert!(out >= 2000, "paged_out {out}");
                    assert_eq!(out, back, "paged_out vs paged_in");
                    // Fully drained: new messages live in memory again.
                    publish_confirmed(&ch, &q, &padded_bodies("c", 3), props.clone()).await;
                    assert_eq!(listed(&b, &q), (3, 3, 0), "{q}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_reads_paged_messages_back() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let b = Broker::start_with_args(shards, &["--memory-budget", BUDGET]);
        for placement in placements(&b) {
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                let q = unique_name(&format!("get-{placement:?}"));
                declare_queue(&ch, &q, false, placement).await;
                let sent = padded_bodies("g", 2500);
                publish_confirmed(&ch, &q, &sent, BasicProperties::default()).await;
                assert!(listed(&b, &q).2 > 0, "nothing paged out");
                assert_eq!(drain(&conn, &q).await, fresh(&sent));
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_persistent_messages_survive_restarts_transient_ones_do_not() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for kill in [false, true] {
            let (dir, mut b) = paging_broker_on_disk(shards);
            let queues = queue_per_placement(&b, "keep");
            let kept = padded_bodies("p", 2000);
            within(async {
                let conn = lapin_connect(&b).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in &queues {
                    declare_queue(&ch, q, true, *p).await;
                    // Interleave transient messages that must not survive.
                    for chunk in kept.chunks(500) {
                        publish_confirmed(&ch, q, chunk, persistent()).await;
                        publish_confirmed(
                            &ch,
                            q,
                            &padded_bodies("t", 100),
                            BasicProperties::default(),
                        )
                        .await;
                    }
                    assert!(listed(&b, q).2 > 1000, "{q}: not paged");
                    // Take 30 without acking: they come back redelivered.
                    let ch2 = conn.create_channel().await.expect("channel.open");
                    for want in &kept[..30] {
                        let m = ch2
                            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                            .await
                            .expect("basic.get")
                            .expect("a message");
                        assert_eq!(&String::from_utf8(m.delivery.data).unwrap(), want);
                    }
                    // The next confirmed persistent publish on this shard makes
                    // the delivered records durable (same log, appended before).
                    publish_confirmed(&ch, q, &padded_bodies("z", 1), persistent()).await;
                }
            })
            .await;
            if kill {
                b.kill();
            } else {
                b.stop();
            }
            let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
            within(async {
                let conn = lapin_connect(&b).await;
                for (q, _) in &queues {
                    let mut want: Vec<(String, bool)> =
                        kept.iter().map(|s| (s.clone(), false)).collect();
                    for w in &mut want[..30] {
                        w.1 = true;
                    }
                    want.push((padded_body("z", 0), false));
                    assert_eq!(listed(&b, q).0, want.len() as u64, "{q} kill={kill}");
                    let got = consume_acked(&conn, q, want.len()).await;
                    assert!(
                        got == want,
                        "{q} kill={kill}: order, content or flags differ"
                    );
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_drops_paged_messages_for_good() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let (dir, mut b) = paging_broker_on_disk(shards);
        let queues = queue_per_placement(&b, "purge");
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            for (q, p) in &queues {
                declare_queue(&ch, q, true, *p).await;
                publish_confirmed(&ch, q, &padded_bodies("x", 2000), persistent()).await;
                assert!(listed(&b, q).2 > 0);
                let n = ch
                    .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                    .await
                    .expect("purge");
                assert_eq!(n, 2000);
                assert_eq!(listed(&b, q), (0, 0, 0));
                // A confirmed publish after the purge makes its record durable.
                publish_confirmed(&ch, q, &padded_bodies("after", 1), persistent()).await;
            }
        })
        .await;
        b.kill();
        let b = Broker::start_in_with(shards, dir.path(), &["--memory-budget", BUDGET]);
        within(async {
            let conn = lapin_connect(&b).await;
            for (q, _) in &queues {
                assert_eq!(
                    drain(&conn, q).await,
                    fresh(&padded_bodies("after", 1)),
                    "{q}"
                );
            }
        })
        .await;
    }
}

fn segment_count(dir: &Path) -> usize {
    let mut n = 0;
    for shard in std::fs::read_dir(dir).expect("data dir") {
        let shard = shard.expect("entry").path();
        if !shard.is_dir() {
            continue;
        }
        n += std::fs::read_dir(&shard)
            .expect("shard dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            })
            .count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_consumed_paged_messages_are_deleted() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    let dir = temp_dir("warren-paging-");
    let b = Broker::start_in_with(1, dir.path(), &["--memory-budget", "1048576"]);
    let before = segment_count(dir.path());
    within_secs(120, async {
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        let q = unique_name("roll");
        declare_queue(&ch, &q, false, None).await;
        // 96 MiB of transient messages: more than one 64 MiB segment.
        let big = "y".repeat(256 << 10);
        let sent: Vec<String> = (0..384).map(|i| format!("{i:04}{big}")).collect();
        for chunk in sent.chunks(32) {
            publish_confirmed(&ch, &q, chunk, BasicProperties::default()).await;
        }
        assert!(listed(&b, &q).2 > 300, "not paged");
        assert!(segment_count(dir.path()) > before, "no segment rolled");
        let got = consume_acked(&conn, &q, sent.len()).await;
        assert!(got == fresh(&sent), "order or content differs");
        let gone = eventually(30, || segment_count(dir.path()) <= before).await;
        assert!(
            gone,
            "{} segments left after consuming every paged message (started with {before})",
            segment_count(dir.path())
        );
    })
    .await;
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_keeps_memory_small() {
    // The default budget. Held in memory, 200 000 messages of 100 bytes
    // would take over 100 MB (about 550 bytes each); paged, RSS stays small.
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    let b = Broker::start(1);
    let pid = b.pid().expect("a local broker has a pid");
    let n = 200_000usize;
    within_secs(120, async {
        let conn = lapin_connect(&b).await;
        let ch = confirm_channel(&conn).await;
        let q = unique_name("backlog");
        declare_queue(&ch, &q, false, None).await;
        let mut i = 0;
        while i < n {
            let chunk: Vec<String> = (i..(i + 5000).min(n))
                .map(|j| padded_body("m", j))
                .collect();
            publish_confirmed(&ch, &q, &chunk, BasicProperties::default()).await;
            i += chunk.len();
        }
        let (ready, ram, paged) = listed(&b, &q);
        assert_eq!(ready, n as u64);
        assert!(paged > 150_000, "only {paged} paged out ({ram} in memory)");
        let used = rss(pid);
        assert!(
            used < 80 << 20,
            "RSS {} MiB with {n} queued messages",
            used >> 20
        );
        // The head is intact; the rest goes with a purge.
        let ch2 = conn.create_channel().await.expect("channel.open");
        for j in 0..100 {
            let m = ch2
                .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
                .expect("a message");
            assert_eq!(
                String::from_utf8(m.delivery.data).unwrap(),
                padded_body("m", j)
            );
        }
        let purged = ch2
            .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
            .await
            .expect("purge");
        assert_eq!(purged as usize, n - 100);
    })
    .await;
}
