//! Priority queues (`x-max-priority` 1–255), as RabbitMQ's: the ready
//! messages are kept in one list per level (priority 0 to the maximum); the
//! highest level with a message goes first, FIFO within a level. A message
//! without a priority is level 0, one above the maximum is the maximum.
//!
//! Each level has its own in-memory list (`ReadyList`) and its own paged
//! spans (`tail::LevelTail`). Once any level has paged messages, every new
//! message is paged (so each level's in-memory messages stay older than its
//! paged ones, and the paged ids stay contiguous ranges). Delivery never
//! skips a level: when the highest level with messages has them all paged,
//! the queue waits for that level's next chunk (`wants_page_in`,
//! `needs_page_in_for_get`). A level whose read failed for good is skipped
//! (state `crashed`), as a plain queue serves what it has in memory.
//!
//! A queue without `x-max-priority` has no `Levels` and keeps the single
//! list and tail of `Queue`: it pays one `None` for this module.

pub(super) mod tail;

use super::paging::{PagedMessage, PAGE_IN_BELOW_BYTES, PAGE_IN_BELOW_MESSAGES};
use super::purge::Purged;
use super::ready::{resident_cost, QueuedMessage, ReadyList};
use crate::broker::message::Message;
use crate::broker::paged::PageRead;
use crate::protocol::properties::priority_of;
use crate::protocol::types::FieldTable;
pub use tail::LevelTail;

/// The queue's maximum priority, if it is a priority queue: an integer
/// `x-max-priority` from 1 to 255 (RabbitMQ ignores other values here;
/// declaring them is refused by the queue-argument checks).
pub fn max_priority(args: &FieldTable) -> Option<u8> {
    let v = args.get("x-max-priority")?.as_i64()?;
    u8::try_from(v).ok().filter(|&m| m > 0)
}

/// The level of a message in a queue whose maximum priority is `max`.
pub fn level_of(message: &Message, max: u8) -> usize {
    level_of_raw(&message.raw_properties, max)
}

/// The level of a message with raw properties `raw` (see `level_of`).
pub fn level_of_raw(raw: &[u8], max: u8) -> usize {
    priority_of(raw).unwrap_or(0).min(max) as usize
}

/// The ready messages of a priority queue. See the module docs.
#[derive(Debug)]
pub(super) struct Levels {
    max: u8,
    /// In-memory ready messages per level (index = level), each in id order.
    lanes: Vec<ReadyList>,
    /// Messages and bytes held in `lanes`.
    len: usize,
    bytes: u64,
    tail: LevelTail,
    /// The last message published in memory (id, level), whose record may
    /// follow (`record_written`).
    last: Option<(u64, usize)>,
    /// The id reserved for a message being paged out, with its level.
    reserved: Option<(u64, usize)>,
}

impl Levels {
    pub(super) fn new(max: u8) -> Levels {
        let levels = max as usize + 1;
        Levels {
            max,
            lanes: (0..levels).map(|_| ReadyList::default()).collect(),
            len: 0,
            bytes: 0,
            tail: LevelTail::new(levels),
            last: None,
            reserved: None,
        }
    }

    fn level(&self, message: &Message) -> usize {
        level_of(message, self.max)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest ready message's id, in memory or paged, any level.
    pub(super) fn first_id(&self) -> Option<u64> {
        let lanes = self.lanes.iter().filter_map(|l| l.front_id()).min();
        match (lanes, self.tail.first_id()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn tail(&self) -> &LevelTail {
        &self.tail
    }

    pub(super) fn tail_mut(&mut self) -> &mut LevelTail {
        &mut self.tail
    }

    /// Appends a message in memory (no level has paged messages).
    pub(super) fn push(&mut self, message: QueuedMessage) {
        debug_assert!(
            self.tail.is_empty(),
            "in-memory publish behind a paged tail"
        );
        let level = self.level(&message.message);
        self.last = Some((message.id, level));
        self.push_lane(level, message);
    }

    fn push_lane(&mut self, level: usize, message: QueuedMessage) {
        self.len += 1;
        self.bytes += resident_cost(&message.message);
        self.lanes[level].push_back(message);
    }

    /// Whether a new message must be paged out.
    pub(super) fn pages_new(&self, limit: u64) -> bool {
        !self.tail.is_empty() || self.bytes >= limit
    }

    /// `id` is reserved for `message`, about to be paged out.
    pub(super) fn reserved(&mut self, id: u64, message: &Message) {
        self.reserved = Some((id, self.level(message)));
    }

    /// The paged-out message `id` (reserved before) has its record; it
    /// expires at `expires` (None: never).
    pub(super) fn push_paged(
        &mut self,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        let level = match self.reserved.take() {
            Some((reserved, level)) if reserved == id => level,
            other => {
                debug_assert!(false, "paged id {id} was not reserved ({other:?})");
                0
            }
        };
        self.tail.push(id, level, segment, offset, len, expires);
    }

    /// The message `id` has its log record: in memory it remembers the
    /// segment, reserved it joins its level's tail.
    pub(super) fn record_written(
        &mut self,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        if let Some((last, level)) = self.last {
            if last == id {
                if let Some(m) = self.lanes[level].back_mut().filter(|m| m.id == id) {
                    m.stored = Some(segment);
                    return;
                }
            }
        }
        self.push_paged(id, segment, offset, len, expires);
    }

    /// The level served next: the highest with a message in memory or a
    /// paged one that can still be read.
    fn serving(&self) -> Option<usize> {
        (0..self.lanes.len())
            .rev()
            .find(|&l| !self.lanes[l].is_empty() || (self.tail.has(l) && !self.tail.is_failed()))
    }

    /// Whether a message can be handed out now.
    pub(super) fn has_ready(&self) -> bool {
        self.serving().is_some_and(|l| !self.lanes[l].is_empty())
    }

    /// Takes the next message to hand out: the oldest of the highest level
    /// (None while that level's next messages are still paged).
    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        let level = self.serving()?;
        let message = self.lanes[level].pop_front()?;
        self.len -= 1;
        self.bytes -= resident_cost(&message.message);
        Some(message)
    }

    /// Whether the serving level should read its next chunk (consumers
    /// aside): it has paged messages and few in memory.
    pub(super) fn wants_page_in(&self) -> bool {
        let Some(level) = self.serving() else {
            return false;
        };
        self.tail.has(level)
            && !self.tail.is_reading()
            && !self.tail.is_failed()
            && self.lanes[level].len() < PAGE_IN_BELOW_MESSAGES
            && self.lanes[level].bytes() < PAGE_IN_BELOW_BYTES
    }

    /// Whether drop-head must read the serving level's next chunk before
    /// it can drop from it: that level has nothing in memory, and a read
    /// can start.
    pub(super) fn needs_page_in_to_drop(&self) -> bool {
        self.serving().is_some_and(|l| self.lanes[l].is_empty())
            && !self.tail.is_reading()
            && !self.tail.is_failed()
    }

    /// Whether basic.get must wait for a chunk: the highest level with
    /// messages has none in memory.
    pub(super) fn needs_page_in_for_get(&self) -> bool {
        self.serving().is_some_and(|l| self.lanes[l].is_empty())
    }

    /// The serving level's next chunk to read, if it has one and no read is out.
    pub(super) fn start_page_in(&mut self, max_len: u32) -> Option<PageRead> {
        let level = self.serving().filter(|&l| self.tail.has(l))?;
        self.tail.start_read(level, max_len)
    }

    /// Takes the answer to `read` (see `Queue::finish_page_in`); also
    /// returns how many messages it took back and their body bytes.
    pub(super) fn finish_page_in(
        &mut self,
        read: &PageRead,
        found: Vec<PagedMessage>,
        consumed: u32,
        mut delivery_count: impl FnMut(u64) -> u32,
    ) -> (u64, u64, u64) {
        let found = found
            .into_iter()
            .map(|m| {
                let level = level_of(&m.message, self.max);
                (m.id, level, (m.message, m.stored, m.expires))
            })
            .collect();
        let (level, got, lost) = self.tail.finish_read(read, found, consumed);
        let mut release = lost;
        let mut body_bytes = 0;
        let got_count = got.len() as u64;
        for (id, redelivered, (message, stored, expires)) in got {
            debug_assert!(self.lanes[level].back().is_none_or(|m| m.id < id));
            if stored.is_none() {
                release += 1;
            }
            body_bytes += message.body.len();
            self.push_lane(
                level,
                QueuedMessage {
                    id,
                    message,
                    redelivered,
                    stored,
                    expires,
                    delivery_count: delivery_count(id),
                    slice_generation: None,
                },
            );
        }
        (release, got_count, body_bytes)
    }

    /// Body bytes of the messages held in memory (`x-max-length-bytes`).
    pub(super) fn body_bytes(&self) -> u64 {
        self.lanes.iter().map(|lane| lane.body_bytes()).sum()
    }

    /// Takes the in-memory message `id` out of its level (message TTL).
    pub(super) fn remove_id(&mut self, id: u64) -> Option<QueuedMessage> {
        let lane = self.lanes.iter_mut().find(|lane| lane.contains(id))?;
        let message = lane.remove_id(id)?;
        self.len -= 1;
        self.bytes -= resident_cost(&message.message);
        Some(message)
    }

    /// Whether the message `id` is held in memory.
    pub(super) fn contains(&self, id: u64) -> bool {
        self.lanes.iter().any(|lane| lane.contains(id))
    }

    pub(super) fn fail_page_in(&mut self, read: &PageRead) -> bool {
        self.tail.fail_read(read)
    }

    /// Puts settled-with-requeue messages (sorted by id) back into their
    /// levels, each in id order.
    pub(super) fn requeue_sorted(&mut self, messages: Vec<QueuedMessage>) {
        let mut by_level: Vec<Vec<QueuedMessage>> = vec![Vec::new(); self.lanes.len()];
        for m in messages {
            self.len += 1;
            self.bytes += resident_cost(&m.message);
            let level = self.level(&m.message);
            by_level[level].push(m);
        }
        for (level, group) in by_level.into_iter().enumerate() {
            if !group.is_empty() {
                self.lanes[level].requeue_sorted(group);
            }
        }
    }

    /// Drops every ready message (see `Queue::purge`).
    pub(super) fn purge(&mut self) -> Purged {
        let count = (self.len as u64 + self.tail.count()).min(u32::MAX as u64) as u32;
        let in_memory_max = self
            .lanes
            .iter()
            .filter_map(|l| l.back().map(|m| m.id))
            .max();
        let max_id = self.tail.last_id().max(in_memory_max);
        let stored = self
            .lanes
            .iter_mut()
            .flat_map(|l| l.drain())
            .filter_map(|m| m.stored.map(|s| (m.id, s)))
            .collect();
        self.len = 0;
        self.bytes = 0;
        Purged {
            count,
            stored,
            paged: self.tail.clear(),
            max_id,
            spared: Vec::new(),
        }
    }

    /// Rebuilds the levels at recovery: `head` (in memory, id order) goes
    /// to its levels; `tail` holds the paged rest (None: nothing paged).
    pub(super) fn restore(&mut self, head: Vec<QueuedMessage>, tail: Option<LevelTail>) {
        for m in head {
            let level = self.level(&m.message);
            self.push_lane(level, m);
        }
        if let Some(tail) = tail {
            self.tail = tail;
        }
    }

    /// Every ready message in memory.
    pub(super) fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.lanes.iter().flat_map(|l| l.iter())
    }

    /// Every ready message in memory, to note where its record is.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut QueuedMessage> {
        self.lanes.iter_mut().flat_map(|l| l.iter_mut())
    }
}

#[cfg(test)]
mod tests;
