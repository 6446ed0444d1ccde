//! Unit tests of consumer priorities, single active consumer (choice,
//! priority takeover, handover after a channel's requeue) and quorum
//! delivery counting.

use super::*;
use crate::broker::message::{Body, Message};
use crate::protocol::types::{FieldTable, FieldValue};
use bytes::Bytes;
use std::sync::Arc;

fn msg(n: u32) -> MessageRef {
    Arc::new(Message {
        exchange: ShortStr::EMPTY,
        routing_key: ShortStr::from("q"),
        raw_properties: Bytes::from_static(&[0, 0]),
        body: Body::from(Bytes::from(n.to_string())),
        persistent: false,
    })
}

fn key(channel: u16, tag: &str) -> ConsumerKey {
    ConsumerKey {
        shard: 0,
        conn: 1,
        channel,
        tag: ShortStr::from(tag),
    }
}

fn add(q: &mut Queue, channel: u16, tag: &str, prefetch: u32, priority: i64) {
    let spec = ConsumerSpec {
        key: key(channel, tag),
        no_ack: false,
        exclusive: false,
        prefetch,
        priority,
    };
    q.add_consumer(spec).unwrap();
    q.activate(&key(channel, tag));
}

fn queue(args: &[(&'static str, FieldValue)]) -> Queue {
    let mut arguments = FieldTable::new();
    for (k, v) in args {
        arguments.insert(ShortStr::from_static(k), v.clone());
    }
    Queue::new(
        ShortStr::from("q"),
        QueueConfig {
            durable: true,
            exclusive: false,
            auto_delete: false,
            arguments,
        },
    )
}

fn deliveries(q: &mut Queue) -> Vec<(String, u64)> {
    std::iter::from_fn(|| q.next_delivery())
        .map(|d| (d.consumer.tag.to_string(), d.msg_id))
        .collect()
}

#[test]
fn highest_priority_with_credit_first_round_robin_among_equals() {
    let mut q = queue(&[]);
    add(&mut q, 1, "low", 0, -1);
    add(&mut q, 2, "h1", 2, 5);
    add(&mut q, 3, "h2", 2, 5);
    for i in 0..6 {
        q.publish(msg(i));
    }
    let tags: Vec<String> = deliveries(&mut q).into_iter().map(|d| d.0).collect();
    assert_eq!(tags, ["h1", "h2", "h1", "h2", "low", "low"]);
}

#[test]
fn single_active_consumer_waits_for_the_departed_unacked() {
    let sac = [("x-single-active-consumer", FieldValue::Bool(true))];
    let mut q = queue(&sac);
    add(&mut q, 1, "a", 2, 0);
    add(&mut q, 2, "b", 0, 0);
    for i in 0..5 {
        q.publish(msg(i));
    }
    assert_eq!(deliveries(&mut q), [("a".into(), 1), ("a".into(), 2)]);
    assert_eq!(q.single_active_consumer(), Some(&key(1, "a")));
    // a's channel goes: nothing for b until a's two come back.
    q.remove_consumers_of(0, 1, Some(1));
    assert!(q.next_delivery().is_none());
    q.settle(&[2], Settle::Requeue);
    assert!(q.next_delivery().is_none());
    q.settle(&[1], Settle::Requeue);
    let got = deliveries(&mut q);
    let ids: Vec<u64> = got.iter().map(|d| d.1).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert!(got.iter().all(|d| d.0 == "b"));
}

#[test]
fn a_higher_priority_consumer_takes_over_once_the_active_has_no_unacked() {
    let sac = [("x-single-active-consumer", FieldValue::Bool(true))];
    let mut q = queue(&sac);
    add(&mut q, 1, "a", 0, 0);
    q.publish(msg(0));
    assert_eq!(deliveries(&mut q), [("a".into(), 1)]);
    add(&mut q, 2, "b", 0, 3);
    q.publish(msg(1));
    assert!(q.next_delivery().is_none(), "a holds an unacked message");
    q.settle(&[1], Settle::Remove);
    assert_eq!(deliveries(&mut q), [("b".into(), 2)]);
    assert_eq!(q.single_active_consumer(), Some(&key(2, "b")));
}

#[test]
fn quorum_returns_count_up_to_the_limit() {
    let quorum = [
        (
            "x-queue-type",
            FieldValue::LongStr(Bytes::from_static(b"quorum")),
        ),
        ("x-delivery-limit", FieldValue::I32(1)),
    ];
    let mut q = queue(&quorum);
    add(&mut q, 1, "a", 0, 0);
    q.publish(msg(0));
    let d = q.next_delivery().unwrap();
    assert_eq!(d.message.raw_properties, Bytes::from_static(&[0, 0]));
    q.settle(&[d.msg_id], Settle::Requeue);
    assert!(q.take_over_limit().is_empty());
    let d = q.next_delivery().unwrap();
    let props =
        crate::protocol::properties::BasicProperties::decode(d.message.raw_properties.clone())
            .unwrap();
    let headers = props.headers.unwrap();
    assert_eq!(headers.get("x-delivery-count"), Some(&FieldValue::I64(1)));
    q.settle(&[d.msg_id], Settle::Requeue);
    let gone = q.take_over_limit();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].delivery_count, 2);
    assert_eq!(q.message_count(), 0);
}
