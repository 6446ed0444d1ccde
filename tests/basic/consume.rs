//! Consumers: exclusive, round-robin, nack/reject, ack multiple, unknown delivery tags.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_consumer_refuses_others() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = declare(&ch, "excl-consumer", None).await;
            let _exclusive = ch
                .basic_consume(
                    q.as_str().into(),
                    "owner".into(),
                    BasicConsumeOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("exclusive consume");
            let ch2 = conn.create_channel().await.expect("channel");
            let r = ch2
                .basic_consume(
                    q.as_str().into(),
                    "second".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(
                r,
                403,
                &format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"),
            );

            // An exclusive consume on a queue that has a consumer is refused too.
            let q2 = declare(&ch, "excl-consumer2", None).await;
            let _plain = consume(&ch, &q2, "plain", false).await;
            let ch3 = conn.create_channel().await.expect("channel");
            let r = ch3
                .basic_consume(
                    q2.as_str().into(),
                    "wants-exclusive".into(),
                    BasicConsumeOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            assert_lapin_error(
                r,
                403,
                &format!("ACCESS_REFUSED - queue '{q2}' in vhost '/' in exclusive use"),
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_share_round_robin() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch1 = conn.create_channel().await.expect("channel");
                let ch2 = conn.create_channel().await.expect("channel");
                let q = declare(&ch1, "rr", placement).await;
                let mut c1 = consume(&ch1, &q, "c1", true).await;
                let mut c2 = consume(&ch2, &q, "c2", true).await;
                let bodies: Vec<String> = (0..10).map(|i| format!("{i}")).collect();
                let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
                publish_all(&conn, &q, &refs).await;
                let mut got1 = Vec::new();
                let mut got2 = Vec::new();
                for _ in 0..5 {
                    got1.push(body(&next(&mut c1).await));
                    got2.push(body(&next(&mut c2).await));
                }
                got1.sort();
                got2.sort();
                let (evens, odds): (Vec<String>, Vec<String>) = bodies
                    .iter()
                    .cloned()
                    .partition(|b| b.parse::<u32>().unwrap() % 2 == 0);
                assert!(
                    (got1 == evens && got2 == odds) || (got1 == odds && got2 == evens),
                    "strict alternation: c1 {got1:?}, c2 {got2:?}"
                );
                assert_quiet(&mut c1, 100).await;
                ch1.close(200, "".into()).await.expect("close");
                ch2.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_reject_requeue_and_discard() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "nack", placement).await;
                publish_all(&conn, &q, &["a", "b", "c", "d"]).await;
                let mut c = consume(&ch, &q, "c", false).await;
                let a = next(&mut c).await;
                let bb = next(&mut c).await;
                let cc = next(&mut c).await;
                let d = next(&mut c).await;
                assert_eq!(
                    [body(&a), body(&bb), body(&cc), body(&d)],
                    ["a", "b", "c", "d"].map(String::from)
                );
                // reject without requeue: dropped
                a.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .expect("reject");
                // nack without requeue: dropped
                bb.acker
                    .nack(BasicNackOptions {
                        requeue: false,
                        multiple: false,
                    })
                    .await
                    .expect("nack");
                // reject with requeue: redelivered
                cc.acker
                    .reject(BasicRejectOptions { requeue: true })
                    .await
                    .expect("reject");
                let again = next(&mut c).await;
                assert_eq!(body(&again), "c");
                assert!(again.redelivered, "requeued message is redelivered");
                assert_eq!(again.delivery_tag, 5, "a new delivery tag");
                // nack with requeue: redelivered
                d.acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await
                    .expect("nack");
                let again_d = next(&mut c).await;
                assert_eq!(body(&again_d), "d");
                assert!(again_d.redelivered);
                // nack multiple with requeue covers both outstanding.
                ch.basic_nack(
                    again_d.delivery_tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .expect("nack multiple");
                let mut redelivered: Vec<String> = Vec::new();
                for _ in 0..2 {
                    let m = next(&mut c).await;
                    assert!(m.redelivered);
                    redelivered.push(body(&m));
                }
                redelivered.sort();
                assert_eq!(redelivered, ["c", "d"]);
                // ack multiple up to the last one settles everything.
                let last = 8;
                ch.basic_ack(last, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack multiple");
                ch.basic_cancel("c".into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0, "a and b were discarded");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_multiple() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "ackmulti", placement).await;
                publish_all(&conn, &q, &["1", "2", "3", "4", "5"]).await;
                let mut c = consume(&ch, &q, "c", false).await;
                let mut tags = Vec::new();
                for _ in 0..5 {
                    tags.push(next(&mut c).await.delivery_tag);
                }
                assert_eq!(tags, [1, 2, 3, 4, 5]);
                ch.basic_ack(3, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack 1..=3");
                // 4 and 5 are still unacked: recover requeues just those.
                ch.basic_recover(BasicRecoverOptions { requeue: true })
                    .await
                    .expect("recover");
                let mut back = Vec::new();
                for _ in 0..2 {
                    let d = next(&mut c).await;
                    assert!(d.redelivered);
                    back.push(body(&d));
                }
                back.sort();
                assert_eq!(back, ["4", "5"]);
                ch.basic_ack(0, BasicAckOptions { multiple: true })
                    .await
                    .expect("ack all");
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }
        })
        .await;
    }
}

/// Acks an unknown tag on a raw connection and returns the channel.close
/// the server answers with (a client library may already have marked the
/// channel closing before its next call, hiding the reason).
fn raw_ack_unknown_tag(b: &Broker, ack_tag: u64, ack_first: bool) -> (u16, String) {
    let (mut c, tune) = RawConn::open(&b.addr());
    c.channel_open(1);
    let (q, _, _) = c.queue_declare(1, &unique_name("badtag"));
    c.basic_publish(1, "", &q, b"x", tune.frame_max);
    c.basic_consume(1, &q, "t");
    let d = c.read_delivery();
    assert_eq!(d.delivery_tag, 1);
    let ack = |tag: u64| Args::new().longlong(tag).bits(&[false]).done();
    if ack_first {
        c.send_method(1, 60, 80, &ack(d.delivery_tag));
    }
    c.send_method(1, 60, 80, &ack(ack_tag));
    let m = c.expect_method();
    assert_eq!(
        (m.class, m.method),
        (20, 40),
        "channel.close expected: {m:?}"
    );
    m.close_reason()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_delivery_tag_closes_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        let (code, text) = raw_ack_unknown_tag(&b, 99, false);
        assert_eq!(code, 406);
        assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 99");
        // Double ack is an unknown tag too.
        let (code, text) = raw_ack_unknown_tag(&b, 1, true);
        assert_eq!(code, 406);
        assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 1");
        // The closed channel's unacked message went back to its queue and
        // reaches another consumer, redelivered.
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            let q = declare(&ch, "badtag-requeue", None).await;
            publish_all(&conn, &q, &["x"]).await;
            let ch2 = conn.create_channel().await.expect("channel");
            let got = ch2
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .expect("get")
                .expect("get-ok");
            assert!(!got.delivery.redelivered);
            ch2.basic_ack(99, BasicAckOptions::default())
                .await
                .expect("ack is async");
            wait_ready(&conn, &q, 1).await;
            let got = ch
                .basic_get(q.as_str().into(), BasicGetOptions::default())
                .await
                .expect("get")
                .expect("get-ok");
            assert!(got.delivery.redelivered);
        })
        .await;
    }
}
