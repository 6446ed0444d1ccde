//! One AMQP channel on its connection's shard: its state and the
//! synchronous half of its behaviour, with no socket and no await. A
//! `Channel` assembles publishes from their method, header and body frames;
//! numbers its publishes for confirms and writes the acks and nacks; keeps
//! its consumers, its delivery tags and the unacked deliveries in tag
//! order, its prefetch limits and the deliveries a global prefetch holds
//! back; writes deliveries into the connection's write queue; and says
//! which envelopes its shard must send for it (`actions::ToShard`:
//! settlements, released consumers, deliveries to give back). Its parts
//! have files of their own: `assembly` (publish frames), `unacked`
//! (delivery tags), `confirms` and `transaction` (an open tx.select
//! transaction: settlements wait there until tx.commit). The async handlers that ask other shards live in
//! `connection::handlers`.

use crate::broker::error::{code, AmqpError, AmqpResult};
use crate::broker::message::Message;
use crate::broker::queue::{Delivery, Settle};
use crate::broker::stats::{MessageStats, Stat};
use crate::broker::vhost::QueueName;
use crate::connection::actions::{settle_envelopes, ToShard};
use crate::connection::assembly::{Assembly, PublishAssembly};
use crate::connection::confirms::{ConfirmCounts, Confirms};
use crate::connection::delivery::{self, Carrier};
use crate::connection::outbound::Outbound;
use crate::connection::transaction::TxBuffer;
use crate::connection::unacked::DeliveryTags;
use crate::connection::HardError;
use crate::protocol::methods::{BasicPublish, BasicQos};
use crate::protocol::properties::ContentHeader;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ConnKey, Envelope, GotMessage};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// We sent channel.close and wait for close-ok; other frames are dropped.
    Closing,
    /// The client sent channel.close and got close-ok: what it pipelined
    /// behind its close (in the same read batch) is dropped, as RabbitMQ's
    /// closing channel does. Holds nothing.
    ClosedByClient,
}

/// A client settlement: basic.ack (`requeue` false), basic.nack or
/// basic.reject (`multiple` false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub tag: u64,
    pub multiple: bool,
    pub requeue: bool,
    /// basic.reject / basic.nack (not basic.ack): without requeue the
    /// messages are dead-lettered.
    pub rejected: bool,
}

#[derive(Debug, Clone)]
pub struct ChannelConsumer {
    pub queue: QueueName,
    pub owner: u16,
    pub no_ack: bool,
    /// Its own `x-consumer-timeout` (ms): wins over the one its
    /// deliveries carry (the queue's, else `--consumer-timeout`).
    pub timeout: Option<u64>,
}

/// What became of a delivery handed to a channel.
#[derive(Debug)]
pub enum Handed {
    /// Written to the write queue.
    Written,
    /// Held back under the global prefetch.
    Held,
    /// Its consumer is gone (or the channel is closing): to be bounced.
    Bounce(ToShard),
}

#[derive(Debug)]
pub struct Channel {
    pub id: u16,
    phase: Phase,
    /// The publish being received.
    publish: PublishAssembly,
    /// Delivery tags, and the deliveries not settled yet.
    tags: DeliveryTags,
    consumers: HashMap<ShortStr, ChannelConsumer>,
    /// basic.qos global=false: prefetch for consumers created from now on.
    consumer_prefetch: u32,
    /// basic.qos global=true: limit over all consumers of the channel (0 = none).
    channel_prefetch: u32,
    /// Publisher confirms, once confirm.select was seen.
    confirms: Option<Confirms>,
    /// The last queue declared on this channel (for empty queue names).
    last_queue: Option<ShortStr>,
    /// Consuming `amq.rabbitmq.reply-to` (direct reply-to), with this tag.
    reply_to_consumer: Option<ShortStr>,
    /// That consumer's unguessable reply address (see `direct_reply`).
    reply_to_address: Option<ShortStr>,
    /// Ack-mode deliveries waiting for room under the global prefetch
    /// (queue, owner shard, delivery); bounded by the owners' transit window.
    held: VecDeque<(QueueName, u16, Delivery)>,
    /// A queue.delete of this channel awaits its answer: basic.cancel
    /// notifications for the channel's consumers wait in `deferred_cancels`
    /// until delete-ok is out (RabbitMQ's order).
    deleting_queue: bool,
    deferred_cancels: Vec<ShortStr>,
    /// Transactional since tx.select: the open transaction
    /// (`connection::transaction`).
    pub tx: Option<TxBuffer>,
    /// Publish permissions decided on this channel (`handlers::access`).
    pub grants: crate::broker::auth::publish::PublishGrants,
    /// RabbitMQ's `message_stats` of the channel (`broker::stats`).
    pub stats: MessageStats,
}

impl Channel {
    pub fn new(id: u16) -> Channel {
        Channel {
            id,
            phase: Phase::Open,
            publish: PublishAssembly::default(),
            tags: DeliveryTags::default(),
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
            tx: None,
            grants: Default::default(),
            stats: MessageStats::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// What stays of a channel the client closed (see `Phase::ClosedByClient`).
    pub fn closed_by_client(id: u16) -> Channel {
        let mut ch = Channel::new(id);
        ch.phase = Phase::ClosedByClient;
        ch
    }

    /// Warren sent channel.close: from now on only close-ok counts.
    pub fn start_closing(&mut self) {
        self.phase = Phase::Closing;
    }

    // ---- publish assembly ----

    /// Every method is refused while a publish waits for its content (505,
    /// a connection error).
    pub fn check_no_content_expected(&self) -> Result<(), HardError> {
        self.publish.check_method()
    }

    /// basic.publish: its content frames follow.
    pub fn start_publish(&mut self, method: BasicPublish) -> Result<(), HardError> {
        self.publish.start(method)
    }

    /// A content header frame (dropped while the channel is closing);
    /// bodies over `max_size` are refused (406).
    pub fn on_header(
        &mut self,
        header: ContentHeader,
        max_size: u64,
    ) -> Result<Assembly, HardError> {
        if !self.is_open() {
            return Ok(Assembly::Dropped);
        }
        self.publish.on_header(header, max_size)
    }

    /// A content body frame (dropped while the channel is closing).
    pub fn on_body(&mut self, payload: Bytes) -> Result<Assembly, HardError> {
        if !self.is_open() {
            return Ok(Assembly::Dropped);
        }
        self.publish.on_body(payload)
    }

    // ---- publisher confirms ----

    /// confirm.select.
    pub fn select_confirms(&mut self) {
        self.confirms.get_or_insert_with(Confirms::new);
    }

    pub fn confirming(&self) -> bool {
        self.confirms.is_some()
    }

    /// In confirm mode, numbers a routed publish that waits for `copies`
    /// owners (0: confirmed at once); `None` otherwise.
    pub fn confirm_publish(&mut self, copies: u32) -> Option<u64> {
        self.confirms.as_mut().map(|c| c.publish(copies))
    }

    /// Owners confirmed (`ok`) or failed these publishes. False when the
    /// channel is not in confirm mode.
    pub fn confirmed(&mut self, seqs: &[u64], ok: bool) -> bool {
        match self.confirms.as_mut() {
            Some(confirms) => {
                confirms.settle(seqs, ok);
                true
            }
            None => false,
        }
    }

    /// Writes what the publisher is to be told now (see `Confirms::write`).
    pub fn write_confirms(&mut self, out: &mut Outbound) -> ConfirmCounts {
        let channel = self.id;
        match self.confirms.as_mut() {
            Some(confirms) => confirms.write(channel, out),
            None => ConfirmCounts::default(),
        }
    }

    // ---- queues and consumers ----

    /// RabbitMQ's shortcut: an empty queue name means the queue last
    /// declared on this channel. Without one the empty name stays, and the
    /// lookup fails with 404.
    pub fn resolve_queue(&self, name: ShortStr) -> ShortStr {
        if !name.is_empty() {
            return name;
        }
        self.last_queue.clone().unwrap_or(name)
    }

    /// queue.declare-ok: the name empty queue names now stand for.
    pub fn declared_queue(&mut self, name: ShortStr) {
        self.last_queue = Some(name);
    }

    /// Registers a consumer (not yet known to its queue). Returns the
    /// prefetch it gets; a tag in use is a 530.
    pub fn add_consumer(&mut self, tag: ShortStr, consumer: ChannelConsumer) -> AmqpResult<u32> {
        if self.consumers.contains_key(&tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        self.consumers.insert(tag, consumer);
        Ok(self.consumer_prefetch)
    }

    pub fn consumer(&self, tag: &ShortStr) -> Option<&ChannelConsumer> {
        self.consumers.get(tag)
    }

    pub fn remove_consumer(&mut self, tag: &ShortStr) -> Option<ChannelConsumer> {
        self.consumers.remove(tag)
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// basic.consume on `amq.rabbitmq.reply-to`: one per channel.
    pub fn set_reply_consumer(&mut self, tag: ShortStr, address: ShortStr) -> AmqpResult<()> {
        if self.reply_to_consumer.is_some() {
            return Err(AmqpError::precondition_failed("reply consumer already set"));
        }
        self.reply_to_consumer = Some(tag);
        self.reply_to_address = Some(address);
        Ok(())
    }

    /// basic.cancel: forgets the reply consumer if it has this tag.
    pub fn cancel_reply_consumer(&mut self, tag: &ShortStr) {
        if self.reply_to_consumer.as_ref() == Some(tag) {
            self.reply_to_consumer = None;
            self.reply_to_address = None;
        }
    }

    /// The channel's reply address, while it consumes the reply pseudo-queue.
    pub fn reply_to_address(&self) -> Option<&ShortStr> {
        self.reply_to_address.as_ref()
    }

    /// The reply consumer's tag, if the channel is open and `address` is
    /// its current reply address (secret included).
    pub fn reply_consumer_for(&self, address: &ShortStr) -> Option<ShortStr> {
        if !self.is_open() || self.reply_to_address.as_ref() != Some(address) {
            return None;
        }
        self.reply_to_consumer.clone()
    }

    /// A queue.delete of this channel is under way.
    pub fn begin_queue_delete(&mut self) {
        self.deleting_queue = true;
    }

    /// The queue.delete was answered: the cancel notifications held back meanwhile.
    pub fn end_queue_delete(&mut self) -> Vec<ShortStr> {
        self.deleting_queue = false;
        std::mem::take(&mut self.deferred_cancels)
    }

    /// The server cancelled consumer `tag` (its queue went away). True when
    /// the client is to be told now; a notification waits for delete-ok
    /// while a queue.delete of this channel is under way.
    pub fn server_cancelled(&mut self, tag: &ShortStr, notify: bool) -> bool {
        if self.consumers.remove(tag).is_none() || !notify {
            return false;
        }
        if self.deleting_queue {
            self.deferred_cancels.push(tag.clone());
            return false;
        }
        true
    }

    // ---- flow and prefetch ----

    /// channel.flow: RabbitMQ never stops a channel's deliveries on request.
    pub fn flow(&self, active: bool) -> AmqpResult<()> {
        if active {
            Ok(())
        } else {
            Err(AmqpError::new(code::NOT_IMPLEMENTED, "active=false"))
        }
    }

    /// basic.qos: per consumer (for consumers created from now on) or, with
    /// `global`, over the whole channel. prefetch_size is not supported.
    pub fn qos(&mut self, m: &BasicQos) -> AmqpResult<()> {
        if m.prefetch_size != 0 {
            return Err(AmqpError::new(
                code::NOT_IMPLEMENTED,
                format!("prefetch_size!=0 ({})", m.prefetch_size),
            ));
        }
        if m.global {
            self.channel_prefetch = m.prefetch_count as u32;
        } else {
            self.consumer_prefetch = m.prefetch_count as u32;
        }
        Ok(())
    }

    pub fn consumer_prefetch(&self) -> u32 {
        self.consumer_prefetch
    }

    /// Whether the channel-wide prefetch (global qos) allows one more.
    fn channel_prefetch_allows(&self) -> bool {
        // Deliveries settled in an open transaction count until the commit.
        let pending = self.tx.as_ref().map_or(0, |t| t.pending_settled());
        self.channel_prefetch == 0
            || ((self.tags.unacked() + pending) as u32) < self.channel_prefetch
    }

    // ---- deliveries ----

    /// A delivery for one of this channel's consumers (with the consumer's
    /// own timeout, if it set one): written, or held back (in order) while
    /// a global prefetch leaves no room. A delivery
    /// whose consumer is gone, or whose channel is closing, comes back to
    /// be bounced.
    pub fn deliver(
        &mut self,
        out: &mut Outbound,
        queue: QueueName,
        owner: u16,
        mut delivery: Delivery,
    ) -> Handed {
        let consumer = self.consumers.get(&delivery.consumer.tag);
        let Some(consumer) = consumer.filter(|_| self.is_open()) else {
            return Handed::Bounce(ToShard::Bounce {
                queue,
                owner,
                delivery,
            });
        };
        if consumer.timeout.is_some() {
            delivery.consumer_timeout = consumer.timeout;
        }
        if !delivery.no_ack && (!self.held.is_empty() || !self.channel_prefetch_allows()) {
            self.held.push_back((queue, owner, delivery));
            return Handed::Held;
        }
        self.write_delivery(out, queue, owner, delivery);
        Handed::Written
    }

    fn write_delivery(&mut self, out: &mut Outbound, queue: QueueName, owner: u16, d: Delivery) {
        let ack = (!d.no_ack).then(|| (queue.clone(), owner, d.msg_id));
        let tag = self.tags.next_with_timeout(ack, d.consumer_timeout);
        self.count_delivery(
            if d.no_ack {
                Stat::DeliverNoAck
            } else {
                Stat::Deliver
            },
            d.redelivered,
        );
        delivery::deliver(
            out,
            self.id,
            &d.consumer.tag,
            tag,
            d.redelivered,
            &d.message,
        );
        out.note_delivery(owner, &queue, &d.consumer);
    }

    /// After acks or a qos change: writes the held deliveries the global
    /// prefetch now allows. True when it wrote any.
    pub fn release_held(&mut self, out: &mut Outbound) -> bool {
        let mut wrote = false;
        while self.channel_prefetch_allows() {
            let Some((queue, owner, delivery)) = self.held.pop_front() else {
                break;
            };
            self.write_delivery(out, queue, owner, delivery);
            wrote = true;
        }
        wrote
    }

    /// basic.get-ok for a message `got` of `queue` (owner `owner`),
    /// recorded as unacked unless `no_ack`.
    pub fn write_get_ok(
        &mut self,
        out: &mut Outbound,
        queue: &QueueName,
        owner: u16,
        no_ack: bool,
        got: &GotMessage,
    ) {
        let ack = (!no_ack).then(|| (queue.clone(), owner, got.msg_id));
        let tag = self.tags.next_with_timeout(ack, got.consumer_timeout);
        self.count_delivery(
            if no_ack { Stat::GetNoAck } else { Stat::Get },
            got.redelivered,
        );
        delivery::write(
            out,
            self.id,
            Carrier::GetOk {
                delivery_tag: tag,
                redelivered: got.redelivered,
                message_count: got.remaining,
            },
            &got.message,
        );
    }

    fn count_delivery(&mut self, stat: Stat, redelivered: bool) {
        self.stats.add(stat, 1);
        if redelivered {
            self.stats.add(Stat::Redeliver, 1);
        }
    }

    /// A direct reply-to reply for the reply consumer `consumer_tag` (no ack).
    pub fn write_reply(&mut self, out: &mut Outbound, consumer_tag: ShortStr, message: &Message) {
        let tag = self.tags.next(None);
        delivery::write(
            out,
            self.id,
            Carrier::Deliver {
                consumer_tag,
                delivery_tag: tag,
                redelivered: false,
            },
            message,
        );
    }

    pub fn unacked_count(&self) -> usize {
        self.tags.unacked()
    }

    /// The consumer timeout (ms) its oldest unacked delivery has waited
    /// past at `now_ms`, while the channel is open (see
    /// `connection::consumer_timeout`).
    pub fn consumer_timed_out(&self, now_ms: u64) -> Option<u64> {
        self.tags.timed_out(now_ms).filter(|_| self.is_open())
    }

    // ---- settlements ----

    /// basic.ack / nack / reject: the settlement envelopes for the owners
    /// of the messages it names. An unknown tag is a 406, as RabbitMQ.
    pub fn settle(&mut self, s: Settlement) -> AmqpResult<Vec<ToShard>> {
        let entries = self.tags.take_settled(s.tag, s.multiple)?;
        let how = if s.requeue {
            Settle::Requeue
        } else if s.rejected {
            Settle::Reject
        } else {
            Settle::Remove
        };
        if how == Settle::Remove {
            self.stats.add(Stat::Ack, entries.len() as u64);
        }
        if let Some(tx) = self.tx.as_mut() {
            // Applied at tx.commit; tx.rollback makes them unacked again.
            tx.settle(entries, how);
            return Ok(Vec::new());
        }
        Ok(settle_envelopes(entries, how))
    }

    /// tx.rollback: the deliveries settled in the transaction are unacked
    /// again, its publishes dropped. False when the channel is not
    /// transactional.
    pub fn rollback_tx(&mut self) -> bool {
        let Some(tx) = self.tx.as_mut() else {
            return false;
        };
        self.tags.restore(tx.rollback());
        true
    }

    /// basic.recover (requeue only): every unacked delivery back to its queue.
    pub fn recover(&mut self, requeue: bool) -> AmqpResult<Vec<ToShard>> {
        if !requeue {
            return Err(AmqpError::new(code::NOT_IMPLEMENTED, "requeue=false"));
        }
        Ok(settle_envelopes(self.tags.take_all(), Settle::Requeue))
    }

    /// The channel goes away (closed, or its connection died): its
    /// consumers are dropped on their queues' owners, then its unacked
    /// messages requeued (in that order, over the same rings, so the
    /// requeued messages never go back to the dying consumers), and the
    /// deliveries a global prefetch held back are given back (marked
    /// redelivered, like every requeue). A publish half received is dropped.
    pub fn release(&mut self, conn: ConnKey) -> Vec<ToShard> {
        let mut queues: Vec<(u16, QueueName)> = self
            .consumers
            .drain()
            .map(|(_, c)| (c.owner, c.queue))
            .collect();
        queues.sort_unstable();
        queues.dedup();
        let mut actions: Vec<ToShard> = queues
            .into_iter()
            .map(|(owner, queue)| ToShard::Send {
                owner,
                envelope: Envelope::ChannelGone {
                    queue,
                    conn,
                    channel: self.id,
                },
            })
            .collect();
        // An uncommitted transaction's settlements never happened.
        self.rollback_tx();
        actions.extend(settle_envelopes(self.tags.take_all(), Settle::Requeue));
        actions.extend(std::mem::take(&mut self.held).into_iter().map(
            |(queue, owner, delivery)| ToShard::Bounce {
                queue,
                owner,
                delivery,
            },
        ));
        self.publish.clear();
        actions
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
