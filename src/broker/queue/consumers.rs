//! A queue's consumers: who they are (`ConsumerKey`, `ConsumerSpec`),
//! their credit (prefetch and the transit window), exclusivity, and the
//! round-robin choice of the consumer the next message goes to.

use super::Queue;
use crate::broker::error::{AmqpError, AmqpResult};
use crate::protocol::types::ShortStr;

/// Identifies a consumer anywhere in the broker: the shard and connection it
/// lives on, its channel and its tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerKey {
    pub shard: u16,
    pub conn: u64,
    pub channel: u16,
    pub tag: ShortStr,
}

/// What a consumer asked for in basic.consume / basic.qos.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub key: ConsumerKey,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Unacknowledged deliveries allowed in flight; 0 means no limit.
    pub prefetch: u32,
    /// `x-priority`: higher-priority consumers get messages first (0 when
    /// not given).
    pub priority: i64,
}

/// Deliveries a consumer may have on their way to its socket before the
/// consumer's shard reports them written. Bounds memory for consumers with
/// no prefetch limit (and for no-ack consumers) when their socket is slow.
pub const TRANSIT_WINDOW: u32 = 2048;

#[derive(Debug)]
pub(super) struct Consumer {
    spec: ConsumerSpec,
    /// Deliveries start only once the consumer's consume-ok is on the wire.
    active: bool,
    /// Deliveries not yet acked (ack mode only).
    unacked: u32,
    /// Deliveries not yet reported written by the consumer's shard.
    in_transit: u32,
    /// Memory its unacked deliveries hold (`resident_cost` each).
    unacked_bytes: u64,
}

impl Consumer {
    /// Whether the consumer may take one more delivery: it is active,
    /// within its prefetch and transit window, and its unacked messages
    /// hold less than `share` bytes of memory (a consumer holding none may
    /// always take one, however large).
    pub(super) fn has_credit(&self, share: u64) -> bool {
        let prefetch_ok =
            self.spec.no_ack || self.spec.prefetch == 0 || self.unacked < self.spec.prefetch;
        self.active && prefetch_ok && self.in_transit < TRANSIT_WINDOW && self.under_share(share)
    }

    /// Whether its unacked messages hold less than `share` bytes (or none).
    fn under_share(&self, share: u64) -> bool {
        self.unacked_bytes == 0 || self.unacked_bytes < share
    }

    pub(super) fn key(&self) -> &ConsumerKey {
        &self.spec.key
    }

    pub(super) fn priority(&self) -> i64 {
        self.spec.priority
    }

    /// Ack-mode deliveries not yet settled.
    pub(super) fn unacked(&self) -> u32 {
        self.unacked
    }

    pub(super) fn no_ack(&self) -> bool {
        self.spec.no_ack
    }

    /// A message charged `cost` bytes was handed to this consumer: one more
    /// in transit, and in ack mode one more unacked.
    pub(super) fn delivered(&mut self, cost: u64) {
        self.in_transit += 1;
        if !self.spec.no_ack {
            self.unacked += 1;
            self.unacked_bytes += cost;
        }
    }
}

/// The consumers of one queue, in the order they were added.
#[derive(Debug, Default)]
pub(super) struct Consumers {
    pub(super) list: Vec<Consumer>,
    /// Where the next round-robin search starts.
    cursor: usize,
    /// Set once a consumer was ever added (auto-delete only fires after that).
    had_consumer: bool,
    /// Whether the consumers have different priorities (else plain
    /// round-robin, as cheap as without priorities).
    mixed_priorities: bool,
    /// The memory the queue's unacked messages may hold (the owner sets it
    /// from its shard's budget before each dispatch; None: no bound), split
    /// evenly between the consumers and the channels holding basic.gets
    /// (`share`).
    memory_limit: Option<u64>,
    /// How many channels held basic.gets when the limit was set (`getters`).
    getters: usize,
}

impl Consumers {
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether any consumer receives deliveries and is under its memory
    /// share (else reading more of the paged tail back would only grow
    /// memory: nobody may take it).
    pub(super) fn any_active_under_share(&self) -> bool {
        let share = self.share();
        self.list.iter().any(|c| c.active && c.under_share(share))
    }

    /// The memory one consumer's unacked messages may hold: the queue's
    /// limit split evenly between its consumers and the channels holding
    /// basic.gets.
    pub(super) fn share(&self) -> u64 {
        match self.memory_limit {
            Some(limit) => limit / (self.list.len() + self.getters).max(1) as u64,
            None => u64::MAX,
        }
    }

    fn find_mut(&mut self, key: &ConsumerKey) -> Option<&mut Consumer> {
        self.list.iter_mut().find(|c| &c.spec.key == key)
    }

    /// The next consumer with credit, round-robin among those of the
    /// highest priority that have credit; the search after this one starts
    /// past it. None when every consumer is saturated.
    pub(super) fn next_with_credit(&mut self) -> Option<&mut Consumer> {
        let n = self.list.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor % n;
        let share = self.share();
        let order = (0..n).map(|i| (start + i) % n);
        let index = if self.mixed_priorities {
            let mut best: Option<usize> = None;
            for i in order {
                let c = &self.list[i];
                if c.has_credit(share)
                    && best.is_none_or(|b| c.priority() > self.list[b].priority())
                {
                    best = Some(i);
                }
            }
            best?
        } else {
            order
                .into_iter()
                .find(|&i| self.list[i].has_credit(share))?
        };
        self.cursor = index + 1;
        Some(&mut self.list[index])
    }

    /// Recomputes whether the consumers' priorities differ.
    fn priorities_changed(&mut self) {
        let first = self.list.first().map(Consumer::priority);
        self.mixed_priorities = self.list.iter().any(|c| Some(c.priority()) != first);
    }

    /// One delivery to `key`, charged `cost` bytes, was settled.
    pub(super) fn settled(&mut self, key: &ConsumerKey, cost: u64) {
        if let Some(c) = self.find_mut(key) {
            c.unacked = c.unacked.saturating_sub(1);
            c.unacked_bytes = c.unacked_bytes.saturating_sub(cost);
        }
    }
}

impl Queue {
    /// Lets an added consumer receive deliveries.
    pub fn activate(&mut self, key: &ConsumerKey) {
        if let Some(c) = self.consumers.find_mut(key) {
            c.active = true;
        }
    }

    /// Adds a consumer, inactive until `activate`. Refuses (403, as RabbitMQ) when an exclusive consumer
    /// holds the queue, or when asking for exclusivity while others consume.
    pub fn add_consumer(&mut self, spec: ConsumerSpec) -> AmqpResult<()> {
        let consumers = &mut self.consumers;
        let held_exclusively = consumers.list.iter().any(|c| c.spec.exclusive);
        // RabbitMQ refuses every exclusive consume on a single-active-consumer
        // queue (`exclusive_consume_unavailable`), with the same text.
        let single_active = self.single_active.is_some() && spec.exclusive;
        if held_exclusively || single_active || (spec.exclusive && !consumers.list.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '/' in exclusive use",
                self.name
            )));
        }
        debug_assert!(
            !consumers.list.iter().any(|c| c.spec.key == spec.key),
            "duplicate consumer key"
        );
        consumers.list.push(Consumer {
            spec,
            active: false,
            unacked: 0,
            in_transit: 0,
            unacked_bytes: 0,
        });
        consumers.had_consumer = true;
        consumers.priorities_changed();
        self.consumer_use.want(true);
        Ok(())
    }

    /// Removes one consumer; its unacked messages stay unacked (they may
    /// still be acked on their channel). Returns whether it existed.
    pub fn remove_consumer(&mut self, key: &ConsumerKey) -> bool {
        let consumers = &mut self.consumers;
        let before = consumers.list.len();
        consumers.list.retain(|c| &c.spec.key != key);
        consumers.cursor = 0;
        consumers.priorities_changed();
        self.single_active_gone(|k| k == key, false);
        before != self.consumers.list.len()
    }

    /// Removes every consumer of one channel (or of every channel of a
    /// connection when `channel` is None). Returns how many went.
    pub fn remove_consumers_of(&mut self, shard: u16, conn: u64, channel: Option<u16>) -> usize {
        let gone = |k: &ConsumerKey| {
            k.shard == shard && k.conn == conn && channel.is_none_or(|ch| ch == k.channel)
        };
        let consumers = &mut self.consumers;
        let before = consumers.list.len();
        consumers.list.retain(|c| !gone(&c.spec.key));
        consumers.cursor = 0;
        consumers.priorities_changed();
        // The channel's unacked messages are requeued right behind this.
        self.single_active_gone(gone, true);
        before - self.consumers.list.len()
    }

    pub fn has_consumer(&self, key: &ConsumerKey) -> bool {
        self.consumers.list.iter().any(|c| &c.spec.key == key)
    }

    /// An auto-delete queue goes once it had a consumer and has none left.
    pub fn should_auto_delete(&self) -> bool {
        self.config.auto_delete && self.consumers.had_consumer && self.consumers.is_empty()
    }

    /// The consumer's shard reports `n` deliveries written to its socket.
    pub fn credit(&mut self, key: &ConsumerKey, n: u32) {
        if let Some(c) = self.consumers.find_mut(key) {
            c.in_transit = c.in_transit.saturating_sub(n);
        }
    }

    /// Bounds the memory the consumers' unacked messages may hold, split
    /// evenly between them and the channels holding basic.gets (the owner
    /// sets its shard's current limit before each dispatch): a consumer
    /// past its share gets nothing more until its acks free memory, and
    /// the paged tail is not read back for it.
    pub fn set_memory_limit(&mut self, limit: u64) {
        self.consumers.memory_limit = Some(limit);
        self.consumers.getters = self.unacked.getter_count();
    }

    /// Changes a consumer's prefetch limit (basic.qos after consume).
    pub fn set_prefetch(&mut self, key: &ConsumerKey, prefetch: u32) {
        if let Some(c) = self.consumers.find_mut(key) {
            c.spec.prefetch = prefetch;
        }
    }

    /// Consumers that must be told the queue is gone (queue deleted).
    pub fn consumer_keys(&self) -> Vec<ConsumerKey> {
        self.consumers
            .list
            .iter()
            .map(|c| c.spec.key.clone())
            .collect()
    }

    /// (key, no_ack, prefetch, unacked) for every consumer, for admin listings.
    pub fn consumer_summaries(&self) -> Vec<(ConsumerKey, bool, u32, u32)> {
        self.consumers
            .list
            .iter()
            .map(|c| {
                (
                    c.spec.key.clone(),
                    c.spec.no_ack,
                    c.spec.prefetch,
                    c.unacked,
                )
            })
            .collect()
    }
}
