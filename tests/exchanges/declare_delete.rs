//! exchange.declare and exchange.delete: kinds, errors and their RabbitMQ texts.

use super::*;

// ---------------------------------------------------- exchange.declare ----

async fn declare_kinds(b: &Broker) {
    let mut c = Ctx::new(b, None).await;
    let kinds = [
        ExchangeKind::Direct,
        ExchangeKind::Fanout,
        ExchangeKind::Topic,
        ExchangeKind::Headers,
    ];
    for kind in kinds {
        let name = c.exchange("x-kind", kind.clone()).await;
        // Redeclaring with the same type and flags is fine; so is passive.
        c.ch.exchange_declare(
            name.as_str().into(),
            kind.clone(),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("redeclare {name}: {e}"));
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        c.ch.exchange_declare(name.as_str().into(), kind, passive, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("passive declare {name}: {e}"));
    }
    // The predeclared exchanges exist.
    for name in [
        "amq.direct",
        "amq.fanout",
        "amq.topic",
        "amq.headers",
        "amq.match",
    ] {
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        c.ch.exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("passive declare {name}: {e}"));
    }
    // Declaring amq.direct with its own type and flags is allowed.
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    c.ch.exchange_declare(
        "amq.direct".into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await
    .expect("redeclare amq.direct");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_declare_each_kind() {
    for_each_broker!(declare_kinds);
}

async fn declare_errors(b: &Broker) {
    let mut c = Ctx::new(b, None).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };

    // passive on a missing exchange: 404, channel closed.
    let missing = unique_name("x-missing");
    let ch = c.channel().await;
    let r = ch
        .exchange_declare(
            missing.as_str().into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&missing));
    assert!(
        !ch.status().connected(),
        "channel should be closed after 404"
    );

    // Redeclare with another type: 406 with RabbitMQ's text.
    let name = c.exchange("x-direct", ExchangeKind::Direct).await;
    let ch = c.channel().await;
    let r = ch
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{name}' in vhost '/': \
             received 'fanout' but current is 'direct'"
        ),
    );
    // ... or with another durability.
    let ch = c.channel().await;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let r = ch
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{name}' in vhost '/': \
             received 'true' but current is 'false'"
        ),
    );
    // The exchange is unchanged.
    c.ch.exchange_declare(
        name.as_str().into(),
        ExchangeKind::Direct,
        passive,
        FieldTable::default(),
    )
    .await
    .expect("exchange still there");

    // The amq. prefix is reserved.
    let reserved = format!("amq.{}", unique_name("x"));
    let ch = c.channel().await;
    let r = ch
        .exchange_declare(
            reserved.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(
        r,
        403,
        &format!("ACCESS_REFUSED - exchange name '{reserved}' contains reserved prefix 'amq.*'"),
    );

    // The default exchange cannot be declared.
    let ch = c.channel().await;
    let r = ch
        .exchange_declare(
            "".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);

    // The connection survived all those channel errors.
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_declare_errors() {
    for_each_broker!(declare_errors);
}

async fn unknown_type(b: &Broker) {
    let conn = lapin_connect(b).await;
    let ch = conn.create_channel().await.expect("channel.open");
    let name = unique_name("x-unknown-type");
    let r = ch
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Custom("no-such-type".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await;
    // A connection error: 503 COMMAND_INVALID.
    assert_lapin_error(
        r,
        503,
        "COMMAND_INVALID - unknown exchange type 'no-such-type'",
    );
    let closed = common::eventually(5, || !conn.status().connected()).await;
    assert!(closed, "the connection should be closed after 503");
    assert!(
        conn.create_channel().await.is_err(),
        "a closed connection cannot open channels"
    );
    // The exchange was not created.
    let conn = lapin_connect(b).await;
    let ch = conn.create_channel().await.expect("channel.open");
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let r = ch
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&name));
    let _ = conn.close(200, "OK".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_declare_unknown_type_is_connection_error() {
    for_each_broker!(unknown_type);
}

// ----------------------------------------------------- exchange.delete ----

async fn delete_rules(b: &Broker) {
    let mut c = Ctx::new(b, None).await;

    // if-unused refuses while a queue is bound.
    let x = c.exchange("x-del", ExchangeKind::Direct).await;
    let q = c.queue("q-del").await;
    c.bind(&q, &x, "k").await;
    let ch = c.channel().await;
    let if_unused = ExchangeDeleteOptions {
        if_unused: true,
        ..ExchangeDeleteOptions::default()
    };
    let r = ch.exchange_delete(x.as_str().into(), if_unused).await;
    assert_lapin_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use"),
    );
    // ... also while it is the source of an exchange-to-exchange binding.
    let x2 = c.exchange("x-del-src", ExchangeKind::Fanout).await;
    c.bind_exchange(&x, &x2, "").await;
    let ch = c.channel().await;
    let r = ch.exchange_delete(x2.as_str().into(), if_unused).await;
    assert_lapin_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - exchange '{x2}' in vhost '/' in use"),
    );
    // Without the bindings, if-unused deletes.
    c.ch.exchange_unbind(
        x.as_str().into(),
        x2.as_str().into(),
        "".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind");
    c.ch.exchange_delete(x2.as_str().into(), if_unused)
        .await
        .expect("if-unused delete of an unused exchange");
    c.ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .expect("queue.unbind");
    c.ch.exchange_delete(x.as_str().into(), if_unused)
        .await
        .expect("if-unused delete after unbind");

    // A plain delete removes the exchange and its bindings.
    let x3 = c.exchange("x-del-plain", ExchangeKind::Direct).await;
    c.bind(&q, &x3, "k").await;
    c.ch.exchange_delete(x3.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("exchange.delete");
    let ch = confirm_channel(&c.conn).await;
    let r = ch
        .basic_publish(
            x3.as_str().into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"gone",
            BasicProperties::default(),
        )
        .await
        .expect("basic.publish is asynchronous")
        .await;
    assert_lapin_error(r, 404, &not_found_exchange(&x3));
    // Re-creating it does not bring the old binding back.
    let ch = c.channel().await;
    ch.exchange_declare(
        x3.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("redeclare");
    assert_eq!(
        c.publish_mandatory(&x3, "k", "m")
            .await
            .take_message()
            .map(|m| m.reply_code),
        Some(312),
        "the deleted exchange's binding survived"
    );

    // Deleting a missing exchange is fine (RabbitMQ answers delete-ok).
    let missing = unique_name("x-never");
    c.ch.exchange_delete(missing.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete of a missing exchange");
    c.ch.exchange_delete(missing.as_str().into(), if_unused)
        .await
        .expect("if-unused delete of a missing exchange");

    // Not the default exchange, not an amq.* one.
    let ch = c.channel().await;
    let r = ch
        .exchange_delete("".into(), ExchangeDeleteOptions::default())
        .await;
    assert_lapin_error(r, 403, DEFAULT_EXCHANGE_REFUSED);
    let ch = c.channel().await;
    let r = ch
        .exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())
        .await;
    assert_lapin_error(
        r,
        403,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
    );
    c.names.exchanges.retain(|n| n != &x && n != &x2);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_delete_rules() {
    for_each_broker!(delete_rules);
}
