//! basic.publish and basic.get: routing, a missing exchange, mandatory returns, every shard.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_get() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "get", placement).await;
                publish_all(&conn, &q, &["one", "two"]).await;

                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
                    .await
                    .expect("get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"one");
                assert_eq!(got.delivery.delivery_tag, 1);
                assert!(!got.delivery.redelivered);
                assert_eq!(got.delivery.exchange.as_str(), "");
                assert_eq!(got.delivery.routing_key.as_str(), q);
                assert_eq!(got.message_count, 1, "messages left after this one");
                got.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .expect("ack");

                let got = ch
                    .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("get")
                    .expect("get-ok");
                assert_eq!(got.delivery.data, b"two");
                assert_eq!(got.delivery.delivery_tag, 2);
                assert_eq!(got.message_count, 0);

                let empty = ch
                    .basic_get(q.as_str().into(), BasicGetOptions::default())
                    .await
                    .expect("get");
                assert!(empty.is_none(), "get-empty");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }

            // amqprs: publish + get, get-empty.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            let mut props = amqprs::BasicProperties::default();
            props
                .with_content_type("text/plain")
                .with_message_id("id-1");
            ach.basic_publish(
                props,
                b"from amqprs".to_vec(),
                amqprs::channel::BasicPublishArguments::new("", &q),
            )
            .await
            .expect("publish");
            let mut got = None;
            for _ in 0..100 {
                got = ach
                    .basic_get(amqprs::channel::BasicGetArguments::new(&q))
                    .await
                    .expect("get");
                if got.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (get_ok, props, content) = got.expect("the message arrives");
            assert_eq!(content, b"from amqprs");
            assert_eq!(get_ok.delivery_tag(), 1);
            assert!(!get_ok.redelivered());
            assert_eq!(get_ok.exchange(), "");
            assert_eq!(get_ok.routing_key(), &q);
            assert_eq!(get_ok.message_count(), 0);
            assert_eq!(props.content_type().map(String::as_str), Some("text/plain"));
            assert_eq!(props.message_id().map(String::as_str), Some("id-1"));
            ach.basic_ack(amqprs::channel::BasicAckArguments::new(1, false))
                .await
                .expect("ack");
            let none = ach
                .basic_get(amqprs::channel::BasicGetArguments::new(&q))
                .await
                .expect("get");
            assert!(none.is_none());
            ach.close().await.expect("close");
            aconn.close().await.expect("close");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_missing_exchange_closes_channel() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let ex = unique_name("no-such-exchange");
            // The channel.close arrives asynchronously, as the answer to the
            // next synchronous method on the channel (basic.qos); only the
            // channel is closed. Probed with the raw client, which shows the
            // exact close the broker sends.
            assert_publish_closes_channel(
                &b,
                RefusedPublish {
                    exchange: &ex,
                    routing_key: "rk",
                    reply_to: None,
                    body: b"lost",
                },
                404,
                &format!("NOT_FOUND - no exchange '{ex}' in vhost '/'"),
            )
            .await;

            // amqprs sees the channel.close in its callback.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            ach.basic_publish(
                amqprs::BasicProperties::default(),
                b"lost".to_vec(),
                amqprs::channel::BasicPublishArguments::new(&ex, "rk"),
            )
            .await
            .expect("publish is fire-and-forget");
            let closes = rec.closes.clone();
            assert!(eventually(10, || !closes.lock().unwrap().is_empty()).await);
            assert_eq!(
                rec.closes.lock().unwrap()[0],
                (404, format!("NOT_FOUND - no exchange '{ex}' in vhost '/'"))
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_is_returned() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            let ch = conn.create_channel().await.expect("channel");
            ch.confirm_select(Default::default())
                .await
                .expect("confirm");
            let rk = unique_name("nobody-home");
            let confirm = ch
                .basic_publish(
                    "".into(),
                    rk.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    b"bounce",
                    BasicProperties::default().with_message_id("m-1".into()),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack(), "unroutable messages are still acked");
            let ret = confirm.take_message().expect("basic.return");
            assert_eq!(ret.reply_code, 312);
            assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(ret.delivery.exchange.as_str(), "");
            assert_eq!(ret.delivery.routing_key.as_str(), rk);
            assert_eq!(ret.delivery.data, b"bounce");
            assert_eq!(
                ret.delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str()),
                Some("m-1")
            );
            // Non-mandatory unroutable messages are silently dropped.
            let confirm = ch
                .basic_publish(
                    "".into(),
                    rk.as_str().into(),
                    BasicPublishOptions::default(),
                    b"dropped",
                    BasicProperties::default(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack());
            assert!(confirm.take_message().is_none());

            // amqprs gets the return in its callback.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let rec = AmqprsCloseRecorder::default();
            ach.register_callback(rec.clone()).await.expect("callback");
            let mut args = amqprs::channel::BasicPublishArguments::new("", &rk);
            args.mandatory(true);
            ach.basic_publish(
                amqprs::BasicProperties::default(),
                b"bounce2".to_vec(),
                args,
            )
            .await
            .expect("publish");
            let returns = rec.returns.clone();
            assert!(eventually(10, || !returns.lock().unwrap().is_empty()).await);
            assert_eq!(
                rec.returns.lock().unwrap()[0],
                (312, "NO_ROUTE".to_string(), b"bounce2".to_vec())
            );
            assert!(rec.closes.lock().unwrap().is_empty(), "channel stays open");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_ack_on_each_shard() {
    for shards in SHARD_COUNTS {
        let b = Broker::start(shards);
        within(async {
            let conn = lapin_connect(&b).await;
            for placement in placements(&b) {
                let ch = conn.create_channel().await.expect("channel");
                let q = declare(&ch, "core", placement).await;
                let mut consumer = consume(&ch, &q, "", false).await;
                assert!(
                    consumer.tag().as_str().starts_with("amq.ctag-"),
                    "server-generated tag {:?}",
                    consumer.tag()
                );
                let bodies: Vec<String> = (0..20).map(|i| format!("msg-{i}")).collect();
                let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
                publish_all(&conn, &q, &refs).await;
                for (i, expected) in bodies.iter().enumerate() {
                    let d = next(&mut consumer).await;
                    assert_eq!(&body(&d), expected, "in order");
                    assert_eq!(d.delivery_tag, i as u64 + 1);
                    assert!(!d.redelivered);
                    assert_eq!(d.routing_key.as_str(), q);
                    d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                }
                // Everything acked: closing the channel requeues nothing.
                ch.close(200, "".into()).await.expect("close");
                assert_eq!(ready_count(&conn, &q).await, 0);
            }

            // amqprs consumer with a server-generated tag.
            let aconn = amqprs_connect(&b).await;
            let ach = aconn.open_channel(None).await.expect("channel");
            let (q, _, _) = ach
                .queue_declare(amqprs::channel::QueueDeclareArguments::exclusive_server_named())
                .await
                .expect("declare")
                .expect("declare-ok");
            let (tag, mut rx) = ach
                .basic_consume_rx(amqprs::channel::BasicConsumeArguments::new(&q, ""))
                .await
                .expect("consume");
            assert!(tag.starts_with("amq.ctag-"), "{tag:?}");
            for i in 0..3 {
                ach.basic_publish(
                    amqprs::BasicProperties::default(),
                    format!("a{i}").into_bytes(),
                    amqprs::channel::BasicPublishArguments::new("", &q),
                )
                .await
                .expect("publish");
            }
            for i in 0..3u64 {
                let m = within_secs(10, rx.recv()).await.expect("delivery");
                let deliver = m.deliver.expect("deliver");
                assert_eq!(deliver.consumer_tag(), &tag);
                assert_eq!(deliver.delivery_tag(), i + 1);
                assert_eq!(m.content.expect("content"), format!("a{i}").into_bytes());
                ach.basic_ack(amqprs::channel::BasicAckArguments::new(i + 1, false))
                    .await
                    .expect("ack");
            }
            let cancelled = ach
                .basic_cancel(amqprs::channel::BasicCancelArguments::new(&tag))
                .await
                .expect("cancel");
            assert_eq!(cancelled, tag);
            ach.close().await.expect("close");
            aconn.close().await.expect("close");
        })
        .await;
    }
}
