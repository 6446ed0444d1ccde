//! A purge takes ready messages only: messages delivered and not yet acked
//! when a durable queue is purged stay, also across a restart (SIGTERM and
//! SIGKILL), and come back redelivered; the purged ones (also one that was
//! returned to the queue before the purge) stay gone.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_keeps_unacked_messages_across_a_restart() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let mut queues = Vec::new();
            let sent = bodies("m", 0..10);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                // The consumers stay open (their messages unacked) until the
                // broker goes down.
                let mut held = Vec::new();
                for p in &placements {
                    let q = unique_name(&format!("purge-unacked-{p:?}"));
                    declare_queue(&ch, &q, true, *p).await;
                    publish_all(&ch, &q, &sent).await;
                    let cch = conn.create_channel().await.expect("channel");
                    cch.basic_qos(4, BasicQosOptions::default())
                        .await
                        .expect("qos");
                    let mut c = cch
                        .basic_consume(
                            q.as_str().into(),
                            "held".into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .expect("consume");
                    let mut got = Vec::new();
                    for _ in 0..4 {
                        let d = c.next().await.expect("stream").expect("delivery");
                        got.push(d);
                    }
                    // No more deliveries to it from here on.
                    cch.basic_cancel("held".into(), BasicCancelOptions::default())
                        .await
                        .expect("cancel");
                    // m3 goes back to the queue: ready again, so purged.
                    got.pop()
                        .expect("four")
                        .nack(lapin::options::BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await
                        .expect("nack");
                    let bodies: Vec<String> = got
                        .iter()
                        .map(|d| String::from_utf8(d.data.clone()).unwrap())
                        .collect();
                    assert_eq!(bodies, sent[..3].to_vec());
                    wait_ready(&conn, &q, 7).await;
                    let purged = ch
                        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                        .await
                        .expect("purge");
                    assert_eq!(purged, 7, "{q}: only the ready messages are purged");
                    // The purge record is on disk before the broker goes down.
                    barrier(&ch, *p).await;
                    held.push((cch, got));
                    queues.push(q);
                }
                std::mem::forget(held);
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    let got = drain(&conn, q).await;
                    let want: Vec<(String, bool)> =
                        sent[..3].iter().map(|b| (b.clone(), true)).collect();
                    assert_eq!(got, want, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}
