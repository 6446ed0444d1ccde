//! Recovery's view of one owned queue while the shard's log is replayed
//! (`shard::durability::recover`): per segment the live ids of its message
//! records, the ids handed out and not settled, the records compaction
//! moved out of id order, a priority queue's level spans, the delivery
//! counts of returned messages, and what purges and acks kill.

use crate::broker::message::MessageRef;
use crate::broker::paged::{IdRanges, PagedRun};
use crate::storage::RecordPos;
use std::collections::{BTreeMap, HashMap};

/// One owned queue's messages as the replay finds them.
#[derive(Default)]
pub(super) struct QueueReplay {
    /// Per segment: where the queue's records start and end, and the live ids.
    pub(super) runs: BTreeMap<u32, PagedRun>,
    /// First id of each run → its segment (ids grow with log order).
    pub(super) run_of: BTreeMap<u64, u32>,
    /// Ids handed to a consumer and not acked (they come back redelivered).
    pub(super) delivered: IdRanges,
    /// The largest id added so far.
    pub(super) max_added: u64,
    /// Live messages whose latest record came out of id order (compaction
    /// copied it forward): id → (message, segment). They come back in
    /// memory, ahead of the runs.
    pub(super) moved: BTreeMap<u64, (MessageRef, u32)>,
    /// Deadlines (message TTL) of the `moved` messages that have one.
    pub(super) moved_expires: HashMap<u64, u64>,
    /// A priority queue's levels: per (level, segment) the byte range of
    /// the level's records in the runs.
    pub(super) spans: BTreeMap<(usize, u32), (u32, u32)>,
    /// Delivery counts of returned messages (quorum queues, `Returned`
    /// records): id → returns.
    pub(super) returned: BTreeMap<u64, u32>,
}

impl QueueReplay {
    /// An original message record for `id`: appended to the runs, or,
    /// when it comes after larger ids, taken for an unmarked compaction
    /// copy (logs written before `Record::Copy` existed) and handled as
    /// `add_copy`. Returns the segment of the record it supersedes, if any.
    pub(super) fn add_record(
        &mut self,
        id: u64,
        pos: RecordPos,
        expires: Option<u64>,
        body_len: u64,
        message: impl FnOnce() -> MessageRef,
    ) -> Option<u32> {
        if id > self.max_added {
            self.max_added = id;
            self.add(id, pos, expires, body_len);
            return None;
        }
        self.add_copy(id, pos, expires, message)
    }

    /// A compaction copy of `id` (`Record::Copy`): it supersedes every
    /// earlier record of the id (in the runs or an earlier copy) and is
    /// kept in `moved`, to come back in memory ahead of the runs — every
    /// live copy's id is below every live original's (see
    /// `shard::durability::compact`). Returns the segment of the record it
    /// supersedes, if any (none when the original's segment is gone).
    pub(super) fn add_copy(
        &mut self,
        id: u64,
        pos: RecordPos,
        expires: Option<u64>,
        message: impl FnOnce() -> MessageRef,
    ) -> Option<u32> {
        match expires {
            Some(e) => self.moved_expires.insert(id, e),
            None => self.moved_expires.remove(&id),
        };
        let old = self
            .moved
            .remove(&id)
            .map(|(_, segment)| segment)
            .or_else(|| self.remove(id));
        self.moved.insert(id, (message(), pos.segment));
        old
    }

    /// Whether the ids recovered in memory (`moved`) all come before the
    /// paged ones (the runs): always so for a log whose copies are marked;
    /// a log written before may hold an unmarked copy whose original is
    /// gone, which the runs then took for a new message.
    pub(super) fn in_order(&self) -> bool {
        let last_moved = self.moved.keys().next_back();
        let first_run = self.runs.values().filter_map(|r| r.ids.first()).min();
        last_moved.zip(first_run).is_none_or(|(m, r)| m < &r)
    }

    /// Adds `id`, whose record is at `pos` with a body of `body_len` bytes.
    pub(super) fn add(&mut self, id: u64, pos: RecordPos, expires: Option<u64>, body_len: u64) {
        let run = self
            .runs
            .entry(pos.segment)
            .or_insert_with(|| PagedRun::new(pos.segment, pos.offset));
        if run.ids.is_empty() {
            self.run_of.insert(id, pos.segment);
        }
        run.end = pos.offset + pos.len;
        if run.ids.insert(id) {
            run.bytes += body_len;
        }
        run.note_expiry(expires);
    }

    /// Notes that the record at `pos` (added to the runs) is of `level`.
    pub(super) fn add_span(&mut self, level: usize, pos: RecordPos) {
        let end = pos.offset + pos.len;
        self.spans
            .entry((level, pos.segment))
            .and_modify(|span| span.1 = end)
            .or_insert((pos.offset, end));
    }

    /// Removes a live id (ack, reject); returns the segment of its record.
    pub(super) fn kill(&mut self, id: u64) -> Option<u32> {
        self.moved_expires.remove(&id);
        match self.moved.remove(&id) {
            Some((_, segment)) => Some(segment),
            None => self.remove(id),
        }
    }

    /// A purge of the ready ids up to `up_to` (inclusive), sparing the ids
    /// in `spared` (ranges, end exclusive: unacked when the queue was
    /// purged). Counts the dead references by segment into `dead`, killed
    /// by the purge record's segment `by`.
    pub(super) fn purge(
        &mut self,
        up_to: u64,
        spared: &[(u64, u64)],
        by: u32,
        dead: &mut HashMap<(u32, u32), u64>,
    ) {
        let spares = |id: u64| spared.iter().any(|&(s, e)| s <= id && id < e);
        // The spared ids at or below `up_to` (bounded by the unacked
        // messages of the queue when it was purged).
        let below: Vec<u64> = spared
            .iter()
            .flat_map(|&(s, e)| s..e.min(up_to.saturating_add(1)))
            .collect();
        let delivered: Vec<u64> = below
            .iter()
            .copied()
            .filter(|&id| self.delivered.contains(id))
            .collect();
        self.delivered.remove_up_to(up_to);
        for id in delivered {
            self.delivered.insert(id);
        }
        let keep = self.returned.split_off(&(up_to.saturating_add(1)));
        let purged = std::mem::replace(&mut self.returned, keep);
        self.returned
            .extend(purged.into_iter().filter(|&(id, _)| spares(id)));
        let keep = self.moved.split_off(&(up_to.saturating_add(1)));
        for (id, (m, s)) in std::mem::replace(&mut self.moved, keep) {
            if spares(id) {
                self.moved.insert(id, (m, s));
            } else {
                *dead.entry((s, by)).or_default() += 1;
            }
        }
        for run in self.runs.values_mut() {
            let kept: Vec<u64> = below
                .iter()
                .copied()
                .filter(|&id| run.ids.contains(id))
                .collect();
            let before = run.ids.len();
            let n = run.ids.remove_up_to(up_to) - kept.len() as u64;
            for id in kept {
                run.ids.insert(id);
            }
            run.forget(n, before);
            if n > 0 {
                *dead.entry((run.segment, by)).or_default() += n;
            }
        }
    }

    /// The segment of the live id's latest record, if it is live.
    pub(super) fn segment_of(&self, id: u64) -> Option<u32> {
        if let Some((_, segment)) = self.moved.get(&id) {
            return Some(*segment);
        }
        if let Some((_, &segment)) = self.run_of.range(..=id).next_back() {
            if self.runs.get(&segment).is_some_and(|r| r.ids.contains(id)) {
                return Some(segment);
            }
        }
        self.runs
            .values()
            .find_map(|r| r.ids.contains(id).then_some(r.segment))
    }

    /// Removes a live id from the runs; returns the segment of its record.
    pub(super) fn remove(&mut self, id: u64) -> Option<u32> {
        let take = |r: &mut PagedRun| {
            let before = r.ids.len();
            let gone = r.ids.remove(id);
            if gone {
                r.forget(1, before);
            }
            gone
        };
        if let Some((_, &segment)) = self.run_of.range(..=id).next_back() {
            if self.runs.get_mut(&segment).is_some_and(take) {
                return Some(segment);
            }
        }
        // Ids out of log order (not written by this broker): look everywhere.
        self.runs
            .values_mut()
            .find_map(|r| take(r).then_some(r.segment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::{Body, Message};
    use crate::protocol::types::ShortStr;
    use bytes::Bytes;
    use std::sync::Arc;

    fn pos(segment: u32, offset: u32) -> RecordPos {
        RecordPos {
            segment,
            offset,
            len: 50,
        }
    }

    /// A message record's content, for the replay's closures.
    pub(super) fn message() -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from("q"),
            raw_properties: Bytes::from_static(&[0, 0]),
            body: Body::from(Bytes::from_static(b"m")),
            persistent: true,
        })
    }

    #[test]
    fn runs_sum_their_bodies() {
        let mut q = QueueReplay::default();
        for (id, len) in [(1, 10), (2, 20), (3, 30)] {
            q.add_record(id, pos(1, id as u32 * 50), None, len, message);
        }
        q.add_record(4, pos(2, 0), None, 5, message);
        let bytes = |q: &QueueReplay, s: u32| q.runs[&s].bytes;
        assert_eq!((bytes(&q, 1), bytes(&q, 2)), (60, 5));
        // A killed id's own size is not kept: it takes the run's average.
        assert_eq!(q.kill(2), Some(1));
        assert_eq!(bytes(&q, 1), 40);
        // A run emptied leaves nothing (exact when it goes whole).
        let mut dead = HashMap::new();
        q.purge(3, &[], 9, &mut dead);
        assert_eq!((bytes(&q, 1), bytes(&q, 2)), (0, 5));
    }

    #[test]
    fn a_purge_spares_the_ids_it_names() {
        let mut q = QueueReplay::default();
        for id in 1..=6 {
            q.add_record(id, pos(1, id as u32 * 50), None, 10, message);
        }
        // 2 was compacted forward; 2 and 3 were unacked when purged.
        q.add_record(2, pos(2, 0), None, 10, message);
        q.delivered.insert(2);
        q.delivered.insert(3);
        q.delivered.insert(4);
        q.returned.insert(3, 2);
        q.returned.insert(4, 1);
        let mut dead = HashMap::new();
        q.purge(5, &[(2, 4)], 3, &mut dead);
        let live: Vec<u64> = (0..10).filter(|&i| q.runs[&1].ids.contains(i)).collect();
        assert_eq!(live, vec![3, 6]);
        assert_eq!(q.moved.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(dead, HashMap::from([((1, 3), 3)]), "1, 4 and 5 died");
        assert!(q.delivered.contains(2) && q.delivered.contains(3));
        assert!(!q.delivered.contains(4));
        assert_eq!(q.returned, BTreeMap::from([(3, 2)]));
    }

    #[test]
    fn replay_keeps_log_order_ids_in_runs_and_compacted_copies_apart() {
        let mut q = QueueReplay::default();
        for id in 1..=3 {
            assert_eq!(
                q.add_record(id, pos(1, id as u32 * 50), None, 10, message),
                None
            );
        }
        assert_eq!(q.add_record(4, pos(2, 0), None, 10, message), None);
        // Compaction copied id 2 forward: the copy supersedes segment 1's.
        assert_eq!(q.add_record(2, pos(3, 0), None, 10, message), Some(1));
        assert_eq!(q.moved.keys().copied().collect::<Vec<_>>(), vec![2]);
        // And again, from segment 3 to 5.
        assert_eq!(q.add_record(2, pos(5, 0), None, 10, message), Some(3));
        assert_eq!(q.moved[&2].1, 5);
        // Acks find either kind.
        assert_eq!(q.kill(2), Some(5));
        assert_eq!(q.kill(3), Some(1));
        assert_eq!(q.kill(3), None);
        let ids: Vec<u64> = q
            .runs
            .values()
            .flat_map(|r| (0..10).filter(|&i| r.ids.contains(i)).collect::<Vec<_>>())
            .collect();
        assert_eq!(ids, vec![1, 4]);
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod replay_tests;
