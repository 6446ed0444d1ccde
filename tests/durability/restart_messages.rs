//! Messages across restarts: transient dropped, persistent kept in order, unacked redelivered, acked/rejected/purged/deleted gone, ids never reused, fan-out to durable queues.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_messages_are_dropped_persistent_ones_kept_in_order() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("mix-{p:?}")))
                .collect();
            let kept = bodies("p", 0..30);
            let props_queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("props-{p:?}")))
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in props_queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_ok(&ch, "", q, "props", rich_properties()).await;
                }
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    for (i, body) in kept.iter().enumerate() {
                        publish_ok(&ch, "", q, body, persistent()).await;
                        publish_ok(&ch, "", q, &format!("t1-{i}"), transient()).await;
                        publish_ok(&ch, "", q, &format!("t-{i}"), BasicProperties::default()).await;
                    }
                    wait_ready(&conn, q, 90).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&kept), "{q} after {how:?}");
                }
                let ch = conn.create_channel().await.expect("channel.open");
                for q in &props_queues {
                    let got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert_eq!(got.delivery.data, b"props");
                    assert_eq!(
                        got.delivery.properties,
                        rich_properties(),
                        "properties after {how:?}"
                    );
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_come_back_redelivered() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("unacked-{p:?}")))
                .collect();
            let all = bodies("m", 0..10);
            // The connection (and its unacked deliveries) stays open until
            // the broker goes down.
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for (q, p) in queues.iter().zip(&placements) {
                    let ch = confirm_channel(&conn).await;
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &all).await;
                    // m0..m3 to a consumer (prefetch 4), m4 by basic.get;
                    // none acked.
                    ch.basic_qos(4, BasicQosOptions::default())
                        .await
                        .expect("basic.qos");
                    let mut consumer = ch
                        .basic_consume(
                            q.as_str().into(),
                            "".into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                        .expect("basic.consume");
                    for want in &all[..4] {
                        let d = within_secs(10, consumer.next())
                            .await
                            .expect("consumer open")
                            .expect("delivery");
                        assert_eq!(&String::from_utf8(d.data).unwrap(), want);
                        assert!(!d.redelivered);
                    }
                    let got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                        .await
                        .expect("basic.get")
                        .expect("get-ok");
                    assert_eq!(got.delivery.data, all[4].as_bytes());
                    barrier(&ch, *p).await;
                    open.push((ch, consumer));
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let want: Vec<(String, bool)> = all
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (b.clone(), i < 5))
                    .collect();
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, want, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_and_rejected_messages_do_not_come_back_requeued_ones_do() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("acked-{p:?}")))
                .collect();
            let all = bodies("m", 0..10);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for (q, p) in queues.iter().zip(&placements) {
                    let ch = confirm_channel(&conn).await;
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &all).await;
                    // m0..m6 by basic.get: delivery tags 1..7.
                    for (i, want) in all[..7].iter().enumerate() {
                        let got = ch
                            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                            .await
                            .expect("basic.get")
                            .expect("get-ok");
                        assert_eq!(got.delivery.data, want.as_bytes());
                        assert_eq!(got.delivery.delivery_tag, i as u64 + 1);
                    }
                    // m1 alone, then m0, m2, m3 with multiple; m5 rejected
                    // without requeue; m6 rejected with requeue (back in the
                    // queue, delivered once); m4 stays unacked.
                    ch.basic_reject(7, BasicRejectOptions { requeue: true })
                        .await
                        .expect("reject with requeue");
                    ch.basic_ack(2, BasicAckOptions::default())
                        .await
                        .expect("ack");
                    ch.basic_ack(4, BasicAckOptions { multiple: true })
                        .await
                        .expect("ack multiple");
                    ch.basic_reject(6, BasicRejectOptions { requeue: false })
                        .await
                        .expect("reject");
                    barrier(&ch, *p).await;
                    open.push(ch);
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut want = vec![(all[4].clone(), true), (all[6].clone(), true)];
                want.extend(fresh(&all[7..]));
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, want, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_persists() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("purge-{p:?}")))
                .collect();
            let after = bodies("after", 0..2);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &bodies("before", 0..5)).await;
                    let n = ch
                        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                        .await
                        .expect("queue.purge");
                    assert_eq!(n, 5, "purge-ok count");
                    // Also the barrier for the purge record: same queue.
                    publish_all(&ch, q, &after).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&after), "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_delete_persists() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            // (deleted for good, deleted then redeclared)
            let queues: Vec<(String, String)> = placements
                .iter()
                .map(|p| {
                    (
                        unique_name(&format!("deleted-{p:?}")),
                        unique_name(&format!("redeclared-{p:?}")),
                    )
                })
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for ((gone, again), p) in queues.iter().zip(&placements) {
                    for q in [gone, again] {
                        declare_queue(&ch, q, true, *p).await;
                        publish_all(&ch, q, &bodies("old", 0..3)).await;
                        let n = ch
                            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                            .await
                            .expect("queue.delete");
                        assert_eq!(n, 3, "delete-ok count");
                    }
                    declare_queue(&ch, again, true, *p).await;
                    assert_eq!(ready_count(&conn, again).await, 0);
                    // Also the barrier for both deletions: same shard.
                    publish_all(&ch, again, &["new".to_string()]).await;
                }
            })
            .await;
            node.restart(how);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = conn.create_channel().await.expect("channel.open");
                for ((gone, again), p) in queues.iter().zip(&placements) {
                    assert_no_queue(&conn, gone).await;
                    let q = ch
                        .queue_declare(gone.as_str().into(), durable(), lapin_placement_args(*p))
                        .await
                        .expect("redeclare");
                    assert_eq!(q.message_count(), 0, "{gone} after {how:?}");
                    assert_eq!(
                        drain(&conn, again).await,
                        fresh(&["new".to_string()]),
                        "{again} after {how:?}"
                    );
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_are_not_reused_across_restarts() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            let placements = placements(&node.broker);
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("ids-{p:?}")))
                .collect();
            let a = bodies("a", 0..3);
            let b = bodies("b", 0..3);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    publish_all(&ch, q, &a).await;
                }
            })
            .await;
            node.restart(how);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut open = Vec::new();
                for q in &queues {
                    let ch = confirm_channel(&conn).await;
                    // Published after the restart: queued after a0..a2.
                    publish_all(&ch, q, &b).await;
                    assert_eq!(ready_count(&conn, q).await, 6);
                    // Ack a0 and a1 (kill records naming their ids; had b0
                    // and b1 been given the same ids they would die too).
                    for want in &a[..2] {
                        let got = ch
                            .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                            .await
                            .expect("basic.get")
                            .expect("get-ok");
                        assert_eq!(got.delivery.data, want.as_bytes());
                        ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                            .await
                            .expect("ack");
                    }
                    // The barrier: one more confirmed message, last in line.
                    publish_all(&ch, q, &["c".to_string()]).await;
                    open.push(ch);
                }
                (conn, open)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let mut want = vec![a[2].clone()];
                want.extend(b.iter().cloned());
                want.push("c".to_string());
                for q in &queues {
                    assert_eq!(drain(&conn, q).await, fresh(&want), "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_to_durable_queues_survives_restart() {
    if skip_if_external(NEEDS_LOCAL) {
        return;
    }
    for shards in SHARD_COUNTS {
        for how in DOWNS {
            let mut node = Node::start(shards);
            // Three queues: two on one shard, one on the other (when there
            // are two).
            let placements: Vec<Option<usize>> = if shards == 1 {
                vec![None, None, None]
            } else {
                vec![Some(0), Some(1), Some(0)]
            };
            let x = unique_name("fan");
            let queues: Vec<String> = placements
                .iter()
                .map(|p| unique_name(&format!("fan-{p:?}")))
                .collect();
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let ch = confirm_channel(&conn).await;
                ch.exchange_declare(
                    x.as_str().into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("declare fanout");
                for (q, p) in queues.iter().zip(&placements) {
                    declare_queue(&ch, q, true, *p).await;
                    ch.queue_bind(
                        q.as_str().into(),
                        x.as_str().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("bind");
                }
                publish_ok(&ch, &x, "", "fan-1", persistent()).await;
            })
            .await;
            node.restart(how);
            let kept = within(async {
                let conn = lapin_connect(&node.broker).await;
                for q in &queues {
                    assert_eq!(ready_count(&conn, q).await, 1, "{q} after {how:?}");
                }
                // Take the copy of the first queue only; the others keep
                // theirs (one record, three owners).
                let ch = confirm_channel(&conn).await;
                let got = ch
                    .basic_get(queues[0].as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("basic.get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"fan-1");
                assert!(!got.delivery.redelivered);
                ch.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .expect("ack");
                // A second fan-out message, also the barrier for the ack.
                publish_ok(&ch, &x, "", "fan-2", persistent()).await;
                (conn, ch)
            })
            .await;
            node.restart(how);
            drop(kept);
            within(async {
                let conn = lapin_connect(&node.broker).await;
                let two = fresh(&["fan-1".to_string(), "fan-2".to_string()]);
                assert_eq!(
                    drain(&conn, &queues[0]).await,
                    fresh(&["fan-2".to_string()]),
                    "{} after {how:?}",
                    queues[0]
                );
                for q in &queues[1..] {
                    assert_eq!(drain(&conn, q).await, two, "{q} after {how:?}");
                }
            })
            .await;
        }
    }
}
