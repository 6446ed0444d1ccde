//! The default exchange, internal exchanges, publishing to a missing exchange.

use super::*;

// ----------------------------------------------- default and internal ----

async fn default_exchange_rules(b: &Broker) {
    let mut c = Ctx::new(b, None).await;
    let q = c.queue("q-default").await;
    // Every queue is bound to the default exchange by its name.
    assert_eq!(
        c.publish_mandatory("", &q, "by name").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q, 1).await, strings(&["by name"]));

    let ch = c.channel().await;
    let r = ch
        .queue_bind(
            q.as_str().into(),
            "".into(),
            "other".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);
    let ch = c.channel().await;
    let r = ch
        .queue_unbind(
            q.as_str().into(),
            "".into(),
            q.as_str().into(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);
    let ch = c.channel().await;
    let r = ch
        .exchange_bind(
            "amq.fanout".into(),
            "".into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);
    let ch = c.channel().await;
    let r = ch
        .exchange_bind(
            "".into(),
            "amq.direct".into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);
    // Still routes by queue name.
    assert_eq!(
        c.publish_mandatory("", &q, "again").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q, 1).await, strings(&["again"]));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_exchange_cannot_be_bound_or_deleted() {
    for_each_broker!(default_exchange_rules);
}

async fn internal_exchange(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let internal = c
        .exchange_with(
            "x-internal",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    let front = c.exchange("x-front", ExchangeKind::Direct).await;
    let q = c.queue("q-internal").await;
    c.bind(&q, &internal, "").await;
    c.bind_exchange(&internal, &front, "k").await;

    // Reachable through an exchange-to-exchange binding...
    assert_eq!(
        c.publish(&front, "k", "via front").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q, 1).await, strings(&["via front"]));

    // ... but not directly.
    assert_publish_closes_channel(
        b,
        RefusedPublish {
            exchange: &internal,
            routing_key: "",
            reply_to: None,
            body: b"direct",
        },
        403,
        &format!("ACCESS_REFUSED - cannot publish to internal exchange '{internal}' in vhost '/'"),
    )
    .await;
    assert_eq!(c.drain(&q, 0).await, Vec::<String>::new());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_exchange_refuses_direct_publish() {
    for_each_placement!(internal_exchange);
}

async fn publish_to_missing_exchange(b: &Broker) {
    let missing = unique_name("x-missing");
    // Only the channel is closed: the helper then opens another channel on
    // the same connection and uses it.
    assert_publish_closes_channel(
        b,
        RefusedPublish {
            exchange: &missing,
            routing_key: "k",
            reply_to: None,
            body: b"x",
        },
        404,
        &not_found_exchange(&missing),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_missing_exchange_is_404() {
    for_each_broker!(publish_to_missing_exchange);
}
