//! Exchange and routing integration tests (lapin), each for every shard count
//! and, where placement matters, with the queues pinned across the shards:
//! exchange.declare/delete rules and their RabbitMQ reply codes and texts,
//! queue/exchange bind and unbind, direct/fanout/topic/headers routing (one
//! copy per queue per publish), exchange-to-exchange bindings (including a
//! loop), alternate exchanges, mandatory returns, direct reply-to, and a
//! binding's visibility to a publisher on another connection. Publishes the
//! broker refuses by closing the channel are probed with the raw client, so
//! the exact close reply code and text are checked.

mod common;

use common::{
    assert_lapin_error, assert_publish_closes_channel, confirm_channel, lapin_connect,
    lapin_placement_args, placements, strings, unique_name, within, Broker, RefusedPublish,
    SHARD_COUNTS,
};
use futures_lite::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ExchangeBindOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeUnbindOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use std::time::{Duration, Instant};

/// How long `drain` waits for the expected messages to arrive.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `drain` keeps looking for unexpected extra copies.
const QUIET_PERIOD: Duration = Duration::from_millis(150);

// ------------------------------------------------------------- helpers ----

/// The queues and exchanges a case declared, deleted at its end so runs
/// against an external broker leave nothing behind.
#[derive(Default)]
struct Names {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

/// One test case's connection, a confirm-mode channel, and what it declared.
struct Ctx<'a> {
    b: &'a Broker,
    conn: Connection,
    ch: Channel,
    /// The shard the first queue goes to (None: unpinned).
    place: Option<usize>,
    /// How many queues were declared (for round-robin placement).
    queued: usize,
    names: Names,
}

impl<'a> Ctx<'a> {
    async fn new(b: &'a Broker, place: Option<usize>) -> Ctx<'a> {
        let conn = lapin_connect(b).await;
        let ch = confirm_channel(&conn).await;
        Ctx {
            b,
            conn,
            ch,
            place,
            queued: 0,
            names: Names::default(),
        }
    }

    /// A fresh plain channel on the same connection (for steps that are
    /// expected to close their channel).
    async fn channel(&self) -> Channel {
        self.conn.create_channel().await.expect("channel.open")
    }

    async fn exchange(&mut self, prefix: &str, kind: ExchangeKind) -> String {
        self.exchange_with(
            prefix,
            kind,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
    }

    async fn exchange_with(
        &mut self,
        prefix: &str,
        kind: ExchangeKind,
        opts: ExchangeDeclareOptions,
        args: FieldTable,
    ) -> String {
        let name = unique_name(prefix);
        self.ch
            .exchange_declare(name.as_str().into(), kind, opts, args)
            .await
            .unwrap_or_else(|e| panic!("exchange.declare {name}: {e}"));
        self.names.exchanges.push(name.clone());
        name
    }

    /// Declares a queue; successive queues go to successive shards.
    async fn queue(&mut self, prefix: &str) -> String {
        let shard = self.place.map(|p| (p + self.queued) % self.b.shards());
        self.queued += 1;
        let name = unique_name(prefix);
        self.ch
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::default(),
                lapin_placement_args(shard),
            )
            .await
            .unwrap_or_else(|e| panic!("queue.declare {name}: {e}"));
        self.names.queues.push(name.clone());
        name
    }

    async fn bind(&self, queue: &str, exchange: &str, key: &str) {
        self.bind_args(queue, exchange, key, FieldTable::default())
            .await;
    }

    async fn bind_args(&self, queue: &str, exchange: &str, key: &str, args: FieldTable) {
        self.ch
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                args,
            )
            .await
            .unwrap_or_else(|e| panic!("queue.bind {queue} to {exchange} ({key:?}): {e}"));
    }

    async fn bind_exchange(&self, destination: &str, source: &str, key: &str) {
        self.ch
            .exchange_bind(
                destination.into(),
                source.into(),
                key.into(),
                ExchangeBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("exchange.bind {destination} to {source} ({key:?}): {e}"));
    }

    /// Publishes and waits for the broker's confirm.
    async fn publish(&self, exchange: &str, key: &str, body: &str) -> Confirmation {
        publish_on(
            &self.ch,
            exchange,
            key,
            body,
            false,
            BasicProperties::default(),
        )
        .await
    }

    /// Publishes with the mandatory flag and waits for the broker's confirm.
    async fn publish_mandatory(&self, exchange: &str, key: &str, body: &str) -> Confirmation {
        publish_on(
            &self.ch,
            exchange,
            key,
            body,
            true,
            BasicProperties::default(),
        )
        .await
    }

    async fn publish_headers(&self, exchange: &str, headers: FieldTable, body: &str) {
        let props = BasicProperties::default().with_headers(headers);
        let c = publish_on(&self.ch, exchange, "ignored", body, false, props).await;
        assert_eq!(c, Confirmation::Ack(None), "publish {body}");
    }

    async fn drain(&self, queue: &str, expect: usize) -> Vec<String> {
        drain(&self.ch, queue, expect).await
    }

    /// Deletes what the case declared and closes the connection.
    async fn finish(self) {
        for q in &self.names.queues {
            self.ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap_or_else(|e| panic!("queue.delete {q}: {e}"));
        }
        for x in &self.names.exchanges {
            self.ch
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .unwrap_or_else(|e| panic!("exchange.delete {x}: {e}"));
        }
        let _ = self.conn.close(200, "OK".into()).await;
    }
}

async fn publish_on(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &str,
    mandatory: bool,
    props: BasicProperties,
) -> Confirmation {
    let opts = BasicPublishOptions {
        mandatory,
        ..BasicPublishOptions::default()
    };
    ch.basic_publish(exchange.into(), key.into(), opts, body.as_bytes(), props)
        .await
        .unwrap_or_else(|e| panic!("basic.publish to {exchange:?} ({key:?}): {e}"))
        .await
        .unwrap_or_else(|e| panic!("confirm of publish to {exchange:?} ({key:?}): {e}"))
}

/// Gets (no-ack) every message of `queue`: waits until `expect` have come,
/// then a little longer for unexpected extra copies. Returns the bodies in
/// queue order.
async fn drain(ch: &Channel, queue: &str, expect: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let m = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap_or_else(|e| panic!("basic.get {queue}: {e}"));
        match m {
            Some(m) => {
                got.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
                quiet_since = None;
            }
            None if got.len() >= expect => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUIET_PERIOD {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => {
                assert!(
                    Instant::now() < deadline,
                    "queue {queue}: got {got:?}, expected {expect} messages"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn table(entries: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(
            ShortString::from(*k),
            AMQPValue::LongString(LongString::from(*v)),
        );
    }
    t
}

/// Runs `case` for every shard count, and with several shards once per
/// placement (queues pinned starting at each shard in turn).
macro_rules! for_each_placement {
    ($case:ident) => {
        for shards in SHARD_COUNTS {
            let b = Broker::start(shards);
            for place in placements(&b) {
                within($case(&b, place)).await;
            }
        }
    };
}

/// Runs `case` once per shard count (placement does not matter for it).
macro_rules! for_each_broker {
    ($case:ident) => {
        for shards in SHARD_COUNTS {
            let b = Broker::start(shards);
            within($case(&b)).await;
        }
    };
}

fn not_found_exchange(name: &str) -> String {
    format!("NOT_FOUND - no exchange '{name}' in vhost '/'")
}

const DEFAULT_EXCHANGE_REFUSED: &str =
    "ACCESS_REFUSED - operation not permitted on the default exchange";

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

// ------------------------------------------------------------- routing ----

async fn direct_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-direct", ExchangeKind::Direct).await;
    let q1 = c.queue("q-d1").await;
    let q2 = c.queue("q-d2").await;
    let q3 = c.queue("q-d3").await;
    // Many queues per key, many keys per queue.
    c.bind(&q1, &x, "black").await;
    c.bind(&q2, &x, "black").await;
    c.bind(&q3, &x, "black").await;
    c.bind(&q3, &x, "green").await;
    c.bind(&q3, &x, "orange").await;
    // The empty key is an ordinary key.
    c.bind(&q2, &x, "").await;

    for (key, body) in [
        ("black", "m1"),
        ("green", "m2"),
        ("orange", "m3"),
        ("", "m4"),
        ("blue", "m5"),
        ("Black", "m6"),
        ("black", "m7"),
    ] {
        assert_eq!(c.publish(&x, key, body).await, Confirmation::Ack(None));
    }
    assert_eq!(c.drain(&q1, 2).await, strings(&["m1", "m7"]));
    assert_eq!(c.drain(&q2, 3).await, strings(&["m1", "m4", "m7"]));
    assert_eq!(c.drain(&q3, 4).await, strings(&["m1", "m2", "m3", "m7"]));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exchange_routing() {
    for_each_placement!(direct_routing);
}

async fn fanout_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-fanout", ExchangeKind::Fanout).await;
    let q1 = c.queue("q-f1").await;
    let q2 = c.queue("q-f2").await;
    let q3 = c.queue("q-f3").await;
    c.bind(&q1, &x, "").await;
    c.bind(&q2, &x, "whatever").await;
    // Bound twice (two keys): still one copy per publish.
    c.bind(&q3, &x, "a").await;
    c.bind(&q3, &x, "b").await;
    for (key, body) in [("", "m1"), ("a", "m2"), ("zzz", "m3")] {
        assert_eq!(c.publish(&x, key, body).await, Confirmation::Ack(None));
    }
    let all = strings(&["m1", "m2", "m3"]);
    assert_eq!(c.drain(&q1, 3).await, all);
    assert_eq!(c.drain(&q2, 3).await, all);
    assert_eq!(c.drain(&q3, 3).await, all);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exchange_routing() {
    for_each_placement!(fanout_routing);
}

async fn topic_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-topic", ExchangeKind::Topic).await;
    let patterns: [&[&str]; 10] = [
        &["#"],
        &["*"],
        &["a.#.b"],
        &["*.orange.*"],
        &["a.*.b"],
        &[""],
        &["a.#"],
        &["#.b"],
        // Two patterns matching the same keys: one copy.
        &["a.*", "*.b"],
        &["lazy.#", "*.*.rabbit"],
    ];
    let mut queues = Vec::new();
    for p in patterns {
        let q = c.queue("q-t").await;
        for pattern in p {
            c.bind(&q, &x, pattern).await;
        }
        queues.push(q);
    }
    // (routing key, indexes of the queues (patterns) it reaches)
    let cases: [(&str, &[usize]); 16] = [
        ("", &[0, 5]),
        ("a", &[0, 1, 6]),
        ("orange", &[0, 1]),
        ("quick.orange.rabbit", &[0, 3, 9]),
        ("a.b", &[0, 2, 6, 7, 8]),
        ("a.x.b", &[0, 2, 4, 6, 7]),
        ("a.x.y.b", &[0, 2, 6, 7]),
        ("a.b.c", &[0, 6]),
        ("a..b", &[0, 2, 4, 6, 7]),
        ("b", &[0, 1, 7]),
        (".orange.", &[0, 3]),
        ("a.", &[0, 6, 8]),
        ("lazy", &[0, 1, 9]),
        ("lazy.pink.rabbit", &[0, 9]),
        ("quick.brown.fox", &[0]),
        ("A.B", &[0]),
    ];
    for (i, (key, _)) in cases.iter().enumerate() {
        let body = format!("{i}:{key}");
        assert_eq!(c.publish(&x, key, &body).await, Confirmation::Ack(None));
    }
    for (j, q) in queues.iter().enumerate() {
        let expected: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(_, (_, to))| to.contains(&j))
            .map(|(i, (key, _))| format!("{i}:{key}"))
            .collect();
        let got = c.drain(q, expected.len()).await;
        assert_eq!(got, expected, "queue bound with {:?}", patterns[j]);
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_exchange_routing() {
    for_each_placement!(topic_routing);
}

async fn headers_routing(b: &Broker, place: Option<usize>) {
    let mut c = Ctx::new(b, place).await;
    let x = c.exchange("x-headers", ExchangeKind::Headers).await;
    let q_all = c.queue("q-h-all").await;
    let q_any = c.queue("q-h-any").await;
    let q_default = c.queue("q-h-default").await;
    let q_xkey = c.queue("q-h-xkey").await;
    let q_twice = c.queue("q-h-twice").await;
    c.bind_args(
        &q_all,
        &x,
        "",
        table(&[("x-match", "all"), ("format", "pdf"), ("type", "report")]),
    )
    .await;
    c.bind_args(
        &q_any,
        &x,
        "",
        table(&[("x-match", "any"), ("format", "pdf"), ("type", "report")]),
    )
    .await;
    // No x-match means all.
    c.bind_args(
        &q_default,
        &x,
        "",
        table(&[("format", "pdf"), ("type", "report")]),
    )
    .await;
    // Binding keys starting with x- take no part in matching.
    c.bind_args(
        &q_xkey,
        &x,
        "",
        table(&[("x-match", "all"), ("format", "pdf"), ("x-extra", "nope")]),
    )
    .await;
    // Two bindings that both match: one copy.
    c.bind_args(
        &q_twice,
        &x,
        "",
        table(&[("x-match", "any"), ("format", "pdf")]),
    )
    .await;
    c.bind_args(
        &q_twice,
        &x,
        "",
        table(&[("x-match", "any"), ("type", "report")]),
    )
    .await;

    let messages: [(&str, &[(&str, &str)]); 6] = [
        ("m1", &[("format", "pdf"), ("type", "report")]),
        ("m2", &[("format", "pdf")]),
        ("m3", &[("format", "zip"), ("type", "report")]),
        ("m4", &[]),
        (
            "m5",
            &[("format", "pdf"), ("type", "report"), ("extra", "1")],
        ),
        ("m6", &[("format", "PDF"), ("type", "log")]),
    ];
    for (body, headers) in messages {
        c.publish_headers(&x, table(headers), body).await;
    }
    // And a message with no headers table at all.
    assert_eq!(c.publish(&x, "", "m7").await, Confirmation::Ack(None));

    assert_eq!(c.drain(&q_all, 2).await, strings(&["m1", "m5"]));
    assert_eq!(c.drain(&q_any, 4).await, strings(&["m1", "m2", "m3", "m5"]));
    assert_eq!(c.drain(&q_default, 2).await, strings(&["m1", "m5"]));
    assert_eq!(c.drain(&q_xkey, 3).await, strings(&["m1", "m2", "m5"]));
    assert_eq!(
        c.drain(&q_twice, 4).await,
        strings(&["m1", "m2", "m3", "m5"])
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_exchange_routing() {
    for_each_placement!(headers_routing);
}

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
