//! A publishing connection's flow credit (see `shard::flow`): how many of
//! its publishes are on their way to each owner shard, not yet paid back.
//! The reader stops reading its socket while it has used up its credit
//! with any owner (TCP then pushes back on the client), and the shard's
//! `Envelope::PublishCredit` wakes it. A connection that holds unacked
//! deliveries is never held (`ConnShared::held_for_credit`): the acks
//! behind its publishes are what lets its own consumers go on.

use crate::connection::Signal;
use crate::shard::flow::PUBLISH_CREDIT;
use std::cell::Cell;

pub struct PublishCredit {
    /// Publishes sent to each owner shard and not paid back.
    in_flight: Box<[Cell<u32>]>,
    /// Owners whose credit this connection has used up.
    exhausted: Cell<u16>,
    signal: Signal,
}

impl PublishCredit {
    pub fn new(shards: usize) -> PublishCredit {
        PublishCredit {
            in_flight: (0..shards).map(|_| Cell::new(0)).collect(),
            exhausted: Cell::new(0),
            signal: Signal::default(),
        }
    }

    /// One publish went to `owner`.
    pub fn sent(&self, owner: u16) {
        let c = &self.in_flight[owner as usize];
        let n = c.get().saturating_add(1);
        c.set(n);
        if n == PUBLISH_CREDIT {
            self.exhausted.set(self.exhausted.get() + 1);
        }
    }

    /// `owner` paid back `n` credits.
    pub fn paid(&self, owner: u16, n: u32) {
        let Some(c) = self.in_flight.get(owner as usize) else {
            return;
        };
        let before = c.get();
        let after = before.saturating_sub(n);
        c.set(after);
        if before >= PUBLISH_CREDIT && after < PUBLISH_CREDIT {
            self.exhausted.set(self.exhausted.get() - 1);
            if self.exhausted.get() == 0 {
                self.signal.notify();
            }
        }
    }

    /// Whether some owner has none of this connection's credit left.
    pub fn blocked(&self) -> bool {
        self.exhausted.get() > 0
    }

    /// Waits for a payment that may unblock the connection.
    pub async fn paid_back(&self) {
        self.signal.wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_while_any_owner_is_out_of_credit() {
        let c = PublishCredit::new(2);
        for _ in 0..PUBLISH_CREDIT - 1 {
            c.sent(1);
        }
        assert!(!c.blocked());
        c.sent(1);
        c.sent(1);
        assert!(c.blocked());
        for _ in 0..PUBLISH_CREDIT {
            c.sent(0);
        }
        c.paid(1, 2);
        assert!(c.blocked(), "shard 0 is still out of credit");
        c.paid(0, 1);
        assert!(!c.blocked());
        // An unknown owner's payment is ignored; paying more than owed
        // saturates.
        c.paid(7, 1);
        c.paid(0, u32::MAX);
        assert!(!c.blocked());
    }
}
