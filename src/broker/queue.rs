//! One queue's state on its owner shard: ready messages in order (the
//! oldest in memory, the rest paged out to the log once the queue holds
//! more than its memory share), messages delivered but not yet
//! acknowledged, consumers with their prefetch credit, and round-robin
//! dispatch. Pure and synchronous: the shard runtime feeds it publishes,
//! acks, consumer changes and paged-in chunks, and ships the deliveries it
//! returns.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::message::{Message, MessageRef};
use crate::broker::paged::{PageRead, PagedTail};
use crate::protocol::types::{FieldTable, ShortStr};
use std::collections::{HashMap, VecDeque};

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
}

/// Deliveries a consumer may have on their way to its socket before the
/// consumer's shard reports them written. Bounds memory for consumers with
/// no prefetch limit (and for no-ack consumers) when their socket is slow.
pub const TRANSIT_WINDOW: u32 = 2048;

/// Memory a ready message is charged beyond its body and properties (the
/// queue entry, the shared message, its slices and a share of the read
/// buffer they point into). An estimate that errs high.
pub const MESSAGE_OVERHEAD: u64 = 448;

/// Paging in starts when fewer than this many ready messages are in memory…
pub const PAGE_IN_BELOW_MESSAGES: usize = 4096;
/// …and they take less than this.
pub const PAGE_IN_BELOW_BYTES: u64 = 4 << 20;

/// The memory a ready message is charged.
pub fn resident_cost(message: &Message) -> u64 {
    MESSAGE_OVERHEAD + message.body.len() + message.raw_properties.len() as u64
}

/// A message in the queue.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    /// Position in the queue: strictly increasing in publish order.
    pub id: u64,
    pub message: MessageRef,
    pub redelivered: bool,
    /// The log segment holding its record, for a persistent message in a
    /// durable queue.
    pub stored: Option<u32>,
}

/// A message handed to a consumer (or to basic.get).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub consumer: ConsumerKey,
    pub no_ack: bool,
    pub msg_id: u64,
    pub redelivered: bool,
    pub message: MessageRef,
    /// The log segment of a stored message (a no-ack delivery removes it).
    pub stored: Option<u32>,
}

/// How a delivered message is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Acknowledged, or rejected without requeue: gone.
    Remove,
    /// Rejected/nacked with requeue, or its channel died: back to ready, redelivered.
    Requeue,
}

#[derive(Debug)]
struct Consumer {
    spec: ConsumerSpec,
    /// Deliveries start only once the consumer's consume-ok is on the wire.
    active: bool,
    /// Deliveries not yet acked (ack mode only).
    unacked: u32,
    /// Deliveries not yet reported written by the consumer's shard.
    in_transit: u32,
}

impl Consumer {
    fn has_credit(&self) -> bool {
        let prefetch_ok =
            self.spec.no_ack || self.spec.prefetch == 0 || self.unacked < self.spec.prefetch;
        self.active && prefetch_ok && self.in_transit < TRANSIT_WINDOW
    }
}

#[derive(Debug)]
struct Unacked {
    message: QueuedMessage,
    /// Index into nothing: the consumer's key, or None for basic.get.
    consumer: Option<ConsumerKey>,
}

/// The declared shape of a queue (what equivalence checks compare).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

/// What a purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Ready messages dropped (in memory and paged).
    pub count: u32,
    /// (id, segment) of the stored messages dropped from memory.
    pub stored: Vec<(u64, u32)>,
    /// (segment, messages) of the paged ones.
    pub paged: Vec<(u32, u64)>,
    /// The largest id dropped.
    pub max_id: Option<u64>,
}

/// A chunk read back from the log for `Queue::finish_page_in`: one message
/// record of the queue, with the segment holding it if it is a durable
/// record (None for a paged-only copy).
pub struct PagedMessage {
    pub id: u64,
    pub message: MessageRef,
    pub stored: Option<u32>,
}

#[derive(Debug)]
pub struct Queue {
    name: ShortStr,
    config: QueueConfig,
    /// The oldest ready messages, in memory, all older than the tail's.
    ready: VecDeque<QueuedMessage>,
    /// The newer ready messages, paged out to the log.
    tail: PagedTail,
    /// `resident_cost` of the messages in `ready`.
    resident_bytes: u64,
    unacked: HashMap<u64, Unacked>,
    consumers: Vec<Consumer>,
    /// Where the next round-robin search starts.
    cursor: usize,
    next_id: u64,
    /// Set once a consumer was ever added (auto-delete only fires after that).
    had_consumer: bool,
}

impl Queue {
    pub fn new(name: ShortStr, config: QueueConfig) -> Queue {
        Queue {
            name,
            config,
            ready: VecDeque::new(),
            tail: PagedTail::new(),
            resident_bytes: 0,
            unacked: HashMap::new(),
            consumers: Vec::new(),
            cursor: 0,
            next_id: 1,
            had_consumer: false,
        }
    }

    pub fn name(&self) -> &ShortStr {
        &self.name
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Ready messages, in memory and paged (what declare-ok and purge count).
    pub fn message_count(&self) -> u32 {
        (self.ready.len() as u64 + self.tail.count()).min(u32::MAX as u64) as u32
    }

    /// Ready messages held in memory.
    pub fn resident_count(&self) -> usize {
        self.ready.len()
    }

    /// Ready messages paged out to the log.
    pub fn paged_count(&self) -> u64 {
        self.tail.count()
    }

    /// Memory charged for the ready messages held in memory.
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    pub fn unacked_count(&self) -> u32 {
        self.unacked.len().min(u32::MAX as usize) as u32
    }

    pub fn consumer_count(&self) -> u32 {
        self.consumers.len() as u32
    }

    /// Whether a new message must go to the paged tail: once anything is
    /// paged (to keep order), or when the messages in memory take `limit`
    /// bytes or more.
    pub fn pages_new_messages(&self, limit: u64) -> bool {
        !self.tail.is_empty() || self.resident_bytes >= limit
    }

    /// Appends a message in memory; returns its id.
    pub fn publish(&mut self, message: MessageRef) -> u64 {
        debug_assert!(
            self.tail.is_empty(),
            "in-memory publish behind a paged tail"
        );
        let id = self.next_id;
        self.next_id += 1;
        self.resident_bytes += resident_cost(&message);
        self.ready.push_back(QueuedMessage {
            id,
            message,
            redelivered: false,
            stored: None,
        });
        id
    }

    /// Takes the id of a message about to be paged out (its log record
    /// names it); `push_paged` follows once the record is appended. An id
    /// whose append failed is simply never used.
    pub fn reserve_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds the paged-out message `id`, whose record is `len` bytes at
    /// `offset` of log segment `segment`.
    pub fn push_paged(&mut self, id: u64, segment: u32, offset: u32, len: u32) {
        debug_assert!(id < self.next_id);
        debug_assert!(self.ready.back().is_none_or(|m| m.id < id));
        self.tail.push(id, segment, offset, len);
    }

    /// Whether the shard should read the next paged chunk back now: a
    /// consumer is waiting and few ready messages are left in memory.
    pub fn wants_page_in(&self) -> bool {
        !self.tail.is_empty()
            && !self.tail.is_reading()
            && !self.tail.is_failed()
            && self.ready.len() < PAGE_IN_BELOW_MESSAGES
            && self.resident_bytes < PAGE_IN_BELOW_BYTES
            && self.consumers.iter().any(|c| c.active)
    }

    /// Whether basic.get must wait for a chunk to be read back.
    pub fn needs_page_in_for_get(&self) -> bool {
        self.ready.is_empty() && !self.tail.is_empty() && !self.tail.is_failed()
    }

    /// The next chunk (at most `max_len` bytes) to read back, unless one is
    /// already out or nothing is paged.
    pub fn start_page_in(&mut self, max_len: u32) -> Option<PageRead> {
        self.tail.start_read(max_len)
    }

    /// Takes the answer to `read`: the queue's records found in its first
    /// `consumed` bytes, in log order. Those still paged become ready in
    /// memory. Returns how many of the read segment's live references the
    /// caller must release (paged-only copies now in memory, and ids whose
    /// record was not found).
    pub fn finish_page_in(
        &mut self,
        read: &PageRead,
        found: Vec<PagedMessage>,
        consumed: u32,
    ) -> u64 {
        let found = found
            .into_iter()
            .map(|m| (m.id, (m.message, m.stored)))
            .collect();
        let (got, lost) = self.tail.finish_read(read, found, consumed);
        let mut release = lost;
        for (id, redelivered, (message, stored)) in got {
            debug_assert!(self.ready.back().is_none_or(|m| m.id < id));
            if stored.is_none() {
                release += 1;
            }
            self.resident_bytes += resident_cost(&message);
            self.ready.push_back(QueuedMessage {
                id,
                message,
                redelivered,
                stored,
            });
        }
        release
    }

    /// Gives up the outstanding read after the log failed to give it back
    /// (retries included): the queue stops paging in (`is_crashed`) and
    /// keeps its paged messages, whose records stay live in the log.
    /// Returns whether the read was current.
    pub fn fail_page_in(&mut self, read: &PageRead) -> bool {
        self.tail.fail_read(read)
    }

    /// Whether `read` is still this queue's outstanding page-in (a purge or
    /// deletion makes it stale).
    pub fn page_in_current(&self, read: &PageRead) -> bool {
        self.tail.is_current(read)
    }

    /// Whether a page-in failed for good: the paged messages stay in the
    /// log but are not served until a restart (or a purge drops them).
    /// `warren ctl list_queues` shows the queue as `crashed`.
    pub fn is_crashed(&self) -> bool {
        self.tail.is_failed()
    }

    /// The message `id` just enqueued (`publish`) or reserved for the tail
    /// (`reserve_id`) has its log record, `len` bytes at `offset` of
    /// `segment`: a message in memory remembers the segment, a paged one
    /// joins the tail.
    pub fn record_written(&mut self, id: u64, segment: u32, offset: u32, len: u32) {
        match self.ready.back_mut() {
            Some(last) if last.id == id => last.stored = Some(segment),
            _ => self.push_paged(id, segment, offset, len),
        }
    }

    /// Rebuilds the queue from its recovered messages: `head` in memory
    /// (records that compaction moved out of log order; older than the
    /// tail), the rest paged (read back as consumers need them). New
    /// messages get ids above `max_seen_id`, the largest id any log record
    /// named for this queue, so an old ack can never match a new message.
    pub fn restore(&mut self, head: Vec<QueuedMessage>, tail: PagedTail, max_seen_id: u64) {
        assert!(self.ready.is_empty() && self.unacked.is_empty() && self.tail.is_empty());
        debug_assert!(head.windows(2).all(|w| w[0].id < w[1].id));
        debug_assert!(head
            .last()
            .zip(tail.first_id())
            .is_none_or(|(h, t)| h.id < t));
        let last = tail.last_id().or(head.last().map(|m| m.id)).unwrap_or(0);
        self.next_id = self.next_id.max(last.max(max_seen_id) + 1);
        self.resident_bytes = head.iter().map(|m| resident_cost(&m.message)).sum();
        self.ready = head.into();
        self.tail = tail;
    }

    /// Stored messages held in memory (ready or unacked) whose record is in
    /// `segment`.
    pub fn stored_in(&self, segment: u32) -> u64 {
        self.ready
            .iter()
            .chain(self.unacked.values().map(|u| &u.message))
            .filter(|m| m.stored == Some(segment))
            .count() as u64
    }

    /// Compaction: every stored message held in memory whose record is in
    /// `segment` gets a new record — `rewrite(id, message, delivered)`
    /// appends it (`delivered`: it was handed out before, so a restart must
    /// mark it redelivered) and returns its segment (None: left where it is).
    pub fn relocate_stored(
        &mut self,
        segment: u32,
        mut rewrite: impl FnMut(u64, &MessageRef, bool) -> Option<u32>,
    ) {
        let ready = self.ready.iter_mut().map(|m| {
            let delivered = m.redelivered;
            (m, delivered)
        });
        let unacked = self.unacked.values_mut().map(|u| (&mut u.message, true));
        for (m, delivered) in ready.chain(unacked) {
            if m.stored == Some(segment) {
                if let Some(to) = rewrite(m.id, &m.message, delivered) {
                    m.stored = Some(to);
                }
            }
        }
    }

    /// (segment, live references) of everything the queue holds in the log:
    /// stored messages in memory (ready or unacked) and paged runs.
    pub fn stored_segments(&self) -> Vec<(u32, u64)> {
        self.ready
            .iter()
            .chain(self.unacked.values().map(|u| &u.message))
            .filter_map(|m| m.stored.map(|s| (s, 1)))
            .chain(self.tail.segments())
            .collect()
    }

    /// Lets an added consumer receive deliveries.
    pub fn activate(&mut self, key: &ConsumerKey) {
        if let Some(c) = self.consumers.iter_mut().find(|c| &c.spec.key == key) {
            c.active = true;
        }
    }

    /// Adds a consumer, inactive until `activate`. Refuses (403, as RabbitMQ) when an exclusive consumer
    /// holds the queue, or when asking for exclusivity while others consume.
    pub fn add_consumer(&mut self, spec: ConsumerSpec) -> AmqpResult<()> {
        let held_exclusively = self.consumers.iter().any(|c| c.spec.exclusive);
        if held_exclusively || (spec.exclusive && !self.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '/' in exclusive use",
                self.name
            )));
        }
        debug_assert!(
            !self.consumers.iter().any(|c| c.spec.key == spec.key),
            "duplicate consumer key"
        );
        self.consumers.push(Consumer {
            spec,
            active: false,
            unacked: 0,
            in_transit: 0,
        });
        self.had_consumer = true;
        Ok(())
    }

    /// Removes one consumer; its unacked messages stay unacked (they may
    /// still be acked on their channel). Returns whether it existed.
    pub fn remove_consumer(&mut self, key: &ConsumerKey) -> bool {
        let before = self.consumers.len();
        self.consumers.retain(|c| &c.spec.key != key);
        self.cursor = 0;
        before != self.consumers.len()
    }

    /// Removes every consumer of one channel (or of every channel of a
    /// connection when `channel` is None). Returns how many went.
    pub fn remove_consumers_of(&mut self, shard: u16, conn: u64, channel: Option<u16>) -> usize {
        let before = self.consumers.len();
        self.consumers.retain(|c| {
            let k = &c.spec.key;
            !(k.shard == shard && k.conn == conn && channel.is_none_or(|ch| ch == k.channel))
        });
        self.cursor = 0;
        before - self.consumers.len()
    }

    pub fn has_consumer(&self, key: &ConsumerKey) -> bool {
        self.consumers.iter().any(|c| &c.spec.key == key)
    }

    /// An auto-delete queue goes once it had a consumer and has none left.
    pub fn should_auto_delete(&self) -> bool {
        self.config.auto_delete && self.had_consumer && self.consumers.is_empty()
    }

    /// The consumer's shard reports `n` deliveries written to its socket.
    pub fn credit(&mut self, key: &ConsumerKey, n: u32) {
        if let Some(c) = self.consumers.iter_mut().find(|c| &c.spec.key == key) {
            c.in_transit = c.in_transit.saturating_sub(n);
        }
    }

    /// Changes a consumer's prefetch limit (basic.qos after consume).
    pub fn set_prefetch(&mut self, key: &ConsumerKey, prefetch: u32) {
        if let Some(c) = self.consumers.iter_mut().find(|c| &c.spec.key == key) {
            c.spec.prefetch = prefetch;
        }
    }

    /// The next delivery, round-robin over consumers with credit, or None
    /// when the queue is empty or every consumer is saturated.
    pub fn next_delivery(&mut self) -> Option<Delivery> {
        if self.ready.is_empty() || self.consumers.is_empty() {
            return None;
        }
        let n = self.consumers.len();
        let start = self.cursor % n;
        let index = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.consumers[i].has_credit())?;
        self.cursor = index + 1;
        let message = self.ready.pop_front().expect("checked non-empty");
        self.resident_bytes -= resident_cost(&message.message);
        let consumer = &mut self.consumers[index];
        consumer.in_transit += 1;
        let key = consumer.spec.key.clone();
        let no_ack = consumer.spec.no_ack;
        let delivery = Delivery {
            consumer: key.clone(),
            no_ack,
            msg_id: message.id,
            redelivered: message.redelivered,
            message: message.message.clone(),
            stored: message.stored,
        };
        if !no_ack {
            consumer.unacked += 1;
            self.unacked.insert(
                message.id,
                Unacked {
                    message,
                    consumer: Some(key),
                },
            );
        }
        Some(delivery)
    }

    /// basic.get: the head message, if any. In ack mode it stays unacked
    /// (owned by no consumer) until settled.
    pub fn get(&mut self, no_ack: bool) -> Option<QueuedMessage> {
        let message = self.ready.pop_front()?;
        self.resident_bytes -= resident_cost(&message.message);
        if !no_ack {
            self.unacked.insert(
                message.id,
                Unacked {
                    message: message.clone(),
                    consumer: None,
                },
            );
        }
        Some(message)
    }

    /// Settles delivered messages by id. Unknown ids (already settled, or
    /// from before a purge) are ignored. Requeued messages go back to the
    /// head of the queue in their original order, marked redelivered.
    /// Returns (id, segment) of the stored messages that left the queue.
    pub fn settle(&mut self, ids: &[u64], how: Settle) -> Vec<(u64, u32)> {
        let mut removed = Vec::new();
        let mut requeued = Vec::new();
        for id in ids {
            let Some(entry) = self.unacked.remove(id) else {
                continue;
            };
            if let Some(key) = &entry.consumer {
                if let Some(c) = self.consumers.iter_mut().find(|c| &c.spec.key == key) {
                    c.unacked = c.unacked.saturating_sub(1);
                }
            }
            if how == Settle::Requeue {
                let mut message = entry.message;
                message.redelivered = true;
                requeued.push(message);
            } else if let Some(segment) = entry.message.stored {
                removed.push((entry.message.id, segment));
            }
        }
        if !requeued.is_empty() {
            self.requeue(requeued);
        }
        removed
    }

    /// Merges messages back into the ready list, keeping id order.
    fn requeue(&mut self, mut messages: Vec<QueuedMessage>) {
        messages.sort_unstable_by_key(|m| m.id);
        debug_assert!(self.tail.first_id().is_none_or(|first| messages
            .last()
            .expect("non-empty")
            .id
            < first));
        self.resident_bytes += messages
            .iter()
            .map(|m| resident_cost(&m.message))
            .sum::<u64>();
        let fits_at_head = self
            .ready
            .front()
            .is_none_or(|head| messages.last().expect("non-empty").id < head.id);
        if fits_at_head {
            for m in messages.into_iter().rev() {
                self.ready.push_front(m);
            }
            return;
        }
        let old: Vec<QueuedMessage> = self.ready.drain(..).collect();
        let mut a = messages.into_iter().peekable();
        let mut b = old.into_iter().peekable();
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.id < y.id,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            self.ready.push_back(next.expect("peeked"));
        }
    }

    /// Drops every ready message, in memory and paged. Unacked ones stay.
    pub fn purge(&mut self) -> Purged {
        let count = self.message_count();
        let max_id = self
            .tail
            .last_id()
            .or_else(|| self.ready.back().map(|m| m.id));
        let stored = self
            .ready
            .drain(..)
            .filter_map(|m| m.stored.map(|s| (m.id, s)))
            .collect();
        self.resident_bytes = 0;
        Purged {
            count,
            stored,
            paged: self.tail.clear(),
            max_id,
        }
    }

    /// Consumers that must be told the queue is gone (queue deleted).
    pub fn consumer_keys(&self) -> Vec<ConsumerKey> {
        self.consumers.iter().map(|c| c.spec.key.clone()).collect()
    }

    /// (key, no_ack, prefetch, unacked) for every consumer, for admin listings.
    pub fn consumer_summaries(&self) -> Vec<(ConsumerKey, bool, u32, u32)> {
        self.consumers
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::{Body, Message};
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

    fn body(d: &Delivery) -> String {
        String::from_utf8(d.message.body.to_bytes().to_vec()).unwrap()
    }

    fn key(tag: &str) -> ConsumerKey {
        ConsumerKey {
            shard: 0,
            conn: 1,
            channel: 1,
            tag: ShortStr::from(tag),
        }
    }

    fn consumer(tag: &str, prefetch: u32, no_ack: bool) -> ConsumerSpec {
        ConsumerSpec {
            key: key(tag),
            no_ack,
            exclusive: false,
            prefetch,
        }
    }

    fn add(q: &mut Queue, spec: ConsumerSpec) {
        let key = spec.key.clone();
        q.add_consumer(spec).unwrap();
        q.activate(&key);
    }

    fn queue() -> Queue {
        Queue::new(
            ShortStr::from("q"),
            QueueConfig {
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: FieldTable::new(),
            },
        )
    }

    #[test]
    fn round_robin_between_consumers() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, true));
        add(&mut q, consumer("b", 0, true));
        for i in 0..4 {
            q.publish(msg(i));
        }
        let tags: Vec<String> = std::iter::from_fn(|| q.next_delivery())
            .map(|d| d.consumer.tag.to_string())
            .collect();
        assert_eq!(tags, ["a", "b", "a", "b"]);
        assert_eq!(q.message_count(), 0);
    }

    #[test]
    fn prefetch_limits_unacked_and_ack_frees_credit() {
        let mut q = queue();
        add(&mut q, consumer("a", 1, false));
        q.publish(msg(1));
        q.publish(msg(2));
        let d = q.next_delivery().expect("first delivery");
        assert!(q.next_delivery().is_none(), "prefetch 1 holds the second");
        q.settle(&[d.msg_id], Settle::Remove);
        let d2 = q.next_delivery().expect("second after ack");
        assert_eq!(body(&d2), "2");
    }

    #[test]
    fn fair_dispatch_skips_busy_consumer() {
        let mut q = queue();
        add(&mut q, consumer("slow", 1, false));
        add(&mut q, consumer("fast", 1, false));
        for i in 0..3 {
            q.publish(msg(i));
        }
        let d1 = q.next_delivery().unwrap();
        let d2 = q.next_delivery().unwrap();
        assert_eq!(
            (d1.consumer.tag.as_str(), d2.consumer.tag.as_str()),
            ("slow", "fast")
        );
        assert!(q.next_delivery().is_none());
        q.settle(&[d2.msg_id], Settle::Remove);
        let d3 = q.next_delivery().unwrap();
        assert_eq!(d3.consumer.tag.as_str(), "fast");
    }

    #[test]
    fn requeue_restores_original_order_with_redelivered() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, false));
        for i in 1..=5 {
            q.publish(msg(i));
        }
        let ds: Vec<Delivery> = (0..3).map(|_| q.next_delivery().unwrap()).collect();
        q.remove_consumer(&key("a"));
        // Requeue out of order; they must come back as 1, 2, 3 then 4, 5.
        q.settle(&[ds[2].msg_id], Settle::Requeue);
        q.settle(&[ds[0].msg_id, ds[1].msg_id], Settle::Requeue);
        add(&mut q, consumer("b", 0, true));
        let got: Vec<(String, bool)> = std::iter::from_fn(|| q.next_delivery())
            .map(|d| (body(&d), d.redelivered))
            .collect();
        assert_eq!(
            got,
            [
                ("1".into(), true),
                ("2".into(), true),
                ("3".into(), true),
                ("4".into(), false),
                ("5".into(), false)
            ]
        );
    }

    #[test]
    fn requeue_merges_into_middle() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, false));
        for i in 1..=4 {
            q.publish(msg(i));
        }
        let d1 = q.next_delivery().unwrap();
        let d2 = q.next_delivery().unwrap();
        q.settle(&[d2.msg_id], Settle::Requeue); // ready: 2,3,4
        let d2b = q.next_delivery().unwrap(); // 2 again
        assert_eq!(body(&d2b), "2");
        q.settle(&[d1.msg_id], Settle::Requeue); // ready: 1,3,4
        q.remove_consumer(&key("a"));
        assert_eq!(q.get(true).map(|m| m.id), Some(d1.msg_id));
        assert_eq!(q.message_count(), 2);
    }

    #[test]
    fn exclusive_consumer_refuses_others() {
        let mut q = queue();
        let mut spec = consumer("a", 0, false);
        spec.exclusive = true;
        add(&mut q, spec);
        let err = q.add_consumer(consumer("b", 0, false)).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.text,
            "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use"
        );
    }

    #[test]
    fn transit_window_bounds_no_ack_consumer_until_credit() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, true));
        for i in 0..(TRANSIT_WINDOW + 10) {
            q.publish(msg(i));
        }
        let n = std::iter::from_fn(|| q.next_delivery()).count() as u32;
        assert_eq!(n, TRANSIT_WINDOW);
        q.credit(&key("a"), 10);
        assert_eq!(std::iter::from_fn(|| q.next_delivery()).count(), 10);
    }

    #[test]
    fn get_in_ack_mode_keeps_message_unacked_until_settled() {
        let mut q = queue();
        q.publish(msg(1));
        let m = q.get(false).unwrap();
        assert_eq!(q.unacked_count(), 1);
        assert_eq!(q.message_count(), 0);
        q.settle(&[m.id], Settle::Requeue);
        assert_eq!(q.message_count(), 1);
        assert!(q.get(true).unwrap().redelivered);
    }

    /// Pages `n` messages out as if written back to back in segment 1
    /// (record i at offset 100 * i); returns their ids.
    fn page_out(q: &mut Queue, n: u32) -> Vec<u64> {
        (0..n)
            .map(|_| {
                let id = q.reserve_id();
                q.push_paged(id, 1, 100 * id as u32, 100);
                id
            })
            .collect()
    }

    fn paged_back(ids: &[u64]) -> Vec<PagedMessage> {
        ids.iter()
            .map(|&id| PagedMessage {
                id,
                message: msg(id as u32),
                stored: None,
            })
            .collect()
    }

    #[test]
    fn a_queue_over_its_limit_pages_and_keeps_order_and_counts() {
        let mut q = queue();
        let cost = resident_cost(&msg(1));
        let limit = 2 * cost;
        let mut ids = Vec::new();
        for i in 1..=2 {
            assert!(!q.pages_new_messages(limit));
            ids.push(q.publish(msg(i)));
        }
        assert_eq!(q.resident_bytes(), limit);
        assert!(q.pages_new_messages(limit));
        let paged = page_out(&mut q, 3);
        assert_eq!(
            (q.message_count(), q.resident_count(), q.paged_count()),
            (5, 2, 3)
        );
        // Once something is paged, new messages follow it even if memory frees up.
        add(&mut q, consumer("a", 0, true));
        let first: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
            .map(|d| d.msg_id)
            .collect();
        assert_eq!(first, ids);
        assert_eq!(q.resident_bytes(), 0);
        assert!(
            q.pages_new_messages(limit),
            "order: new messages go behind the tail"
        );
        assert!(q.wants_page_in());
        let read = q.start_page_in(1 << 20).unwrap();
        assert!(!q.wants_page_in(), "one read at a time");
        let release = q.finish_page_in(&read, paged_back(&paged), read.len);
        assert_eq!(release, 3, "paged-only copies release their log references");
        let rest: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
            .map(|d| d.msg_id)
            .collect();
        assert_eq!(rest, paged);
        assert_eq!(q.message_count(), 0);
        assert!(!q.pages_new_messages(limit), "tail drained: back to memory");
    }

    #[test]
    fn requeued_messages_go_ahead_of_the_paged_tail() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, false));
        q.publish(msg(1));
        let d = q.next_delivery().unwrap();
        let paged = page_out(&mut q, 2);
        q.settle(&[d.msg_id], Settle::Requeue);
        assert_eq!(q.message_count(), 3);
        let again = q.next_delivery().unwrap();
        assert_eq!((again.msg_id, again.redelivered), (d.msg_id, true));
        let read = q.start_page_in(1 << 20).unwrap();
        q.finish_page_in(&read, paged_back(&paged), read.len);
        let ids: Vec<u64> = std::iter::from_fn(|| q.next_delivery())
            .map(|d| d.msg_id)
            .collect();
        assert_eq!(ids, paged);
    }

    #[test]
    fn purge_drops_the_tail_and_voids_a_read_in_flight() {
        let mut q = queue();
        q.publish(msg(1));
        let paged = page_out(&mut q, 4);
        let read = q.start_page_in(1 << 20).unwrap();
        let purged = q.purge();
        assert_eq!(purged.count, 5);
        assert_eq!(purged.paged, vec![(1, 4)]);
        assert_eq!(purged.max_id, paged.last().copied());
        assert_eq!(q.finish_page_in(&read, paged_back(&paged), read.len), 0);
        assert_eq!((q.message_count(), q.resident_bytes()), (0, 0));
    }

    #[test]
    fn basic_get_needs_a_page_in_only_when_memory_is_empty() {
        let mut q = queue();
        q.publish(msg(1));
        let paged = page_out(&mut q, 1);
        assert!(!q.needs_page_in_for_get());
        assert_eq!(q.get(true).unwrap().id, 1);
        assert!(q.needs_page_in_for_get());
        let read = q.start_page_in(1 << 20).unwrap();
        q.finish_page_in(&read, paged_back(&paged), read.len);
        assert_eq!(q.get(true).unwrap().id, paged[0]);
    }

    #[test]
    fn durable_copies_paged_back_keep_their_segment() {
        let mut q = queue();
        let paged = page_out(&mut q, 2);
        let read = q.start_page_in(1 << 20).unwrap();
        let found = paged
            .iter()
            .map(|&id| PagedMessage {
                id,
                message: msg(id as u32),
                stored: Some(1),
            })
            .collect();
        assert_eq!(q.finish_page_in(&read, found, read.len), 0);
        assert_eq!(q.stored_segments(), vec![(1, 1), (1, 1)]);
    }

    #[test]
    fn compaction_relocates_stored_messages_in_memory_ready_or_unacked() {
        let mut q = queue();
        add(&mut q, consumer("a", 0, false));
        for i in 1..=3 {
            let id = q.publish(msg(i));
            q.record_written(id, if i == 3 { 8 } else { 7 }, 0, 10);
        }
        let d = q.next_delivery().unwrap(); // id 1: unacked
        q.remove_consumer(&key("a"));
        assert_eq!((q.stored_in(7), q.stored_in(8)), (2, 1));
        let mut moved = Vec::new();
        q.relocate_stored(7, |id, _, delivered| {
            assert_eq!(delivered, id == 1, "only the unacked one was delivered");
            moved.push(id);
            Some(9)
        });
        moved.sort_unstable();
        assert_eq!(moved, vec![1, 2]);
        assert_eq!((q.stored_in(7), q.stored_in(9)), (0, 2));
        assert_eq!(q.settle(&[d.msg_id], Settle::Remove), vec![(1, 9)]);
    }

    #[test]
    fn restore_puts_moved_messages_ahead_of_the_tail() {
        let mut q = queue();
        let mut tail = PagedTail::new();
        tail.push(5, 3, 0, 100);
        let head = vec![QueuedMessage {
            id: 2,
            message: msg(2),
            redelivered: true,
            stored: Some(4),
        }];
        q.restore(head, tail, 9);
        assert_eq!(
            (q.message_count(), q.resident_count(), q.paged_count()),
            (2, 1, 1)
        );
        assert_eq!(q.resident_bytes(), resident_cost(&msg(2)));
        let m = q.get(true).unwrap();
        assert_eq!((m.id, m.redelivered), (2, true));
        assert_eq!(q.reserve_id(), 10, "ids continue above every id seen");
    }

    #[test]
    fn auto_delete_only_after_a_consumer_left() {
        let mut q = queue();
        q.config.auto_delete = true;
        assert!(!q.should_auto_delete());
        add(&mut q, consumer("a", 0, true));
        assert!(!q.should_auto_delete());
        q.remove_consumers_of(0, 1, Some(1));
        assert!(q.should_auto_delete());
    }
}
