//! The log's segments: compaction of long-lived messages, large messages across segments, idle restarts, the data dir's shard count.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_message_does_not_pin_the_log() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    // One message stays unacked and one ready in a durable queue while
    // ~200 MiB of persistent traffic goes through another queue of the same
    // shard. Without compaction their first segment would stay, and with it
    // every later one (their dead records hold acks for older segments).
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        // Both queues on the last shard (with 2 shards, the connection may be
        // on the other one).
        let placement = last_shard(shards);
        let shard_dir = node
            .path()
            .join(format!("shard-{}", placement.unwrap_or(0)));
        let stuck = unique_name("stuck");
        let busy = unique_name("busy");
        let held = within_secs(180, async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &stuck, true, placement).await;
            declare_queue(&ch, &busy, true, placement).await;
            publish_ok(&ch, "", &stuck, "stuck-1", persistent()).await;
            publish_ok(&ch, "", &stuck, "stuck-2", persistent()).await;
            let holder = conn.create_channel().await.expect("channel.open");
            let got = holder
                .basic_get(stuck.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("basic.get")
                .expect("get-ok");
            assert_eq!(got.delivery.data, b"stuck-1");
            // Batches of 16: the acks of a segment's last messages land in the
            // next segment, so each segment holds kill-records for the one
            // before it.
            for batch in 0..13 {
                let mut confirms = Vec::new();
                for i in batch * 16..(batch + 1) * 16 {
                    let c = ch
                        .basic_publish(
                            "".into(),
                            busy.as_str().into(),
                            BasicPublishOptions::default(),
                            &big_body(i),
                            persistent(),
                        )
                        .await
                        .expect("publish");
                    confirms.push(c);
                }
                for c in confirms {
                    assert!(c.await.expect("confirm").is_ack());
                }
                for i in batch * 16..(batch + 1) * 16 {
                    let got = ch
                        .basic_get(busy.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert!(got.delivery.data == big_body(i), "body of big-{i}");
                }
            }
            let rolled = segment_files(&shard_dir);
            let last: u64 = rolled
                .last()
                .and_then(|p| p.file_stem()?.to_str()?.parse().ok())
                .expect("a segment");
            assert!(last >= 4, "the traffic rolled to segment 4: {rolled:?}");
            let reclaimed = eventually(30, || segment_files(&shard_dir).len() <= 2).await;
            assert!(
                reclaimed,
                "segments still on disk: {:?}",
                segment_files(&shard_dir)
            );
            barrier(&ch, placement).await;
            (conn, holder)
        })
        .await;
        node.restart(Down::Kill);
        drop(held);
        within(async {
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(
                drain(&conn, &stuck).await,
                vec![
                    ("stuck-1".to_string(), true),
                    ("stuck-2".to_string(), false)
                ],
                "the compacted messages survive, stuck-1 redelivered"
            );
            assert_eq!(
                ready_count(&conn, &busy).await,
                0,
                "nothing acked comes back"
            );
        })
        .await;
    }
}

/// A 1 MiB body starting with its name, the rest a pattern derived from `i`.
fn big_body(i: usize) -> Vec<u8> {
    let mut body = format!("big-{i}:").into_bytes();
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    while body.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body.push(x as u8);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_across_segments_survive_and_dead_segments_go() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    // 70 MiB of persistent messages: more than one 64 MiB segment.
    const N: usize = 70;
    const ACKED: usize = 66;
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let placement = last_shard(shards);
        let shard_dir = node
            .path()
            .join(format!("shard-{}", placement.unwrap_or(0)));
        let q = unique_name("big");
        let kept = within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, placement).await;
            let mut pending = Vec::new();
            for i in 0..N {
                let c = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &big_body(i),
                        persistent(),
                    )
                    .await
                    .expect("publish");
                pending.push(c);
            }
            for c in pending {
                assert!(c.await.expect("confirm").is_ack());
            }
            let segs = segment_files(&shard_dir);
            assert!(segs.len() >= 2, "70 MiB rolled over to a second segment");
            // Take and ack the first ACKED: every message of the first
            // segment dies.
            for i in 0..ACKED {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert!(got.delivery.data == big_body(i), "body of big-{i} intact");
                ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
            }
            barrier(&ch, placement).await;
            (conn, ch, segs[0].clone())
        })
        .await;
        let first = kept.2.clone();
        node.restart(Down::Kill);
        drop(kept);
        within(async {
            // The dead first segment is reclaimed (before the crash or at
            // recovery at the latest).
            let gone = eventually(10, || !first.exists()).await;
            assert!(gone, "dead segment {} still on disk", first.display());
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(ready_count(&conn, &q).await, (N - ACKED) as u32);
            let ch = conn.create_channel().await.expect("channel.open");
            for i in ACKED..N {
                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert!(
                    got.delivery.data == big_body(i),
                    "body of big-{i} intact after SIGKILL"
                );
                assert!(!got.delivery.redelivered, "big-{i} was never delivered");
            }
            assert_eq!(ready_count(&conn, &q).await, 0);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_restarts_do_not_pile_up_segments() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        let mut node = Node::start(shards);
        let q = unique_name("idle");
        let placement = last_shard(shards);
        within(async {
            let conn = lapin_connect(&node.broker).await;
            let ch = confirm_channel(&conn).await;
            declare_queue(&ch, &q, true, placement).await;
            publish_all(&ch, &q, &["kept".to_string()]).await;
        })
        .await;
        for i in 0..4 {
            node.restart(if i % 2 == 0 { Down::Term } else { Down::Kill });
        }
        within(async {
            let conn = lapin_connect(&node.broker).await;
            assert_eq!(drain(&conn, &q).await, fresh(&["kept".to_string()]));
        })
        .await;
        // Each start opens a fresh 64 MiB segment; the empty ones of earlier
        // runs must not accumulate (one holding "kept", the active one, and
        // at most one not yet reclaimed).
        for shard in 0..shards {
            let dir = node.path().join(format!("shard-{shard}"));
            let segs = segment_files(&dir);
            assert!(
                segs.len() <= 3,
                "{} segments in {} after 4 idle restarts: {segs:?}",
                segs.len(),
                dir.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_data_dir_of_another_shard_count() {
    if skip_if_external("it runs the warren binary on a data dir made for another shard count") {
        return;
    }
    let mut node = Node::start(2);
    within(async {
        let conn = lapin_connect(&node.broker).await;
        let ch = conn.create_channel().await.expect("channel.open");
        declare_queue(&ch, &unique_name("placed"), true, Some(1)).await;
    })
    .await;
    node.down(Down::Term);
    let (status, stderr) = Broker::run_to_exit(1, node.path(), &[], 20);
    assert!(
        !status.success(),
        "warren exited 0 on a 2-shard data dir with --shards 1: {stderr}"
    );
    assert!(
        stderr.contains("--shards 2"),
        "the error names the shard count to use: {stderr}"
    );
    // The data dir is intact: the right shard count still starts.
    node.broker = Broker::start_in(2, node.path());
}
