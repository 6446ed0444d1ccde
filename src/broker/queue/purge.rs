//! Purging a queue: every ready message dropped, in memory and paged;
//! `Purged` says what the log must forget.

use super::Queue;

/// What a purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Ready messages dropped (in memory and paged).
    pub count: u32,
    /// (id, segment) of the stored messages dropped from memory.
    pub stored: Vec<(u64, u32)>,
    /// (segment, messages) of the paged ones.
    pub paged: Vec<(u32, u64)>,
    /// The largest id dropped.
    pub max_id: Option<u64>,
}

impl Queue {
    /// Drops every ready message, in memory and paged. Unacked ones stay.
    pub fn purge(&mut self) -> Purged {
        if let Some(levels) = &mut self.levels {
            return levels.purge();
        }
        let count = self.message_count();
        let max_id = self
            .tail
            .last_id()
            .or_else(|| self.ready.back().map(|m| m.id));
        let stored = self
            .ready
            .drain()
            .filter_map(|m| m.stored.map(|s| (m.id, s)))
            .collect();
        self.paged_sizes.clear();
        Purged {
            count,
            stored,
            paged: self.tail.clear(),
            max_id,
        }
    }
}
