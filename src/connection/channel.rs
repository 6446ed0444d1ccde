//! One AMQP channel's state on its connection's shard: the publish being
//! assembled from method/header/body frames, delivery tags and the unacked
//! deliveries in tag order, the channel's consumers, prefetch settings and
//! publisher-confirm sequence numbers. Pure state plus the synchronous
//! operations on it; the async method handlers live in `connection::methods`.

use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::message::Body;
use crate::broker::queue::{Delivery, Settle};
use crate::connection::confirms::Confirms;
use crate::protocol::methods::BasicPublish;
use crate::protocol::properties::ContentHeader;
use crate::protocol::types::ShortStr;
use std::collections::{HashMap, VecDeque};

/// Largest message body accepted (RabbitMQ's default max_message_size).
pub const MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// We sent channel.close and wait for close-ok; other frames are dropped.
    Closing,
}

/// A publish whose content is still arriving.
#[derive(Debug)]
pub struct PendingPublish {
    pub method: BasicPublish,
    pub header: Option<ContentHeader>,
    pub body: Body,
}

/// A delivery (or basic.get) the client has not settled yet.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub tag: u64,
    pub queue: ShortStr,
    pub owner: u16,
    pub msg_id: u64,
}

#[derive(Debug, Clone)]
pub struct ChannelConsumer {
    pub queue: ShortStr,
    pub owner: u16,
    pub no_ack: bool,
}

#[derive(Debug)]
pub struct Channel {
    pub id: u16,
    pub phase: Phase,
    pub publish: Option<PendingPublish>,
    next_tag: u64,
    /// In increasing tag order.
    unacked: VecDeque<Unacked>,
    pub consumers: HashMap<ShortStr, ChannelConsumer>,
    /// basic.qos global=false: prefetch for consumers created from now on.
    pub consumer_prefetch: u32,
    /// basic.qos global=true: limit over all consumers of the channel (0 = none).
    pub channel_prefetch: u32,
    /// Publisher confirms, once confirm.select was seen.
    pub confirms: Option<Confirms>,
    /// The last queue declared on this channel (for empty queue names).
    pub last_queue: Option<ShortStr>,
    /// Consuming `amq.rabbitmq.reply-to` (direct reply-to), with this tag.
    pub reply_to_consumer: Option<ShortStr>,
    /// That consumer's unguessable reply address (see `direct_reply`).
    pub reply_to_address: Option<ShortStr>,
    /// Ack-mode deliveries waiting for room under the global prefetch
    /// (queue, owner shard, delivery); bounded by the owners' transit window.
    pub held: VecDeque<(ShortStr, u16, Delivery)>,
    /// A queue.delete of this channel awaits its answer: basic.cancel
    /// notifications for the channel's consumers wait in `deferred_cancels`
    /// until delete-ok is out (RabbitMQ's order).
    pub deleting_queue: bool,
    pub deferred_cancels: Vec<ShortStr>,
}

impl Channel {
    pub fn new(id: u16) -> Channel {
        Channel {
            id,
            phase: Phase::Open,
            publish: None,
            next_tag: 1,
            unacked: VecDeque::new(),
            consumers: HashMap::new(),
            consumer_prefetch: 0,
            channel_prefetch: 0,
            confirms: None,
            last_queue: None,
            reply_to_consumer: None,
            reply_to_address: None,
            held: VecDeque::new(),
            deleting_queue: false,
            deferred_cancels: Vec::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Allocates the next delivery tag, recording an unacked entry when the
    /// delivery needs an ack.
    pub fn next_delivery_tag(&mut self, ack: Option<(ShortStr, u16, u64)>) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        if let Some((queue, owner, msg_id)) = ack {
            self.unacked.push_back(Unacked {
                tag,
                queue,
                owner,
                msg_id,
            });
        }
        tag
    }

    pub fn unacked_count(&self) -> usize {
        self.unacked.len()
    }

    /// Whether the channel-wide prefetch (global qos) allows one more.
    pub fn channel_prefetch_allows(&self) -> bool {
        self.channel_prefetch == 0 || (self.unacked.len() as u32) < self.channel_prefetch
    }

    /// Takes the unacked entries an ack/nack/reject names: exactly `tag`, or
    /// every tag up to it with `multiple` (tag 0 + multiple = all).
    /// An unknown tag is a 406, as RabbitMQ.
    pub fn take_settled(&mut self, tag: u64, multiple: bool) -> AmqpResult<Vec<Unacked>> {
        if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let n = self.unacked.partition_point(|u| u.tag <= upto);
            if n == 0 && tag != 0 {
                return Err(unknown_tag(tag));
            }
            return Ok(self.unacked.drain(..n).collect());
        }
        match self.unacked.binary_search_by_key(&tag, |u| u.tag) {
            Ok(i) => Ok(vec![self.unacked.remove(i).expect("found")]),
            Err(_) => Err(unknown_tag(tag)),
        }
    }

    /// Every unacked entry (channel closing, basic.recover).
    pub fn take_all_unacked(&mut self) -> Vec<Unacked> {
        self.unacked.drain(..).collect()
    }
}

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition_failed(format!("unknown delivery tag {tag}"))
}

/// Groups settled entries per (owner, queue), keeping tag order, so each
/// owner gets one envelope per queue.
pub fn group_by_queue(entries: Vec<Unacked>) -> Vec<(u16, ShortStr, Vec<u64>)> {
    let mut groups: Vec<(u16, ShortStr, Vec<u64>)> = Vec::new();
    for e in entries {
        match groups
            .iter_mut()
            .find(|(o, q, _)| *o == e.owner && *q == e.queue)
        {
            Some(g) => g.2.push(e.msg_id),
            None => groups.push((e.owner, e.queue, vec![e.msg_id])),
        }
    }
    groups
}

/// How a client settlement maps onto the queue.
pub fn settle_kind(requeue: bool) -> Settle {
    if requeue {
        Settle::Requeue
    } else {
        Settle::Remove
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch_with(n: u64) -> Channel {
        let mut ch = Channel::new(1);
        for i in 0..n {
            ch.next_delivery_tag(Some((ShortStr::from("q"), 0, i + 100)));
        }
        ch
    }

    #[test]
    fn single_ack_removes_exact_tag() {
        let mut ch = ch_with(3);
        let got = ch.take_settled(2, false).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].msg_id, 101);
        assert_eq!(ch.unacked_count(), 2);
        assert_eq!(ch.take_settled(2, false).unwrap_err().code, 406);
    }

    #[test]
    fn multiple_ack_takes_prefix_and_zero_means_all() {
        let mut ch = ch_with(5);
        assert_eq!(ch.take_settled(3, true).unwrap().len(), 3);
        assert_eq!(ch.take_settled(0, true).unwrap().len(), 2);
        assert_eq!(ch.unacked_count(), 0);
    }

    #[test]
    fn unknown_tag_text_matches_rabbitmq() {
        let mut ch = ch_with(1);
        let e = ch.take_settled(9, false).unwrap_err();
        assert_eq!(e.text, "PRECONDITION_FAILED - unknown delivery tag 9");
    }

    #[test]
    fn grouping_keeps_order_per_queue() {
        let entries = vec![
            Unacked {
                tag: 1,
                queue: ShortStr::from("a"),
                owner: 0,
                msg_id: 1,
            },
            Unacked {
                tag: 2,
                queue: ShortStr::from("b"),
                owner: 1,
                msg_id: 7,
            },
            Unacked {
                tag: 3,
                queue: ShortStr::from("a"),
                owner: 0,
                msg_id: 2,
            },
        ];
        let g = group_by_queue(entries);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].2, vec![1, 2]);
        assert_eq!(g[1].2, vec![7]);
    }
}
