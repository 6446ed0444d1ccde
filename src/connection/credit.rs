//! A publishing connection's flow credit (see `shard::flow`): how many of
//! its publishes are on their way to each owner shard, not yet paid back.
//! The reader stops reading its socket while it has used up its credit
//! with any owner (TCP then pushes back on the client), and the shard's
//! `Envelope::PublishCredit` wakes it. A connection that holds unacked
//! deliveries is never held (`ConnShared::held_for_credit`): the acks
//! behind its publishes are what lets its own consumers go on.
//!
//! Once a connection has had half its credit with some owner in flight,
//! its socket's receive buffer is fixed at `HELD_RCVBUF`
//! (`limit_receive_buffer`): the kernel autotunes it to megabytes for a
//! flooding client, and what waits there unread is latency the broker
//! adds on top of its queues (tens of milliseconds of publishes at a
//! flood's rate). It is done at half the window, not at the first hold,
//! because a window the kernel already advertised is never taken back:
//! by the first hold the client may have megabytes on the way. A
//! publisher that gets that far ahead of its owner is a flood, and one
//! that its queues pace would wait anyway, so a small window costs it no
//! throughput; one that never does keeps the kernel's autotuning.

use crate::connection::Signal;
use crate::shard::flow::PUBLISH_CREDIT;
use std::cell::Cell;
use std::os::unix::io::RawFd;

/// The receive buffer (`SO_RCVBUF`; the kernel doubles it for its own
/// bookkeeping) of a connection once it has been held for credit.
pub const HELD_RCVBUF: i32 = 64 * 1024;

pub struct PublishCredit {
    /// Publishes sent to each owner shard and not paid back.
    in_flight: Box<[Cell<u32>]>,
    /// Owners whose credit this connection has used up.
    exhausted: Cell<u16>,
    /// Whether half the credit with some owner was ever in flight.
    outran: Cell<bool>,
    /// Whether the socket's receive buffer was limited (`HELD_RCVBUF`).
    limited: Cell<bool>,
    signal: Signal,
}

impl PublishCredit {
    pub fn new(shards: usize) -> PublishCredit {
        PublishCredit {
            in_flight: (0..shards).map(|_| Cell::new(0)).collect(),
            exhausted: Cell::new(0),
            outran: Cell::new(false),
            limited: Cell::new(false),
            signal: Signal::default(),
        }
    }

    /// One publish went to `owner`.
    pub fn sent(&self, owner: u16) {
        let c = &self.in_flight[owner as usize];
        let n = c.get().saturating_add(1);
        c.set(n);
        if n == PUBLISH_CREDIT / 2 {
            self.outran.set(true);
        }
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

    /// Between read batches: once half the credit with some owner was in
    /// flight, fixes socket `fd`'s receive buffer at `HELD_RCVBUF` (see
    /// the module doc). Best effort: a failure leaves the kernel's
    /// autotuning on.
    pub fn limit_receive_buffer(&self, fd: RawFd) {
        if !self.outran.get() || self.limited.replace(true) {
            return;
        }
        let size: libc::c_int = HELD_RCVBUF;
        // SAFETY: `size` outlives the call and its length is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "SO_RCVBUF not set");
        }
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
