//! Message TTL (`x-message-ttl` per queue, `expiration` per message; the
//! lower wins), expired wherever the message is — not only at the head, as
//! RabbitMQ does.
//!
//! Design and costs:
//!
//! - A copy's deadline (ms since the Unix epoch) is fixed when it is
//!   enqueued and travels with it: in `QueuedMessage::expires` in memory,
//!   in the log record's target (`storage::record`, timed kinds) when it is
//!   stored or paged, so a restart keeps the time left, not a fresh TTL.
//! - The messages in memory have a min-heap of (deadline, id), 16 bytes per
//!   dated message. Entries of messages that left otherwise (delivered,
//!   purged) are dropped lazily when they come up, and the heap is rebuilt
//!   from the ready list once it holds more than twice as many entries as
//!   there are ready messages, so it stays bounded by the ready messages.
//!   Expiring one message is a heap pop plus a binary search and a removal
//!   in the ready list (O(1) at the head, O(distance to an end) elsewhere).
//! - Paged runs keep the min and max deadline of their messages
//!   (`broker::paged`): a run all expired is dropped unread when nothing
//!   needs the bodies (no dead-letter exchange), a run holding an expired
//!   message is scanned chunk by chunk (a page-in's reads, one chunk in
//!   memory at a time) and just those are taken out.
//! - `next_deadline` is the heap's top and the runs' minimum: the shard arms
//!   one timer for its queues' earliest (`shard::ttl`), never one per
//!   message.
//!
//! TTL 0 (RabbitMQ): a message is delivered only if a consumer can take it
//! at once, else it expires — decided at its enqueue, with the consumers'
//! credit as it is then: the owner dispatches the queue right away with
//! the enqueue's clock reading (the copy's deadline), delivering what it
//! can before it expires the messages due (`expire` with `inclusive`
//! after delivering), so basic.get never sees it and a later dispatch
//! whose clock moved on never expires one a consumer could have taken.

use super::paging::PagedMessage;
use super::ready::QueuedMessage;
use super::Queue;
use crate::broker::message::Message;
use crate::broker::paged::TtlScan as PagedScan;
use crate::protocol::properties::BasicProperties;
use crate::protocol::types::FieldTable;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use crate::broker::paged::TtlScan;

/// The `expiration` property's flag in the first property-flags word.
const EXPIRATION_FLAG: u16 = 0x0100;

/// The queue's `x-message-ttl` in ms, if it has one. Reads the raw
/// argument (the typed queue-arguments parser validates it at declare).
pub fn message_ttl(args: &FieldTable) -> Option<u64> {
    u64::try_from(args.get("x-message-ttl")?.as_i64()?).ok()
}

/// Whether the queue has a dead-letter exchange (its expired messages must
/// be read back to be republished).
pub(super) fn has_dead_letter_exchange(args: &FieldTable) -> bool {
    args.get("x-dead-letter-exchange").is_some()
}

/// Parses an `expiration` property as RabbitMQ does (Erlang
/// `string:to_integer`, then non-negative); the error is the reason text of
/// RabbitMQ's `PRECONDITION_FAILED - invalid expiration '<s>': <reason>`.
pub fn parse_expiration(s: &str) -> Result<u64, String> {
    let b = s.as_bytes();
    let (negative, digits_at) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = b[digits_at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err("no_integer".into());
    }
    let end = digits_at + digits;
    let number = &s[digits_at..end];
    if end < b.len() {
        return Err(format!("{{leftover_string,{}}}", erlang_string(&s[end..])));
    }
    if negative && number.bytes().any(|c| c != b'0') {
        return Err(format!(
            "{{value_negative,-{}}}",
            number.trim_start_matches('0')
        ));
    }
    // Larger than any deadline can be: it never expires in practice.
    Ok(number.parse::<u64>().unwrap_or(u64::MAX))
}

/// An Erlang string as `~p` prints it (printable ASCII; others escaped).
fn erlang_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\x{{{:X}}}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// The `expiration` of raw content-header properties, in ms (None: no
/// valid one; the publish path refuses invalid ones).
pub fn expiration_of(raw_properties: &bytes::Bytes) -> Option<u64> {
    let flags = match raw_properties.as_ref() {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => return None,
    };
    if flags & EXPIRATION_FLAG == 0 {
        return None;
    }
    let p = BasicProperties::decode(raw_properties.clone()).ok()?;
    parse_expiration(p.expiration?.as_str()).ok()
}

/// The deadlines of a queue's messages in memory, and its TTL.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    pub(super) queue_ttl: Option<u64>,
    pub(super) drop_unread: bool,
}

impl Deadlines {
    pub(super) fn for_queue(args: &FieldTable) -> Deadlines {
        Deadlines {
            heap: BinaryHeap::new(),
            queue_ttl: message_ttl(args),
            drop_unread: !has_dead_letter_exchange(args),
        }
    }

    pub(super) fn push(&mut self, at: u64, id: u64) {
        self.heap.push(Reverse((at, id)));
    }
}

/// What `Queue::expire` let go of.
#[derive(Debug, Default)]
pub struct Expired {
    /// Expired messages taken from memory (for `shard::dead_letter`).
    pub letters: Vec<QueuedMessage>,
    /// (segment, messages) of paged runs dropped unread: the caller
    /// releases their log references.
    pub dropped: Vec<(u32, u64)>,
    /// Paged runs to scan for expired messages.
    pub scans: Vec<TtlScan>,
}

impl Expired {
    pub fn is_empty(&self) -> bool {
        self.letters.is_empty() && self.dropped.is_empty() && self.scans.is_empty()
    }
}

impl Queue {
    /// The queue's `x-message-ttl`, in ms.
    pub fn message_ttl(&self) -> Option<u64> {
        self.deadlines.queue_ttl
    }

    /// The deadline of a copy of `message` enqueued at `now` (ms since the
    /// Unix epoch): the lower of the queue's TTL and the message's
    /// `expiration`.
    ///
    /// `now` is only called when the copy has a TTL: a queue without one
    /// and a message without `expiration` cost no clock read.
    pub fn deadline_for(&self, message: &Message, now: impl FnOnce() -> u64) -> Option<u64> {
        let ttl = match (
            self.deadlines.queue_ttl,
            expiration_of(&message.raw_properties),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(now().saturating_add(ttl))
    }

    /// Whether any ready message of the queue has a deadline.
    pub fn has_deadlines(&self) -> bool {
        self.next_deadline().is_some()
    }

    /// The earliest deadline of a ready message (in memory or paged; a
    /// lower bound), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        let memory = self.deadlines.heap.peek().map(|Reverse((at, _))| *at);
        let paged = match &self.levels {
            Some(levels) => levels.tail().next_deadline(),
            None => self.tail.next_deadline(),
        };
        match (memory, paged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes every ready message whose deadline is before `now` (at or
    /// before it when `inclusive`): from memory (returned as letters), paged
    /// runs all expired dropped unread (unless the queue dead-letters), and
    /// scans for the runs holding some.
    pub fn expire(&mut self, now: u64, inclusive: bool) -> Expired {
        let mut out = Expired::default();
        while let Some(Reverse((at, id))) = self.deadlines.heap.peek().copied() {
            if at > now || (at == now && !inclusive) {
                break;
            }
            self.deadlines.heap.pop();
            if self.ready.contains(id) {
                let m = self.ready.remove_id(id).expect("contained");
                if m.expires == Some(at) {
                    out.letters.push(m);
                } else {
                    // Not this entry's deadline (cannot happen: ids are unique).
                    self.ready.requeue_sorted(vec![m]);
                }
            } else if let Some(m) = self.levels.as_mut().and_then(|l| l.remove_id(id)) {
                // A priority queue's message, in its level.
                out.letters.push(m);
            }
        }
        let in_memory = self.ready.len() + self.levels.as_ref().map_or(0, |l| l.len());
        let heap = &mut self.deadlines.heap;
        if heap.len() > 2 * in_memory + 64 {
            let (ready, levels) = (&self.ready, &self.levels);
            heap.retain(|Reverse((_, id))| {
                ready.contains(*id) || levels.as_ref().is_some_and(|l| l.contains(*id))
            });
        }
        let cutoff = if inclusive {
            now
        } else {
            now.saturating_sub(1)
        };
        let drop_unread = self.deadlines.drop_unread;
        let (dropped, scans) = match &mut self.levels {
            Some(levels) if !levels.tail().is_empty() => {
                levels.tail_mut().expire(cutoff, drop_unread)
            }
            None if !self.tail.is_empty() => self.tail.expire(cutoff, drop_unread),
            _ => return out,
        };
        // Their sizes are not known one by one (they were not read): a
        // priority queue's paged byte count forgets only their number; a
        // plain queue's forgets a recovered run's sum, else the oldest
        // sizes (exact when the oldest expire first, as with a queue TTL).
        if self.levels.is_some() {
            let n: u64 = dropped.iter().map(|&(_, n)| n).sum();
            self.paged_sizes.forget(n, 0);
        } else {
            for &(segment, n) in &dropped {
                self.paged_sizes.forget_expired(segment, n, None);
            }
        }
        out.dropped = dropped;
        out.scans = scans;
        out
    }

    /// Takes one scanned chunk of `scan`: the queue's paged messages found
    /// in it. The still paged ones whose deadline is at or before `now`
    /// leave the queue and are returned; the others stay paged.
    pub fn scan_chunk(
        &mut self,
        scan: &PagedScan,
        found: Vec<PagedMessage>,
        now: u64,
    ) -> Vec<QueuedMessage> {
        let dates: Vec<(u64, Option<u64>)> = found.iter().map(|m| (m.id, m.expires)).collect();
        let expired = match &mut self.levels {
            Some(levels) => levels.tail_mut().scan_chunk(scan, dates, now),
            None => self.tail.scan_chunk(scan, dates, now),
        };
        let expired: std::collections::HashSet<u64> = expired.into_iter().collect();
        if expired.is_empty() {
            return Vec::new();
        }
        let out: Vec<QueuedMessage> = found
            .into_iter()
            .filter(|m| expired.contains(&m.id))
            .map(|m| QueuedMessage {
                id: m.id,
                message: m.message,
                redelivered: false,
                stored: m.stored,
                expires: m.expires,
                delivery_count: 0,
                slice_generation: None,
            })
            .collect();
        if self.levels.is_some() {
            let bytes = out.iter().map(|m| m.message.body.len()).sum();
            self.paged_sizes.forget(out.len() as u64, bytes);
        } else {
            let sizes: Vec<u64> = out.iter().map(|m| m.message.body.len()).collect();
            self.paged_sizes
                .forget_expired(scan.segment, out.len() as u64, Some(&sizes));
        }
        out
    }

    /// `scan` is over; `retry_at`: it failed, look again then.
    pub fn end_scan(&mut self, scan: &PagedScan, retry_at: Option<u64>) {
        match &mut self.levels {
            Some(levels) => levels.tail_mut().end_scan(scan, retry_at),
            None => self.tail.end_scan(scan, retry_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_parses_as_rabbitmq() {
        assert_eq!(parse_expiration("0"), Ok(0));
        assert_eq!(parse_expiration("+15"), Ok(15));
        assert_eq!(parse_expiration("-0"), Ok(0));
        assert_eq!(parse_expiration("abc").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration(" 10").unwrap_err(), "no_integer");
        assert_eq!(parse_expiration("-5").unwrap_err(), "{value_negative,-5}");
        assert_eq!(
            parse_expiration("1.5").unwrap_err(),
            "{leftover_string,\".5\"}"
        );
    }
}
