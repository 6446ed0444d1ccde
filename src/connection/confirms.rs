//! Publisher confirms of one channel: sequence numbers in publish order,
//! how many copies each still waits for (one per owner shard: enqueued, or
//! on disk for durable copies), and what to tell the client — acks go out
//! in order and coalesced with `multiple`, never one per message; a publish
//! one of whose owners failed it (its log refused the copy) is nacked on
//! its own.

use crate::connection::outbound::Outbound;
use crate::protocol::methods::{BasicAck, BasicNack, Method};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Confirms {
    next_seq: u64,
    /// seq → copies not yet confirmed by their owners.
    outstanding: BTreeMap<u64, u32>,
    /// Publishes an owner failed, not yet nacked to the client.
    failed: BTreeSet<u64>,
    /// Highest seq already acked or nacked to the client.
    acked_upto: u64,
}

/// One basic.ack (`multiple`) or basic.nack (single) to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Acks every publish up to `seq` not acked or nacked before: `covered`
    /// of them (what the `confirmed` counter counts).
    AckUpTo {
        seq: u64,
        covered: u64,
    },
    Nack(u64),
}

/// How many publishes the confirms written just now acked and nacked
/// (what the `confirmed` and `nacked` counters count).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmCounts {
    pub acked: u64,
    pub nacked: u64,
}

impl Confirms {
    pub fn new() -> Confirms {
        Confirms {
            next_seq: 1,
            outstanding: BTreeMap::new(),
            failed: BTreeSet::new(),
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

    /// An owner could not keep its copy of `seq`: the publish is nacked
    /// (its other copies' confirmations no longer matter).
    pub fn copy_failed(&mut self, seq: u64) {
        if self.outstanding.remove(&seq).is_some() {
            self.failed.insert(seq);
        }
    }

    /// What to send now, in order: acks (multiple) of the settled prefix,
    /// with a nack for each failed publish in it.
    pub fn replies(&mut self) -> Vec<Reply> {
        let upto = match self.outstanding.keys().next() {
            Some(first) => first - 1,
            None => self.next_seq - 1,
        };
        let mut out = Vec::new();
        while let Some(&seq) = self.failed.first() {
            if seq > upto {
                break;
            }
            self.failed.remove(&seq);
            if seq - 1 > self.acked_upto {
                out.push(Reply::AckUpTo {
                    seq: seq - 1,
                    covered: seq - 1 - self.acked_upto,
                });
            }
            out.push(Reply::Nack(seq));
            self.acked_upto = seq;
        }
        if upto > self.acked_upto {
            out.push(Reply::AckUpTo {
                seq: upto,
                covered: upto - self.acked_upto,
            });
            self.acked_upto = upto;
        }
        out
    }

    /// Owners confirmed (`ok`) or failed these publishes.
    pub fn settle(&mut self, seqs: &[u64], ok: bool) {
        for &seq in seqs {
            if ok {
                self.copy_done(seq);
            } else {
                self.copy_failed(seq);
            }
        }
    }

    /// Writes `replies()` on `channel`: a basic.ack (multiple) for each
    /// settled run, a basic.nack for each failed publish.
    pub fn write(&mut self, channel: u16, out: &mut Outbound) -> ConfirmCounts {
        let mut counts = ConfirmCounts::default();
        for reply in self.replies() {
            let method: Method = match reply {
                Reply::AckUpTo { seq, covered } => {
                    counts.acked += covered;
                    BasicAck {
                        delivery_tag: seq,
                        multiple: true,
                    }
                    .into()
                }
                Reply::Nack(seq) => {
                    counts.nacked += 1;
                    BasicNack {
                        delivery_tag: seq,
                        multiple: false,
                        requeue: false,
                    }
                    .into()
                }
            };
            out.method(channel, &method);
        }
        counts
    }

    pub fn waiting(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, covered: u64) -> Reply {
        Reply::AckUpTo { seq, covered }
    }

    impl Confirms {
        /// The ack to send now, for tests without failures.
        fn ackable(&mut self) -> Option<u64> {
            match self.replies()[..] {
                [] => None,
                [Reply::AckUpTo { seq, .. }] => Some(seq),
                ref other => panic!("unexpected replies {other:?}"),
            }
        }
    }

    #[test]
    fn write_queues_acks_and_nacks_in_order_and_counts_them() {
        use crate::connection::delivery::tests::frames;
        use crate::protocol::frame::Frame;
        let mut c = Confirms::new();
        let s: Vec<u64> = (0..3).map(|_| c.publish(1)).collect();
        c.settle(&[s[0], s[2]], true);
        c.settle(&[s[1]], false);
        let mut out = Outbound::new(131_072);
        let counts = c.write(9, &mut out);
        assert_eq!(
            counts,
            ConfirmCounts {
                acked: 2,
                nacked: 1
            }
        );
        let methods: Vec<Method> = frames(&mut out, 131_072)
            .into_iter()
            .map(|f| match f {
                Frame::Method { channel: 9, method } => method,
                other => panic!("only methods on channel 9: {other:?}"),
            })
            .collect();
        let ack = |seq| {
            Method::from(BasicAck {
                delivery_tag: seq,
                multiple: true,
            })
        };
        let nack = Method::from(BasicNack {
            delivery_tag: 2,
            multiple: false,
            requeue: false,
        });
        assert_eq!(methods, vec![ack(1), nack, ack(3)]);
        assert_eq!(c.write(9, &mut out), ConfirmCounts::default());
    }

    #[test]
    fn transient_publishes_ack_at_once_coalesced() {
        let mut c = Confirms::new();
        c.publish(0);
        c.publish(0);
        assert_eq!(c.ackable(), Some(2));
        assert_eq!(c.ackable(), None);
    }

    #[test]
    fn a_failed_publish_is_nacked_alone_in_order() {
        let mut c = Confirms::new();
        let s: Vec<u64> = (0..6).map(|_| c.publish(1)).collect();
        c.copy_done(s[0]);
        c.copy_failed(s[1]);
        c.copy_done(s[2]);
        c.copy_failed(s[4]);
        // 4 still waits: 1 acked, 2 nacked, 3 acked.
        assert_eq!(c.replies(), vec![ack(1, 1), Reply::Nack(2), ack(3, 1)]);
        c.copy_done(s[3]);
        c.copy_done(s[5]);
        c.copy_done(s[4]); // too late: already failed
        assert_eq!(c.replies(), vec![ack(4, 1), Reply::Nack(5), ack(6, 1)]);
        assert_eq!(c.replies(), vec![]);
    }

    #[test]
    fn a_failure_of_one_of_two_owners_nacks_the_publish() {
        let mut c = Confirms::new();
        let a = c.publish(2);
        c.copy_done(a);
        assert_eq!(c.replies(), vec![]);
        c.copy_failed(a);
        assert_eq!(c.replies(), vec![Reply::Nack(a)]);
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
