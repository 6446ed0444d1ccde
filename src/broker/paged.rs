//! The paged-out part of a queue: ready messages that live only in the
//! shard's log, newer than every message the queue holds in memory.
//!
//! The tail keeps no per-message state: it is a list of runs, one per log
//! segment, each a byte range of that segment plus the set of message ids
//! (as ranges) whose records in that range belong to the queue. Ten million
//! paged messages published back to back cost a few runs of a few words
//! each. Reading back ("paging in") takes the front run's next chunk, which
//! the shard reads and decodes; the records of this queue whose ids are in
//! the run become ready messages again. Pure: the I/O is the shard's.
//!
//! Message TTL: each run also keeps the earliest and the latest deadline of
//! its messages (two words), so expiry never looks inside a run that has
//! nothing due: a run whose messages have all expired is dropped without
//! being read (`expire`), and a run holding an earlier-expiring message is
//! scanned — read chunk by chunk like a page-in, its expired ids removed,
//! the rest left paged (`scan_chunk`, `end_scan`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

/// A set of message ids stored as disjoint half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdRanges {
    /// start → end (exclusive); ranges never touch or overlap.
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl IdRanges {
    pub fn new() -> IdRanges {
        IdRanges::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of ranges (the memory it takes).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    pub fn first(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    pub fn last(&self) -> Option<u64> {
        self.ranges.values().next_back().map(|end| end - 1)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.ranges
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &end)| id < end)
    }

    /// Adds `id`; returns false if it was already there.
    pub fn insert(&mut self, id: u64) -> bool {
        assert!(id < u64::MAX, "id u64::MAX is reserved");
        // The common case: the next id after the last range.
        if let Some(mut last) = self.ranges.last_entry() {
            if *last.get() == id {
                *last.get_mut() = id + 1;
                self.len += 1;
                return true;
            }
        }
        if self.contains(id) {
            return false;
        }
        let before = self
            .ranges
            .range(..id)
            .next_back()
            .filter(|(_, &end)| end == id)
            .map(|(&start, _)| start);
        let after = self.ranges.get(&(id + 1)).copied();
        match (before, after) {
            (Some(start), Some(end)) => {
                self.ranges.remove(&(id + 1));
                self.ranges.insert(start, end);
            }
            (Some(start), None) => {
                self.ranges.insert(start, id + 1);
            }
            (None, Some(end)) => {
                self.ranges.remove(&(id + 1));
                self.ranges.insert(id, end);
            }
            (None, None) => {
                self.ranges.insert(id, id + 1);
            }
        }
        self.len += 1;
        true
    }

    /// Removes `id`; returns whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some((&start, &end)) = self.ranges.range(..=id).next_back() else {
            return false;
        };
        if id >= end {
            return false;
        }
        self.ranges.remove(&start);
        if start < id {
            self.ranges.insert(start, id);
        }
        if id + 1 < end {
            self.ranges.insert(id + 1, end);
        }
        self.len -= 1;
        true
    }

    /// Removes every id <= `up_to`; returns how many went.
    pub fn remove_up_to(&mut self, up_to: u64) -> u64 {
        let mut removed = 0;
        while let Some((&start, &end)) = self.ranges.iter().next() {
            if start > up_to {
                break;
            }
            self.ranges.remove(&start);
            let cut = end.min(up_to.saturating_add(1));
            removed += cut - start;
            if cut < end {
                self.ranges.insert(cut, end);
            }
        }
        self.len -= removed;
        removed
    }
}

/// The messages of one queue in one log segment.
#[derive(Clone, Debug)]
pub struct PagedRun {
    pub segment: u32,
    /// Where the next read starts (a record boundary).
    pub next: u32,
    /// End of the last record of the run.
    pub end: u32,
    /// Live ids of the queue's records in `[next, end)`.
    pub ids: IdRanges,
    /// No message of the run expires before this (ms since the Unix epoch;
    /// `u64::MAX`: none has a deadline). A lower bound.
    pub min_expires: u64,
    /// Every message of the run has expired at this time (`u64::MAX`: some
    /// message has no deadline). An upper bound.
    pub max_expires: u64,
    /// A TTL scan of the run is out.
    pub scanning: bool,
    /// Body bytes of the live ids, as recovery found them (0 for runs of a
    /// running broker, whose sizes the queue keeps). Exact while ids are
    /// only added or the run goes whole; an id removed without its size
    /// known takes the run's average (`forget`).
    pub bytes: u64,
}

impl PagedRun {
    /// An empty run of `segment` starting at `offset`.
    pub fn new(segment: u32, offset: u32) -> PagedRun {
        PagedRun {
            segment,
            next: offset,
            end: offset,
            ids: IdRanges::new(),
            min_expires: u64::MAX,
            max_expires: 0,
            scanning: false,
            bytes: 0,
        }
    }

    /// The body bytes of `removed` of the run's `before` ids, whose own
    /// sizes are not known: their share of `bytes` (all of it when they are
    /// all the ids), taken off `bytes` and returned.
    pub fn forget(&mut self, removed: u64, before: u64) -> u64 {
        let share = if removed >= before {
            self.bytes
        } else {
            (u128::from(self.bytes) * u128::from(removed) / u128::from(before)) as u64
        };
        self.bytes -= share;
        share
    }

    /// Adds a message's deadline (None: it never expires) to the bounds.
    pub fn note_expiry(&mut self, expires: Option<u64>) {
        let e = expires.unwrap_or(u64::MAX);
        self.min_expires = self.min_expires.min(e);
        self.max_expires = self.max_expires.max(e);
    }

    /// Message TTL at `now` for this run (`busy`: a page-in is reading it,
    /// its messages expire once in memory): `DropAll` when every message
    /// has expired and `drop_unread` (nothing needs the bodies), `Scan`
    /// when some may have (the run is marked scanning until `end_scan`),
    /// else `Keep`. The one decision every paged tail makes.
    pub fn ttl(&mut self, now: u64, drop_unread: bool, busy: bool, epoch: u64) -> RunTtl {
        if busy || self.scanning || self.min_expires > now {
            return RunTtl::Keep;
        }
        if drop_unread && self.max_expires <= now {
            return RunTtl::DropAll;
        }
        self.scanning = true;
        self.min_expires = u64::MAX;
        RunTtl::Scan(TtlScan {
            segment: self.segment,
            from: self.next,
            to: self.end,
            epoch,
        })
    }

    /// Takes the expired ids of one scanned chunk: `found` are (id,
    /// deadline) of the queue's records in it; ids of the run whose
    /// deadline is at or before `now` leave it and are returned, the
    /// others' deadlines are noted again.
    pub fn take_expired(
        &mut self,
        found: impl IntoIterator<Item = (u64, Option<u64>)>,
        now: u64,
    ) -> Vec<u64> {
        let mut expired = Vec::new();
        for (id, expires) in found {
            if !self.ids.contains(id) {
                continue;
            }
            if expires.is_some_and(|e| e <= now) {
                self.ids.remove(id);
                expired.push(id);
            } else {
                self.min_expires = self.min_expires.min(expires.unwrap_or(u64::MAX));
            }
        }
        expired
    }

    /// The scan of this run is over (`retry_at`: it failed, look again then).
    pub fn end_scan(&mut self, retry_at: Option<u64>) {
        self.scanning = false;
        if let Some(at) = retry_at {
            self.min_expires = self.min_expires.min(at);
        }
    }
}

/// The earliest deadline of the paged messages of `runs` not already being
/// scanned (a lower bound), if any.
pub fn next_deadline<'a>(runs: impl Iterator<Item = &'a PagedRun>) -> Option<u64> {
    runs.filter(|r| !r.scanning)
        .map(|r| r.min_expires)
        .min()
        .filter(|&e| e != u64::MAX)
}

/// `PagedRun::take_expired` for a tail: the expired ids also leave its
/// redelivered set and its count.
pub fn take_expired(
    run: &mut PagedRun,
    redelivered: &mut IdRanges,
    count: &mut u64,
    found: impl IntoIterator<Item = (u64, Option<u64>)>,
    now: u64,
) -> Vec<u64> {
    let expired = run.take_expired(found, now);
    for &id in &expired {
        redelivered.remove(id);
    }
    *count -= expired.len() as u64;
    expired
}

/// What message TTL does to one paged run (`PagedRun::ttl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunTtl {
    Keep,
    /// Every message expired: drop the run without reading it.
    DropAll,
    /// Read the run back to take out the expired messages.
    Scan(TtlScan),
}

/// A TTL scan of one run: read `[from, to)` of `segment` chunk by chunk,
/// handing each chunk's (id, deadline) to `PagedTail::scan_chunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlScan {
    pub segment: u32,
    pub from: u32,
    pub to: u32,
    pub epoch: u64,
}

/// One chunk to read back: `len` bytes at `offset` of `segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRead {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
    /// The tail incarnation it was taken from (a purge or a new tail makes
    /// a late answer void).
    pub epoch: u64,
}

/// Tails are told apart by an epoch unique in the process, so the answer to
/// a read for a purged or deleted-and-redeclared queue is recognised.
static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

pub(crate) fn new_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// The paged-out tail of a queue. See the module docs.
#[derive(Debug)]
pub struct PagedTail {
    runs: VecDeque<PagedRun>,
    count: u64,
    /// Ids that were handed to a consumer before a restart (recovery only).
    redelivered: IdRanges,
    epoch: u64,
    reading: bool,
    /// A read failed for good (the log could not give the data back): no
    /// more reads; the runs stay, so their records stay live in the log.
    failed: bool,
}

impl Default for PagedTail {
    fn default() -> PagedTail {
        PagedTail {
            runs: VecDeque::new(),
            count: 0,
            redelivered: IdRanges::new(),
            epoch: new_epoch(),
            reading: false,
            failed: false,
        }
    }
}

impl PagedTail {
    pub fn new() -> PagedTail {
        PagedTail::default()
    }

    /// A recovered tail: runs in log order, ids that must come back
    /// redelivered.
    pub fn from_runs(runs: Vec<PagedRun>, redelivered: IdRanges) -> PagedTail {
        debug_assert!(runs.windows(2).all(|w| w[0].segment < w[1].segment));
        let runs: VecDeque<PagedRun> = runs.into_iter().filter(|r| !r.ids.is_empty()).collect();
        let count = runs.iter().map(|r| r.ids.len()).sum();
        PagedTail {
            runs,
            count,
            redelivered,
            ..PagedTail::default()
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The smallest paged id.
    pub fn first_id(&self) -> Option<u64> {
        self.runs.front().and_then(|r| r.ids.first())
    }

    pub fn last_id(&self) -> Option<u64> {
        self.runs.back().and_then(|r| r.ids.last())
    }

    pub fn is_reading(&self) -> bool {
        self.reading
    }

    /// Whether a read failed for good: nothing more is read back until the
    /// tail is cleared (purge, deletion) or the broker restarts.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Whether `read` is the outstanding read of this tail (not made stale
    /// by a purge or a new tail).
    pub fn is_current(&self, read: &PageRead) -> bool {
        read.epoch == self.epoch && self.reading
    }

    /// Adds the message `id` whose record is `len` bytes at `offset` of
    /// `segment`. Ids and positions only grow.
    pub fn push(&mut self, id: u64, segment: u32, offset: u32, len: u32) {
        self.push_until(id, segment, offset, len, None)
    }

    /// `push` for a message that expires at `expires` (None: never).
    pub fn push_until(
        &mut self,
        id: u64,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        debug_assert!(self.last_id().is_none_or(|last| last < id));
        let end = offset + len;
        if self.runs.back().is_none_or(|run| run.segment != segment) {
            debug_assert!(self.runs.back().is_none_or(|r| r.segment < segment));
            self.runs.push_back(PagedRun::new(segment, offset));
        }
        let run = self.runs.back_mut().expect("just ensured");
        debug_assert!(run.end <= offset);
        run.end = end;
        run.ids.insert(id);
        run.note_expiry(expires);
        self.count += 1;
    }

    /// The earliest deadline of a paged message not already being scanned
    /// (a lower bound), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        next_deadline(self.runs.iter())
    }

    /// Message TTL at `now`: runs whose messages have all expired are
    /// dropped unread when `drop_unread` (returned as (segment, messages)
    /// for the caller to release), and scans are started for runs holding
    /// an expired message (all of them when not `drop_unread`: the caller
    /// needs the messages, to dead-letter them). The run a page-in is
    /// reading is left to it: its messages expire once in memory.
    pub fn expire(&mut self, now: u64, drop_unread: bool) -> (Vec<(u32, u64)>, Vec<TtlScan>) {
        let mut dropped = Vec::new();
        let mut scans = Vec::new();
        if self.failed {
            return (dropped, scans);
        }
        let reading = self.reading;
        let epoch = self.epoch;
        let mut i = 0;
        while i < self.runs.len() {
            match self.runs[i].ttl(now, drop_unread, i == 0 && reading, epoch) {
                RunTtl::Keep => {}
                RunTtl::DropAll => {
                    let run = self.runs.remove(i).expect("in range");
                    self.count -= run.ids.len();
                    dropped.push((run.segment, run.ids.len()));
                    continue;
                }
                RunTtl::Scan(scan) => scans.push(scan),
            }
            i += 1;
        }
        (dropped, scans)
    }

    /// Takes one chunk of `scan`: the (id, deadline) of the queue's records
    /// in it. Ids still paged whose deadline is at or before `now` leave the
    /// tail and are returned; the others stay, their deadlines noted. A
    /// stale scan (purge, new tail, run gone) takes nothing.
    pub fn scan_chunk(
        &mut self,
        scan: &TtlScan,
        found: impl IntoIterator<Item = (u64, Option<u64>)>,
        now: u64,
    ) -> Vec<u64> {
        if scan.epoch != self.epoch {
            return Vec::new();
        }
        let Some(run) = self.runs.iter_mut().find(|r| r.segment == scan.segment) else {
            return Vec::new();
        };
        take_expired(run, &mut self.redelivered, &mut self.count, found, now)
    }

    /// `scan` is over (`retry_at`: it failed; look again then). A run left
    /// empty goes, unless a page-in is reading it.
    pub fn end_scan(&mut self, scan: &TtlScan, retry_at: Option<u64>) {
        if scan.epoch != self.epoch {
            return;
        }
        let reading = self.reading;
        let Some(i) = self.runs.iter().position(|r| r.segment == scan.segment) else {
            return;
        };
        let run = &mut self.runs[i];
        run.end_scan(retry_at);
        if run.ids.is_empty() && !(i == 0 && reading) {
            self.runs.remove(i);
        }
    }

    /// Drops the oldest paged message without reading it (a length limit
    /// let it go): returns its id and the segment holding its record. A
    /// run left without ids goes, unless it is being read (the read's
    /// answer removes it).
    pub fn drop_first(&mut self) -> Option<(u64, u32)> {
        // Only the front run (while read) can be left without ids.
        let at = self.runs.iter().position(|r| !r.ids.is_empty())?;
        let run = &mut self.runs[at];
        let id = run.ids.first().expect("not empty");
        run.ids.remove(id);
        self.redelivered.remove(id);
        let segment = run.segment;
        if run.ids.is_empty() && !(at == 0 && self.reading) {
            self.runs.remove(at);
        }
        self.count -= 1;
        Some((id, segment))
    }

    /// The next chunk to read (at most `max_len` bytes, whole records
    /// permitting), unless a read is already out or nothing is paged.
    pub fn start_read(&mut self, max_len: u32) -> Option<PageRead> {
        if self.reading || self.failed {
            return None;
        }
        let run = self.runs.front()?;
        assert!(run.next < run.end, "a run with nothing left to read");
        self.reading = true;
        Some(PageRead {
            segment: run.segment,
            offset: run.next,
            len: (run.end - run.next).min(max_len.max(1)),
            epoch: self.epoch,
        })
    }

    /// Takes the answer to `read`: `found` are the (id, payload) of the
    /// queue's records in the first `consumed` bytes, in log order. Returns
    /// the ones still paged (id, redelivered, payload) — now the caller's —
    /// and how many ids the run lost without finding their record (a bug or
    /// a damaged log; counted out so the queue's count stays true). A stale
    /// answer (purge or new tail since) returns nothing.
    pub fn finish_read<T>(
        &mut self,
        read: &PageRead,
        found: Vec<(u64, T)>,
        consumed: u32,
    ) -> (Vec<(u64, bool, T)>, u64) {
        if read.epoch != self.epoch || !self.reading {
            return (Vec::new(), 0);
        }
        self.reading = false;
        let run = self.runs.front_mut().expect("a read of a run");
        assert_eq!(
            (run.segment, run.next),
            (read.segment, read.offset),
            "reads follow the run"
        );
        // A record larger than the chunk is read whole: `consumed` may pass
        // `read.len`, never the run's end.
        assert!(consumed <= run.end - run.next, "consumed past the run");
        let mut out = Vec::with_capacity(found.len());
        for (id, payload) in found {
            if run.ids.remove(id) {
                let redelivered = self.redelivered.remove(id);
                out.push((id, redelivered, payload));
            }
        }
        self.count -= out.len() as u64;
        run.next += consumed;
        let mut lost = 0;
        // A run emptied by drops (length limits) goes too.
        if run.next >= run.end || run.ids.is_empty() {
            lost = run.ids.len();
            self.count -= lost;
            self.runs.pop_front();
        }
        (out, lost)
    }

    /// Gives up the outstanding read (the log could not give the data
    /// back, retries included): the tail stops reading, and keeps every run
    /// (their records stay live, so their segments stay). Returns whether
    /// the read was current (false: a stale answer, nothing changed).
    pub fn fail_read(&mut self, read: &PageRead) -> bool {
        if !self.is_current(read) {
            return false;
        }
        self.reading = false;
        self.failed = true;
        true
    }

    /// Empties the tail; returns (segment, messages) of every run for the
    /// caller to release. An outstanding read's answer becomes stale.
    pub fn clear(&mut self) -> Vec<(u32, u64)> {
        let out = self
            .runs
            .drain(..)
            .map(|r| (r.segment, r.ids.len()))
            .collect();
        self.count = 0;
        self.redelivered = IdRanges::new();
        self.reading = false;
        self.failed = false;
        self.epoch = new_epoch();
        out
    }

    /// (segment, messages, body bytes) of every run, oldest first
    /// (`PagedRun::bytes`).
    pub fn run_sums(&self) -> Vec<(u32, u64, u64)> {
        self.runs
            .iter()
            .map(|r| (r.segment, r.ids.len(), r.bytes))
            .collect()
    }

    /// (segment, messages) of every run, without changing anything.
    pub fn segments(&self) -> Vec<(u32, u64)> {
        self.runs.iter().map(|r| (r.segment, r.ids.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn ranges_merge_and_split() {
        let mut r = IdRanges::new();
        for id in [1, 2, 3, 5, 4] {
            assert!(r.insert(id));
        }
        assert_eq!(r.range_count(), 1);
        assert!(!r.insert(3));
        assert!(r.remove(3));
        assert_eq!(r.range_count(), 2);
        assert!(!r.contains(3) && r.contains(2) && r.contains(4));
        assert_eq!(r.remove_up_to(4), 3);
        assert_eq!((r.first(), r.last(), r.len()), (Some(5), Some(5), 1));
    }

    proptest! {
        #[test]
        fn prop_ranges_match_a_set(ops in proptest::collection::vec((0u8..3, 0u64..64), 0..200)) {
            let mut r = IdRanges::new();
            let mut s = BTreeSet::new();
            for (op, id) in ops {
                match op {
                    0 => prop_assert_eq!(r.insert(id), s.insert(id)),
                    1 => prop_assert_eq!(r.remove(id), s.remove(&id)),
                    _ => {
                        let gone: Vec<u64> = s.range(..=id).copied().collect();
                        for g in &gone { s.remove(g); }
                        prop_assert_eq!(r.remove_up_to(id), gone.len() as u64);
                    }
                }
                prop_assert_eq!(r.len(), s.len() as u64);
                prop_assert_eq!(r.first(), s.first().copied());
                prop_assert_eq!(r.last(), s.last().copied());
                for probe in 0..64 {
                    prop_assert_eq!(r.contains(probe), s.contains(&probe));
                }
            }
        }
    }

    #[test]
    fn contiguous_pushes_cost_one_range_per_segment() {
        let mut t = PagedTail::new();
        for id in 1..=10_000u64 {
            let (seg, index) = if id <= 6_000 {
                (3, id - 1)
            } else {
                (4, id - 6_001)
            };
            t.push(id, seg, index as u32 * 40, 40);
        }
        assert_eq!(t.count(), 10_000);
        assert_eq!(t.segments(), vec![(3, 6_000), (4, 4_000)]);
        assert!(t.runs.iter().all(|r| r.ids.range_count() == 1));
    }

    #[test]
    fn reads_walk_the_runs_and_ignore_foreign_ids() {
        let mut t = PagedTail::new();
        t.push(1, 1, 0, 100);
        t.push(2, 1, 150, 100);
        t.push(3, 2, 0, 100);
        let r = t.start_read(200).unwrap();
        assert_eq!((r.segment, r.offset, r.len), (1, 0, 200));
        assert!(t.start_read(200).is_none(), "one read at a time");
        // The chunk held record 1 whole and part of record 2; id 9 is not ours.
        let (got, lost) = t.finish_read(&r, vec![(1, "one"), (9, "other")], 150);
        assert_eq!(got, vec![(1, false, "one")]);
        assert_eq!((lost, t.count()), (0, 2));
        let r = t.start_read(200).unwrap();
        assert_eq!((r.offset, r.len), (150, 100));
        let (got, _) = t.finish_read(&r, vec![(2, "two")], 100);
        assert_eq!(got.len(), 1);
        let r = t.start_read(200).unwrap();
        assert_eq!((r.segment, r.offset), (2, 0));
        let (got, lost) = t.finish_read(&r, Vec::<(u64, ())>::new(), 100);
        assert_eq!(
            (got.len(), lost, t.count()),
            (0, 1, 0),
            "a missing record is counted out"
        );
        assert!(t.is_empty() && t.start_read(200).is_none());
    }

    #[test]
    fn a_purge_makes_an_outstanding_read_stale() {
        let mut t = PagedTail::new();
        t.push(1, 1, 0, 100);
        let r = t.start_read(1 << 20).unwrap();
        assert_eq!(t.clear(), vec![(1, 1)]);
        t.push(2, 1, 100, 100);
        let (got, _) = t.finish_read(&r, vec![(1, ())], 100);
        assert!(got.is_empty());
        assert_eq!(t.count(), 1);
        assert!(t.start_read(1 << 20).is_some(), "the new tail reads again");
    }

    #[test]
    fn recovered_runs_keep_holes_and_redelivered_flags() {
        let mut ids = IdRanges::new();
        for id in [4, 5, 7] {
            ids.insert(id);
        }
        let mut redelivered = IdRanges::new();
        redelivered.insert(5);
        let mut t = PagedTail::from_runs(
            vec![PagedRun {
                end: 400,
                ids,
                ..PagedRun::new(9, 0)
            }],
            redelivered,
        );
        assert_eq!(t.count(), 3);
        let r = t.start_read(1 << 20).unwrap();
        let found = (4..=7).map(|id| (id, id)).collect();
        let (got, lost) = t.finish_read(&r, found, 400);
        assert_eq!(got, vec![(4, false, 4), (5, true, 5), (7, false, 7)]);
        assert_eq!((lost, t.count()), (0, 0));
    }
}
