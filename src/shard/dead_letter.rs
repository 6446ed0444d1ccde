//! Dead-lettering on a queue's owner shard: the one way a queue lets go of
//! a message other than an ack or a purge — rejected without requeue,
//! expired, dropped by a length limit, or over its delivery limit.
//!
//! Contract for callers (the queue features): hand the messages over as
//! `Letter`s *instead of* recording their removal in the log. This module
//! republishes each one through the queue's dead-letter exchange (with the
//! `x-death` history of `broker::dead_letter`) when the queue has one, and
//! records the source copy's removal only once every copy it made is as
//! safe as the source was (a persistent message in a durable target is on
//! disk first), so a crash in between loses nothing — at worst the message
//! is dead-lettered twice, as RabbitMQ's at-least-once dead-lettering.

use crate::broker::dead_letter::DeadLetterReason;
use crate::broker::queue::QueuedMessage;
use crate::protocol::types::ShortStr;
use crate::shard::{durability, Shard};
use std::rc::Rc;

/// A message a queue let go of, and why.
#[derive(Debug)]
pub struct Letter {
    pub message: QueuedMessage,
    pub reason: DeadLetterReason,
}

/// Takes the letters `queue` let go of. Without a dead-letter exchange they
/// are dropped: their stored copies' removal is recorded at once.
pub fn dead_letter(shard: &Rc<Shard>, queue: &ShortStr, letters: Vec<Letter>) {
    if letters.is_empty() {
        return;
    }
    let removed: Vec<(u64, u32)> = letters
        .iter()
        .filter_map(|l| l.message.stored.map(|segment| (l.message.id, segment)))
        .collect();
    durability::record_removed(shard, queue, &removed);
}
