//! Exchange and routing integration tests (lapin), each for every shard count
//! and, where placement matters, with the queues pinned across the shards:
//! exchange.declare/delete rules and their RabbitMQ reply codes and texts,
//! queue/exchange bind and unbind, direct/fanout/topic/headers routing (one
//! copy per queue per publish), exchange-to-exchange bindings (including a
//! loop), alternate exchanges, mandatory returns, direct reply-to, and a
//! binding's visibility to a publisher on another connection. Publishes the
//! broker refuses by closing the channel are probed with the raw client, so
//! the exact close reply code and text are checked.

#[path = "../common/mod.rs"]
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

// The test modules come last: the macros above are textually scoped.
mod bindings;
mod declare_delete;
mod default_internal;
mod e2e_alternate_mandatory;
mod reply_to_visibility;
mod routing;
