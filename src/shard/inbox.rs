//! The one-way interface from a shard to the client connections it hosts.
//!
//! The shard runtime sits below the connection layer: it never names a
//! connection type. A connection registers itself with its shard as a
//! `ConnectionInbox`, and the shard hands it what arrives for it over the
//! mesh (deliveries, publish confirms, server-side cancels, direct replies)
//! through these methods, synchronously while it pumps. Each method only
//! queues frames on the connection and wakes its writer; none of them
//! calls back into the shard except to give a delivery back
//! (`Shard::bounce_delivery`).

use crate::broker::error::AmqpError;
use crate::broker::message::MessageRef;
use crate::broker::queue::{ConsumerKey, Delivery};
use crate::broker::vhost::QueueName;
use crate::shard::envelope::ConnectionSnapshot;
use crate::shard::Shard;
use std::rc::Rc;

pub trait ConnectionInbox {
    /// A delivery from queue `queue` (owned by shard `owner`) for one of
    /// this connection's consumers. A delivery whose consumer or channel is
    /// gone goes back with `Shard::bounce_delivery`.
    fn deliver(&self, shard: &Rc<Shard>, queue: QueueName, owner: u16, delivery: Delivery);

    /// Owners confirmed (`ok`: enqueued, and on disk where durable) or
    /// failed these publishes of one channel.
    fn confirmed(&self, shard: &Shard, channel: u16, seqs: &[u64], ok: bool);

    /// `owner` paid back `n` flow credits of this connection's publishes
    /// (`shard::flow`).
    fn publish_credit(&self, owner: u16, n: u32);

    /// The server cancelled one of this connection's consumers (its queue
    /// went away).
    fn consumer_cancelled(&self, key: &ConsumerKey);

    /// A reply sent to one of this connection's `amq.rabbitmq.reply-to`
    /// addresses (checked by the connection against the channel's secret).
    fn direct_reply(&self, channel: u16, message: MessageRef);

    /// The vhost the connection opened.
    fn vhost(&self) -> crate::broker::vhost::VhostId;

    /// What `warren ctl` lists about the connection.
    fn snapshot(&self) -> ConnectionSnapshot;

    /// Broker shutdown or its vhost deleted: queue a connection.close with
    /// `err` and let the writer finish once it is sent.
    fn close_for_shutdown(&self, err: &AmqpError);

    /// Whether bytes are still queued for the socket.
    fn has_pending_output(&self) -> bool;

    /// Shuts the socket down, which ends the connection's tasks.
    fn shut_socket(&self);

    /// Shuts the socket's read side: the connection ends as if the client
    /// had gone, after its writer sent what is queued (a connection.close).
    fn stop_reading(&self);
}
