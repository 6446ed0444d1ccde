//! `ConnShared` as its shard sees it: the `ConnectionInbox` through which
//! the shard hands a connection its deliveries, confirms, server-side
//! cancels and direct replies (the shard layer names no connection type).

use crate::broker::error::AmqpError;
use crate::broker::message::MessageRef;
use crate::broker::queue::{ConsumerKey, Delivery};
use crate::broker::vhost::QueueName;
use crate::connection::channel::Handed;
use crate::connection::{direct_reply, handshake, ConnShared};
use crate::protocol::methods::BasicCancel;
use crate::shard::envelope::{ChannelSnapshot, ConnectionSnapshot};
use crate::shard::inbox::ConnectionInbox;
use crate::shard::Shard;
use std::rc::Rc;

impl ConnectionInbox for ConnShared {
    fn deliver(&self, shard: &Rc<Shard>, queue: QueueName, owner: u16, delivery: Delivery) {
        let mut channels = self.channels.borrow_mut();
        let Some(ch) = channels.get_mut(&delivery.consumer.channel) else {
            drop(channels);
            return shard.bounce_delivery(queue, owner, delivery);
        };
        if delivery.consumer_timeout.is_some() && !delivery.no_ack {
            self.timed_delivery.notify();
        }
        // basic.qos global: the channel-wide limit holds ack-mode deliveries
        // back (in order) until acks make room.
        match ch.deliver(&mut self.out.borrow_mut(), queue, owner, delivery) {
            Handed::Written => {
                drop(channels);
                self.notify_writer();
            }
            Handed::Held => {}
            Handed::Bounce(bounce) => {
                drop(channels);
                bounce.apply(shard);
            }
        }
    }

    fn confirmed(&self, shard: &Shard, channel: u16, seqs: &[u64], ok: bool) {
        let confirming = self
            .channels
            .borrow_mut()
            .get_mut(&channel)
            .is_some_and(|c| c.confirmed(seqs, ok));
        if !confirming {
            return;
        }
        self.mark_confirm_dirty(channel);
        self.flush_confirms(shard);
    }

    fn publish_credit(&self, owner: u16, n: u32) {
        self.credit.paid(owner, n);
    }

    /// Forgets the consumer, and tells the client with basic.cancel if it
    /// advertised `consumer_cancel_notify` (as RabbitMQ; others are not
    /// told). While a queue.delete of the same channel awaits its answer
    /// the notification waits for the delete-ok (see
    /// `send_deferred_cancels`).
    fn consumer_cancelled(&self, key: &ConsumerKey) {
        let notify = handshake::client_capability(
            &self.negotiated.client_properties,
            "consumer_cancel_notify",
        );
        let now = self
            .channels
            .borrow_mut()
            .get_mut(&key.channel)
            .is_some_and(|ch| ch.server_cancelled(&key.tag, notify));
        if now {
            self.send_method(
                key.channel,
                BasicCancel {
                    consumer_tag: key.tag.clone(),
                    no_wait: true,
                },
            );
        }
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
                consumers: c.consumer_count() as u32,
                unacked: c.unacked_count() as u32,
                prefetch: c.consumer_prefetch(),
                confirm: c.confirming(),
                message_stats: c.stats,
            })
            .collect();
        ConnectionSnapshot {
            key: self.key,
            vhost: self.negotiated.vhost,
            vhost_name: self.negotiated.vhost_name.to_string(),
            peer: self.peer.clone(),
            user: self.negotiated.user.clone(),
            tls: self.tls.clone(),
            client_properties: self.negotiated.client_properties.clone(),
            channel_max: self.negotiated.channel_max,
            frame_max: self.negotiated.frame_max,
            heartbeat: self.negotiated.heartbeat,
            recv_oct: self.recv_oct.get(),
            send_oct: self.send_oct.get(),
            channels,
        }
    }

    fn vhost(&self) -> crate::broker::vhost::VhostId {
        self.negotiated.vhost
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

    fn stop_reading(&self) {
        self.closing.set(true);
        // SAFETY: shutting down the read side of the connection's own
        // descriptor wakes its reader; the writer still flushes.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RD) };
    }
}
