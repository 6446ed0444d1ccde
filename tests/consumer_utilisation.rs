//! `consumer_utilisation` (the fraction of time a queue could hand a
//! message to a consumer at once, RabbitMQ's moving average with a 1 s
//! half-life), with 1 and 2 shards: near 1.0 for a consumer that keeps up,
//! falling towards 0 for one whose prefetch is full while messages wait;
//! 0 without consumers. Read with `list_queues name
//! consumer_utilisation` (rabbitmqctl against an external RabbitMQ: the
//! same checks hold there) and, on Warren, in `/api/queues/{vhost}/{name}`
//! and `/metrics/per-object`.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;

/// The queue's `consumer_utilisation` as `list_queues` prints it (None:
/// empty, or the queue is not listed).
fn listed(b: &Broker, queue: &str) -> Option<f64> {
    let out = broker_ctl_output(
        b,
        &[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "consumer_utilisation",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (name, value) = l.split_once('\t')?;
        (name == queue).then(|| value.trim().parse().ok()).flatten()
    })
}

/// `/metrics/...`'s text (no auth, as Prometheus scrapes it).
fn metrics_text(b: &Broker, path: &str) -> String {
    let response = admin_request(
        &admin_addr(b),
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    );
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP head");
    body.to_string()
}

async fn consume(
    conn: &lapin::Connection,
    queue: &str,
    prefetch: u16,
) -> (lapin::Channel, lapin::Consumer) {
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("qos");
    let c = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (ch, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utilisation_is_one_for_a_consumer_keeping_up_and_falls_when_it_is_full() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within_secs(120, async {
            let conn = lapin_connect(&b).await;
            let ch = confirm_channel(&conn).await;
            let keeping = unique_name("util-keep");
            let full = unique_name("util-full");
            declare_queue(&ch, &keeping, false, None).await;
            declare_queue(&ch, &full, false, None).await;
            assert_eq!(listed(&b, &keeping), Some(0.0), "no consumers: 0");

            // A consumer that acks everything as it comes.
            let (kch, mut kc) = consume(&conn, &keeping, 50).await;
            let acker = tokio::spawn(async move {
                while let Some(Ok(d)) = kc.next().await {
                    if kch
                        .basic_ack(d.delivery_tag, BasicAckOptions::default())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
            // One with prefetch 1 that never acks: 19 messages wait.
            let (_fch, _fc) = consume(&conn, &full, 1).await;
            for round in 0..4 {
                let bodies = padded_bodies(&format!("k{round}"), 25);
                publish_confirmed(&ch, &keeping, &bodies, Default::default()).await;
            }
            publish_confirmed(&ch, &full, &padded_bodies("f", 20), Default::default()).await;

            assert!(
                eventually(30, || listed(&b, &keeping).is_some_and(|u| u >= 0.9)).await,
                "keeping up: {:?}",
                listed(&b, &keeping)
            );
            assert!(
                eventually(30, || listed(&b, &full).is_some_and(|u| u < 0.5)).await,
                "prefetch full: {:?}",
                listed(&b, &full)
            );
            if !b.is_external() {
                let api = |q: &str| api_get(&b, &format!("/api/queues/%2F/{q}"));
                assert!(api(&keeping)["consumer_utilisation"].as_f64().unwrap() >= 0.9);
                assert!(api(&full)["consumer_utilisation"].as_f64().unwrap() < 0.5);
                let metrics = metrics_text(&b, "/metrics/per-object");
                let line = metrics
                    .lines()
                    .find(|l| {
                        l.starts_with("rabbitmq_queue_consumer_utilisation{")
                            && l.contains(&format!("queue=\"{keeping}\""))
                    })
                    .unwrap_or_else(|| panic!("no utilisation of {keeping}"));
                let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                assert!(value >= 0.9, "{line}");
            }
            let _ = conn.close(200, "".into()).await;
            acker.abort();
        })
        .await;
    }
}
