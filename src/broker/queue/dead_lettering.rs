//! Messages a queue let go of that are being dead-lettered: taken out of
//! the unacked set by a reject / nack without requeue (`reject`), and held
//! — neither ready nor unacked, never delivered again — while their copies
//! travel to the dead-letter targets, until the shard runtime hears that
//! every copy that must survive a restart is on disk (`release_dead_lettered`;
//! then the source's removal is recorded). Held messages keep their log
//! references (`stored_segments` counts them), so deleting the queue
//! meanwhile releases them with the rest.

use super::ready::QueuedMessage;
use super::Queue;
use std::collections::HashMap;

/// The held messages of a queue, by the shard's dead-letter ticket.
#[derive(Debug, Default)]
pub(super) struct DeadLettering {
    by_ticket: HashMap<u64, QueuedMessage>,
}

impl DeadLettering {
    pub(super) fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.by_ticket.values()
    }
}

impl Queue {
    /// basic.reject / basic.nack without requeue: the delivered messages
    /// `ids` leave the unacked set (their consumers get their credit back)
    /// and are returned, in id order, to be dead-lettered. Unknown ids are
    /// ignored.
    pub fn reject(&mut self, ids: &[u64]) -> Vec<QueuedMessage> {
        let mut rejected = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(entry) = self.unacked.remove(*id) else {
                continue;
            };
            if let Some(key) = &entry.consumer {
                self.consumers.settled(key);
            }
            rejected.push(entry.message);
        }
        rejected.sort_unstable_by_key(|m| m.id);
        rejected
    }

    /// Holds `message` while its dead-lettered copies, under `ticket`, are
    /// made safe.
    pub fn hold_dead_lettering(&mut self, ticket: u64, message: QueuedMessage) {
        self.dead_lettering.by_ticket.insert(ticket, message);
    }

    /// The message held under `ticket`, no longer held.
    pub fn release_dead_lettered(&mut self, ticket: u64) -> Option<QueuedMessage> {
        self.dead_lettering.by_ticket.remove(&ticket)
    }

    /// Messages held while being dead-lettered.
    pub fn dead_lettering_count(&self) -> usize {
        self.dead_lettering.by_ticket.len()
    }
}
