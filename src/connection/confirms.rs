//! Publisher confirms of one channel: sequence numbers in publish order,
//! how many durable copies each still waits for (their owners' fsyncs), and
//! the highest sequence number that can be acked with `multiple` — acks go
//! out in order and coalesced, never one per message.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Confirms {
    next_seq: u64,
    /// seq → copies not yet on disk.
    outstanding: BTreeMap<u64, u32>,
    /// Highest seq already acked to the client.
    acked_upto: u64,
}

impl Confirms {
    pub fn new() -> Confirms {
        Confirms {
            next_seq: 1,
            outstanding: BTreeMap::new(),
            acked_upto: 0,
        }
    }

    /// Registers a publish waiting for `copies` durable copies (0: confirmed
    /// at once). Returns its sequence number.
    pub fn publish(&mut self, copies: u32) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if copies > 0 {
            self.outstanding.insert(seq, copies);
        }
        seq
    }

    /// One durable copy of `seq` is on disk.
    pub fn copy_done(&mut self, seq: u64) {
        if let Some(n) = self.outstanding.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                self.outstanding.remove(&seq);
            }
        }
    }

    /// The sequence number to ack (multiple) now, if it moved.
    pub fn ackable(&mut self) -> Option<u64> {
        let upto = match self.outstanding.keys().next() {
            Some(first) => first - 1,
            None => self.next_seq - 1,
        };
        if upto > self.acked_upto {
            self.acked_upto = upto;
            Some(upto)
        } else {
            None
        }
    }

    pub fn waiting(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_publishes_ack_at_once_coalesced() {
        let mut c = Confirms::new();
        c.publish(0);
        c.publish(0);
        assert_eq!(c.ackable(), Some(2));
        assert_eq!(c.ackable(), None);
    }

    #[test]
    fn durable_copies_hold_back_later_acks_until_done() {
        let mut c = Confirms::new();
        let a = c.publish(2); // fan-out to two durable queues
        let b = c.publish(0);
        assert_eq!(
            c.ackable(),
            None,
            "1 waits, and 2 must not be acked before it"
        );
        c.copy_done(a);
        assert_eq!(c.ackable(), None);
        c.copy_done(a);
        assert_eq!(c.ackable(), Some(b));
    }

    #[test]
    fn out_of_order_completion_acks_prefix() {
        let mut c = Confirms::new();
        let a = c.publish(1);
        let b = c.publish(1);
        let d = c.publish(1);
        c.copy_done(b);
        assert_eq!(c.ackable(), None);
        c.copy_done(a);
        assert_eq!(c.ackable(), Some(b));
        c.copy_done(d);
        assert_eq!(c.ackable(), Some(d));
    }
}
