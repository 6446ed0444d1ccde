//! The queue's references into the log: where a message's record was
//! written, the queue rebuilt from its recovered records, and compaction
//! moving stored messages' records forward.

use super::priority::LevelTail;
use super::ready::{QueuedMessage, ReadyList};
use super::Queue;
use crate::broker::message::MessageRef;
use crate::broker::paged::PagedTail;
use std::collections::BTreeMap;

/// A queue's paged messages as recovery rebuilt them: one tail, or for a
/// priority queue one per level.
#[derive(Debug)]
pub enum RecoveredTails {
    Plain(PagedTail),
    Levels(LevelTail),
}

/// A queue's paged messages as recovery rebuilt them, with the delivery
/// counts recorded for its messages (quorum queues: id → returns).
#[derive(Debug)]
pub struct RecoveredTail {
    pub tails: RecoveredTails,
    pub delivery_counts: BTreeMap<u64, u32>,
}

impl RecoveredTail {
    /// Messages paged.
    pub fn count(&self) -> u64 {
        match &self.tails {
            RecoveredTails::Plain(tail) => tail.count(),
            RecoveredTails::Levels(tail) => tail.count(),
        }
    }
}

impl From<PagedTail> for RecoveredTail {
    fn from(tail: PagedTail) -> RecoveredTail {
        RecoveredTail {
            tails: RecoveredTails::Plain(tail),
            delivery_counts: BTreeMap::new(),
        }
    }
}

impl From<LevelTail> for RecoveredTail {
    fn from(tail: LevelTail) -> RecoveredTail {
        RecoveredTail {
            tails: RecoveredTails::Levels(tail),
            delivery_counts: BTreeMap::new(),
        }
    }
}

impl Queue {
    /// The message `id` just enqueued (`publish`) or reserved for the tail
    /// (`reserve_id`) has its log record, `len` bytes at `offset` of
    /// `segment`: a message in memory remembers the segment, a paged one
    /// joins the tail (with its deadline, `expires`).
    pub fn record_written(
        &mut self,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        if let Some(levels) = &mut self.levels {
            return levels.record_written(id, segment, offset, len, expires);
        }
        match self.ready.back_mut() {
            Some(last) if last.id == id => last.stored = Some(segment),
            _ => self.push_paged(id, segment, offset, len, expires),
        }
    }

    /// Rebuilds the queue from its recovered messages: `head` in memory
    /// (compaction copies, in id order; older than the tail), the rest paged (read back as consumers need them). New
    /// messages get ids above `max_seen_id`, the largest id any log record
    /// named for this queue, so an old ack can never match a new message.
    pub fn restore(
        &mut self,
        head: Vec<QueuedMessage>,
        tail: impl Into<RecoveredTail>,
        max_seen_id: u64,
    ) {
        assert!(self.ready.is_empty() && self.unacked.is_empty() && self.tail.is_empty());
        debug_assert!(head.windows(2).all(|w| w[0].id < w[1].id));
        for m in &head {
            if let Some(at) = m.expires {
                self.deadlines.push(at, m.id);
            }
        }
        let RecoveredTail {
            tails,
            delivery_counts,
        } = tail.into();
        self.restore_delivery_counts(delivery_counts);
        let tail = match (tails, &mut self.levels) {
            (RecoveredTails::Plain(tail), None) => tail,
            (RecoveredTails::Levels(tail), Some(levels)) => {
                let last = tail.last_id();
                let head_last = head.last().map(|m| m.id);
                let last = last.max(head_last).unwrap_or(0);
                self.next_id = self.next_id.max(last.max(max_seen_id) + 1);
                self.paged_sizes = super::limits::PagedSizes::unordered(tail.recovered_bytes());
                levels.restore(head, Some(tail));
                return;
            }
            (RecoveredTails::Plain(tail), Some(levels)) => {
                assert!(tail.is_empty(), "a priority queue's tail is per level");
                let last = head.last().map_or(0, |m| m.id);
                self.next_id = self.next_id.max(last.max(max_seen_id) + 1);
                levels.restore(head, None);
                return;
            }
            (RecoveredTails::Levels(_), None) => panic!("levels recovered for a plain queue"),
        };
        // Copies (in memory) come before the paged originals in id order —
        // except in a log written before copies were marked, where an
        // unmarked copy whose original was gone joined the runs: then the
        // head still goes first (nothing lost, nothing twice; the shard
        // logs it) and the queue is flagged.
        self.restored_out_of_order = head
            .last()
            .zip(tail.first_id())
            .is_some_and(|(h, t)| h.id > t);
        let last = tail.last_id().or(head.last().map(|m| m.id)).unwrap_or(0);
        self.next_id = self.next_id.max(last.max(max_seen_id) + 1);
        self.ready = ReadyList::from(head);
        self.paged_sizes = super::limits::PagedSizes::recovered(tail.run_sums());
        self.tail = tail;
    }

    /// Stored messages held in memory (ready or unacked) whose record is in
    /// `segment`.
    pub fn stored_in(&self, segment: u32) -> u64 {
        self.ready
            .iter()
            .chain(self.levels.iter().flat_map(|l| l.iter()))
            .chain(self.unacked.messages())
            .filter(|m| m.stored == Some(segment))
            .count() as u64
    }

    /// Compaction: every stored message held in memory whose record is in
    /// `segment` gets a new record, in ascending id order (so a crash in
    /// the middle leaves every copy's id below every original's left
    /// behind; see `shard::durability::compact`) — `rewrite(id, message,
    /// delivered, expires, delivery_count)` appends it (`delivered`: it was
    /// handed out before, so a restart must mark it redelivered; `expires`:
    /// its deadline; `delivery_count`: its returns, quorum queues) and
    /// returns its segment (None: left where it is).
    pub fn relocate_stored(
        &mut self,
        segment: u32,
        mut rewrite: impl FnMut(u64, &MessageRef, bool, Option<u64>, u32) -> Option<u32>,
    ) {
        let levels = self.levels.iter_mut().flat_map(|l| l.iter_mut());
        let ready = self.ready.iter_mut().chain(levels).map(|m| {
            let delivered = m.redelivered;
            (m, delivered)
        });
        let unacked = self.unacked.messages_mut().map(|m| (m, true));
        let mut held: Vec<(&mut QueuedMessage, bool)> = ready
            .chain(unacked)
            .filter(|(m, _)| m.stored == Some(segment))
            .collect();
        held.sort_unstable_by_key(|(m, _)| m.id);
        for (m, delivered) in held {
            if let Some(to) = rewrite(m.id, &m.message, delivered, m.expires, m.delivery_count) {
                m.stored = Some(to);
            }
        }
    }

    /// (segment, live references) of everything the queue holds in the log:
    /// stored messages in memory (ready, unacked or being dead-lettered)
    /// and paged runs.
    pub fn stored_segments(&self) -> Vec<(u32, u64)> {
        let levels = self.levels.as_deref();
        self.ready
            .iter()
            .chain(levels.into_iter().flat_map(|l| l.iter()))
            .chain(self.unacked.messages())
            .chain(self.dead_lettering.messages())
            .filter_map(|m| m.stored.map(|s| (s, 1)))
            .chain(self.tail.segments())
            .chain(levels.into_iter().flat_map(|l| l.tail().segments()))
            .collect()
    }
}
