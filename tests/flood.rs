//! Memory under a hostile mix (issue 14): publishers flood a queue nobody
//! consumes, 100 consumers hold unacked messages and never ack, and
//! connections open and close all the while. The memory alarm blocks the
//! publishers (connection.blocked), RSS stays under the high watermark
//! plus a stated margin, and once the load stops and the queue goes, RSS
//! comes back near where it started. Runs with 1 and 2 shards.

mod common;

use common::*;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Memory kept for ready messages: large enough that a flood crosses the
/// watermark below before it pages.
const BUDGET: u64 = 64 << 20;
/// The high watermark, over the broker's RSS before the load.
const WATERMARK_OVER_BASELINE: u64 = 32 << 20;
/// The stated margin over the watermark: what is read and routed between
/// two samples of the alarm monitor and before the publishers' readers
/// stop (between read batches), plus allocator slack. Measured: +6 MiB
/// (1 shard) and +3 MiB (2 shards) on a loaded 2-CPU machine, debug build.
const MARGIN: u64 = 48 << 20;
/// "Near its baseline" once the load is gone: each shard hands its freed
/// memory back to the OS when it goes idle (`shard::ticker`). Measured
/// (debug build, loaded 2-CPU machine): back to 36-45 MiB from baselines
/// of 40-46 MiB within ~1 s; without the idle release the 2-shard broker
/// stayed 46 MiB over its baseline for ~39 s.
const SETTLED_OVER_BASELINE: u64 = 24 << 20;

const PUBLISHERS: usize = 4;
const HOLDERS: usize = 100;
const PREFETCH: u16 = 10;
const CHURNED: usize = 1000;
/// Churning tasks at once; CHURNED is a multiple of it.
const CHURNERS: usize = 4;
const _: () = assert!(CHURNED.is_multiple_of(CHURNERS));
const BODY: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_with_idle_holders_and_churning_connections_stays_bounded() {
    if skip_if_external("it sets a local warren's watermark and reads its RSS") {
        return;
    }
    for shards in [1, 2] {
        flood(shards).await;
    }
}

async fn flood(shards: usize) {
    let b = Broker::start_with_args(shards, &["--memory-budget", &BUDGET.to_string()]);
    let pid = b.pid().expect("a local broker has a pid");
    within_secs(600, async {
        // 100 consumers (10 connections x 10 channels) holding PREFETCH
        // unacked messages each, never acking.
        let setup = lapin_connect(&b).await;
        let sch = setup.create_channel().await.expect("channel");
        let held = unique_name("held");
        sch.queue_declare(held.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("declare held");
        let flood_q = unique_name("flood");
        sch.queue_declare(flood_q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("declare flood");
        let body = vec![b'h'; BODY];
        for _ in 0..HOLDERS * PREFETCH as usize {
            sch.basic_publish("".into(), held.as_str().into(), BasicPublishOptions::default(), &body, BasicProperties::default())
                .await
                .expect("publish held");
        }
        wait_ready(&setup, &held, (HOLDERS * PREFETCH as usize) as u32).await;
        let mut holders = Vec::new();
        let mut holder_conns = Vec::new();
        for c in 0..HOLDERS / 10 {
            let conn = lapin_connect(&b).await;
            for i in 0..10 {
                let ch = conn.create_channel().await.expect("channel");
                ch.basic_qos(PREFETCH, BasicQosOptions::default()).await.expect("qos");
                let consumer = ch
                    .basic_consume(
                        held.as_str().into(),
                        format!("holder-{c}-{i}").as_str().into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("consume");
                holders.push((ch, consumer));
            }
            holder_conns.push(conn);
        }
        eventually_unacked(&b, &held, (HOLDERS * PREFETCH as usize) as u64).await;

        let baseline = rss_bytes(pid);
        let watermark = baseline + WATERMARK_OVER_BASELINE;
        ctl_with(
            &b,
            &["set_vm_memory_high_watermark", "absolute", &watermark.to_string()],
        );
        let sampler = RssSampler::start(pid);

        // The flood, and the churn beside it.
        let stop = Arc::new(AtomicBool::new(false));
        let blocked_seen = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for p in 0..PUBLISHERS {
            let (uri, q, stop, blocked_seen) =
                (b.uri(), flood_q.clone(), stop.clone(), blocked_seen.clone());
            tasks.push(tokio::spawn(async move {
                let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
                    .await
                    .expect("publisher connect");
                let ch = conn.create_channel().await.expect("channel");
                let body = vec![b'f'; BODY];
                while !stop.load(Ordering::Relaxed) {
                    if conn.status().blocked() {
                        blocked_seen.fetch_or(1 << p, Ordering::Relaxed);
                    }
                    // A blocked publisher's publish waits on the socket:
                    // bound each so the loop sees `stop`.
                    let publish = ch.basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default(),
                    );
                    let waited = tokio::time::timeout(Duration::from_millis(200), publish)
                        .await
                        .is_err();
                    if waited && conn.status().blocked() {
                        blocked_seen.fetch_or(1 << p, Ordering::Relaxed);
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.close(200, "done".into())).await;
            }));
        }
        // CHURNED connections opened and closed, CHURNERS at a time (each
        // its share): one at a time is a chain of handshake round trips
        // that kept this test at two minutes; four at a time took it to 73 s.
        let churned_so_far = Arc::new(AtomicU64::new(0));
        let churners: Vec<_> = (0..CHURNERS)
            .map(|_| {
                let (uri, stop, count) = (b.uri(), stop.clone(), churned_so_far.clone());
                tokio::spawn(async move {
                    for _ in 0..CHURNED / CHURNERS {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let conn = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default())
                            .await
                            .expect("churn connect");
                        let _ = conn.close(200, "churn".into()).await;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Flood until every publisher has been blocked (or give up after
        // a deadline and let the assertion below say so).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while blocked_seen.load(Ordering::Relaxed) != (1 << PUBLISHERS) - 1
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for churner in churners {
            churner.await.expect("churn task");
        }
        let churned = churned_so_far.load(Ordering::Relaxed) as usize;
        stop.store(true, Ordering::Relaxed);
        let peak = sampler.peak();
        assert_eq!(
            blocked_seen.load(Ordering::Relaxed),
            (1 << PUBLISHERS) - 1,
            "shards {shards}: every publisher got connection.blocked (RSS peak {} MiB, watermark {} MiB)",
            peak >> 20,
            watermark >> 20
        );
        assert_eq!(churned, CHURNED, "shards {shards}: connections churned");
        assert!(
            peak < watermark + MARGIN,
            "shards {shards}: RSS peaked at {} MiB, over the watermark {} MiB + margin {} MiB",
            peak >> 20,
            watermark >> 20,
            MARGIN >> 20
        );

        eprintln!(
            "shards {shards}: baseline {} MiB, watermark {} MiB, peak {} MiB",
            baseline >> 20,
            watermark >> 20,
            peak >> 20
        );
        // The load stops: publishers, holders and the flooded queue go.
        // The setup connection published, so the alarm blocks it too (as
        // RabbitMQ's does): the queues are deleted with `warren ctl`.
        for t in tasks {
            t.await.expect("publisher task");
        }
        drop(holders);
        for conn in holder_conns {
            let _ = conn.close(200, "done".into()).await;
        }
        for q in [&flood_q, &held] {
            ctl_with(&b, &["delete_queue", q]);
        }
        let settled = baseline + SETTLED_OVER_BASELINE;
        let load_stopped = std::time::Instant::now();
        let mut now = rss_bytes(pid);
        for _ in 0..300 {
            if now < settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            now = rss_bytes(pid);
        }
        eprintln!(
            "shards {shards}: RSS {} MiB {:.1} s after the load",
            now >> 20,
            load_stopped.elapsed().as_secs_f64()
        );
        assert!(
            now < settled,
            "shards {shards}: RSS {} MiB 30 s after the load, baseline {} MiB",
            now >> 20,
            baseline >> 20
        );
    })
    .await;
}

/// Waits until `queue` lists `n` unacked messages.
async fn eventually_unacked(b: &Broker, queue: &str, n: u64) {
    for _ in 0..300 {
        let out = ctl(b, "list_queues");
        if cell_num(&out, queue, "messages_unacknowledged") == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{queue} never had {n} unacked messages");
}
