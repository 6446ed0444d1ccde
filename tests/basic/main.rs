//! basic.* behaviour: publish + get, missing exchanges, mandatory returns,
//! consumers (server tags, exclusive, round-robin, cancel, no-ack), acks,
//! nacks, rejects, recover, prefetch, requeue when a consumer's channel,
//! connection or socket goes away, publisher confirms, large bodies, and
//! property round-trips. Core publish→consume→ack runs with the queue pinned
//! to each shard when the broker has several.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use common::raw::{Args, RawConn};
use common::*;
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRecoverOptions, BasicRejectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, Connection, Consumer};

/// Declares a non-durable queue named `prefix-…` with the placement argument.
async fn declare(ch: &Channel, prefix: &str, placement: Option<usize>) -> String {
    let name = unique_name(prefix);
    let q = ch
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::default(),
            lapin_placement_args(placement),
        )
        .await
        .expect("queue.declare");
    assert_eq!(q.name().as_str(), name);
    name
}

async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    ch.basic_publish(
        exchange.into(),
        routing_key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await
    .expect("basic.publish");
}

/// Publishes `bodies` to `queue` on a confirm channel and waits for the acks.
async fn publish_all(conn: &Connection, queue: &str, bodies: &[&str]) {
    let ch = confirm_channel(conn).await;
    for body in bodies {
        publish(&ch, "", queue, body.as_bytes()).await;
    }
    let returned = ch.wait_for_confirms().await.expect("confirms");
    assert!(returned.is_empty());
    ch.close(200, "".into()).await.expect("close");
}

async fn consume(ch: &Channel, queue: &str, tag: &str, no_ack: bool) -> Consumer {
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("basic.consume")
}

async fn next(consumer: &mut Consumer) -> Delivery {
    within_secs(10, consumer.next())
        .await
        .expect("consumer stream ended")
        .expect("delivery error")
}

/// Asserts that no delivery arrives within `ms` milliseconds.
async fn assert_quiet(consumer: &mut Consumer, ms: u64) {
    if let Ok(d) = tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        panic!("unexpected delivery {d:?}");
    }
}

fn body(d: &Delivery) -> String {
    String::from_utf8(d.data.clone()).expect("utf8 body")
}

mod consume;
mod content;
mod flow;
mod publish;
