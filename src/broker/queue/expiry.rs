//! Queue expiry (`x-expires`): when the queue was last used. A queue is
//! used while it has consumers, and by every declare (passive too),
//! basic.get and consumer change; the owner shard's timer
//! (`shard::expiry`) deletes it once it has been unused for its expiry.
//! Nothing here is touched per message.

use super::Queue;
use crate::protocol::types::FieldTable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tells queue incarnations apart (a queue deleted and declared again is
/// a new one, with a timer of its own).
static NEXT_INCARNATION: AtomicU64 = AtomicU64::new(1);

/// Reads `x-expires` (milliseconds) from the raw queue arguments;
/// validation belongs to the typed queue-argument parser.
// TODO(merge): switch to the typed `QueueArguments` parser.
pub fn expires(args: &FieldTable) -> Option<Duration> {
    let ms = args.get("x-expires")?.as_i64()?;
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

#[derive(Debug)]
pub(super) struct Expiry {
    pub(super) after: Option<Duration>,
    used_at: Instant,
    incarnation: u64,
}

impl Expiry {
    /// A queue's expiry starts counting when the queue is created (or
    /// recovered: RabbitMQ restarts the timer at node start).
    pub(super) fn new(args: &FieldTable) -> Expiry {
        Expiry {
            after: expires(args),
            used_at: Instant::now(),
            incarnation: NEXT_INCARNATION.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Queue {
    /// How long the queue may stay unused (`x-expires`), if it expires.
    pub fn expires(&self) -> Option<Duration> {
        self.expiry.after
    }

    /// This queue's incarnation (unique in the process).
    pub fn incarnation(&self) -> u64 {
        self.expiry.incarnation
    }

    /// The queue was used (declare, basic.get, a consumer came or went).
    pub fn touch(&mut self) {
        if self.expiry.after.is_some() {
            self.expiry.used_at = Instant::now();
        }
    }

    /// When the queue expires if nothing uses it before (None: it does not
    /// expire, or it has consumers, which keep it in use).
    pub fn expires_at(&self) -> Option<Instant> {
        let after = self.expiry.after?;
        self.consumers
            .is_empty()
            .then_some(self.expiry.used_at + after)
    }
}
