//! A channel's delivery tags and the deliveries (and basic.gets) the client
//! has not settled yet, in tag order: which messages an ack, nack or reject
//! names (RabbitMQ's rules: `multiple` takes every tag up to it, tag 0 with
//! `multiple` takes all, an unknown tag is a 406), and whether the oldest
//! has waited past its consumer timeout.

use crate::broker::capacity::shrunk_capacity;
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::vhost::QueueName;
use std::collections::VecDeque;

/// A delivery (or basic.get) the client has not settled yet.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub tag: u64,
    pub queue: QueueName,
    pub owner: u16,
    pub msg_id: u64,
    /// Its consumer timeout (ms), if any, and when it was delivered (ms
    /// since the epoch, the coarse clock; 0 without a timeout).
    pub timeout: Option<u64>,
    pub delivered_at: u64,
}

#[derive(Debug)]
pub struct DeliveryTags {
    next_tag: u64,
    /// In increasing tag order.
    unacked: VecDeque<Unacked>,
}

impl Default for DeliveryTags {
    fn default() -> DeliveryTags {
        DeliveryTags {
            next_tag: 1,
            unacked: VecDeque::new(),
        }
    }
}

impl DeliveryTags {
    /// Allocates the next delivery tag, recording an unacked entry
    /// (queue, owner shard, message id) when the delivery needs an ack.
    pub fn next(&mut self, ack: Option<(QueueName, u16, u64)>) -> u64 {
        self.next_with_timeout(ack, None)
    }

    /// `next`, for a delivery that may stay unacked at most `timeout` ms
    /// (its consumer timeout).
    pub fn next_with_timeout(
        &mut self,
        ack: Option<(QueueName, u16, u64)>,
        timeout: Option<u64>,
    ) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        if let Some((queue, owner, msg_id)) = ack {
            let delivered_at = match timeout {
                Some(_) => crate::shard::stats::coarse_now_ms(),
                None => 0,
            };
            self.unacked.push_back(Unacked {
                tag,
                queue,
                owner,
                msg_id,
                timeout,
                delivered_at,
            });
        }
        tag
    }

    /// The timeout (ms) of the oldest unacked delivery if it has waited
    /// longer than that at `now_ms` (as RabbitMQ, only the oldest is
    /// looked at).
    pub fn timed_out(&self, now_ms: u64) -> Option<u64> {
        let oldest = self.unacked.front()?;
        let timeout = oldest.timeout?;
        (oldest.delivered_at < now_ms.saturating_sub(timeout)).then_some(timeout)
    }

    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Takes the unacked entries an ack/nack/reject names: exactly `tag`, or
    /// every tag up to it with `multiple` (tag 0 + multiple = all).
    pub fn take_settled(&mut self, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let n = self.unacked.partition_point(|u| u.tag <= upto);
            if n == 0 && tag != 0 {
                return Err(unknown_tag(tag));
            }
            let taken = self.unacked.drain(..n).collect();
            self.shrink_when_sparse();
            return Ok(taken);
        }
        // Clients that ack one delivery at a time mostly ack the oldest:
        // no search then (the entries are in tag order).
        let found = match self.unacked.front() {
            Some(oldest) if oldest.tag == tag => Ok(0),
            _ => self.unacked.binary_search_by_key(&tag, |u| u.tag),
        };
        match found {
            Ok(i) => {
                let taken = self.unacked.remove(i).expect("found");
                self.shrink_when_sparse();
                Ok(vec![taken])
            }
            Err(_) => Err(unknown_tag(tag)),
        }
    }

    /// Every unacked entry (channel closing, basic.recover), and the room
    /// they took.
    pub fn take_all(&mut self) -> Vec<Unacked> {
        std::mem::take(&mut self.unacked).into()
    }

    /// A flood of deliveries settled gives its room back
    /// (`broker::capacity`).
    fn shrink_when_sparse(&mut self) {
        if let Some(to) = shrunk_capacity(self.unacked.len(), self.unacked.capacity()) {
            self.unacked.shrink_to(to);
        }
    }

    /// Entries taken earlier are unacked again (tx.rollback), in tag order.
    pub fn restore(&mut self, entries: Vec<Unacked>) {
        if entries.is_empty() {
            return;
        }
        let mut all: Vec<Unacked> = self.unacked.drain(..).chain(entries).collect();
        all.sort_unstable_by_key(|u| u.tag);
        self.unacked = all.into();
    }
}

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition_failed(format!("unknown delivery tag {tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags_with(n: u64) -> DeliveryTags {
        let mut t = DeliveryTags::default();
        for i in 0..n {
            t.next(Some((QueueName::default_vhost("q"), 0, i + 100)));
        }
        t
    }

    #[test]
    fn only_the_oldest_delivery_past_its_timeout_times_out() {
        let mut t = DeliveryTags::default();
        t.next(Some((QueueName::default_vhost("q"), 0, 1)));
        assert_eq!(t.timed_out(u64::MAX), None, "no timeout");
        let mut t = DeliveryTags::default();
        let a = t.next_with_timeout(Some((QueueName::default_vhost("q"), 0, 1)), Some(5000));
        t.next_with_timeout(Some((QueueName::default_vhost("q"), 0, 2)), Some(10));
        let at = t.unacked.front().unwrap().delivered_at;
        assert!(at > 0);
        assert_eq!(t.timed_out(at + 5000), None, "not past it yet");
        assert_eq!(t.timed_out(at + 5001), Some(5000));
        t.take_settled(a, false).unwrap();
        assert_eq!(t.timed_out(at + 11), Some(10), "the next oldest's own");
    }

    #[test]
    fn tags_count_from_1_and_only_acked_deliveries_are_kept() {
        let mut t = DeliveryTags::default();
        assert_eq!(t.next(None), 1);
        assert_eq!(t.next(Some((QueueName::default_vhost("q"), 0, 7))), 2);
        assert_eq!(t.unacked(), 1);
        assert_eq!(t.take_settled(1, false).unwrap_err().code, 406);
        assert_eq!(t.take_settled(2, false).unwrap()[0].msg_id, 7);
    }

    #[test]
    fn single_ack_removes_exact_tag() {
        let mut t = tags_with(3);
        let got = t.take_settled(2, false).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].msg_id, 101);
        assert_eq!(t.unacked(), 2);
        assert_eq!(t.take_settled(2, false).unwrap_err().code, 406);
    }

    #[test]
    fn single_acks_of_the_oldest_in_order_take_each_once() {
        let mut t = tags_with(4);
        for (tag, msg_id) in [(1, 100), (2, 101), (3, 102)] {
            let got = t.take_settled(tag, false).unwrap();
            assert_eq!(got.iter().map(|u| u.msg_id).collect::<Vec<_>>(), [msg_id]);
        }
        assert_eq!(t.take_settled(3, false).unwrap_err().code, 406);
        assert_eq!(t.take_settled(4, false).unwrap()[0].msg_id, 103);
        assert_eq!(t.unacked(), 0);
    }

    #[test]
    fn multiple_ack_takes_prefix_and_zero_means_all() {
        let mut t = tags_with(5);
        assert_eq!(t.take_settled(3, true).unwrap().len(), 3);
        assert_eq!(t.take_settled(0, true).unwrap().len(), 2);
        assert_eq!(t.unacked(), 0);
        assert!(
            t.take_settled(0, true).unwrap().is_empty(),
            "0 + multiple: never an error"
        );
    }

    #[test]
    fn restored_entries_are_unacked_again_in_tag_order() {
        let mut t = tags_with(5);
        let taken = t.take_settled(2, true).unwrap();
        let four = t.take_settled(4, false).unwrap();
        t.restore(four.into_iter().chain(taken).collect());
        let all: Vec<u64> = t.take_all().iter().map(|u| u.tag).collect();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_settled_flood_of_deliveries_gives_its_room_back() {
        use crate::broker::capacity::KEEP_CAPACITY;
        let mut t = tags_with(20_000);
        assert!(t.unacked.capacity() >= 20_000);
        // One by one, then the rest at once.
        for tag in 1..=15_000 {
            assert_eq!(t.take_settled(tag, false).unwrap()[0].tag, tag);
        }
        assert!(
            t.unacked.capacity() < 20_000,
            "shrunk while acking one by one"
        );
        assert_eq!(t.take_settled(0, true).unwrap().len(), 5_000);
        assert!(t.unacked.capacity() < 2 * KEEP_CAPACITY);
        let mut t = tags_with(20_000);
        assert_eq!(t.take_all().len(), 20_000);
        assert_eq!(t.unacked.capacity(), 0, "a closing channel keeps no room");
    }

    #[test]
    fn unknown_tag_text_matches_rabbitmq() {
        let mut t = tags_with(1);
        let e = t.take_settled(9, false).unwrap_err();
        assert_eq!(e.text, "PRECONDITION_FAILED - unknown delivery tag 9");
    }
}
