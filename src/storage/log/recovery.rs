//! Recovery: every segment scanned in order, each record handed on with
//! its position; live references and kill-records counted per segment; the
//! segment holding the first torn or corrupt record truncated to its valid
//! prefix and every later one quarantined (`*.seg.corrupt`).

use super::config::LogConfig;
use super::position::RecordPos;
use super::segment_state::SegState;
use crate::storage::record::{self, Record};
use crate::storage::segment::{self, SegmentId};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

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

/// The segments recovery found, as the log starts tracking them.
pub(super) struct Recovered {
    /// The last segment on disk (the next one is the new active segment).
    pub(super) last: Option<SegmentId>,
    /// Every segment kept, sealed, with its live references.
    pub(super) segments: BTreeMap<SegmentId, SegState>,
    /// The kept segments with no live references.
    pub(super) dead: BTreeSet<SegmentId>,
    pub(super) report: RecoveryReport,
}

/// Scans the segments in `dir`, handing each valid record to `on_record`.
pub(super) fn scan_segments(
    dir: &Path,
    config: &LogConfig,
    mut on_record: impl FnMut(RecoveredRecord),
) -> io::Result<Recovered> {
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
            let record = match &r.record {
                Record::InVhost { inner, .. } => &**inner,
                other => other,
            };
            match record {
                Record::Message(m) | Record::Copy(m) => live += m.targets.len() as u64,
                Record::Metadata { .. } => live += 1,
                // A transient delayed message dies with the process that
                // wrote it, like a `Paged` copy.
                Record::Delayed(d) if d.durable => live += 1,
                // A paged-out copy never outlives the process that wrote it.
                Record::Delivered { .. }
                | Record::Returned { .. }
                | Record::Paged(_)
                | Record::Delayed(_)
                | Record::InVhost { .. } => {}
                Record::Ack { .. }
                | Record::Purge { .. }
                | Record::PurgeReady { .. }
                | Record::QueueDelete { .. }
                | Record::DelayedDone { .. } => kills = true,
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
    Ok(Recovered {
        last: ids.last().copied(),
        segments,
        dead,
        report,
    })
}
