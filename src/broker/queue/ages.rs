//! Message ages without a timestamp per message: a queue notes
//! checkpoints `(first id, time)` — at most one per `STEP_MS` of
//! publishing — and the age of a message is read from the last checkpoint
//! at or before its id. Ids grow in publish order, so every message whose
//! id is at or after a checkpoint's was enqueued at or after its time: the
//! age read is an upper bound, off by at most the spacing of checkpoints.
//! Paged messages keep their ids, so their ages need nothing in the paged
//! index. Bounded: past `MAX_CHECKPOINTS` every other one is dropped
//! (coarser, never unbounded); checkpoints older than the oldest message
//! still in the queue are dropped as the queue moves on.

use std::collections::VecDeque;

/// Publishing within this many ms of the last checkpoint adds none.
pub const STEP_MS: u64 = 100;

/// Checkpoints kept per queue at most.
pub const MAX_CHECKPOINTS: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct AgeIndex {
    /// (first id, ms since the Unix epoch), both strictly increasing.
    checkpoints: VecDeque<(u64, u64)>,
}

impl AgeIndex {
    /// Message `id` was enqueued at `now_ms` (ids in increasing order).
    #[inline]
    pub(super) fn published(&mut self, id: u64, now_ms: u64) {
        match self.checkpoints.back() {
            Some(&(last_id, at)) if now_ms < at + STEP_MS || id <= last_id => {}
            _ => self.push(id, now_ms),
        }
    }

    fn push(&mut self, id: u64, now_ms: u64) {
        if self.checkpoints.len() >= MAX_CHECKPOINTS {
            // Keep the first (the oldest message's bound) and every other.
            let mut keep = 0;
            self.checkpoints.retain(|_| {
                keep += 1;
                keep % 2 == 1
            });
        }
        self.checkpoints.push_back((id, now_ms));
    }

    /// When message `id` was enqueued at the earliest (None: before any
    /// checkpoint, which `restored` prevents for recovered messages).
    pub(super) fn enqueued_at(&self, id: u64) -> Option<u64> {
        let after = self.checkpoints.partition_point(|(first, _)| *first <= id);
        after.checked_sub(1).map(|i| self.checkpoints[i].1)
    }

    /// Drops the checkpoints no message at or after `oldest` needs.
    pub(super) fn forget_before(&mut self, oldest: u64) {
        while self.checkpoints.len() > 1 && self.checkpoints[1].0 <= oldest {
            self.checkpoints.pop_front();
        }
    }

    /// Messages recovered from the log (ids from `first`) count from the
    /// recovery: their enqueue time is not in the records.
    pub(super) fn restored(&mut self, first: u64, now_ms: u64) {
        if self.checkpoints.front().is_none_or(|(id, _)| first < *id) {
            self.checkpoints.push_front((first, now_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_upper_bounds_within_a_step() {
        let mut a = AgeIndex::default();
        a.published(1, 1_000);
        a.published(2, 1_050); // within the step: no checkpoint
        a.published(3, 1_200);
        assert_eq!(a.enqueued_at(1), Some(1_000));
        assert_eq!(a.enqueued_at(2), Some(1_000));
        assert_eq!(a.enqueued_at(3), Some(1_200));
        assert_eq!(a.enqueued_at(0), None);
        a.forget_before(3);
        assert_eq!(a.enqueued_at(3), Some(1_200));
        assert_eq!(a.checkpoints.len(), 1);
    }

    #[test]
    fn bounded_by_thinning() {
        let mut a = AgeIndex::default();
        for i in 0..10 * MAX_CHECKPOINTS as u64 {
            a.published(i + 1, i * STEP_MS);
        }
        assert!(a.checkpoints.len() <= MAX_CHECKPOINTS);
        assert_eq!(a.enqueued_at(1), Some(0));
        let last = 10 * MAX_CHECKPOINTS as u64;
        assert_eq!(a.enqueued_at(last), Some((last - 1) * STEP_MS));
    }

    #[test]
    fn restored_messages_count_from_recovery() {
        let mut a = AgeIndex::default();
        a.restored(5, 9_000);
        a.published(20, 9_500);
        assert_eq!(a.enqueued_at(7), Some(9_000));
        assert_eq!(a.enqueued_at(20), Some(9_500));
    }
}
