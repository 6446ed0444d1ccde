//! Handing messages out — round-robin to consumers (`next_delivery`) or
//! to basic.get (`get`) — and settling them (`settle`): acked or rejected
//! messages leave, requeued ones merge back into the ready list.

use super::consumers::ConsumerKey;
use super::getters::GetterKey;
use super::priority::Levels;
use super::ready::{resident_cost, QueuedMessage, ReadyList};
use super::unacked::Taker;
use super::Queue;
use crate::broker::message::MessageRef;
use crate::broker::stats::Stat;

/// A message handed to a consumer (or to basic.get).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub consumer: ConsumerKey,
    pub no_ack: bool,
    pub msg_id: u64,
    pub redelivered: bool,
    pub message: MessageRef,
    /// The log segment of a stored message (a no-ack delivery removes it).
    pub stored: Option<u32>,
    /// How long the consumer may leave it unacked before its channel is
    /// closed (ms; the queue's `x-consumer-timeout`, else the broker's
    /// `--consumer-timeout`, filled in by the owner); None: no timeout.
    pub consumer_timeout: Option<u64>,
}

/// How a delivered message is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Acknowledged: gone.
    Remove,
    /// Rejected / nacked without requeue: gone from the queue, handed to
    /// dead-lettering by the owner (`Queue::reject`); `settle` treats it
    /// as `Remove`.
    Reject,
    /// Rejected/nacked with requeue, or its channel died: back to ready, redelivered.
    Requeue,
}

/// Takes the next ready message to hand out: the head, or for a priority
/// queue the head of its highest level (the queue's fields, so a consumer
/// can stay borrowed).
fn pop_ready(levels: &mut Option<Box<Levels>>, ready: &mut ReadyList) -> Option<QueuedMessage> {
    match levels {
        Some(levels) => levels.pop_front(),
        None => ready.pop_front(),
    }
}

impl Queue {
    /// The next delivery, round-robin over consumers with credit, or None
    /// when the queue is empty or every consumer is saturated.
    pub fn next_delivery(&mut self) -> Option<Delivery> {
        if !self.has_ready() {
            return None;
        }
        // A message waits: the queue is inactive unless a consumer takes
        // it (`utilisation`).
        if self.consumers.is_empty() || self.at_unacked_cap() {
            self.consumer_use.want(false);
            return None;
        }
        let consumer = match &mut self.single_active {
            Some(sac) => sac.next(&mut self.consumers),
            None => self.consumers.next_with_credit(),
        };
        let Some(consumer) = consumer else {
            self.consumer_use.want(false);
            return None;
        };
        self.consumer_use.want(true);
        let message = pop_ready(&mut self.levels, &mut self.ready).expect("checked non-empty");
        consumer.delivered(resident_cost(&message.message));
        let key = consumer.key().clone();
        let no_ack = consumer.no_ack();
        self.stats.add(
            if no_ack {
                Stat::DeliverNoAck
            } else {
                Stat::Deliver
            },
            1,
        );
        if message.redelivered {
            self.stats.add(Stat::Redeliver, 1);
        }
        let delivery = Delivery {
            consumer: key.clone(),
            no_ack,
            msg_id: message.id,
            redelivered: message.redelivered,
            message: self.delivered_message(&message),
            stored: message.stored,
            consumer_timeout: self.consumer_timeout,
        };
        if !no_ack {
            self.unacked.insert(message, Taker::Consumer(key));
        }
        Some(delivery)
    }

    /// basic.get with no memory bound (the management API's, which
    /// settles what it took at once): the head message, if any (none while
    /// the queue is at its `x-max-unacked`). In ack mode it stays unacked
    /// (owned by no consumer) until settled.
    pub fn get(&mut self, no_ack: bool) -> Option<QueuedMessage> {
        self.take_for_get(no_ack, None)
    }

    /// basic.get by the channel `getter`, the queue's memory room being
    /// `room`: as `get`, and in ack mode nothing while the channel's
    /// unsettled gets hold its share of the room (`getter_may_take`).
    pub fn get_for(
        &mut self,
        getter: &GetterKey,
        no_ack: bool,
        room: u64,
    ) -> Option<QueuedMessage> {
        if !no_ack && !self.getter_may_take(getter, room) {
            return None;
        }
        self.take_for_get(no_ack, Some(*getter))
    }

    fn take_for_get(&mut self, no_ack: bool, getter: Option<GetterKey>) -> Option<QueuedMessage> {
        if self.at_unacked_cap() {
            return None;
        }
        let message = pop_ready(&mut self.levels, &mut self.ready)?;
        self.stats
            .add(if no_ack { Stat::GetNoAck } else { Stat::Get }, 1);
        if message.redelivered {
            self.stats.add(Stat::Redeliver, 1);
        }
        if !no_ack {
            self.unacked.insert(message.clone(), Taker::Get(getter));
        }
        Some(QueuedMessage {
            message: self.delivered_message(&message),
            ..message
        })
    }

    /// Settles delivered messages by id. Unknown ids (already settled, or
    /// from before a purge) are ignored. Requeued messages go back to the
    /// head of the queue in their original order, marked redelivered.
    /// Returns (id, segment) of the stored messages that left the queue.
    pub fn settle(&mut self, ids: &[u64], how: Settle) -> Vec<(u64, u32)> {
        let mut removed = Vec::new();
        let mut requeued = Vec::new();
        for id in ids {
            let Some(entry) = self.unacked.remove(*id) else {
                continue;
            };
            // A consumer may take more now (RabbitMQ: unblocked, active).
            self.consumer_use.want(true);
            if how == Settle::Remove {
                self.stats.add(Stat::Ack, 1);
            }
            if let Some(key) = entry.consumer() {
                self.consumers
                    .settled(key, resident_cost(&entry.message.message));
                if let Some(sac) = &mut self.single_active {
                    sac.departed_settled(key);
                }
            }
            if how == Settle::Requeue {
                let mut message = entry.message;
                message.redelivered = true;
                if let Some(message) = self.count_return(message) {
                    requeued.push(message);
                }
            } else if let Some(segment) = entry.message.stored {
                removed.push((entry.message.id, segment));
            }
        }
        if !requeued.is_empty() {
            self.requeue(requeued);
        }
        removed
    }

    /// `x-max-unacked`: the queue holds as many unacked deliveries as it
    /// may, so it delivers nothing (to any consumer, nor to basic.get)
    /// until a settlement frees room.
    pub fn at_unacked_cap(&self) -> bool {
        self.max_unacked
            .is_some_and(|max| self.unacked.len() as u64 >= max)
    }

    /// Whether a ready message can be handed out now.
    fn has_ready(&self) -> bool {
        match &self.levels {
            Some(levels) => levels.has_ready(),
            None => !self.ready.is_empty(),
        }
    }

    /// Merges messages back into the ready list (a priority queue: into
    /// their levels), keeping id order.
    fn requeue(&mut self, mut messages: Vec<QueuedMessage>) {
        messages.sort_unstable_by_key(|m| m.id);
        for m in &messages {
            if let Some(at) = m.expires {
                self.deadlines.push(at, m.id);
            }
        }
        if let Some(levels) = &mut self.levels {
            return levels.requeue_sorted(messages);
        }
        debug_assert!(self.tail.first_id().is_none_or(|first| messages
            .last()
            .expect("non-empty")
            .id
            < first));
        self.ready.requeue_sorted(messages);
    }
}
