//! basic.get in ack mode and the memory budget: which channel
//! (`GetterKey`) each unsettled get belongs to, what each one's gets hold
//! in memory, and whether a channel may take one more (`Queue::get_for`).
//! A channel that gets without acking is held to a share of the queue's
//! memory room like a consumer (`consumers`): past it the get finds
//! nothing, and the paged tail is not read back for it, until its acks (or
//! its channel closing) free memory. RabbitMQ has no such bound.

use super::Queue;
use std::collections::HashMap;

/// The channel that did a basic.get: its connection's shard and id and
/// the channel number (a consumer's key without the tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GetterKey {
    pub shard: u16,
    pub conn: u64,
    pub channel: u16,
}

/// What one channel's unsettled gets hold.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    count: u32,
    /// `resident_cost` of the messages.
    bytes: u64,
}

/// The channels holding unsettled gets of one queue (an entry leaves with
/// its last get, so there are at most as many as gets unsettled).
#[derive(Debug, Default)]
pub(super) struct Getters {
    by_key: HashMap<GetterKey, Held>,
}

impl Getters {
    /// `getter` took a message charged `cost` bytes.
    pub(super) fn took(&mut self, getter: GetterKey, cost: u64) {
        let held = self.by_key.entry(getter).or_default();
        held.count += 1;
        held.bytes += cost;
    }

    /// One of `getter`'s gets, charged `cost` bytes, was settled.
    pub(super) fn settled(&mut self, getter: &GetterKey, cost: u64) {
        let Some(held) = self.by_key.get_mut(getter) else {
            return;
        };
        held.count = held.count.saturating_sub(1);
        held.bytes = held.bytes.saturating_sub(cost);
        if held.count == 0 {
            self.by_key.remove(getter);
        }
    }

    /// The memory `getter`'s unsettled gets hold.
    pub(super) fn bytes(&self, getter: &GetterKey) -> u64 {
        self.by_key.get(getter).map_or(0, |h| h.bytes)
    }

    /// How many channels hold unsettled gets.
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

impl Queue {
    /// Whether `getter` may take one more message by basic.get in ack
    /// mode, the queue's memory room being `room` (`Shard::
    /// queue_memory_room`): its unsettled gets hold nothing, or less than
    /// its share — the room split evenly between the queue's consumers and
    /// the channels holding gets, as `set_memory_limit` splits it.
    pub fn getter_may_take(&self, getter: &GetterKey, room: u64) -> bool {
        let held = self.unacked.getter_bytes(getter);
        if held == 0 {
            return true;
        }
        let takers = self.consumers.len() + self.unacked.getter_count();
        held < room / takers.max(1) as u64
    }

    /// Whether basic.get by `getter` must wait for a chunk to be read
    /// back: every ready message is paged out, and the get may take one
    /// (a no-ack get always may; in ack mode see `getter_may_take`). A
    /// getter past its share is answered at once, with nothing.
    pub fn get_waits_for_page_in(&self, getter: &GetterKey, no_ack: bool, room: u64) -> bool {
        self.needs_page_in_for_get() && (no_ack || self.getter_may_take(getter, room))
    }
}
