//! The log's shared state (`Inner`, behind an `Rc<RefCell>` shared by the
//! `Log` handle and its writer task): the active segment and append offset,
//! the runs pending for the writer, per-segment bookkeeping, the durable
//! and appended positions, waiters and counters.

use super::config::LogConfig;
use super::position::Lsn;
use super::recovery::RecoveryReport;
use super::segment_state::SegState;
use super::stats::LogStats;
use super::wait_list::WaitList;
use crate::storage::segment::SegmentId;
use bytes::BytesMut;
use glommio::io::{BufferedFile, DmaFile};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::task::Waker;

/// Appended bytes of one segment not yet handed to the writer.
pub(super) struct Run {
    pub(super) segment: SegmentId,
    /// Preallocation size when `create`.
    pub(super) size: u32,
    pub(super) create: bool,
    /// Created, its directory entry not yet synced (a retry after a full
    /// disk syncs it before writing).
    pub(super) dir_sync: bool,
    pub(super) start: u32,
    pub(super) records: u64,
    pub(super) data: BytesMut,
}

/// The state a `Log` and its writer task share.
pub(super) struct Inner {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    pub(super) active: SegmentId,
    pub(super) active_size: u32,
    pub(super) append_off: u32,
    pub(super) pending: VecDeque<Run>,
    /// Appended but not yet durable.
    pub(super) pending_bytes: usize,
    pub(super) appended: Lsn,
    pub(super) durable: Lsn,
    pub(super) failed: Option<(io::ErrorKind, String)>,
    /// The writer is waiting out a full disk (its batch is held, unwritten).
    pub(super) out_of_space: bool,
    pub(super) shutdown: bool,
    pub(super) killed: bool,
    pub(super) writer_waker: Option<Waker>,
    pub(super) sync_waiters: WaitList,
    pub(super) space_waiters: WaitList,
    pub(super) segments: BTreeMap<SegmentId, SegState>,
    /// Sealed segments with no live references (deletion candidates).
    pub(super) dead: BTreeSet<SegmentId>,
    /// Open segment files the writer writes (the active one).
    pub(super) files: HashMap<SegmentId, Rc<DmaFile>>,
    /// Segment files opened by `read_record`.
    pub(super) readers: HashMap<SegmentId, Rc<BufferedFile>>,
    pub(super) stats: LogStats,
    pub(super) report: RecoveryReport,
    /// Buffers of written runs, cleared, for the next runs to encode into:
    /// no regrowing (and page-faulting) a fresh buffer every batch.
    pub(super) spare_runs: Vec<BytesMut>,
}

/// At most this many spare run buffers are kept…
const SPARE_RUNS: usize = 2;
/// …each of at most this capacity (bigger ones go back to the allocator).
const SPARE_RUN_CAPACITY: usize = 4 << 20;

impl Inner {
    /// Keeps a written run's buffer for reuse (see `spare_runs`).
    pub(super) fn recycle(&mut self, mut data: BytesMut) {
        if self.spare_runs.len() < SPARE_RUNS && data.capacity() <= SPARE_RUN_CAPACITY {
            data.clear();
            self.spare_runs.push(data);
        }
    }

    pub(super) fn failed_err(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|(k, m)| io::Error::new(*k, format!("log failed: {m}")))
    }

    pub(super) fn wake_writer(&mut self) {
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
    }
}
