//! Messages delivered in ack mode (or fetched by basic.get in ack mode)
//! and not yet settled, by id; and Warren's `x-max-unacked` cap on them
//! (the queue delivers nothing while it holds that many).

use super::consumers::ConsumerKey;
use super::getters::{GetterKey, Getters};
use super::id_ring::IdRing;
use super::ready::{resident_cost, QueuedMessage};
use crate::protocol::types::FieldTable;

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

/// Who holds an unsettled message.
#[derive(Debug)]
pub(super) enum Taker {
    /// The consumer it was delivered to.
    Consumer(ConsumerKey),
    /// basic.get, by this channel (None: the management API's get, which
    /// settles what it took before it answers).
    Get(Option<GetterKey>),
}

#[derive(Debug)]
pub(super) struct Unacked {
    pub(super) message: QueuedMessage,
    pub(super) taker: Taker,
}

impl Unacked {
    /// The consumer it was delivered to (None: basic.get).
    pub(super) fn consumer(&self) -> Option<&ConsumerKey> {
        match &self.taker {
            Taker::Consumer(key) => Some(key),
            Taker::Get(_) => None,
        }
    }
}

/// The unsettled deliveries of a queue, with the memory they hold (their
/// messages stay in memory until settled: they count against the shard's
/// memory budget like ready ones). One null pointer until the first
/// delivery in ack mode, so an idle queue holds none of it (`size_tests`);
/// once made, the parts stay for the queue's life (a consumer with
/// prefetch 1 would otherwise allocate them at every delivery).
#[derive(Debug, Default)]
pub(super) struct UnackedSet(Option<Box<Held>>);

#[derive(Debug, Default)]
struct Held {
    /// By message id: an insert at every delivery and a removal at every
    /// ack, mostly in id order (`id_ring`).
    by_id: IdRing<Unacked>,
    /// `resident_cost` of the messages held.
    bytes: u64,
    /// The channels holding gets, with what they hold (`getters`).
    getters: Getters,
}

impl UnackedSet {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |held| held.by_id.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|held| held.by_id.is_empty())
    }

    /// Memory charged for the messages held (`resident_cost` each).
    pub(super) fn bytes(&self) -> u64 {
        self.0.as_ref().map_or(0, |held| held.bytes)
    }

    /// How many channels hold unsettled gets.
    pub(super) fn getter_count(&self) -> usize {
        self.0.as_ref().map_or(0, |held| held.getters.len())
    }

    /// The memory `getter`'s unsettled gets hold.
    pub(super) fn getter_bytes(&self, getter: &GetterKey) -> u64 {
        self.0.as_ref().map_or(0, |held| held.getters.bytes(getter))
    }

    /// `message` was handed to `taker`.
    pub(super) fn insert(&mut self, message: QueuedMessage, taker: Taker) {
        let held = self.0.get_or_insert_with(Box::default);
        let cost = resident_cost(&message.message);
        held.bytes += cost;
        if let Taker::Get(Some(getter)) = &taker {
            held.getters.took(*getter, cost);
        }
        held.by_id.insert(message.id, Unacked { message, taker });
    }

    /// Takes the delivery `id`; a set that drains gives its capacity back
    /// (`id_ring`, `broker::capacity`).
    pub(super) fn remove(&mut self, id: u64) -> Option<Unacked> {
        let held = self.0.as_mut()?;
        let gone = held.by_id.remove(id)?;
        let cost = resident_cost(&gone.message.message);
        held.bytes -= cost;
        if let Taker::Get(Some(getter)) = &gone.taker {
            held.getters.settled(getter, cost);
        }
        Some(gone)
    }

    /// The smallest id of an unsettled delivery.
    pub(super) fn oldest_id(&self) -> Option<u64> {
        self.0.as_ref()?.by_id.min_id()
    }

    fn all(&self) -> impl Iterator<Item = &Unacked> {
        self.0.iter().flat_map(|held| held.by_id.values())
    }

    /// The consumer of every unsettled delivery (None: basic.get).
    pub(super) fn consumers(&self) -> impl Iterator<Item = Option<&ConsumerKey>> {
        self.all().map(Unacked::consumer)
    }

    pub(super) fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.all().map(|u| &u.message)
    }

    pub(super) fn messages_mut(&mut self) -> impl Iterator<Item = &mut QueuedMessage> {
        self.0
            .iter_mut()
            .flat_map(|held| held.by_id.values_mut())
            .map(|u| &mut u.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::queue::ready::tests::queued;

    #[test]
    fn a_settled_flood_of_unacked_deliveries_is_counted_in_and_out() {
        let mut set = UnackedSet::default();
        for id in 0..20_000 {
            set.insert(queued(id), Taker::Get(None));
        }
        assert_eq!(set.len(), 20_000);
        assert!(set.bytes() >= 20_000 * crate::broker::queue::MESSAGE_OVERHEAD);
        assert_eq!(set.oldest_id(), Some(0));
        for id in 0..20_000 {
            assert_eq!(set.remove(id).map(|u| u.message.id), Some(id));
        }
        assert!(set.is_empty() && set.bytes() == 0);
    }
}
