//! The confirm contract: what an owner shard tells a publisher in confirm
//! mode about the copies of one publish it was given, and when.
//!
//! **A confirm (basic.ack) means every copy the broker promised to keep is
//! kept: a copy in a durable queue of a persistent message is on disk.**
//! `owner::enqueue` returns one `ConfirmOutcome` per publish it applied, and
//! only that value decides what the publisher gets:
//!
//! - `Now`: no copy needs the disk (transient copies, in memory or paged
//!   out to a log record that need not survive a restart); confirmed at the
//!   next pump.
//! - `AfterSync(lsn)`: every copy that must survive a restart has a log
//!   record ending at or before `lsn`. Confirmed once a completed fdatasync
//!   covers `lsn` (the log's durable LSN reaches it: group commit, one
//!   fsync releases every waiter it covers); nacked if the log fails first.
//!   Only a successful `Log::append` yields an LSN, so this outcome cannot
//!   arise on a shard without a log.
//! - `Failed(reason)`: a copy's record could not be written (any append
//!   error: a failed or closed log, a record the encoder refused): the
//!   publish is nacked, whatever the fsyncs do later.
//!
//! The publisher's channel (`connection::confirms`) turns the owners'
//! answers into basic.ack (`multiple`, in order) and basic.nack frames.

use crate::shard::envelope::ConfirmTicket;
use crate::storage::Lsn;

/// What the publisher of one publish gets from one owner shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Confirm at once: nothing of it needs the disk.
    Now,
    /// Confirm when the fsync covering this log position completes.
    AfterSync(Lsn),
    /// Nack: a copy that had to be written was not.
    Failed(String),
}

impl ConfirmOutcome {
    /// The outcome of a publish whose copies had outcomes `self` and
    /// `other`: any failure fails it, else it waits for the later LSN.
    pub fn and(self, other: ConfirmOutcome) -> ConfirmOutcome {
        use ConfirmOutcome::*;
        match (self, other) {
            (Failed(r), _) | (_, Failed(r)) => Failed(r),
            (AfterSync(a), AfterSync(b)) => AfterSync(a.max(b)),
            (AfterSync(a), Now) | (Now, AfterSync(a)) => AfterSync(a),
            (Now, Now) => Now,
        }
    }
}

/// Publishes waiting for an fsync, each with the LSN it needs.
#[derive(Debug, Default)]
pub struct SyncWaiters {
    /// Sorted by LSN once `sort` ran.
    waiting: Vec<(Lsn, ConfirmTicket)>,
}

impl SyncWaiters {
    pub fn new(mut waiting: Vec<(Lsn, ConfirmTicket)>) -> SyncWaiters {
        waiting.sort_by_key(|(lsn, _)| *lsn);
        SyncWaiters { waiting }
    }

    /// The smallest LSN still waited for.
    pub fn first(&self) -> Option<Lsn> {
        self.waiting.first().map(|(lsn, _)| *lsn)
    }

    /// Removes and returns the tickets a durable LSN of `durable` covers.
    pub fn covered(&mut self, durable: Lsn) -> Vec<ConfirmTicket> {
        let n = self.waiting.partition_point(|(lsn, _)| *lsn <= durable);
        self.waiting.drain(..n).map(|(_, t)| t).collect()
    }

    /// Removes and returns every ticket (the log failed: nack them).
    pub fn all(&mut self) -> Vec<ConfirmTicket> {
        self.waiting.drain(..).map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(seq: u64) -> ConfirmTicket {
        ConfirmTicket {
            shard: 0,
            conn: 1,
            channel: 1,
            seq,
        }
    }

    #[test]
    fn outcomes_combine_failure_first_then_the_later_lsn() {
        let (a, b) = (Lsn::new(1, 100), Lsn::new(2, 0));
        use ConfirmOutcome::*;
        assert_eq!(Now.and(Now), Now);
        assert_eq!(Now.and(AfterSync(a)), AfterSync(a));
        assert_eq!(AfterSync(b).and(AfterSync(a)), AfterSync(b));
        assert_eq!(AfterSync(a).and(Failed("x".into())), Failed("x".into()));
        assert_eq!(Failed("y".into()).and(Now), Failed("y".into()));
    }

    #[test]
    fn a_waiter_is_released_only_by_a_durable_lsn_covering_it() {
        let mut w = SyncWaiters::new(vec![
            (Lsn::new(1, 300), ticket(3)),
            (Lsn::new(1, 100), ticket(1)),
            (Lsn::new(1, 200), ticket(2)),
        ]);
        assert_eq!(w.first(), Some(Lsn::new(1, 100)));
        assert!(w.covered(Lsn::new(1, 99)).is_empty());
        assert_eq!(w.covered(Lsn::new(1, 200)), vec![ticket(1), ticket(2)]);
        assert_eq!(w.first(), Some(Lsn::new(1, 300)));
        assert_eq!(w.all(), vec![ticket(3)]);
        assert_eq!(w.first(), None);
    }
}
