//! Messages delivered in ack mode (or fetched by basic.get in ack mode)
//! and not yet settled, by id; and Warren's `x-max-unacked` cap on them
//! (the queue delivers nothing while it holds that many).

use super::consumers::ConsumerKey;
use super::ready::{resident_cost, QueuedMessage};
use crate::protocol::types::FieldTable;
use std::collections::HashMap;

/// Ids are u64s the queue assigns itself: hashed with ahash, not SipHash
/// (an insert at every delivery and a remove at every ack).
type ById = HashMap<u64, Unacked, ahash::RandomState>;

/// `x-max-unacked` of the effective arguments (validated at declare, at
/// least 1; a policy's `max-unacked` is combined in by `policy`).
pub(super) fn max_unacked(args: &FieldTable) -> Option<u64> {
    args.get("x-max-unacked")
        .and_then(|v| v.as_i64())
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// `x-consumer-timeout` of the effective arguments (ms; validated at
/// declare; a policy's `consumer-timeout` is combined in by `policy`).
pub(super) fn consumer_timeout(args: &FieldTable) -> Option<u64> {
    args.get("x-consumer-timeout")
        .and_then(|v| v.as_i64())
        .and_then(|n| u64::try_from(n).ok())
}

#[derive(Debug)]
pub(super) struct Unacked {
    pub(super) message: QueuedMessage,
    /// Index into nothing: the consumer's key, or None for basic.get.
    pub(super) consumer: Option<ConsumerKey>,
}

/// The unsettled deliveries of a queue, with the memory they hold (their
/// messages stay in memory until settled: they count against the shard's
/// memory budget like ready ones).
#[derive(Debug, Default)]
pub(super) struct UnackedSet {
    by_id: ById,
    /// `resident_cost` of the messages held.
    bytes: u64,
}

impl UnackedSet {
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Memory charged for the messages held (`resident_cost` each).
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `message` was handed to `consumer` (None: basic.get).
    pub(super) fn insert(&mut self, message: QueuedMessage, consumer: Option<ConsumerKey>) {
        self.bytes += resident_cost(&message.message);
        if let Some(old) = self.by_id.insert(message.id, Unacked { message, consumer }) {
            debug_assert!(false, "message {} unacked twice", old.message.id);
            self.bytes -= resident_cost(&old.message.message);
        }
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Unacked> {
        let gone = self.by_id.remove(&id)?;
        self.bytes -= resident_cost(&gone.message.message);
        Some(gone)
    }

    /// The consumer of every unsettled delivery (None: basic.get).
    pub(super) fn consumers(&self) -> impl Iterator<Item = Option<&ConsumerKey>> {
        self.by_id.values().map(|u| u.consumer.as_ref())
    }

    pub(super) fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.by_id.values().map(|u| &u.message)
    }

    pub(super) fn messages_mut(&mut self) -> impl Iterator<Item = &mut QueuedMessage> {
        self.by_id.values_mut().map(|u| &mut u.message)
    }
}
