//! queue.bind / exchange.bind and unbind with missing entities.

use super::*;

// ------------------------------------------------------- bind / unbind ----

async fn bind_unbind_missing(b: &Broker) {
    let mut c = Ctx::new(b, None).await;
    let x = c.exchange("x-bind", ExchangeKind::Direct).await;
    let q = c.queue("q-bind").await;
    let missing_q = unique_name("q-missing");
    let missing_x = unique_name("x-missing");

    let ch = c.channel().await;
    let r = ch
        .queue_bind(
            missing_q.as_str().into(),
            x.as_str().into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(
        r,
        404,
        &format!("NOT_FOUND - no queue '{missing_q}' in vhost '/'"),
    );

    let ch = c.channel().await;
    let r = ch
        .queue_bind(
            q.as_str().into(),
            missing_x.as_str().into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&missing_x));

    // Both missing: RabbitMQ names the exchange.
    let ch = c.channel().await;
    let r = ch
        .queue_bind(
            missing_q.as_str().into(),
            missing_x.as_str().into(),
            "k".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&missing_x));

    // exchange.bind with a missing source or destination.
    let ch = c.channel().await;
    let r = ch
        .exchange_bind(
            missing_x.as_str().into(),
            x.as_str().into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&missing_x));
    let ch = c.channel().await;
    let r = ch
        .exchange_bind(
            x.as_str().into(),
            missing_x.as_str().into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&missing_x));

    // Unbinding is idempotent in RabbitMQ: a missing binding, queue or
    // exchange all answer unbind-ok.
    c.ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "never".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind of a missing binding");
    c.ch.queue_unbind(
        missing_q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind of a missing queue");
    c.ch.queue_unbind(
        q.as_str().into(),
        missing_x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind from a missing exchange");
    c.ch.exchange_unbind(
        x.as_str().into(),
        "amq.fanout".into(),
        unique_name("never").as_str().into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind of a missing binding");

    // Bind, bind again (idempotent), unbind once: gone.
    c.bind(&q, &x, "k").await;
    c.bind(&q, &x, "k").await;
    assert_eq!(c.publish(&x, "k", "one").await, Confirmation::Ack(None));
    assert_eq!(c.drain(&q, 1).await, strings(&["one"]));
    c.ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .expect("queue.unbind");
    let r = c.publish_mandatory(&x, "k", "two").await;
    assert_eq!(r.take_message().map(|m| m.reply_code), Some(312));
    assert_eq!(c.drain(&q, 0).await, Vec::<String>::new());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_and_unbind_with_missing_entities() {
    for_each_broker!(bind_unbind_missing);
}
