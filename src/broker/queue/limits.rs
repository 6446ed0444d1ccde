//! Length limits (`x-max-length`, `x-max-length-bytes`, `x-overflow`), as
//! RabbitMQ's classic queues apply them: both limits count the *ready*
//! messages (in memory and paged out; unacked ones do not count), the
//! bytes limit sums their body sizes. `reject-publish(-dlx)` refuses a
//! publish that would take the queue over a limit (`rejects`); `drop-head`
//! (the default) lets the oldest ready messages go once the queue is over
//! a limit (`drop_over_limit`), after the shard offered the ready messages
//! to consumers (a consumer with credit gets a message before it would be
//! dropped, as RabbitMQ delivers to a waiting consumer before enqueueing).
//! A limit of 0 is a limit: nothing is kept, and reject-publish refuses
//! every publish.
//!
//! Paged-out messages keep no per-message state in the tail; their body
//! sizes are kept here run-length encoded (`PagedSizes`), so a backlog of
//! same-size messages costs a few words; a tail recovered from the log
//! brings one byte sum per run (recovery adds up the records' bodies).

use super::ready::QueuedMessage;
use super::Queue;
use crate::protocol::types::FieldTable;
use std::collections::VecDeque;

/// What a queue over its length limit does (`x-overflow`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// A queue's length limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_length: Option<u64>,
    pub max_bytes: Option<u64>,
    pub overflow: Overflow,
}

impl Limits {
    pub fn is_none(&self) -> bool {
        self.max_length.is_none() && self.max_bytes.is_none()
    }
}

/// Reads the length limits from the raw queue arguments. Validation (and
/// RabbitMQ's 406 texts) belongs to the typed queue-argument parser; this
/// only reads values that passed it (a negative limit reads as none).
// TODO(merge): switch to the typed `QueueArguments` parser.
pub fn limits(args: &FieldTable) -> Limits {
    let non_negative = |key: &str| {
        args.get(key)
            .and_then(|v| v.as_i64())
            .and_then(|n| u64::try_from(n).ok())
    };
    Limits {
        max_length: non_negative("x-max-length"),
        max_bytes: non_negative("x-max-length-bytes"),
        overflow: match args.get("x-overflow").and_then(|v| v.as_str()) {
            Some("reject-publish") => Overflow::RejectPublish,
            Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
            _ => Overflow::DropHead,
        },
    }
}

/// Body sizes of the paged-out messages, oldest first, run-length encoded.
#[derive(Debug, Default)]
pub(super) struct PagedSizes {
    /// The sizes, allocated when the first message is paged out or a tail
    /// recovered: a queue that never paged holds a null pointer.
    runs: Option<Box<SizeRuns>>,
    bytes: u64,
    /// A priority queue's: its paged messages come back level by level,
    /// not in publish order, so only the sum is kept (`forget`).
    unordered: bool,
}

/// The runs of sizes of `PagedSizes`.
#[derive(Debug, Default)]
struct SizeRuns {
    /// A recovered tail's messages, at the front: per log run (segment,
    /// messages, body bytes), as recovery summed them from the records. A message
    /// taken from a run unread counts the run's average; read back, its
    /// own size; the run's last message what is left, so a run that goes
    /// whole leaves exactly its sum.
    recovered: VecDeque<(u32, u64, u64)>,
    runs: VecDeque<(u64, u64)>,
}

impl PagedSizes {
    /// Sizes for a recovered tail: (segment, messages, body bytes) per
    /// run, oldest first.
    pub(super) fn recovered(runs: Vec<(u32, u64, u64)>) -> PagedSizes {
        let runs: VecDeque<(u32, u64, u64)> = runs.into_iter().filter(|&(_, n, _)| n > 0).collect();
        PagedSizes {
            bytes: runs.iter().map(|&(_, _, b)| b).sum(),
            runs: (!runs.is_empty()).then(|| {
                Box::new(SizeRuns {
                    recovered: runs,
                    runs: VecDeque::new(),
                })
            }),
            ..PagedSizes::default()
        }
    }

    /// Sizes of a priority queue's paged messages (only their sum), of
    /// which `recovered_bytes` came from a recovered tail.
    pub(super) fn unordered(recovered_bytes: u64) -> PagedSizes {
        PagedSizes {
            bytes: recovered_bytes,
            unordered: true,
            ..PagedSizes::default()
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `count` of a priority queue's paged messages, `body_bytes` in all,
    /// came back (or left) in some order.
    pub(super) fn forget(&mut self, _count: u64, body_bytes: u64) {
        debug_assert!(self.unordered);
        self.bytes = self.bytes.saturating_sub(body_bytes);
    }

    pub(super) fn push(&mut self, size: u64) {
        self.bytes += size;
        if self.unordered {
            return;
        }
        let runs = &mut self.runs.get_or_insert_with(Default::default).runs;
        match runs.back_mut() {
            Some((s, n)) if *s == size => *n += 1,
            _ => runs.push_back((size, 1)),
        }
    }

    /// Forgets the oldest paged message's size, not read (a recovered
    /// run's message counts the run's average): returns it.
    pub(super) fn pop(&mut self) -> u64 {
        self.pop_sized(None)
    }

    /// Forgets the oldest paged message, read back with a body of `size`
    /// bytes (exact for a recovered run too).
    pub(super) fn pop_read(&mut self, size: u64) -> u64 {
        self.pop_sized(Some(size))
    }

    fn pop_sized(&mut self, read: Option<u64>) -> u64 {
        let Some(r) = self.runs.as_deref_mut() else {
            return 0;
        };
        if !r.recovered.is_empty() {
            return self.take_recovered(0, read);
        }
        let Some((size, n)) = r.runs.front_mut() else {
            return 0;
        };
        let size = *size;
        *n -= 1;
        if *n == 0 {
            r.runs.pop_front();
        }
        self.bytes -= size;
        size
    }

    /// Takes one message from the recovered run at index `at` (its size
    /// `read` if known, else the run's average; the run's last one what is
    /// left).
    fn take_recovered(&mut self, at: usize, read: Option<u64>) -> u64 {
        let r = self.runs.as_deref_mut().expect("a recovered run");
        let (_, n, bytes) = &mut r.recovered[at];
        let size = match read {
            _ if *n == 1 => *bytes,
            Some(size) => size.min(*bytes),
            None => *bytes / *n,
        };
        *n -= 1;
        *bytes -= size;
        if *n == 0 {
            r.recovered.remove(at);
        }
        self.bytes -= size;
        size
    }

    /// Forgets `count` paged messages of the log run in `segment`, TTL
    /// took them out of the tail: `read` their body sizes if the scan read
    /// them, None if the run went whole unread. A recovered run's messages
    /// leave its sum (exact when it goes whole or they were read); others
    /// forget the oldest sizes (exact when the oldest expire first).
    pub(super) fn forget_expired(&mut self, segment: u32, count: u64, read: Option<&[u64]>) {
        debug_assert!(!self.unordered);
        for i in 0..count {
            let at = self
                .runs
                .as_ref()
                .and_then(|r| r.recovered.iter().position(|&(s, _, _)| s == segment));
            match at {
                Some(at) => {
                    let size = read.and_then(|r| r.get(i as usize).copied());
                    self.take_recovered(at, size);
                }
                None => {
                    self.pop();
                }
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.runs = None;
        self.bytes = 0;
    }
}

/// A ready message a length limit dropped from the head.
#[derive(Debug)]
pub enum Dropped {
    /// Held in memory: the whole message (for dead-lettering).
    Memory(QueuedMessage),
    /// Paged out: only its id and the log segment holding its record; the
    /// body is not read back to drop it.
    Paged { id: u64, segment: u32 },
}

impl Queue {
    /// The queue's length limits (from its arguments, read at declare).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Body bytes of the ready messages, in memory and paged (RabbitMQ's
    /// `message_bytes_ready`).
    pub fn ready_body_bytes(&self) -> u64 {
        let levels = self.levels.as_ref().map_or(0, |l| l.body_bytes());
        self.ready.body_bytes() + levels + self.paged_sizes.bytes()
    }

    /// Whether a publish of `body_len` bytes must be refused
    /// (reject-publish, reject-publish-dlx): it would take the queue over
    /// a limit.
    pub fn rejects(&self, body_len: u64) -> bool {
        let l = &self.limits;
        if l.overflow == Overflow::DropHead {
            return false;
        }
        let len = self.message_count() as u64 + 1;
        l.max_length.is_some_and(|max| len > max)
            || l.max_bytes
                .is_some_and(|max| self.ready_body_bytes() + body_len > max)
    }

    /// Notes the body size of a message just paged out (`push_paged` /
    /// `record_written` of a paged copy).
    pub fn paged_body(&mut self, size: u64) {
        self.paged_sizes.push(size);
    }

    /// Whether the queue is over one of its limits (ready messages, in
    /// memory and paged).
    fn over_limit(&self) -> bool {
        let l = &self.limits;
        l.max_length
            .is_some_and(|max| self.message_count() as u64 > max)
            || l.max_bytes.is_some_and(|max| self.ready_body_bytes() > max)
    }

    /// Whether drop-head must read the paged head back before it can drop
    /// it: the queue is over a limit, nothing it would drop next is in
    /// memory, and the paged head is wanted whole — for dead-lettering
    /// (the queue has a dead-letter exchange), or to find it at all (a
    /// priority queue's paged level: its tail keeps no per-message
    /// state). The shard then reads the head chunk back (`wants_page_in`)
    /// and the next dispatch drops what came in.
    pub(super) fn wants_page_in_to_drop(&self) -> bool {
        let l = &self.limits;
        if l.overflow != Overflow::DropHead || l.is_none() || !self.over_limit() {
            return false;
        }
        match &self.levels {
            Some(levels) => levels.needs_page_in_to_drop(),
            None => {
                !self.deadlines.drop_unread
                    && self.ready.is_empty()
                    && !self.tail.is_empty()
                    && !self.tail.is_reading()
                    && !self.tail.is_failed()
            }
        }
    }

    /// drop-head: takes the oldest ready messages while the queue is over
    /// a limit (a priority queue: the messages it would deliver next).
    /// Nothing for the reject-publish modes (they refuse instead). A paged
    /// head is dropped unread only when nothing needs its body (a plain
    /// queue without a dead-letter exchange); otherwise it is left for a
    /// page-in to bring back (`wants_page_in_to_drop`), a chunk at a time.
    pub fn drop_over_limit(&mut self) -> Vec<Dropped> {
        let l = self.limits;
        let mut dropped = Vec::new();
        if l.overflow != Overflow::DropHead || l.is_none() {
            return dropped;
        }
        while self.over_limit() {
            if let Some(levels) = &mut self.levels {
                // The highest level's oldest, from memory; when that
                // level's next messages are paged, they are read back.
                match levels.pop_front() {
                    Some(m) => dropped.push(Dropped::Memory(m)),
                    None => break,
                }
            } else if let Some(m) = self.ready.pop_front() {
                dropped.push(Dropped::Memory(m));
            } else if !self.deadlines.drop_unread {
                // Dead-lettered: read back first.
                break;
            } else if let Some((id, segment)) = self.tail.drop_first() {
                self.paged_sizes.pop();
                dropped.push(Dropped::Paged { id, segment });
            } else {
                break;
            }
        }
        dropped
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
