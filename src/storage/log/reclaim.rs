//! Segment reclamation: live references released as records die, the
//! pins kill-records put on older segments, which dead segments may be
//! deleted, and the compaction candidate.

use super::state::Inner;
use super::Log;
use crate::storage::segment::SegmentId;

impl Log {
    /// One live reference in `segment` died, killed by a record in segment
    /// `by` (the `RecordPos::segment` of the ack/purge/delete/metadata
    /// record). Unknown (already deleted) segments are ignored.
    pub fn release(&self, segment: SegmentId, by: SegmentId) {
        self.release_many(segment, by, 1);
    }

    /// `n` live references of `segment` died, killed by records in `by`.
    pub fn release_many(&self, segment: SegmentId, by: SegmentId, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.inner.borrow_mut();
        let Some(st) = s.segments.get_mut(&segment) else {
            return;
        };
        debug_assert!(st.live >= n, "release of segment {segment} below zero");
        st.live = st.live.saturating_sub(n);
        let now_dead = st.live == 0 && st.sealed;
        if by != segment {
            if let Some(b) = s.segments.get_mut(&by) {
                b.pins.insert(segment);
            }
        }
        if now_dead {
            s.dead.insert(segment);
            s.wake_writer();
        }
    }

    /// A record in segment `by` says something about a live record of
    /// `segment` without killing it (a delivery count): `by` is kept while
    /// `segment` exists, as a kill-record's segment is. Unknown segments
    /// are ignored.
    pub fn pin(&self, segment: SegmentId, by: SegmentId) {
        let mut s = self.inner.borrow_mut();
        if by == segment || !s.segments.contains_key(&segment) {
            return;
        }
        if let Some(b) = s.segments.get_mut(&by) {
            b.pins.insert(segment);
        }
    }

    /// Tells the log the broker has replayed the recovered records and made
    /// its `release` calls for them: recovered segments holding acks/purges/
    /// deletes stop being pinned by every older segment and keep only the
    /// pins those releases recorded. Until then they are kept conservatively.
    pub fn replay_done(&self) {
        let mut s = self.inner.borrow_mut();
        for st in s.segments.values_mut() {
            st.conservative = false;
        }
        s.wake_writer();
    }

    /// The oldest segment still holding live references, with their count,
    /// if it is sealed, holds at most `max_live` of them and at least
    /// `behind` newer segments exist: a compaction candidate. Its few live
    /// records, copied forward, would let it go — and with it every later
    /// segment its dead records keep pinned (their kill-records).
    pub fn compaction_candidate(&self, max_live: u64, behind: u32) -> Option<(SegmentId, u64)> {
        let s = self.inner.borrow();
        let (&id, st) = s.segments.iter().find(|(_, st)| st.live > 0)?;
        (st.sealed && st.live <= max_live && s.active.saturating_sub(id) >= behind)
            .then_some((id, st.live))
    }

    /// Live references of a segment, if it exists.
    pub fn live_count(&self, segment: SegmentId) -> Option<u64> {
        self.inner.borrow().segments.get(&segment).map(|s| s.live)
    }
}

impl Inner {
    /// Dead segments that may be deleted now, ascending.
    pub(super) fn deletable(&self) -> Vec<SegmentId> {
        let mut out = Vec::new();
        for &id in &self.dead {
            // Fully written and synced: the writer has moved past it.
            if id >= self.durable.segment() {
                break;
            }
            let st = &self.segments[&id];
            debug_assert!(st.sealed && st.live == 0);
            let gone = |p: &SegmentId| !self.segments.contains_key(p) || out.contains(p);
            let older_gone = || self.segments.range(..id).all(|(p, _)| gone(p));
            if st.pins.iter().all(gone) && (!st.conservative || older_gone()) {
                out.push(id);
            }
        }
        out
    }
}
