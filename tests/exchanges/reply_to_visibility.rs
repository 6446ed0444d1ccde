//! Direct reply-to, and a binding visible to other connections at bind-ok.

use super::*;

// -------------------------------------------------- direct reply-to ----

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

async fn direct_reply_to(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let rpc_queue = c.queue("q-rpc").await;

    // The client consumes the pseudo-queue (no-ack) before publishing.
    let client = lapin_connect(b).await;
    let cch = client.create_channel().await.expect("channel.open");
    let mut replies = cch
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume amq.rabbitmq.reply-to");
    for i in 0..3 {
        let props = BasicProperties::default()
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(format!("corr-{i}").as_str().into());
        cch.basic_publish(
            "".into(),
            rpc_queue.as_str().into(),
            BasicPublishOptions::default(),
            format!("request {i}").as_bytes(),
            props,
        )
        .await
        .expect("publish request");

        // The server (another connection) sees a per-channel reply address.
        let req = loop {
            let m =
                c.ch.basic_get(rpc_queue.as_str().into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get");
            if let Some(m) = m {
                break m.delivery;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(req.data, format!("request {i}").as_bytes());
        let reply_to = req
            .properties
            .reply_to()
            .clone()
            .expect("request has reply_to");
        assert!(
            reply_to.as_str().starts_with("amq.rabbitmq.reply-to.")
                && reply_to.as_str().len() > REPLY_TO.len() + 1,
            "reply_to should be rewritten to a per-channel address, got {reply_to:?}"
        );
        let props = BasicProperties::default()
            .with_correlation_id(req.properties.correlation_id().clone().expect("corr id"));
        // Not mandatory: RabbitMQ 3.10 answers a mandatory publish to a
        // reply-to address with basic.return even though it delivers it.
        let r = publish_on(
            &c.ch,
            "",
            reply_to.as_str(),
            &format!("answer {i}"),
            false,
            props,
        )
        .await;
        assert_eq!(r, Confirmation::Ack(None), "reply was not acked");

        let d = replies
            .next()
            .await
            .expect("reply consumer ended")
            .expect("reply delivery");
        assert_eq!(d.data, format!("answer {i}").as_bytes());
        assert_eq!(
            d.properties
                .correlation_id()
                .as_ref()
                .map(|s| s.to_string()),
            Some(format!("corr-{i}"))
        );
    }
    let _ = client.close(200, "OK".into()).await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reply_to_round_trip() {
    for_each_placement!(direct_reply_to);
}

async fn reply_to_without_consumer(b: &Broker) {
    let rk = unique_name("q-any");
    assert_publish_closes_channel(
        b,
        RefusedPublish {
            exchange: "",
            routing_key: &rk,
            reply_to: Some(REPLY_TO),
            body: b"request",
        },
        406,
        "PRECONDITION_FAILED - fast reply consumer does not exist",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reply_to_needs_a_consumer() {
    for_each_broker!(reply_to_without_consumer);
}

// ------------------------------------------ cross-connection visibility ----

async fn binding_visibility(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-visible", ExchangeKind::Direct).await;
    // Several publisher connections, so that with several shards some land
    // on another shard than the binder.
    let mut publishers = Vec::new();
    for _ in 0..3 {
        let conn = lapin_connect(b).await;
        let ch = confirm_channel(&conn).await;
        publishers.push((conn, ch));
    }
    for i in 0..12 {
        let q = c.queue("q-visible").await;
        let key = format!("key-{i}");
        let (_, pch) = &publishers[i % publishers.len()];
        // Bound on connection A: the very next publish on B routes.
        c.bind(&q, &x, &key).await;
        let r = publish_on(
            pch,
            &x,
            &key,
            &format!("m{i}"),
            true,
            BasicProperties::default(),
        )
        .await;
        assert_eq!(
            r,
            Confirmation::Ack(None),
            "publish right after bind-ok was not routed"
        );
        assert_eq!(c.drain(&q, 1).await, vec![format!("m{i}")]);
        // Unbound on A: the very next publish on B no longer routes.
        c.ch.queue_unbind(
            q.as_str().into(),
            x.as_str().into(),
            key.as_str().into(),
            FieldTable::default(),
        )
        .await
        .expect("queue.unbind");
        let r = publish_on(pch, &x, &key, "late", true, BasicProperties::default()).await;
        assert_eq!(
            r.take_message().map(|m| m.reply_code),
            Some(312),
            "publish right after unbind-ok was still routed"
        );
    }
    for (conn, _) in publishers {
        let _ = conn.close(200, "OK".into()).await;
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_is_visible_to_other_connections_at_bind_ok() {
    for_each_placement!(binding_visibility);
}
