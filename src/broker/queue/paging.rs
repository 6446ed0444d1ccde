//! The paged tail seen from the queue: whether a new message must go to
//! the log instead of memory, ids reserved for paged messages, and reading
//! paged messages back into the ready list (one chunk at a time).

use super::ready::QueuedMessage;
use super::Queue;
use crate::broker::message::MessageRef;
use crate::broker::paged::PageRead;

/// Paging in starts when fewer than this many ready messages are in memory…
pub const PAGE_IN_BELOW_MESSAGES: usize = 4096;
/// …and they take less than this.
pub const PAGE_IN_BELOW_BYTES: u64 = 4 << 20;

/// A chunk read back from the log for `Queue::finish_page_in`: one message
/// record of the queue, with the segment holding it if it is a durable
/// record (None for a paged-only copy).
pub struct PagedMessage {
    pub id: u64,
    pub message: MessageRef,
    pub stored: Option<u32>,
    /// Its deadline (message TTL), from the record.
    pub expires: Option<u64>,
}

impl Queue {
    /// Whether a new message must go to the paged tail: once anything is
    /// paged (to keep order), or when the messages in memory take `limit`
    /// bytes or more.
    pub fn pages_new_messages(&self, limit: u64) -> bool {
        if let Some(levels) = &self.levels {
            return levels.pages_new(limit);
        }
        !self.tail.is_empty() || self.ready.bytes() >= limit
    }

    /// Takes the id of a message about to be paged out (its log record
    /// names it); `push_paged` follows once the record is appended. An id
    /// whose append failed is simply never used.
    pub fn reserve_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// `reserve_id` for `message` (a priority queue notes its level).
    pub fn reserve_id_for(&mut self, message: &crate::broker::message::Message) -> u64 {
        let id = self.reserve_id();
        if let Some(levels) = &mut self.levels {
            levels.reserved(id, message);
        }
        id
    }

    /// Adds the paged-out message `id`, whose record is `len` bytes at
    /// `offset` of log segment `segment`.
    /// `expires`: its deadline (message TTL).
    pub fn push_paged(
        &mut self,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        debug_assert!(id < self.next_id);
        if let Some(levels) = &mut self.levels {
            return levels.push_paged(id, segment, offset, len, expires);
        }
        debug_assert!(self.ready.back().is_none_or(|m| m.id < id));
        self.tail.push_until(id, segment, offset, len, expires);
    }

    /// Whether the shard should read the next paged chunk back now: a
    /// consumer is waiting, is under its memory share (see
    /// `set_memory_limit`: a consumer that holds its share of unacked
    /// messages pulls no more of the backlog into memory) and few ready
    /// messages are left in memory. Also when drop-head must read the
    /// paged head back to drop it (`wants_page_in_to_drop`).
    pub fn wants_page_in(&self) -> bool {
        if self.wants_page_in_to_drop() {
            return true;
        }
        if let Some(levels) = &self.levels {
            return levels.wants_page_in() && self.consumers.any_active_under_share();
        }
        !self.tail.is_empty()
            && !self.tail.is_reading()
            && !self.tail.is_failed()
            && self.ready.len() < PAGE_IN_BELOW_MESSAGES
            && self.ready.bytes() < PAGE_IN_BELOW_BYTES
            && self.consumers.any_active_under_share()
    }

    /// Whether basic.get must wait for a chunk to be read back.
    pub fn needs_page_in_for_get(&self) -> bool {
        if let Some(levels) = &self.levels {
            return levels.needs_page_in_for_get();
        }
        self.ready.is_empty() && !self.tail.is_empty() && !self.tail.is_failed()
    }

    /// The next chunk (at most `max_len` bytes) to read back, unless one is
    /// already out or nothing is paged.
    pub fn start_page_in(&mut self, max_len: u32) -> Option<PageRead> {
        if let Some(levels) = &mut self.levels {
            return levels.start_page_in(max_len);
        }
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
        if let Some(levels) = &mut self.levels {
            // Paged messages of a priority queue get their deadlines back
            // (from their records) as they come back in memory.
            for m in &found {
                if let Some(at) = m.expires {
                    self.deadlines.push(at, m.id);
                }
            }
            let counts = &mut self.returns;
            let (release, count, body_bytes) =
                levels.finish_page_in(read, found, consumed, |id| counts.recovered(id));
            self.paged_sizes.forget(count, body_bytes);
            return release;
        }
        let found = found
            .into_iter()
            .map(|m| (m.id, (m.message, m.stored, m.expires)))
            .collect();
        let (got, lost) = self.tail.finish_read(read, found, consumed);
        let mut release = lost;
        for (_, _, (message, _, _)) in &got {
            self.paged_sizes.pop_read(message.body.len());
        }
        for _ in 0..lost {
            self.paged_sizes.pop();
        }
        for (id, redelivered, (message, stored, expires)) in got {
            debug_assert!(
                self.restored_out_of_order || self.ready.back().is_none_or(|m| m.id < id)
            );
            if stored.is_none() {
                release += 1;
            }
            let delivery_count = self.recovered_delivery_count(id);
            self.ready.push_back(QueuedMessage {
                id,
                message,
                redelivered,
                stored,
                expires,
                delivery_count,
                slice_generation: None,
            });
            if let Some(at) = expires {
                self.deadlines.push(at, id);
            }
        }
        release
    }

    /// Gives up the outstanding read after the log failed to give it back
    /// (retries included): the queue stops paging in (`is_crashed`) and
    /// keeps its paged messages, whose records stay live in the log.
    /// Returns whether the read was current.
    pub fn fail_page_in(&mut self, read: &PageRead) -> bool {
        if let Some(levels) = &mut self.levels {
            return levels.fail_page_in(read);
        }
        self.tail.fail_read(read)
    }

    /// Whether `read` is still this queue's outstanding page-in (a purge or
    /// deletion makes it stale).
    pub fn page_in_current(&self, read: &PageRead) -> bool {
        if let Some(levels) = &self.levels {
            return levels.tail().is_current(read);
        }
        self.tail.is_current(read)
    }

    /// Whether a page-in failed for good: the paged messages stay in the
    /// log but are not served until a restart (or a purge drops them).
    /// `warren ctl list_queues` shows the queue as `crashed`.
    pub fn is_crashed(&self) -> bool {
        if let Some(levels) = &self.levels {
            return levels.tail().is_failed();
        }
        self.tail.is_failed()
    }
}
