//! Prefetch, cancel, no-ack, requeue order, publisher confirms.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_one_dispatches_fairly() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch1 = conn.create_channel().await.expect("channel");
                let ch2 = conn.create_channel().await.expect("channel");
                ch1.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                ch2.basic_qos(1, BasicQosOptions::default())
                    .await
                    .expect("qos");
                let q = declare(&ch1, "prefetch", placement).await;
                let mut slow = consume(&ch1, &q, "slow", false).await;
                let mut fast = consume(&ch2, &q, "fast", false).await;
                publish_all(&conn, &q, &["0", "1", "2", "3", "4", "5"]).await;
                // Each consumer holds one unacked message.
                let s0 = next(&mut slow).await;
                let f0 = next(&mut fast).await;
                assert_quiet(&mut slow, 200).await;
                assert_quiet(&mut fast, 1).await;
                assert_eq!(ready_count(&conn, &q).await, 4);
                // The fast one acks and gets the rest, one at a time.
                let mut fast_bodies = vec![body(&f0)];
                f0.acker.ack(BasicAckOptions::default()).await.expect("ack");
                for _ in 0..4 {
                    let d = next(&mut fast).await;
                    fast_bodies.push(body(&d));
                    d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                }
                assert_quiet(&mut slow, 100).await;
                let mut all = fast_bodies.clone();
                all.push(body(&s0));
                all.sort();
                assert_eq!(all, ["0", "1", "2", "3", "4", "5"]);
                s0.acker.ack(BasicAckOptions::default()).await.expect("ack");
                assert_quiet(&mut slow, 100).await;
                assert_eq!(ready_count(&conn, &q).await, 0);
                ch1.close(200, "".into()).await.expect("close");
                ch2.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_deliveries() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "cancel", placement).await;
                let mut c = consume(&ch, &q, "to-cancel", true).await;
                publish_all(&conn, &q, &["before"]).await;
                assert_eq!(body(&next(&mut c).await), "before");
                ch.basic_cancel("to-cancel".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                publish_all(&conn, &q, &["after1", "after2"]).await;
                // The stream ends (or stays silent) and the queue keeps them.
                if let Ok(Some(d)) =
                    tokio::time::timeout(Duration::from_millis(200), c.next()).await
                {
                    panic!("delivery after cancel: {d:?}");
                }
                assert_eq!(ready_count(&conn, &q).await, 2);
                // Cancelling an unknown tag is not an error (RabbitMQ).
                ch.basic_cancel("never-existed".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel unknown tag");
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_consumers_settle_on_delivery() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "noack", placement).await;
                let mut c = consume(&ch, &q, "", true).await;
                publish_all(&conn, &q, &["1", "2", "3"]).await;
                for expected in ["1", "2", "3"] {
                    let d = next(&mut c).await;
                    assert_eq!(body(&d), expected);
                    assert!(!d.redelivered);
                }
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0, "nothing requeued");
            }
        })
        .await;
    }
}

/// How the first consumer goes away in [`unacked_requeued_in_order`].
#[derive(Clone, Copy, Debug)]
enum Departure {
    ChannelClose,
    ConnectionClose,
    SocketDrop,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_requeued_in_order() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let observer = lapin_connect(&b).await;
            for placement in placements(&b) {
                for how in [
                    Departure::ChannelClose,
                    Departure::ConnectionClose,
                    Departure::SocketDrop,
                ] {
                    let ch = observer.create_channel().await.expect("channel");
                    let q = declare(&ch, "requeue", placement).await;
                    let bodies = ["r0", "r1", "r2", "r3", "r4"];
                    publish_all(&observer, &q, &bodies).await;

                    // The first consumer takes everything without acking.
                    match how {
                        Departure::SocketDrop => {
                            let addr = b.addr();
                            let qq = q.clone();
                            tokio::task::spawn_blocking(move || {
                                let (mut raw, _) = RawConn::open(&addr);
                                raw.channel_open(1);
                                raw.basic_consume(1, &qq, "raw");
                                for expected in bodies {
                                    let d = raw.read_delivery();
                                    assert_eq!(d.body, expected.as_bytes());
                                    assert!(!d.redelivered);
                                }
                                raw.drop_socket();
                            })
                            .await
                            .expect("raw consumer");
                        }
                        Departure::ChannelClose | Departure::ConnectionClose => {
                            let conn = lapin_connect(&b).await;
                            let cch = conn.create_channel().await.expect("channel");
                            let mut c = consume(&cch, &q, "first", false).await;
                            for expected in bodies {
                                let d = next(&mut c).await;
                                assert_eq!(body(&d), expected);
                            }
                            assert_eq!(ready_count(&observer, &q).await, 0);
                            match how {
                                Departure::ChannelClose => {
                                    cch.close(200, "".into()).await.expect("close")
                                }
                                _ => conn.close(200, "".into()).await.expect("close"),
                            }
                        }
                    }

                    // Another consumer receives them, in order, redelivered.
                    let mut second = consume(&ch, &q, "second", false).await;
                    for expected in bodies {
                        let d = next(&mut second).await;
                        assert_eq!(body(&d), expected, "{how:?}: original order");
                        assert!(d.redelivered, "{how:?}: redelivered flag");
                        d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                    }
                    ch.close(200, "".into()).await.expect("close");
                    assert_eq!(ready_count(&observer, &q).await, 0);
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_ack_every_publish() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "confirms", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm.select");
                let mut pending = Vec::new();
                for i in 0..100 {
                    let p = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            format!("{i}").as_bytes(),
                            BasicProperties::default(),
                        )
                        .await
                        .expect("publish");
                    pending.push(p);
                }
                for p in pending {
                    let c = p.await.expect("confirmation");
                    assert!(c.is_ack(), "{c:?}");
                }
                assert_eq!(ready_count(&conn, &q).await, 100);
                ch.close(200, "".into()).await.expect("close");
            }

            // amqprs: the acks (possibly coalesced with multiple) cover 1..=50.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            ach.confirm_select(amqprs::channel::ConfirmSelectArguments::new(false))
                .await
                .expect("confirm.select");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            for i in 0..50 {
                ach.basic_publish(
                    amqprs::BasicProperties::default(),
                    format!("{i}").into_bytes(),
                    amqprs::channel::BasicPublishArguments::new("", &q),
                )
                .await
                .expect("publish");
            }
            let acks = rec.acks.clone();
            let covered = move || {
                let acks = acks.lock().unwrap();
                let mut seen = [false; 51];
                let mut prev = 0u64;
                for &(tag, multiple) in acks.iter() {
                    assert!(tag > prev, "ack tags increase: {acks:?}");
                    assert!(tag <= 50, "ack for an unknown tag: {acks:?}");
                    let from = if multiple { prev + 1 } else { tag };
                    for t in from..=tag {
                        seen[t as usize] = true;
                    }
                    prev = tag;
                }
                seen[1..].iter().all(|s| *s)
            };
            assert!(eventually(10, covered).await, "all 50 publishes acked");
            aconn.close().await.expect("close");
        })
        .await;
    }
}
