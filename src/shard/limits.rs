//! Length limits on the owner shard: what happens to the messages a queue
//! over `x-max-length` / `x-max-length-bytes` lets go of.
//!
//! - drop-head: the dropped head messages held in memory go to
//!   `shard::dead_letter` (reason `maxlen`). A paged-out head of a queue
//!   without a dead-letter exchange is dropped without reading it back:
//!   its removal is recorded (an ack record in a durable queue, whose
//!   paged copy may be a durable record; just the log reference
//!   otherwise). A queue with a dead-letter exchange (and any priority
//!   queue, whose paged levels keep no per-message state) reads its paged
//!   head back first, one page-in chunk at a time
//!   (`Queue::wants_page_in_to_drop`), and drops it from memory like any
//!   other head, so it is dead-lettered and memory stays bounded.
//! - reject-publish: the copy is not enqueued and the publish fails
//!   (`ConfirmOutcome::Failed`, a basic.nack in confirm mode; without
//!   confirms it is dropped silently). reject-publish-dlx also hands the
//!   refused copy to `shard::dead_letter` (reason `maxlen`).

use crate::broker::dead_letter::DeadLetterReason;
use crate::broker::message::MessageRef;
use crate::broker::queue::{Dropped, Overflow, Queue, QueuedMessage};
use crate::broker::vhost::QueueName;
use crate::shard::confirm::ConfirmOutcome;
use crate::shard::dead_letter::{dead_letter, Letter};
use crate::shard::{durability, Shard};
use std::rc::Rc;

/// The reason of a publish refused by a length limit (logged quietly).
pub const REJECTED: &str = "queue full (x-overflow reject-publish)";

/// A publish `q` refused (reject-publish, reject-publish-dlx): notes the
/// copy to dead-letter for reject-publish-dlx and returns the publish's
/// outcome for this copy.
pub fn rejected(
    name: &QueueName,
    q: &mut Queue,
    message: &MessageRef,
    to_dead_letter: &mut Vec<(QueueName, QueuedMessage)>,
) -> ConfirmOutcome {
    if q.limits().overflow == Overflow::RejectPublishDlx {
        let id = q.reserve_id();
        to_dead_letter.push((
            name.clone(),
            QueuedMessage {
                id,
                message: message.clone(),
                redelivered: false,
                stored: None,
                expires: None,
                delivery_count: 0,
                slice_generation: None,
            },
        ));
    }
    ConfirmOutcome::Failed(REJECTED.to_string())
}

/// Dead-letters the copies reject-publish-dlx refused.
pub fn dead_letter_rejected(shard: &Rc<Shard>, rejected: Vec<(QueueName, QueuedMessage)>) {
    for (queue, message) in rejected {
        let letter = Letter {
            message,
            reason: DeadLetterReason::Maxlen,
        };
        dead_letter(shard, &queue, vec![letter]);
    }
}

/// Lets go of the head messages drop-head dropped from `queue`.
pub fn let_go(shard: &Rc<Shard>, queue: &QueueName, durable: bool, dropped: Vec<Dropped>) {
    if dropped.is_empty() {
        return;
    }
    let mut letters = Vec::new();
    let mut paged = Vec::new();
    for d in dropped {
        match d {
            Dropped::Memory(message) => letters.push(Letter {
                message,
                reason: DeadLetterReason::Maxlen,
            }),
            Dropped::Paged { id, segment } => paged.push((id, segment)),
        }
    }
    dead_letter(shard, queue, letters);
    if paged.is_empty() {
        return;
    }
    if durable {
        durability::record_removed(shard, queue, &paged);
    } else if let Some(log) = shard.log.as_ref() {
        for (_, segment) in paged {
            log.release(segment, segment);
        }
    }
}
