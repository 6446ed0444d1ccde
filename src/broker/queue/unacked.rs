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
/// memory budget like ready ones).
#[derive(Debug, Default)]
pub(super) struct UnackedSet {
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
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Memory charged for the messages held (`resident_cost` each).
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The channels holding unsettled gets.
    pub(super) fn getters(&self) -> &Getters {
        &self.getters
    }

    /// `message` was handed to `taker`.
    pub(super) fn insert(&mut self, message: QueuedMessage, taker: Taker) {
        let cost = resident_cost(&message.message);
        self.bytes += cost;
        if let Taker::Get(Some(getter)) = &taker {
            self.getters.took(*getter, cost);
        }
        self.by_id.insert(message.id, Unacked { message, taker });
    }

    /// Takes the delivery `id`; a set that drains gives its capacity back
    /// (`id_ring`, `broker::capacity`).
    pub(super) fn remove(&mut self, id: u64) -> Option<Unacked> {
        let gone = self.by_id.remove(id)?;
        self.forget(&gone);
        Some(gone)
    }

    /// Takes what `gone` held off the totals.
    fn forget(&mut self, gone: &Unacked) {
        let cost = resident_cost(&gone.message.message);
        self.bytes -= cost;
        if let Taker::Get(Some(getter)) = &gone.taker {
            self.getters.settled(getter, cost);
        }
    }

    /// The smallest id of an unsettled delivery.
    pub(super) fn oldest_id(&self) -> Option<u64> {
        self.by_id.min_id()
    }

    /// The consumer of every unsettled delivery (None: basic.get).
    pub(super) fn consumers(&self) -> impl Iterator<Item = Option<&ConsumerKey>> {
        self.by_id.values().map(Unacked::consumer)
    }

    pub(super) fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.by_id.values().map(|u| &u.message)
    }

    pub(super) fn messages_mut(&mut self) -> impl Iterator<Item = &mut QueuedMessage> {
        self.by_id.values_mut().map(|u| &mut u.message)
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
