//! Exchange-to-exchange bindings (and a loop), alternate exchanges, mandatory returns.

use super::*;

// -------------------------------------------- exchange-to-exchange ----

async fn e2e_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    // A topic front routing to a direct and a fanout exchange.
    let front = c.exchange("x-e2e-front", ExchangeKind::Topic).await;
    let direct = c.exchange("x-e2e-direct", ExchangeKind::Direct).await;
    let fanout = c.exchange("x-e2e-fanout", ExchangeKind::Fanout).await;
    c.bind_exchange(&direct, &front, "logs.*").await;
    c.bind_exchange(&fanout, &front, "#.critical").await;
    let q_err = c.queue("q-e2e-err").await;
    let q_fan = c.queue("q-e2e-fan").await;
    let q_both = c.queue("q-e2e-both").await;
    c.bind(&q_err, &direct, "logs.error").await;
    c.bind(&q_fan, &fanout, "").await;
    // Reachable by two paths: one copy.
    c.bind(&q_both, &direct, "logs.critical").await;
    c.bind(&q_both, &fanout, "").await;

    for (key, body) in [
        ("logs.error", "m1"),
        ("logs.critical", "m2"),
        ("app.critical", "m3"),
        ("logs.info", "m4"),
        ("other", "m5"),
    ] {
        assert_eq!(c.publish(&front, key, body).await, Confirmation::Ack(None));
    }
    assert_eq!(c.drain(&q_err, 1).await, strings(&["m1"]));
    assert_eq!(c.drain(&q_fan, 2).await, strings(&["m2", "m3"]));
    assert_eq!(c.drain(&q_both, 2).await, strings(&["m2", "m3"]));

    // Unbinding the exchanges cuts the path.
    c.ch.exchange_unbind(
        fanout.as_str().into(),
        front.as_str().into(),
        "#.critical".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind");
    assert_eq!(
        c.publish(&front, "app.critical", "m6").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q_fan, 0).await, Vec::<String>::new());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_to_exchange_bindings() {
    for_each_placement!(e2e_routing);
}

async fn e2e_loop(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x1 = c.exchange("x-loop1", ExchangeKind::Fanout).await;
    let x2 = c.exchange("x-loop2", ExchangeKind::Fanout).await;
    let x3 = c.exchange("x-loop3", ExchangeKind::Fanout).await;
    // x1 -> x2 -> x3 -> x1, and x1 -> x1.
    c.bind_exchange(&x2, &x1, "").await;
    c.bind_exchange(&x3, &x2, "").await;
    c.bind_exchange(&x1, &x3, "").await;
    c.bind_exchange(&x1, &x1, "").await;
    let q1 = c.queue("q-loop1").await;
    let q3 = c.queue("q-loop3").await;
    c.bind(&q1, &x1, "").await;
    c.bind(&q3, &x3, "").await;
    for (x, body) in [(&x1, "from x1"), (&x2, "from x2"), (&x3, "from x3")] {
        assert_eq!(c.publish(x, "", body).await, Confirmation::Ack(None));
    }
    let all = strings(&["from x1", "from x2", "from x3"]);
    assert_eq!(c.drain(&q1, 3).await, all);
    assert_eq!(c.drain(&q3, 3).await, all);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_binding_loop_delivers_once() {
    for_each_placement!(e2e_loop);
}

// ------------------------------------------------- alternate exchange ----

async fn alternate_exchange(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let ae = c.exchange("x-ae", ExchangeKind::Fanout).await;
    let mut args = FieldTable::default();
    args.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(ae.as_str().into()),
    );
    let x = c
        .exchange_with(
            "x-with-ae",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            args,
        )
        .await;
    let q = c.queue("q-main").await;
    let q_ae = c.queue("q-unrouted").await;
    c.bind(&q, &x, "known").await;
    c.bind(&q_ae, &ae, "").await;

    assert_eq!(
        c.publish(&x, "known", "routed").await,
        Confirmation::Ack(None)
    );
    assert_eq!(
        c.publish(&x, "unknown", "unrouted").await,
        Confirmation::Ack(None)
    );
    // Mandatory is satisfied by the alternate exchange: no basic.return.
    assert_eq!(
        c.publish_mandatory(&x, "other", "unrouted mandatory").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q, 1).await, strings(&["routed"]));
    assert_eq!(
        c.drain(&q_ae, 2).await,
        strings(&["unrouted", "unrouted mandatory"])
    );

    // When the alternate exchange routes nowhere either, mandatory returns.
    c.ch.queue_unbind(
        q_ae.as_str().into(),
        ae.as_str().into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .expect("queue.unbind");
    let r = c.publish_mandatory(&x, "unknown", "lost").await;
    let ret = r.take_message().expect("basic.return");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.data, b"lost");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternate_exchange_takes_unroutable() {
    for_each_placement!(alternate_exchange);
}

// ----------------------------------------------------------- mandatory ----

async fn mandatory_return(b: &Broker) {
    let mut c = Ctx::new(b, None).await;
    let x = c.exchange("x-mandatory", ExchangeKind::Direct).await;
    let q = c.queue("q-mandatory").await;
    c.bind(&q, &x, "yes").await;

    let props = BasicProperties::default().with_correlation_id("c-42".into());
    let r = publish_on(&c.ch, &x, "no", "bounced", true, props).await;
    let ret = match r {
        Confirmation::Ack(Some(ret)) => ret,
        other => panic!("expected ack with basic.return, got {other:?}"),
    };
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.exchange.as_str(), x);
    assert_eq!(ret.delivery.routing_key.as_str(), "no");
    assert_eq!(ret.delivery.data, b"bounced");
    assert_eq!(
        ret.delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("c-42")
    );

    // The default exchange with a queue that does not exist.
    let missing = unique_name("q-missing");
    let r = c.publish_mandatory("", &missing, "nowhere").await;
    assert_eq!(r.take_message().map(|m| m.reply_code), Some(312));

    // Not mandatory: silently dropped, still acked.
    assert_eq!(
        c.publish(&x, "no", "dropped").await,
        Confirmation::Ack(None)
    );
    // Routable and mandatory: delivered, no return.
    assert_eq!(
        c.publish_mandatory(&x, "yes", "kept").await,
        Confirmation::Ack(None)
    );
    assert_eq!(c.drain(&q, 1).await, strings(&["kept"]));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mandatory_unroutable_is_returned() {
    for_each_broker!(mandatory_return);
}
