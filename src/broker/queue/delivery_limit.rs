//! Delivery counting and the delivery limit of quorum queues (RabbitMQ's
//! poison message handling): every return of a delivered message to the
//! queue (nack / reject with requeue, its channel or connection gone)
//! counts one; redeliveries carry the count as the `x-delivery-count`
//! header (a signed 64-bit `long`, as RabbitMQ 4.x writes it, absent on the
//! first delivery); a message returned more often than `x-delivery-limit`
//! (20 when unset, as RabbitMQ 4.x; negative: unlimited) leaves the queue
//! and is handed to dead-lettering (reason `delivery_limit`). Classic
//! queues count nothing and deliver the properties as published.
//!
//! The count of a stored message survives a restart: each return of one
//! is a small `Returned` log record (id, count; `take_returns`, written by
//! the owner after the settle), which recovery reads back into the
//! message's count (`restore_delivery_counts`): in memory for the
//! messages recovery holds there, kept by id for the paged ones until
//! they are read back. Publishing pays nothing for it. A transient
//! message's count is lost with it on restart.

use super::ready::QueuedMessage;
use super::Queue;
use crate::broker::message::{Message, MessageRef};
use crate::broker::queue_args::{QueueArguments, QueueType, RABBITMQ4_DEFAULT_DELIVERY_LIMIT};
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::{FieldTable, FieldValue, ShortStr};
use bytes::BytesMut;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a queue counts deliveries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum DeliveryCounting {
    /// Classic queues: nothing counted.
    #[default]
    Off,
    /// Quorum queues: counted; over `limit` returns (None: unlimited) a
    /// message is let go.
    On { limit: Option<u64> },
}

impl DeliveryCounting {
    pub(super) fn of(args: &QueueArguments) -> DeliveryCounting {
        if args.queue_type != QueueType::Quorum {
            return DeliveryCounting::Off;
        }
        let limit = match args.delivery_limit {
            None => Some(RABBITMQ4_DEFAULT_DELIVERY_LIMIT),
            Some(n) if n < 0 => None,
            Some(n) => Some(n as u64),
        };
        DeliveryCounting::On { limit }
    }
}

/// `message` with `x-delivery-count: count` in its headers.
fn with_delivery_count(message: &Message, count: u32) -> Option<MessageRef> {
    let mut props = BasicProperties::decode(message.raw_properties.clone()).ok()?;
    props.headers.get_or_insert_with(FieldTable::new).insert(
        ShortStr::from_static("x-delivery-count"),
        FieldValue::I64(count as i64),
    );
    let mut raw = BytesMut::with_capacity(message.raw_properties.len() + 32);
    props.encode(&mut raw);
    Some(Arc::new(Message {
        exchange: message.exchange.clone(),
        routing_key: message.routing_key.clone(),
        raw_properties: raw.freeze(),
        body: message.body.clone(),
        persistent: message.persistent,
    }))
}

/// Returns of stored messages not yet recorded, and the counts recovery
/// found for messages still paged out; allocated at the first (only
/// quorum queues have any): a queue without holds a null pointer.
#[derive(Debug, Default)]
pub(super) struct Returns(Option<Box<ReturnsHeld>>);

#[derive(Debug, Default)]
struct ReturnsHeld {
    /// (id, segment of its record, delivery count) of stored messages
    /// returned since the last `take_returns`.
    pending: Vec<(u64, u32, u32)>,
    /// Recovered delivery counts of messages not yet back in memory.
    recovered: BTreeMap<u64, u32>,
}

impl Returns {
    /// The recovered delivery count of message `id`, taken (0 if none).
    pub(super) fn recovered(&mut self, id: u64) -> u32 {
        match self.0.as_deref_mut() {
            Some(r) if !r.recovered.is_empty() => r.recovered.remove(&id).unwrap_or(0),
            _ => 0,
        }
    }

    fn held(&mut self) -> &mut ReturnsHeld {
        self.0.get_or_insert_with(Default::default)
    }
}

impl Queue {
    /// (id, segment of its record, delivery count) of the stored messages
    /// returned since the last call: the owner records them (`Returned`).
    pub fn take_returns(&mut self) -> Vec<(u64, u32, u32)> {
        self.returns
            .0
            .as_deref_mut()
            .map(|r| std::mem::take(&mut r.pending))
            .unwrap_or_default()
    }

    /// The delivery counts recovery found (id → returns), for messages it
    /// left paged out (or in memory: applied now).
    pub(super) fn restore_delivery_counts(&mut self, counts: BTreeMap<u64, u32>) {
        if !counts.is_empty() {
            self.returns.held().recovered = counts;
        } else if let Some(r) = self.returns.0.as_deref_mut() {
            r.recovered = counts;
        }
    }

    /// The recovered delivery count of message `id`, as it comes back in
    /// memory (0 if none).
    pub(super) fn recovered_delivery_count(&mut self, id: u64) -> u32 {
        self.returns.recovered(id)
    }

    /// The message as this delivery of it carries it: with its delivery
    /// count on a quorum queue's redelivery, else as published.
    pub(super) fn delivered_message(&self, message: &QueuedMessage) -> MessageRef {
        if self.delivery_counting == DeliveryCounting::Off || message.delivery_count == 0 {
            return message.message.clone();
        }
        with_delivery_count(&message.message, message.delivery_count)
            .unwrap_or_else(|| message.message.clone())
    }

    /// A delivered message comes back: counts the return; None when that
    /// puts it over the delivery limit (it waits in `over_limit`).
    pub(super) fn count_return(&mut self, mut message: QueuedMessage) -> Option<QueuedMessage> {
        let DeliveryCounting::On { limit } = self.delivery_counting else {
            return Some(message);
        };
        message.delivery_count = message.delivery_count.saturating_add(1);
        if limit.is_some_and(|limit| message.delivery_count as u64 > limit) {
            self.over_limit
                .get_or_insert_with(Default::default)
                .push(message);
            return None;
        }
        if let Some(segment) = message.stored {
            self.returns
                .held()
                .pending
                .push((message.id, segment, message.delivery_count));
        }
        Some(message)
    }

    /// The messages that went over the delivery limit since the last call,
    /// for dead-lettering (reason `delivery_limit`).
    pub fn take_over_limit(&mut self) -> Vec<QueuedMessage> {
        self.over_limit.take().map(|v| *v).unwrap_or_default()
    }
}
