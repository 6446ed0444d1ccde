//! The per-shard durable log: recovery, appends, group commit, segment
//! reclamation and reading records back.
//!
//! One `Log` per shard, `!Send`, used from that shard's glommio executor.
//!
//! - **Append** (`append`, no await): the record is encoded straight into the
//!   pending buffer of the active segment and gets a `RecordPos` (segment,
//!   offset, length) whose end is its `Lsn`. A record that does not fit in the
//!   active segment seals it and opens the next one (a record larger than
//!   `segment_size` gets a segment of its own size).
//! - **Group commit**: one writer task per log. It takes everything pending,
//!   copies it into one aligned DMA buffer per segment (re-writing the last
//!   partial 4 KiB block of the previous batch), writes it with O_DIRECT and
//!   `fdatasync`s; appends made meanwhile wait for the next batch, so batches
//!   grow with load. `sync(lsn)` resolves once a completed fdatasync covers
//!   `lsn`; one fsync releases every waiter it covers. A batch spanning two
//!   segments syncs the older one first, so the durable data is always a
//!   prefix of the log. After an I/O error the log is failed: no fsync is
//!   retried, every later `sync`/`append` fails.
//! - **Recovery** (`open`): scans segments in order and stops at the first
//!   torn/corrupt record; that segment is truncated to its valid prefix and
//!   later segments (possible only after media corruption) are renamed
//!   `*.seg.corrupt` so they are never replayed. Appends then go to a fresh
//!   segment.
//! - **Reclamation**: each segment counts live references: +1 per target of
//!   a message record, +1 per metadata record (at append and at recovery).
//!   The broker calls `release(segment, by)` when one dies (ack, purge,
//!   queue delete, metadata superseded), `by` being the segment of the record
//!   that killed it. A sealed segment with no live references is deleted once
//!   it is fully durable and no segment it holds kill-records for (acks,
//!   purges, deletes pointing at older messages) still exists — otherwise a
//!   restart would resurrect those messages. A long-lived message would
//!   pin its segment, and through the kill-records every later one: the
//!   broker compacts (`compaction_candidate`, `shard::durability::compact`)
//!   by appending such records again and releasing the old ones.
//! - **Reading back** (`read_record`, `read_body`): waits until the record is
//!   durable, then reads it with one (buffered, io_uring) read and checks its
//!   CRC. Reads are buffered because glommio 0.9's DMA reads fail with
//!   EOPNOTSUPP on this kernel; direct writes keep the page cache coherent.
//!
//! Message ids must never be reused by the broker across restarts (take the
//! largest id seen in recovery + 1): kill-records outlive their messages.

use super::record::{self, EncodeError, Record, RecordRef, DEFAULT_MAX_RECORD_LEN, HEADER_LEN};
use super::segment::{self, align_down, align_up, SegmentId, ALIGN};
use bytes::{Bytes, BytesMut};
use glommio::io::{BufferedFile, Directory, DmaFile};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Tunables of a log.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Size of a segment file (multiple of 4096, 16 KiB ..= 1 GiB).
    pub segment_size: u32,
    /// Largest record (kind + payload) accepted by append and recovery
    /// (64 B ..= 1 GiB).
    pub max_record_len: u32,
    /// Read size while scanning segments at recovery.
    pub read_chunk: usize,
    /// `wait_for_space` waits while more than this many bytes are appended
    /// but not yet durable (the broker's backpressure signal).
    pub max_pending_bytes: usize,
    /// Test aid: the write of batch number N+1 fails as a disk error would
    /// (`WARREN_TEST_LOG_FAIL_AFTER_BATCHES` in the broker).
    pub fail_after_batches: Option<u64>,
    /// Test aid: every batch waits this long before it is written, as a
    /// slow disk would (`WARREN_TEST_LOG_SYNC_DELAY_MS` in the broker).
    pub batch_delay: Option<std::time::Duration>,
    /// Test aid: a message record routed with this routing key is refused
    /// by `append` (`AppendError::Injected`) while the log stays healthy
    /// (`WARREN_TEST_LOG_REFUSE_ROUTING_KEY` in the broker).
    pub refuse_routing_key: Option<String>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_size: 64 << 20,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            read_chunk: 1 << 20,
            max_pending_bytes: 64 << 20,
            fail_after_batches: None,
            batch_delay: None,
            refuse_routing_key: None,
        }
    }
}

impl LogConfig {
    fn validate(&self) -> io::Result<()> {
        let bad = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                what.to_string(),
            ))
        };
        if !(self.segment_size as u64).is_multiple_of(ALIGN)
            || self.segment_size < 16 << 10
            || self.segment_size > 1 << 30
        {
            return bad("segment_size must be a multiple of 4096 in 16 KiB..=1 GiB");
        }
        if self.max_record_len < 64 || self.max_record_len > 1 << 30 {
            return bad("max_record_len must be in 64..=1 GiB");
        }
        Ok(())
    }
}

/// A position in the log: (segment, byte offset), ordered like appends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    pub fn new(segment: SegmentId, offset: u32) -> Lsn {
        Lsn(((segment as u64) << 32) | offset as u64)
    }
    pub fn segment(self) -> SegmentId {
        (self.0 >> 32) as SegmentId
    }
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// Where a record lives: `len` bytes (header included) at `offset` of
/// `segment`. 12 bytes: the broker keeps one per queued durable message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordPos {
    pub segment: SegmentId,
    pub offset: u32,
    pub len: u32,
}

impl RecordPos {
    /// The lsn just past this record: `sync(pos.lsn())` waits for it.
    pub fn lsn(&self) -> Lsn {
        Lsn::new(self.segment, self.offset + self.len)
    }
}

/// A record found at recovery.
#[derive(Clone, Debug)]
pub struct RecoveredRecord {
    pub pos: RecordPos,
    pub record: Record,
}

/// What recovery found and did.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub segments_scanned: usize,
    pub records: u64,
    /// The segment whose tail was cut, its new length, and why.
    pub truncated: Option<(SegmentId, u64, record::RecordError)>,
    /// Segments after a corrupt one, renamed `*.seg.corrupt`.
    pub quarantined: Vec<SegmentId>,
}

/// Counters (monotonic since open).
#[derive(Clone, Debug, Default)]
pub struct LogStats {
    pub appends: u64,
    pub appended_bytes: u64,
    /// Write+fdatasync batches completed.
    pub batches: u64,
    pub fsyncs: u64,
    /// Bytes handed to the disk (aligned, including re-written tail blocks).
    pub bytes_written: u64,
    /// Most records in one batch.
    pub max_batch_records: u64,
    pub segments_created: u64,
    pub segments_deleted: u64,
}

/// Why an append was refused.
#[derive(Debug)]
pub enum AppendError {
    /// The record is malformed or too large (a caller error).
    Encode(EncodeError),
    /// An earlier write or fsync failed; the log accepts nothing more.
    Failed(io::ErrorKind, String),
    /// The log was closed.
    Closed,
    /// Refused by a test aid (`LogConfig::refuse_routing_key`); the log
    /// stays healthy.
    Injected,
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Encode(e) => write!(f, "{e}"),
            AppendError::Failed(_, m) => write!(f, "log failed: {m}"),
            AppendError::Closed => write!(f, "log closed"),
            AppendError::Injected => write!(f, "injected append failure"),
        }
    }
}

impl std::error::Error for AppendError {}

impl From<EncodeError> for AppendError {
    fn from(e: EncodeError) -> AppendError {
        AppendError::Encode(e)
    }
}

/// Per-segment bookkeeping.
#[derive(Debug)]
struct SegState {
    live: u64,
    sealed: bool,
    /// Older segments this one holds kill-records for (from `release`).
    pins: BTreeSet<SegmentId>,
    /// Recovered with kill-records whose targets are not known yet: pinned
    /// by every older segment until `replay_done`.
    conservative: bool,
}

/// Appended bytes of one segment not yet handed to the writer.
struct Run {
    segment: SegmentId,
    /// Preallocation size when `create`.
    size: u32,
    create: bool,
    start: u32,
    records: u64,
    data: BytesMut,
}

/// Wakers of tasks waiting for the next batch completion. Each waiter keeps
/// (generation, index) so a re-poll replaces its entry instead of adding one;
/// the list is cleared every generation, so it is bounded by the waiters
/// of one batch.
#[derive(Default)]
struct WaitList {
    gen: u64,
    wakers: Vec<Waker>,
}

impl WaitList {
    fn register(&mut self, slot: &mut Option<(u64, usize)>, waker: &Waker) {
        match *slot {
            Some((g, i)) if g == self.gen => self.wakers[i].clone_from(waker),
            _ => {
                *slot = Some((self.gen, self.wakers.len()));
                self.wakers.push(waker.clone());
            }
        }
    }
    fn wake_all(&mut self) {
        self.gen += 1;
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

struct Inner {
    dir: PathBuf,
    config: LogConfig,
    active: SegmentId,
    active_size: u32,
    append_off: u32,
    pending: VecDeque<Run>,
    /// Appended but not yet durable.
    pending_bytes: usize,
    appended: Lsn,
    durable: Lsn,
    failed: Option<(io::ErrorKind, String)>,
    shutdown: bool,
    killed: bool,
    writer_waker: Option<Waker>,
    sync_waiters: WaitList,
    space_waiters: WaitList,
    segments: BTreeMap<SegmentId, SegState>,
    /// Sealed segments with no live references (deletion candidates).
    dead: BTreeSet<SegmentId>,
    /// Open segment files the writer writes (the active one).
    files: HashMap<SegmentId, Rc<DmaFile>>,
    /// Segment files opened by `read_record`.
    readers: HashMap<SegmentId, Rc<BufferedFile>>,
    stats: LogStats,
    report: RecoveryReport,
    /// Buffers of written runs, cleared, for the next runs to encode into:
    /// no regrowing (and page-faulting) a fresh buffer every batch.
    spare_runs: Vec<BytesMut>,
}

/// At most this many spare run buffers are kept…
const SPARE_RUNS: usize = 2;
/// …each of at most this capacity (bigger ones go back to the allocator).
const SPARE_RUN_CAPACITY: usize = 4 << 20;

impl Inner {
    /// Keeps a written run's buffer for reuse (see `spare_runs`).
    fn recycle(&mut self, mut data: BytesMut) {
        if self.spare_runs.len() < SPARE_RUNS && data.capacity() <= SPARE_RUN_CAPACITY {
            data.clear();
            self.spare_runs.push(data);
        }
    }

    fn failed_err(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|(k, m)| io::Error::new(*k, format!("log failed: {m}")))
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
    }

    /// Seals the active segment and starts the next one with room for at
    /// least `need` bytes.
    fn roll(&mut self, need: usize) -> Result<(), AppendError> {
        let next = self.active.checked_add(1).ok_or_else(|| {
            AppendError::Failed(io::ErrorKind::Other, "segment ids exhausted".into())
        })?;
        let old = self
            .segments
            .get_mut(&self.active)
            .expect("active segment has state");
        old.sealed = true;
        if old.live == 0 {
            self.dead.insert(self.active);
        }
        let size = align_up(need as u64).max(self.config.segment_size as u64);
        assert!(size <= u32::MAX as u64, "bounded by max_record_len");
        let size = size as u32;
        self.segments.insert(
            next,
            SegState {
                live: 0,
                sealed: false,
                pins: BTreeSet::new(),
                conservative: false,
            },
        );
        self.pending.push_back(Run {
            segment: next,
            size,
            create: true,
            start: 0,
            records: 0,
            data: self.spare_runs.pop().unwrap_or_default(),
        });
        self.active = next;
        self.active_size = size;
        self.append_off = 0;
        Ok(())
    }

    /// Dead segments that may be deleted now, ascending.
    fn deletable(&self) -> Vec<SegmentId> {
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

/// The durable log of one shard. See the module docs.
pub struct Log {
    inner: Rc<RefCell<Inner>>,
    writer: RefCell<Option<glommio::task::JoinHandle<()>>>,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering every valid
    /// record, in log order.
    pub async fn open(dir: &Path, config: LogConfig) -> io::Result<(Log, Vec<RecoveredRecord>)> {
        let mut records = Vec::new();
        let log = Log::open_with(dir, config, |r| records.push(r)).await?;
        Ok((log, records))
    }

    /// Like `open`, handing each recovered record to `on_record` as it is
    /// read (bodies not kept by the callback are freed segment by segment).
    pub async fn open_with(
        dir: &Path,
        config: LogConfig,
        mut on_record: impl FnMut(RecoveredRecord),
    ) -> io::Result<Log> {
        config.validate()?;
        std::fs::create_dir_all(dir)?;
        let ids = segment::list(dir)?;
        let mut segments = BTreeMap::new();
        let mut dead = BTreeSet::new();
        let mut report = RecoveryReport::default();
        let mut stopped = false;
        for &id in &ids {
            if stopped {
                let from = segment::path(dir, id);
                let mut to = from.clone().into_os_string();
                to.push(".corrupt");
                std::fs::rename(&from, &to)?;
                report.quarantined.push(id);
                continue;
            }
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(segment::path(dir, id))?;
            let mut live = 0u64;
            let mut kills = false;
            let scan = segment::scan(&file, config.max_record_len, config.read_chunk, |r| {
                match &r.record {
                    Record::Message(m) => live += m.targets.len() as u64,
                    Record::Metadata { .. } => live += 1,
                    // A paged-out copy never outlives the process that wrote it.
                    Record::Delivered { .. } | Record::Paged(_) => {}
                    Record::Ack { .. } | Record::Purge { .. } | Record::QueueDelete { .. } => {
                        kills = true
                    }
                }
                on_record(RecoveredRecord {
                    pos: RecordPos {
                        segment: id,
                        offset: r.offset,
                        len: r.len,
                    },
                    record: r.record,
                });
            })?;
            report.segments_scanned += 1;
            report.records += scan.records;
            if let Some(err) = scan.error {
                file.set_len(scan.valid_end)?;
                file.sync_data()?;
                report.truncated = Some((id, scan.valid_end, err));
                stopped = true;
            }
            drop(file);
            if live == 0 {
                dead.insert(id);
            }
            segments.insert(
                id,
                SegState {
                    live,
                    sealed: true,
                    pins: BTreeSet::new(),
                    conservative: kills,
                },
            );
        }
        let active = match ids.last() {
            None => 1,
            Some(&last) => last
                .checked_add(1)
                .ok_or_else(|| io::Error::other("segment ids exhausted"))?,
        };
        let file = segment::create(dir, active, config.segment_size as u64).await?;
        let dir_handle = Directory::open(dir).await?;
        dir_handle.sync().await?;
        segments.insert(
            active,
            SegState {
                live: 0,
                sealed: false,
                pins: BTreeSet::new(),
                conservative: false,
            },
        );
        let mut files = HashMap::new();
        files.insert(active, Rc::new(file));
        let start = Lsn::new(active, 0);
        let inner = Rc::new(RefCell::new(Inner {
            dir: dir.to_path_buf(),
            active,
            active_size: config.segment_size,
            append_off: 0,
            config,
            pending: VecDeque::new(),
            pending_bytes: 0,
            appended: start,
            durable: start,
            failed: None,
            shutdown: false,
            killed: false,
            writer_waker: None,
            sync_waiters: WaitList::default(),
            space_waiters: WaitList::default(),
            segments,
            dead,
            files,
            readers: HashMap::new(),
            stats: LogStats {
                segments_created: 1,
                ..LogStats::default()
            },
            report,
            spare_runs: Vec::new(),
        }));
        let writer = glommio::spawn_local(writer_loop(inner.clone(), dir_handle)).detach();
        Ok(Log {
            inner,
            writer: RefCell::new(Some(writer)),
        })
    }

    /// Appends a record (no I/O, no await) and returns where it will live.
    /// It is durable once `sync(pos.lsn())` resolves. A message record adds
    /// one live reference per target to its segment, a metadata record one.
    pub fn append<'a>(&self, record: impl Into<RecordRef<'a>>) -> Result<RecordPos, AppendError> {
        let record = record.into();
        let mut s = self.inner.borrow_mut();
        if let Some((k, m)) = &s.failed {
            return Err(AppendError::Failed(*k, m.clone()));
        }
        if s.shutdown {
            return Err(AppendError::Closed);
        }
        if let (Some(key), RecordRef::Message(m) | RecordRef::Paged(m)) =
            (&s.config.refuse_routing_key, &record)
        {
            if m.routing_key.as_bytes()[..] == *key.as_bytes() {
                return Err(AppendError::Injected);
            }
        }
        let max = s.config.max_record_len;
        let total = record.encoded_len(max)?;
        if s.append_off as usize + total > s.active_size as usize {
            s.roll(total)?;
        }
        let (active, offset) = (s.active, s.append_off);
        let need_run = s.pending.back().is_none_or(|r| r.segment != active);
        if need_run {
            let data = s.spare_runs.pop().unwrap_or_default();
            s.pending.push_back(Run {
                segment: active,
                size: 0,
                create: false,
                start: offset,
                records: 0,
                data,
            });
        }
        let run = s.pending.back_mut().expect("a run for the active segment");
        debug_assert_eq!(run.start as usize + run.data.len(), offset as usize);
        let n = record::encode(&record, max, &mut run.data)?;
        run.records += 1;
        debug_assert_eq!(n, total);
        let pos = RecordPos {
            segment: active,
            offset,
            len: total as u32,
        };
        s.append_off += total as u32;
        s.pending_bytes += total;
        s.appended = pos.lsn();
        let refs = match &record {
            RecordRef::Message(m) | RecordRef::Paged(m) => m.targets.len() as u64,
            RecordRef::Metadata { .. } => 1,
            _ => 0,
        };
        s.segments.get_mut(&active).expect("active segment").live += refs;
        s.stats.appends += 1;
        s.stats.appended_bytes += total as u64;
        s.wake_writer();
        Ok(pos)
    }

    /// Resolves once everything up to `lsn` is on disk (a completed
    /// fdatasync covers it). Errors if the log failed.
    pub fn sync(&self, lsn: Lsn) -> impl Future<Output = io::Result<()>> + 'static {
        let target = lsn.min(self.inner.borrow().appended);
        SyncFuture {
            inner: self.inner.clone(),
            lsn: target,
            slot: None,
        }
    }

    /// Resolves once everything appended so far is durable.
    pub fn sync_all(&self) -> impl Future<Output = io::Result<()>> + 'static {
        let lsn = self.inner.borrow().appended;
        self.sync(lsn)
    }

    /// Waits while more than `max_pending_bytes` are appended but not
    /// durable (backpressure for publishers that do not wait for confirms).
    pub async fn wait_for_space(&self) {
        SpaceFuture {
            inner: self.inner.clone(),
            slot: None,
        }
        .await
    }

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

    /// A (cached) reader of a segment that still exists.
    async fn reader(&self, segment: SegmentId) -> io::Result<Rc<BufferedFile>> {
        let file = {
            let s = self.inner.borrow();
            if !s.segments.contains_key(&segment) {
                return Err(io::Error::new(io::ErrorKind::NotFound, "segment deleted"));
            }
            s.readers.get(&segment).cloned()
        };
        match file {
            Some(f) => Ok(f),
            None => {
                let dir = self.inner.borrow().dir.clone();
                let f = Rc::new(segment::open_reader(&dir, segment).await?);
                let mut s = self.inner.borrow_mut();
                Ok(s.readers.entry(segment).or_insert(f).clone())
            }
        }
    }

    /// Reads `len` bytes at `offset` of `segment` (waiting until they are
    /// durable): a run of whole records for the caller to decode. The
    /// segment must hold a live reference, or it may be gone.
    pub async fn read_range(&self, segment: SegmentId, offset: u32, len: u32) -> io::Result<Bytes> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range past 4 GiB"))?;
        self.sync(Lsn::new(segment, end)).await?;
        let file = self.reader(segment).await?;
        let data = file.read_at(offset as u64, len as usize).await?;
        if data.len() != len as usize {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read of a log range",
            ));
        }
        Ok(Bytes::copy_from_slice(&data))
    }

    /// The configured maximum record length (for decoding read ranges).
    pub fn max_record_len(&self) -> u32 {
        self.inner.borrow().config.max_record_len
    }

    /// Reads the record at `pos` back (waiting until it is durable) and
    /// checks it.
    pub async fn read_record(&self, pos: RecordPos) -> io::Result<Record> {
        let max = self.max_record_len();
        if pos.len as usize <= HEADER_LEN || pos.len - HEADER_LEN as u32 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad record length",
            ));
        }
        let bytes = self.read_range(pos.segment, pos.offset, pos.len).await?;
        let (rec, n) = record::decode(&bytes, max)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if n != pos.len as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record length mismatch",
            ));
        }
        Ok(rec)
    }

    /// Reads back the body of the message record at `pos`.
    pub async fn read_body(&self, pos: RecordPos) -> io::Result<Bytes> {
        match self.read_record(pos).await? {
            Record::Message(m) | Record::Paged(m) => Ok(m.body),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a message record, found {:?}", other.kind()),
            )),
        }
    }

    /// Flushes everything appended, stops the writer and closes the log.
    pub async fn close(self) -> io::Result<()> {
        self.shutdown().await
    }

    /// Like `close`, through a shared reference (the broker's shards hold
    /// their log behind an `Rc`): flushes and fsyncs everything appended,
    /// stops the writer and closes the files. Later appends fail with
    /// `Closed`. Errors if the log failed (then the unwritten tail is lost).
    pub async fn shutdown(&self) -> io::Result<()> {
        {
            let mut s = self.inner.borrow_mut();
            s.shutdown = true;
            s.wake_writer();
        }
        let writer = self.writer.borrow_mut().take();
        if let Some(w) = writer {
            w.await;
        }
        let s = self.inner.borrow();
        match s.failed_err() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Test aid simulating a crash: stops the writer after its in-flight
    /// batch, dropping every record not yet handed to the disk.
    #[doc(hidden)]
    pub async fn crash(self) {
        {
            let mut s = self.inner.borrow_mut();
            s.shutdown = true;
            s.killed = true;
            s.wake_writer();
        }
        let writer = self.writer.borrow_mut().take();
        if let Some(w) = writer {
            w.await;
        }
    }

    pub fn durable_lsn(&self) -> Lsn {
        self.inner.borrow().durable
    }

    pub fn appended_lsn(&self) -> Lsn {
        self.inner.borrow().appended
    }

    /// Bytes appended but not yet durable.
    pub fn pending_bytes(&self) -> usize {
        self.inner.borrow().pending_bytes
    }

    pub fn stats(&self) -> LogStats {
        self.inner.borrow().stats.clone()
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.borrow().report.clone()
    }

    /// Segments on disk, ascending.
    pub fn segments(&self) -> Vec<SegmentId> {
        self.inner.borrow().segments.keys().copied().collect()
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

impl Drop for Log {
    /// Asks the writer to flush what is pending and stop (in the background).
    fn drop(&mut self) {
        if let Ok(mut s) = self.inner.try_borrow_mut() {
            s.shutdown = true;
            s.wake_writer();
        }
    }
}

struct SyncFuture {
    inner: Rc<RefCell<Inner>>,
    lsn: Lsn,
    slot: Option<(u64, usize)>,
}

impl Future for SyncFuture {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut s = this.inner.borrow_mut();
        if s.durable >= this.lsn {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = s.failed_err() {
            return Poll::Ready(Err(e));
        }
        if s.killed {
            return Poll::Ready(Err(io::Error::other("log crashed")));
        }
        s.sync_waiters.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

struct SpaceFuture {
    inner: Rc<RefCell<Inner>>,
    slot: Option<(u64, usize)>,
}

impl Future for SpaceFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = this.inner.borrow_mut();
        if s.pending_bytes <= s.config.max_pending_bytes || s.failed.is_some() || s.killed {
            return Poll::Ready(());
        }
        s.space_waiters.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

enum Work {
    Batch(Vec<Run>, Lsn),
    Delete(Vec<SegmentId>),
    Exit,
}

struct NextWork<'a>(&'a Rc<RefCell<Inner>>);

impl Future for NextWork<'_> {
    type Output = Work;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Work> {
        let mut s = self.0.borrow_mut();
        if s.killed {
            return Poll::Ready(Work::Exit);
        }
        if !s.pending.is_empty() {
            let runs: Vec<Run> = s.pending.drain(..).collect();
            return Poll::Ready(Work::Batch(runs, s.appended));
        }
        let deletable = s.deletable();
        if !deletable.is_empty() {
            return Poll::Ready(Work::Delete(deletable));
        }
        if s.shutdown {
            return Poll::Ready(Work::Exit);
        }
        s.writer_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The last partial block written to a segment, re-written (extended) by the
/// next batch.
struct Tail {
    segment: SegmentId,
    block_start: u64,
    bytes: Vec<u8>,
}

async fn writer_loop(inner: Rc<RefCell<Inner>>, dir: Directory) {
    let mut tail: Option<Tail> = None;
    loop {
        match NextWork(&inner).await {
            Work::Exit => break,
            Work::Batch(runs, end) => {
                let records: u64 = runs.iter().map(|r| r.records).sum();
                let bytes: usize = runs.iter().map(|r| r.data.len()).sum();
                let (injected, delay) = {
                    let s = inner.borrow();
                    let injected = s
                        .config
                        .fail_after_batches
                        .is_some_and(|n| s.stats.batches >= n);
                    (injected, s.config.batch_delay)
                };
                if let Some(d) = delay {
                    glommio::timer::sleep(d).await;
                }
                let res = if injected {
                    Err(io::Error::other("injected write failure"))
                } else {
                    write_batch(&inner, &dir, &mut tail, runs).await
                };
                let mut s = inner.borrow_mut();
                match res {
                    Ok(()) => {
                        debug_assert!(end >= s.durable);
                        s.durable = end;
                        s.pending_bytes -= bytes;
                        s.stats.batches += 1;
                        s.stats.max_batch_records = s.stats.max_batch_records.max(records);
                    }
                    Err(e) => s.failed = Some((e.kind(), e.to_string())),
                }
                s.sync_waiters.wake_all();
                s.space_waiters.wake_all();
                if s.failed.is_some() {
                    break;
                }
            }
            Work::Delete(ids) => {
                if let Err(e) = delete_segments(&inner, &dir, ids).await {
                    let mut s = inner.borrow_mut();
                    s.failed = Some((e.kind(), e.to_string()));
                    s.sync_waiters.wake_all();
                    s.space_waiters.wake_all();
                    break;
                }
            }
        }
    }
    let files: Vec<Rc<DmaFile>> = inner.borrow_mut().files.drain().map(|(_, f)| f).collect();
    for f in files {
        if let Ok(f) = Rc::try_unwrap(f) {
            let _ = f.close().await;
        }
    }
    let readers: Vec<_> = inner.borrow_mut().readers.drain().map(|(_, f)| f).collect();
    for f in readers {
        if let Ok(f) = Rc::try_unwrap(f) {
            let _ = f.close().await;
        }
    }
    let _ = dir.close().await;
    let mut s = inner.borrow_mut();
    s.sync_waiters.wake_all();
    s.space_waiters.wake_all();
}

/// Writes each run with one aligned DMA write and syncs each segment, in
/// order (older segment durable before the next one is written).
async fn write_batch(
    inner: &Rc<RefCell<Inner>>,
    dir: &Directory,
    tail: &mut Option<Tail>,
    runs: Vec<Run>,
) -> io::Result<()> {
    for run in runs {
        let file = if run.create {
            let path = inner.borrow().dir.clone();
            let f = Rc::new(segment::create(&path, run.segment, run.size as u64).await?);
            dir.sync().await?;
            let mut s = inner.borrow_mut();
            s.files.insert(run.segment, f.clone());
            s.stats.segments_created += 1;
            *tail = None;
            f
        } else {
            let s = inner.borrow();
            s.files.get(&run.segment).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "segment file of a run is not open")
            })?
        };
        if run.data.is_empty() {
            continue;
        }
        let start = run.start as u64;
        let (file_pos, prefix): (u64, &[u8]) = match tail.as_ref() {
            Some(t)
                if t.segment == run.segment && t.block_start + t.bytes.len() as u64 == start =>
            {
                (t.block_start, &t.bytes)
            }
            _ => {
                assert_eq!(
                    start % ALIGN,
                    0,
                    "a run starts on a block or after the tail"
                );
                (start, &[])
            }
        };
        let len = prefix.len() + run.data.len();
        let size = align_up(len as u64) as usize;
        let mut buf = file.alloc_dma_buffer(size);
        {
            let b = buf.as_bytes_mut();
            b[..prefix.len()].copy_from_slice(prefix);
            b[prefix.len()..len].copy_from_slice(&run.data);
            b[len..].fill(0);
        }
        let end = file_pos + len as u64;
        let block_start = align_down(end);
        let new_tail = Tail {
            segment: run.segment,
            block_start,
            bytes: buf.as_bytes()[(block_start - file_pos) as usize..len].to_vec(),
        };
        inner.borrow_mut().recycle(run.data);
        let written = file.write_at(buf, file_pos).await?;
        if written != size {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {size} bytes"),
            ));
        }
        file.fdatasync().await?;
        *tail = Some(new_tail);
        let mut s = inner.borrow_mut();
        s.stats.fsyncs += 1;
        s.stats.bytes_written += size as u64;
    }
    Ok(())
}

async fn delete_segments(
    inner: &Rc<RefCell<Inner>>,
    dir: &Directory,
    ids: Vec<SegmentId>,
) -> io::Result<()> {
    for id in ids {
        let (path, file) = {
            let mut s = inner.borrow_mut();
            // Re-check: a release cannot revive a dead segment, but be strict.
            match s.segments.get(&id) {
                Some(st) if st.sealed && st.live == 0 => {}
                _ => continue,
            }
            s.segments.remove(&id);
            s.dead.remove(&id);
            let reader = s.readers.remove(&id);
            (segment::path(&s.dir, id), (s.files.remove(&id), reader))
        };
        drop(file);
        glommio::io::remove(&path).await?;
        // Durable before any segment holding kill-records for it goes.
        dir.sync().await?;
        inner.borrow_mut().stats.segments_deleted += 1;
    }
    Ok(())
}
