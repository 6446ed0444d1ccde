//! `ConnShared` as its shard sees it: the `ConnectionInbox` through which
//! the shard hands a connection its deliveries, confirms, server-side
//! cancels and direct replies (the shard layer names no connection type).

use crate::broker::error::AmqpError;
use crate::broker::message::MessageRef;
use crate::broker::queue::{ConsumerKey, Delivery};
use crate::connection::{
    direct_reply, flush_confirms, handshake, mark_confirm_dirty, write_delivery, ConnShared,
};
use crate::protocol::methods::BasicCancel;
use crate::protocol::types::ShortStr;
use crate::shard::envelope::{ChannelSnapshot, ConnectionSnapshot};
use crate::shard::inbox::ConnectionInbox;
use crate::shard::Shard;
use std::rc::Rc;

impl ConnectionInbox for ConnShared {
    fn deliver(&self, shard: &Rc<Shard>, queue: ShortStr, owner: u16, delivery: Delivery) {
        let mut channels = self.channels.borrow_mut();
        let ch = match channels.get_mut(&delivery.consumer.channel) {
            Some(ch) if ch.is_open() && ch.consumers.contains_key(&delivery.consumer.tag) => ch,
            _ => {
                drop(channels);
                return shard.bounce_delivery(queue, owner, delivery);
            }
        };
        // basic.qos global: the channel-wide limit holds ack-mode deliveries
        // back (in order) until acks make room.
        if !delivery.no_ack && (!ch.held.is_empty() || !ch.channel_prefetch_allows()) {
            ch.held.push_back((queue, owner, delivery));
            return;
        }
        write_delivery(self, ch, queue, owner, delivery);
        drop(channels);
        self.notify_writer();
    }

    fn confirmed(&self, shard: &Shard, channel: u16, seqs: &[u64], ok: bool) {
        {
            let mut channels = self.channels.borrow_mut();
            let Some(confirms) = channels.get_mut(&channel).and_then(|c| c.confirms.as_mut())
            else {
                return;
            };
            for &seq in seqs {
                if ok {
                    confirms.copy_done(seq);
                } else {
                    confirms.copy_failed(seq);
                }
            }
        }
        mark_confirm_dirty(self, channel);
        flush_confirms(shard, self);
    }

    /// Forgets the consumer, and tells the client with basic.cancel if it
    /// advertised `consumer_cancel_notify` (as RabbitMQ; others are not
    /// told). While a queue.delete of the same channel awaits its answer
    /// the notification waits for the delete-ok (see
    /// `send_deferred_cancels`).
    fn consumer_cancelled(&self, key: &ConsumerKey) {
        let mut channels = self.channels.borrow_mut();
        let Some(ch) = channels.get_mut(&key.channel) else {
            return;
        };
        if ch.consumers.remove(&key.tag).is_none()
            || !handshake::client_capability(
                &self.negotiated.client_properties,
                "consumer_cancel_notify",
            )
        {
            return;
        }
        if ch.deleting_queue {
            ch.deferred_cancels.push(key.tag.clone());
            return;
        }
        drop(channels);
        self.send_method(
            key.channel,
            BasicCancel {
                consumer_tag: key.tag.clone(),
                no_wait: true,
            },
        );
    }

    fn direct_reply(&self, channel: u16, message: MessageRef) {
        direct_reply::deliver(self, channel, message);
    }

    fn snapshot(&self) -> ConnectionSnapshot {
        let channels = self
            .channels
            .borrow()
            .values()
            .map(|c| ChannelSnapshot {
                id: c.id,
                consumers: c.consumers.len() as u32,
                unacked: c.unacked_count() as u32,
                prefetch: c.consumer_prefetch,
                confirm: c.confirms.is_some(),
            })
            .collect();
        ConnectionSnapshot {
            key: self.key,
            peer: self.peer.clone(),
            user: self.negotiated.user.clone(),
            channels,
        }
    }

    fn close_for_shutdown(&self, err: &AmqpError) {
        self.send_method(0, handshake::close_method(err, 0, 0));
        self.writer_done.set(true);
        self.notify_writer();
    }

    fn has_pending_output(&self) -> bool {
        !self.out.borrow().is_empty()
    }

    fn shut_socket(&self) {
        self.closing.set(true);
        // SAFETY: shutting down the connection's own descriptor wakes its reader.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}
