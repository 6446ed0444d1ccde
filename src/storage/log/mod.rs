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
//!   retried, every later `sync`/`append` fails. The exception is a full
//!   disk (ENOSPC / EDQUOT, in practice when a new segment is
//!   preallocated): the batch's unwritten runs go back in front of the
//!   pending ones and are written again, write and fdatasync from the
//!   log's own copy, after a short wait (50 ms doubling to 1 s), until
//!   one succeeds (segments are deleted only between batches, as always:
//!   a dead segment may owe its death to a held record). Nothing of them
//!   is durable, so nothing is confirmed, until then; appends go on (the
//!   pending bytes' bound holds publishers back) and `LogConfig::
//!   out_of_space` counts the log as out of space meanwhile.
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
//!
//! The parts: `config` (tunables), `position` (`Lsn`, `RecordPos`),
//! `state` (what the handle and the writer share), `segment_state` (one
//! segment's bookkeeping), `recovery`, `append`, `writer` (group commit),
//! `sync` (waiting for durability), `reclaim` (live references, pins,
//! deletion, compaction), `reader` (reading back), `stats` and `error`.
//! This file holds the `Log` handle: opening, shutting down, its gauges.

mod append;
mod config;
mod error;
mod position;
mod reader;
mod reclaim;
mod recovery;
mod segment_state;
mod state;
mod stats;
mod sync;
mod wait_list;
mod writer;

pub use config::LogConfig;
pub use error::AppendError;
pub use position::{Lsn, RecordPos};
pub use recovery::{RecoveredRecord, RecoveryReport};
pub use stats::{FsyncHistogram, LogStats, FSYNC_BUCKETS};

use super::segment::{self, SegmentId};
use glommio::io::Directory;
use recovery::Recovered;
use segment_state::SegState;
use state::Inner;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::path::Path;
use std::rc::Rc;
use wait_list::WaitList;

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
        let Recovered {
            last,
            mut segments,
            dead,
            report,
        } = recovery::scan_segments(dir, &config, &mut on_record)?;
        let active = match last {
            None => 1,
            Some(last) => last
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
            out_of_space: false,
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
        let writer = glommio::spawn_local(writer::writer_loop(inner.clone(), dir_handle)).detach();
        Ok(Log {
            inner,
            writer: RefCell::new(Some(writer)),
        })
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

    /// Whether the writer is waiting out a full disk: what is appended
    /// stays unwritten (and unconfirmed) until there is room again.
    pub fn out_of_space(&self) -> bool {
        self.inner.borrow().out_of_space
    }

    /// Bytes appended but not yet durable.
    pub fn pending_bytes(&self) -> usize {
        self.inner.borrow().pending_bytes
    }

    pub fn stats(&self) -> LogStats {
        self.inner.borrow().stats.clone()
    }

    /// The log's size on disk: its sealed segments at their full size and
    /// the active one up to its append offset (preallocated space beyond
    /// it not counted).
    pub fn disk_bytes(&self) -> u64 {
        let inner = self.inner.borrow();
        let sealed = inner.segments.len().saturating_sub(1) as u64;
        sealed * inner.config.segment_size as u64 + inner.append_off as u64
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.borrow().report.clone()
    }

    /// Segments on disk, ascending.
    pub fn segments(&self) -> Vec<SegmentId> {
        self.inner.borrow().segments.keys().copied().collect()
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
