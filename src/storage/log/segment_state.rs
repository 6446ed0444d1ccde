//! `SegState`: the log's bookkeeping of one segment: its live references,
//! whether it is sealed, and the older segments it pins.

use crate::storage::segment::SegmentId;
use std::collections::BTreeSet;

/// Per-segment bookkeeping.
#[derive(Debug)]
pub(super) struct SegState {
    pub(super) live: u64,
    pub(super) sealed: bool,
    /// Older segments this one holds kill-records for (from `release`).
    pub(super) pins: BTreeSet<SegmentId>,
    /// Recovered with kill-records whose targets are not known yet: pinned
    /// by every older segment until `replay_done`.
    pub(super) conservative: bool,
}
