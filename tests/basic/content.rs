//! Message content: large bodies, every property, the channel-wide prefetch.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_arrive_intact() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let big: Vec<u8> = (0..(1024 * 1024 + 17)).map(|i| (i % 251) as u8).collect();
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "big", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm");
                // lapin splits the body by the negotiated frame_max (128 KiB).
                let c = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &big,
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(c.is_ack());
                // A raw client splits it into small frames.
                let addr = b.addr();
                let (qq, bb) = (q.clone(), big.clone());
                tokio::task::spawn_blocking(move || {
                    let (mut raw, _) = RawConn::open(&addr);
                    raw.channel_open(1);
                    raw.basic_publish(1, "", &qq, &bb, 4096);
                    // A round trip so the publish is processed before we go.
                    raw.queue_declare(1, &qq);
                    raw.drop_socket();
                })
                .await
                .expect("raw publisher");
                let empty = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        b"",
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                assert!(empty.is_ack());
                let mut c = consume(&ch, &q, "", true).await;
                assert!(next(&mut c).await.data == big, "lapin-published body");
                assert!(next(&mut c).await.data == big, "raw-published body");
                assert!(next(&mut c).await.data.is_empty(), "empty body");
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_properties_round_trip() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let mut headers = FieldTable::default();
            headers.insert("string".into(), AMQPValue::LongString("value".into()));
            headers.insert("int".into(), AMQPValue::LongInt(-42));
            headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
            headers.insert("bool".into(), AMQPValue::Boolean(true));
            headers.insert("double".into(), AMQPValue::Double(2.5));
            headers.insert("timestamp".into(), AMQPValue::Timestamp(1_700_000_000));
            headers.insert("void".into(), AMQPValue::Void);
            let mut nested = FieldTable::default();
            nested.insert("inner".into(), AMQPValue::ShortInt(7));
            headers.insert("table".into(), AMQPValue::FieldTable(nested));
            headers.insert(
                "array".into(),
                AMQPValue::FieldArray(FieldArray::from(vec![
                    AMQPValue::LongInt(1),
                    AMQPValue::LongString("two".into()),
                ])),
            );
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("gzip".into())
                .with_headers(headers)
                .with_delivery_mode(2)
                .with_priority(5)
                .with_correlation_id("corr-1".into())
                .with_reply_to("reply-queue".into())
                .with_expiration("600000".into())
                .with_message_id("msg-1".into())
                .with_timestamp(1_700_000_123)
                .with_type("order.created".into())
                .with_user_id("guest".into())
                .with_app_id("warren-tests".into())
                .with_cluster_id("cluster-x".into());
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "props", placement).await;
                ch.confirm_select(Default::default())
                    .await
                    .expect("confirm");
                for p in [props.clone(), BasicProperties::default()] {
                    let c = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            b"{}",
                            p,
                        )
                        .await
                        .expect("publish")
                        .await
                        .expect("confirm");
                    assert!(c.is_ack());
                }
                let mut c = consume(&ch, &q, "", true).await;
                let d = next(&mut c).await;
                assert_eq!(d.properties, props, "every property unchanged");
                let d = next(&mut c).await;
                assert_eq!(d.properties, BasicProperties::default(), "no properties");
                // basic.get returns them too.
                ch.basic_cancel(c.tag().as_str().into(), BasicCancelOptions::default())
                    .await
                    .expect("cancel");
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    b"again",
                    props.clone(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
                let mut got = None;
                for _ in 0..100 {
                    got = ch
                        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .expect("get");
                    if got.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let got = got.expect("get-ok");
                assert_eq!(got.delivery.data, b"again");
                assert_eq!(got.delivery.properties, props);
                ch.close(200, "".into()).await.expect("close");
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_prefetch_limits_the_whole_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            // Two queues (on different shards when there are two).
            let placements = placements(&b);
            let qa = declare(&ch, "global-a", placements[0]).await;
            let qb = declare(&ch, "global-b", *placements.last().unwrap()).await;
            publish_all(&conn, &qa, &["a1", "a2", "a3"]).await;
            publish_all(&conn, &qb, &["b1", "b2", "b3"]).await;
            ch.basic_qos(2, BasicQosOptions { global: true })
                .await
                .expect("qos global");
            let mut ca = consume(&ch, &qa, "ca", false).await;
            let mut cb = consume(&ch, &qb, "cb", false).await;
            // Two deliveries in total across both consumers, then nothing.
            let mut got = Vec::new();
            for _ in 0..2 {
                tokio::select! {
                    d = next(&mut ca) => got.push(d),
                    d = next(&mut cb) => got.push(d),
                }
            }
            let more = tokio::time::timeout(Duration::from_millis(300), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await;
            assert!(more.is_err(), "a third delivery beyond global prefetch 2");
            // One ack makes room for exactly one more.
            got[0].ack(BasicAckOptions::default()).await.expect("ack");
            let third = tokio::time::timeout(Duration::from_secs(5), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await
            .expect("a delivery after the ack");
            assert!(third.is_some());
            let fourth = tokio::time::timeout(Duration::from_millis(300), async {
                tokio::select! {
                    d = ca.next() => d,
                    d = cb.next() => d,
                }
            })
            .await;
            assert!(fourth.is_err(), "still at most 2 unacked");
        })
        .await;
    }
}
