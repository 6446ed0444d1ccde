//! The ready messages held in memory: oldest first (ids strictly
//! increasing), with the memory they are charged. Requeued messages merge
//! back in id order.

use crate::broker::capacity::shrunk_capacity;
use crate::broker::message::{Message, MessageRef};
use std::collections::VecDeque;
use std::num::NonZeroU16;

/// Memory a ready message is charged beyond its body and properties (the
/// queue entry, the shared message, its slices and a share of the read
/// buffer they point into). An estimate that errs high.
pub const MESSAGE_OVERHEAD: u64 = 448;

/// The memory a ready message is charged.
pub fn resident_cost(message: &Message) -> u64 {
    MESSAGE_OVERHEAD + message.body.len() + message.raw_properties.len() as u64
}

/// Requeued batches up to this size are inserted message by message;
/// larger ones are merged in one pass over the list.
const INSERT_AT_MOST: usize = 32;

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
    /// When it expires (ms since the Unix epoch): message TTL, see `ttl`.
    pub expires: Option<u64>,
    /// How often it came back to the queue after a delivery (quorum queues
    /// count it: `x-delivery-count`, the delivery limit).
    pub delivery_count: u32,
    /// `Some(g)`: a small message kept waiting as slices of its publisher's
    /// read buffer since sweep generation `g`, to be copied out
    /// (`Message::detached`) by the sweep after next (`queue::slices`,
    /// `shard::slices`); `None`: it owns its bytes, or is large.
    pub slice_generation: Option<NonZeroU16>,
}

/// The ready messages in memory, in id order.
#[derive(Debug, Default)]
pub(super) struct ReadyList {
    messages: VecDeque<QueuedMessage>,
    /// `resident_cost` of the messages held.
    bytes: u64,
    /// Body sizes of the messages held (length limits count these).
    body_bytes: u64,
}

impl From<Vec<QueuedMessage>> for ReadyList {
    /// A list of messages already in id order.
    fn from(messages: Vec<QueuedMessage>) -> ReadyList {
        ReadyList {
            bytes: messages.iter().map(|m| resident_cost(&m.message)).sum(),
            body_bytes: messages.iter().map(|m| m.message.body.len()).sum(),
            messages: messages.into(),
        }
    }
}

impl ReadyList {
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Memory charged for the messages held.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Body sizes of the messages held.
    pub(super) fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// The oldest message's id.
    pub(super) fn front_id(&self) -> Option<u64> {
        self.messages.front().map(|m| m.id)
    }

    /// The newest message.
    pub(super) fn back(&self) -> Option<&QueuedMessage> {
        self.messages.back()
    }

    /// The newest message, to note where its record is (its charge must not
    /// change).
    pub(super) fn back_mut(&mut self) -> Option<&mut QueuedMessage> {
        self.messages.back_mut()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.messages.iter()
    }

    /// Every message, to note where its record is (its charge must not
    /// change).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut QueuedMessage> {
        self.messages.iter_mut()
    }

    /// The messages from id `from` on, oldest first (their charges must not
    /// change).
    pub(super) fn iter_mut_from(&mut self, from: u64) -> impl Iterator<Item = &mut QueuedMessage> {
        let at = match self.messages.binary_search_by_key(&from, |m| m.id) {
            Ok(at) | Err(at) => at,
        };
        self.messages.range_mut(at..)
    }

    /// Appends a message newer than every one held.
    pub(super) fn push_back(&mut self, message: QueuedMessage) {
        self.bytes += resident_cost(&message.message);
        self.body_bytes += message.message.body.len();
        self.messages.push_back(message);
    }

    /// Takes the oldest message.
    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        let message = self.messages.pop_front()?;
        self.bytes -= resident_cost(&message.message);
        self.body_bytes -= message.message.body.len();
        self.shrink_when_sparse();
        Some(message)
    }

    /// Takes the message `id`, wherever it is (message TTL).
    pub(super) fn remove_id(&mut self, id: u64) -> Option<QueuedMessage> {
        let at = self.messages.binary_search_by_key(&id, |m| m.id).ok()?;
        let message = self.messages.remove(at)?;
        self.bytes -= resident_cost(&message.message);
        self.shrink_when_sparse();
        Some(message)
    }

    /// `broker::capacity`'s rule.
    fn shrink_when_sparse(&mut self) {
        if let Some(to) = shrunk_capacity(self.messages.len(), self.messages.capacity()) {
            self.messages.shrink_to(to);
        }
    }

    /// Whether the message `id` is held.
    pub(super) fn contains(&self, id: u64) -> bool {
        self.messages.binary_search_by_key(&id, |m| m.id).is_ok()
    }

    /// Takes every message, oldest first, and the list's room with them
    /// (a purged flood keeps no capacity).
    pub(super) fn drain(&mut self) -> std::collections::vec_deque::IntoIter<QueuedMessage> {
        self.bytes = 0;
        self.body_bytes = 0;
        std::mem::take(&mut self.messages).into_iter()
    }

    /// Merges messages (sorted by id, not empty) back in, keeping id order.
    /// They come back unmarked as slices: the sweep's registrations do not
    /// cover them (`queue::slices`).
    pub(super) fn requeue_sorted(&mut self, mut messages: Vec<QueuedMessage>) {
        for m in &mut messages {
            m.slice_generation = None;
        }
        self.bytes += messages
            .iter()
            .map(|m| resident_cost(&m.message))
            .sum::<u64>();
        self.body_bytes += messages.iter().map(|m| m.message.body.len()).sum::<u64>();
        let fits_at_head = self
            .messages
            .front()
            .is_none_or(|head| messages.last().expect("non-empty").id < head.id);
        if fits_at_head {
            for m in messages.into_iter().rev() {
                self.messages.push_front(m);
            }
            return;
        }
        if messages.len() <= INSERT_AT_MOST {
            // Requeued messages land near the head: inserting moves only the
            // few before each one, where a merge would rebuild the list (a
            // consumer nacking one message at a time made that quadratic).
            for m in messages {
                let at = self.messages.partition_point(|x| x.id < m.id);
                self.messages.insert(at, m);
            }
            return;
        }
        let old: Vec<QueuedMessage> = self.messages.drain(..).collect();
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
            self.messages.push_back(next.expect("peeked"));
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::broker::capacity::KEEP_CAPACITY;
    use crate::broker::message::Body;
    use crate::protocol::types::ShortStr;
    use bytes::Bytes;
    use std::sync::Arc;

    /// A ready message `id` with a small body (also for `unacked`'s tests).
    pub(in crate::broker::queue) fn queued(id: u64) -> QueuedMessage {
        QueuedMessage {
            id,
            message: Arc::new(Message {
                exchange: ShortStr::EMPTY,
                routing_key: ShortStr::from("q"),
                raw_properties: Bytes::from_static(&[0, 0]),
                body: Body::from(Bytes::from(id.to_string())),
                persistent: false,
            }),
            redelivered: false,
            stored: None,
            expires: None,
            delivery_count: 0,
            slice_generation: None,
        }
    }

    #[test]
    fn a_drained_ready_list_gives_its_flood_capacity_back_in_order() {
        const FLOOD: u64 = 50_000;
        let mut list = ReadyList::default();
        for id in 0..FLOOD {
            list.push_back(queued(id));
        }
        let peak = list.messages.capacity();
        assert!(peak >= FLOOD as usize);
        let mut reallocations = 0;
        let mut capacity = peak;
        for id in 0..FLOOD {
            // Pops come out in order across every shrink (the deque wraps).
            assert_eq!(list.pop_front().map(|m| m.id), Some(id));
            if list.messages.capacity() != capacity {
                capacity = list.messages.capacity();
                reallocations += 1;
                assert!(list.len() * 2 <= capacity, "shrinks leave room to grow");
            }
        }
        assert!(list.is_empty() && list.bytes() == 0);
        assert_eq!(list.messages.capacity(), KEEP_CAPACITY);
        // A purge takes the room too.
        for id in 0..FLOOD {
            list.push_back(queued(id));
        }
        assert_eq!(list.drain().count(), FLOOD as usize);
        assert_eq!((list.len(), list.messages.capacity()), (0, 0));
        // One shrink per halving: logarithmic in the flood, not per message.
        assert!(reallocations <= 8, "{reallocations} shrinks from {peak}");
    }
}
