//! One queue's state on its owner shard: ready messages in order (the
//! oldest in memory, the rest paged out to the log once the queue holds
//! more than its memory share), messages delivered but not yet
//! acknowledged, consumers with their prefetch credit, and round-robin
//! dispatch. Pure and synchronous: the shard runtime feeds it publishes,
//! acks, consumer changes and paged-in chunks, and ships the deliveries it
//! returns.
//!
//! The parts, each the home of the queue features that change it:
//!
//! - `config` — the declared shape (`QueueConfig`). The arguments of
//!   length limits, message TTL, dead-lettering, priorities and
//!   single-active-consumer are read from it.
//! - `ready` — the ready messages held in memory, in id order, with their
//!   memory charge. Message TTL (expiring at the head) and priorities (an
//!   order other than by id) change this list.
//! - `unacked` — deliveries awaiting settlement.
//! - `consumers` — consumers, their credit, exclusivity and the
//!   round-robin choice of the next one. Single-active-consumer changes
//!   that choice.
//! - `dispatch` — handing messages out (`next_delivery`, `get`) and
//!   settling them (`settle`). Rejects without requeue are where
//!   dead-lettering hooks in.
//! - `paging` — the paged tail: whether a new message goes to the log, and
//!   reading paged messages back.
//! - `stored` — the queue's references into the log: records written,
//!   restore at recovery, compaction.
//! - `purge` — dropping every ready message.
//! - `priority` — priority queues: one ready list and one paged tail per
//!   level instead of the single ones (`Levels`).
//!
//! This file holds `Queue` itself, its counts and `publish` (where length
//! limits will refuse or drop).

mod config;
mod consumers;
mod dispatch;
mod paging;
pub mod priority;
mod purge;
mod ready;
mod stored;
mod unacked;

pub use config::QueueConfig;
pub use consumers::{ConsumerKey, ConsumerSpec, TRANSIT_WINDOW};
pub use dispatch::{Delivery, Settle};
pub use paging::{PagedMessage, PAGE_IN_BELOW_BYTES, PAGE_IN_BELOW_MESSAGES};
pub use priority::LevelTail;
pub use purge::Purged;
pub use ready::{resident_cost, QueuedMessage, MESSAGE_OVERHEAD};
pub use stored::RecoveredTail;

use crate::broker::message::MessageRef;
use crate::broker::paged::PagedTail;
use crate::protocol::types::ShortStr;
use consumers::Consumers;
use priority::Levels;
use ready::ReadyList;
use unacked::UnackedSet;

#[derive(Debug)]
pub struct Queue {
    name: ShortStr,
    config: QueueConfig,
    /// The oldest ready messages, in memory, all older than the tail's.
    ready: ReadyList,
    /// The newer ready messages, paged out to the log.
    tail: PagedTail,
    unacked: UnackedSet,
    consumers: Consumers,
    next_id: u64,
    /// A priority queue's ready messages, per level (then `ready` and
    /// `tail` stay empty); None for every other queue.
    levels: Option<Box<Levels>>,
}

impl Queue {
    pub fn new(name: ShortStr, config: QueueConfig) -> Queue {
        let levels =
            priority::max_priority(&config.arguments).map(|max| Box::new(Levels::new(max)));
        Queue {
            name,
            config,
            ready: ReadyList::default(),
            tail: PagedTail::new(),
            unacked: UnackedSet::default(),
            consumers: Consumers::default(),
            next_id: 1,
            levels,
        }
    }

    pub fn name(&self) -> &ShortStr {
        &self.name
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Ready messages, in memory and paged (what declare-ok and purge count).
    pub fn message_count(&self) -> u32 {
        (self.resident_count() as u64 + self.paged_count()).min(u32::MAX as u64) as u32
    }

    /// Ready messages held in memory.
    pub fn resident_count(&self) -> usize {
        if let Some(levels) = &self.levels {
            return levels.len();
        }
        self.ready.len()
    }

    /// Ready messages paged out to the log.
    pub fn paged_count(&self) -> u64 {
        if let Some(levels) = &self.levels {
            return levels.tail().count();
        }
        self.tail.count()
    }

    /// Memory charged for the ready messages held in memory.
    pub fn resident_bytes(&self) -> u64 {
        if let Some(levels) = &self.levels {
            return levels.bytes();
        }
        self.ready.bytes()
    }

    pub fn unacked_count(&self) -> u32 {
        self.unacked.len().min(u32::MAX as usize) as u32
    }

    pub fn consumer_count(&self) -> u32 {
        self.consumers.len() as u32
    }

    /// Appends a message in memory; returns its id.
    pub fn publish(&mut self, message: MessageRef) -> u64 {
        debug_assert!(
            self.tail.is_empty(),
            "in-memory publish behind a paged tail"
        );
        let id = self.next_id;
        self.next_id += 1;
        let queued = QueuedMessage {
            id,
            message,
            redelivered: false,
            stored: None,
        };
        match &mut self.levels {
            Some(levels) => levels.push(queued),
            None => self.ready.push_back(queued),
        }
        id
    }
}

#[cfg(test)]
mod tests;
