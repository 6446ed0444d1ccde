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
    /// Ranges (end exclusive, ascending) of the stored messages at or below
    /// `max_id` that stay: delivered and not yet settled, or being
    /// dead-lettered. The purge record spares them.
    pub spared: Vec<(u64, u64)>,
}

impl Queue {
    /// Drops every ready message, in memory and paged. Unacked ones stay
    /// (and the purge record must spare them: `Purged::spared`).
    pub fn purge(&mut self) -> Purged {
        let mut purged = self.purge_ready();
        if let Some(max_id) = purged.max_id {
            purged.spared = self.stored_ids_outside_ready(max_id);
        }
        purged
    }

    /// The ids, as ranges, of the stored messages at or below `up_to` that
    /// are not ready: unacked or being dead-lettered.
    fn stored_ids_outside_ready(&self, up_to: u64) -> Vec<(u64, u64)> {
        let mut ids: Vec<u64> = self
            .unacked
            .messages()
            .chain(self.dead_lettering.messages())
            .filter(|m| m.stored.is_some() && m.id <= up_to)
            .map(|m| m.id)
            .collect();
        ids.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for id in ids {
            match ranges.last_mut() {
                Some((_, end)) if *end == id => *end = id + 1,
                _ => ranges.push((id, id + 1)),
            }
        }
        ranges
    }

    fn purge_ready(&mut self) -> Purged {
        if let Some(levels) = &mut self.levels {
            self.paged_sizes.clear();
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
            spared: Vec::new(),
        }
    }
}
