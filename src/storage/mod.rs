//! The per-shard durable message log: an append-only, segmented log written
//! with O_DIRECT through glommio, with group commit.
//!
//! - `record` — the on-disk record format and its codec (pure).
//! - `segment` — segment files: naming, creation, scanning at recovery.
//! - `log` — `Log`: recovery, appends, group commit (`sync`), segment
//!   reclamation (`release`), reading records back.

pub mod definitions;
pub mod log;
pub mod record;
pub mod segment;

pub use log::{
    AppendError, Log, LogConfig, LogStats, Lsn, RecordPos, RecoveredRecord, RecoveryReport,
};
pub use record::{
    Delayed, DelayedRef, Message, MessageRef, Record, RecordError, RecordKind, RecordRef, Target,
};
pub use segment::SegmentId;
