//! The paged-out part of a priority queue: one paged tail per priority
//! level, without per-message state.
//!
//! Ids are the queue's (one sequence for every level, in publish order), so
//! the live paged ids are kept per log segment for the queue as a whole, as
//! ranges — the queue's paged messages are published back to back, so this
//! is a few ranges whatever the mix of priorities. Each level keeps only its
//! spans: per segment the byte range from its first to its last record. A
//! level is read back span by span; a record found in the chunk belongs to
//! the level being read when its priority maps to that level and its id is
//! still live (records of other levels in the same bytes are skipped, their
//! level reads them). Pure: the I/O is the shard's.

use crate::broker::paged::{self, new_epoch, IdRanges, PageRead, PagedRun, RunTtl, TtlScan};
use std::collections::{BTreeMap, VecDeque};

/// One level's records in one segment: `[next, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    segment: u32,
    next: u32,
    end: u32,
}

/// The paged tail of a priority queue. See the module docs.
#[derive(Debug)]
pub struct LevelTail {
    /// Per segment, the live paged ids of every level, the byte range of
    /// the queue's records there and the bounds of their deadlines (a
    /// `PagedRun`, as a plain queue's tail keeps: message TTL treats both
    /// alike).
    segments: BTreeMap<u32, PagedRun>,
    /// Per level (index = level), its spans in log order.
    lanes: Vec<VecDeque<Span>>,
    /// Per segment, how many spans (of any level) are still in it.
    spans_in: BTreeMap<u32, u32>,
    count: u64,
    /// Ids handed to a consumer before a restart (recovery only).
    redelivered: IdRanges,
    epoch: u64,
    /// The level of the outstanding read.
    reading: Option<usize>,
    /// A read failed for good: nothing more is read (see `PagedTail`).
    failed: bool,
}

impl LevelTail {
    /// An empty tail for `levels` levels.
    pub fn new(levels: usize) -> LevelTail {
        LevelTail {
            segments: BTreeMap::new(),
            lanes: vec![VecDeque::new(); levels],
            spans_in: BTreeMap::new(),
            count: 0,
            redelivered: IdRanges::new(),
            epoch: new_epoch(),
            reading: None,
            failed: false,
        }
    }

    /// A recovered tail: `runs` (live ids per segment, every level), and per
    /// (level, segment) the byte range of that level's records there.
    pub fn from_recovery(
        levels: usize,
        runs: Vec<PagedRun>,
        spans: &BTreeMap<(usize, u32), (u32, u32)>,
        redelivered: IdRanges,
    ) -> LevelTail {
        let mut tail = LevelTail::new(levels);
        for run in runs {
            if !run.ids.is_empty() {
                tail.count += run.ids.len();
                tail.segments.insert(run.segment, run);
            }
        }
        // BTreeMap order: by level, then segment (log order).
        for (&(level, segment), &(start, end)) in spans {
            if level < levels && tail.segments.contains_key(&segment) && start < end {
                tail.lanes[level].push_back(Span {
                    segment,
                    next: start,
                    end,
                });
                *tail.spans_in.entry(segment).or_default() += 1;
            }
        }
        tail.redelivered = redelivered;
        tail
    }

    /// Body bytes of the recovered runs (`PagedRun::bytes`).
    pub fn recovered_bytes(&self) -> u64 {
        self.segments.values().map(|r| r.bytes).sum()
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `level` has records left to read (some may turn out dead).
    pub fn has(&self, level: usize) -> bool {
        !self.lanes[level].is_empty()
    }

    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }

    pub fn is_current(&self, read: &PageRead) -> bool {
        read.epoch == self.epoch && self.reading.is_some()
    }

    /// The smallest paged id.
    pub fn first_id(&self) -> Option<u64> {
        self.segments.values().filter_map(|r| r.ids.first()).min()
    }

    /// The largest paged id.
    pub fn last_id(&self) -> Option<u64> {
        self.segments.values().filter_map(|r| r.ids.last()).max()
    }

    /// Adds the message `id` of `level`, whose record is `len` bytes at
    /// `offset` of `segment`, expiring at `expires` (None: never).
    pub fn push(
        &mut self,
        id: u64,
        level: usize,
        segment: u32,
        offset: u32,
        len: u32,
        expires: Option<u64>,
    ) {
        let end = offset + len;
        let run = self
            .segments
            .entry(segment)
            .or_insert_with(|| PagedRun::new(segment, offset));
        run.end = end;
        run.ids.insert(id);
        run.note_expiry(expires);
        self.count += 1;
        let lane = &mut self.lanes[level];
        match lane.back_mut() {
            Some(span) if span.segment == segment => {
                debug_assert!(span.end <= offset);
                span.end = end;
            }
            _ => {
                debug_assert!(lane.back().is_none_or(|s| s.segment < segment));
                lane.push_back(Span {
                    segment,
                    next: offset,
                    end,
                });
                *self.spans_in.entry(segment).or_default() += 1;
            }
        }
    }

    /// The next chunk of `level` to read (at most `max_len` bytes, whole
    /// records permitting), unless a read is out or the level has nothing.
    pub fn start_read(&mut self, level: usize, max_len: u32) -> Option<PageRead> {
        if self.reading.is_some() || self.failed {
            return None;
        }
        let span = self.lanes[level].front()?;
        assert!(span.next < span.end, "a span with nothing left to read");
        self.reading = Some(level);
        Some(PageRead {
            segment: span.segment,
            offset: span.next,
            len: (span.end - span.next).min(max_len.max(1)),
            epoch: self.epoch,
        })
    }

    /// Takes the answer to `read`: `found` are (id, level, payload) of the
    /// queue's records in its first `consumed` bytes, in log order. Returns
    /// the read level, the ones of that level still paged (id, redelivered,
    /// payload), and how many ids of the read segment were counted out
    /// without their record being found once no level has anything left to
    /// read there (a bug or a damaged log). A stale answer returns nothing.
    pub fn finish_read<T>(
        &mut self,
        read: &PageRead,
        found: Vec<(u64, usize, T)>,
        consumed: u32,
    ) -> (usize, Vec<(u64, bool, T)>, u64) {
        if read.epoch != self.epoch {
            return (0, Vec::new(), 0);
        }
        let Some(level) = self.reading.take() else {
            return (0, Vec::new(), 0);
        };
        let segment = read.segment;
        let span = self.lanes[level].front_mut().expect("a read of a span");
        assert_eq!(
            (span.segment, span.next),
            (segment, read.offset),
            "reads follow the span"
        );
        assert!(consumed <= span.end - span.next, "consumed past the span");
        span.next += consumed;
        let exhausted = span.next >= span.end;
        let mut out = Vec::with_capacity(found.len());
        if let Some(run) = self.segments.get_mut(&segment) {
            for (id, lvl, payload) in found {
                if lvl == level && run.ids.remove(id) {
                    let redelivered = self.redelivered.remove(id);
                    out.push((id, redelivered, payload));
                }
            }
            if run.ids.is_empty() && !run.scanning {
                self.segments.remove(&segment);
            }
        }
        self.count -= out.len() as u64;
        let mut lost = 0;
        if exhausted {
            self.lanes[level].pop_front();
            let left = self.spans_in.get_mut(&segment).expect("counted span");
            *left -= 1;
            if *left == 0 {
                self.spans_in.remove(&segment);
                lost = self.segments.remove(&segment).map_or(0, |r| r.ids.len());
                self.count -= lost;
            }
        }
        (level, out, lost)
    }

    /// Gives up the outstanding read for good (see `PagedTail::fail_read`).
    pub fn fail_read(&mut self, read: &PageRead) -> bool {
        if !self.is_current(read) {
            return false;
        }
        self.reading = None;
        self.failed = true;
        true
    }

    /// Empties the tail; returns (segment, messages) to release. An
    /// outstanding read's answer becomes stale.
    pub fn clear(&mut self) -> Vec<(u32, u64)> {
        let out = self.segments();
        *self = LevelTail::new(self.lanes.len());
        out
    }

    /// (segment, messages) of every segment holding paged messages.
    pub fn segments(&self) -> Vec<(u32, u64)> {
        self.segments
            .iter()
            .map(|(&segment, r)| (segment, r.ids.len()))
            .collect()
    }

    /// The segment of the outstanding page-in, if any.
    fn segment_read(&self) -> Option<u32> {
        let level = self.reading?;
        self.lanes[level].front().map(|span| span.segment)
    }

    /// The earliest deadline of a paged message not already being scanned
    /// (a lower bound), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        paged::next_deadline(self.segments.values())
    }

    /// Message TTL at `now`, per segment as `PagedTail::expire` does per
    /// run: a segment whose messages (of every level) have all expired is
    /// dropped unread when `drop_unread` (with every level's span in it),
    /// one holding an expired message is scanned. The segment a page-in
    /// is reading is left to it.
    pub fn expire(&mut self, now: u64, drop_unread: bool) -> (Vec<(u32, u64)>, Vec<TtlScan>) {
        let mut dropped = Vec::new();
        let mut scans = Vec::new();
        if self.failed {
            return (dropped, scans);
        }
        let read = self.segment_read();
        let epoch = self.epoch;
        let mut gone = Vec::new();
        for (&segment, run) in self.segments.iter_mut() {
            match run.ttl(now, drop_unread, read == Some(segment), epoch) {
                RunTtl::Keep => {}
                RunTtl::DropAll => gone.push(segment),
                RunTtl::Scan(scan) => scans.push(scan),
            }
        }
        for segment in gone {
            let n = self.drop_segment(segment);
            dropped.push((segment, n));
        }
        (dropped, scans)
    }

    /// Forgets `segment` (its ids and every level's span in it); returns
    /// how many live ids it held.
    fn drop_segment(&mut self, segment: u32) -> u64 {
        let n = self.segments.remove(&segment).map_or(0, |r| r.ids.len());
        self.count -= n;
        for lane in &mut self.lanes {
            lane.retain(|span| span.segment != segment);
        }
        self.spans_in.remove(&segment);
        n
    }

    /// Takes one chunk of `scan` (see `PagedTail::scan_chunk`): the ids
    /// still paged whose deadline is at or before `now` leave the tail.
    pub fn scan_chunk(
        &mut self,
        scan: &TtlScan,
        found: impl IntoIterator<Item = (u64, Option<u64>)>,
        now: u64,
    ) -> Vec<u64> {
        if scan.epoch != self.epoch {
            return Vec::new();
        }
        let Some(run) = self.segments.get_mut(&scan.segment) else {
            return Vec::new();
        };
        paged::take_expired(run, &mut self.redelivered, &mut self.count, found, now)
    }

    /// `scan` is over (`retry_at`: it failed; look again then). A segment
    /// left without ids goes (with its spans), unless a page-in reads it.
    pub fn end_scan(&mut self, scan: &TtlScan, retry_at: Option<u64>) {
        if scan.epoch != self.epoch {
            return;
        }
        let read = self.segment_read();
        let Some(run) = self.segments.get_mut(&scan.segment) else {
            return;
        };
        run.end_scan(retry_at);
        if run.ids.is_empty() && read != Some(scan.segment) {
            self.drop_segment(scan.segment);
        }
    }
}
