//! Compaction copies and recovery order (issue 14): messages whose records
//! compaction copied forward, some of them after newer originals of the
//! same queue, come back after SIGKILL exactly once each and in the order
//! they were published, with the segments of their originals gone.

use super::*;

/// Small segments, so a few hundred 16 KiB messages roll many of them.
const SMALL_SEGMENTS: &[(&str, &str)] = &[("WARREN_TEST_LOG_SEGMENT_SIZE", "1048576")];

/// Room for every message in memory (compaction copies only messages held
/// in memory), whatever the shard count.
const BIG_BUDGET: &[&str] = &["--memory-budget", "268435456"];

/// A 16 KiB body starting with `prefix-{i:05}:`.
fn body_16k(prefix: &str, i: usize) -> String {
    let mut b = format!("{prefix}-{i:05}:");
    while b.len() < 16 << 10 {
        b.push((b'a' + (i % 26) as u8) as char);
    }
    b
}

fn bodies_16k(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| body_16k(prefix, i)).collect()
}

/// The ids of the segment files in `dir`, ascending.
fn segment_ids(dir: &Path) -> Vec<u64> {
    segment_files(dir)
        .iter()
        .filter_map(|p| p.file_stem()?.to_str()?.parse().ok())
        .collect()
}

/// Rolls the log with dead traffic: 16 persistent 16 KiB messages (about a
/// quarter of a segment) to `filler`, confirmed, then purged.
async fn roll(ch: &Channel, filler: &str) {
    publish_confirmed(ch, filler, &bodies_16k("filler", 0..16), persistent()).await;
    ch.queue_purge(filler.into(), QueuePurgeOptions::default())
        .await
        .expect("purge filler");
}

/// Rolls until `done(segment ids)` holds; panics after two minutes.
async fn roll_until(
    ch: &Channel,
    filler: &str,
    dir: &Path,
    what: &str,
    done: impl Fn(&[u64]) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let ids = segment_ids(dir);
        if done(&ids) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: segments on disk {ids:?}"
        );
        roll(ch, filler).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_copies_come_back_once_and_in_order_after_sigkill() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start_with_env(shards, BIG_BUDGET, SMALL_SEGMENTS);
        let placement = last_shard(shards);
        let dir = node
            .path()
            .join(format!("shard-{}", placement.unwrap_or(0)));
        let q = unique_name("compacted");
        let filler = unique_name("filler");
        let held = within_secs(300, async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, placement).await;
            declare_queue(&ch, &filler, true, placement).await;
            // 800 messages over ~13 segments; the first 700 consumed and
            // acked leave 701..800 live in the last two (L-1 and L).
            publish_confirmed(&ch, &q, &bodies_16k("m", 1..801), persistent()).await;
            let last = *segment_ids(&dir).last().expect("a segment");
            let got = consume_acked(&conn, &q, 700).await;
            assert_eq!(bodies_only(got), bodies_16k("m", 1..701));
            // Roll to segment L+1 only: L-1 is compacted (its live messages
            // copied into L+1 before any newer message of the queue) and
            // goes, L is not yet a candidate (two segments behind).
            roll_until(&ch, &filler, &dir, "segment L+1", |ids| {
                ids.last().is_some_and(|&l| l > last)
            })
            .await;
            let gone =
                eventually(60, || segment_ids(&dir).first().is_some_and(|&f| f >= last)).await;
            assert!(
                gone,
                "segments before {last} still on disk: {:?}",
                segment_ids(&dir)
            );
            // Newer originals, then L's messages copied after them.
            publish_confirmed(&ch, &q, &bodies_16k("m", 801..851), persistent()).await;
            roll_until(&ch, &filler, &dir, "segment L compacted away", |ids| {
                ids.first().is_some_and(|&f| f > last)
            })
            .await;
            barrier(&ch, placement).await;
            conn
        })
        .await;
        node.restart(Down::Kill);
        drop(held);
        within_secs(120, async {
            let conn = lapin_connect(&node.broker).await;
            let got = bodies_only(drain(&conn, &q).await);
            let want = bodies_16k("m", 701..851);
            let names = |v: &[String]| -> Vec<String> {
                v.iter()
                    .map(|b| b.split(':').next().unwrap_or("").to_string())
                    .collect()
            };
            assert_eq!(
                names(&got),
                names(&want),
                "{shards} shard(s): every live message once, in publish order"
            );
            assert_eq!(got, want, "bodies intact");
        })
        .await;
    }
}
