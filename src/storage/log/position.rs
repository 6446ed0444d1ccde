//! Positions in the log: `Lsn` (segment, offset), ordered like appends,
//! and `RecordPos`, where one record lives.

use crate::storage::segment::SegmentId;

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
