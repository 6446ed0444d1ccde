//! What shards say to each other over the mesh: message-path traffic
//! (enqueue, deliver, settle, credit), request/reply pairs for operations that
//! need another shard's answer, and metadata changes the leader replicates.
//! Every variant is `Send`; bodies travel as `Arc<Message>` (no copy).

use crate::broker::error::AmqpError;
use crate::broker::exchange::{BindingDef, Destination, ExchangeDef};
use crate::broker::message::MessageRef;
use crate::broker::queue::{ConsumerKey, ConsumerSpec, Delivery, GetterKey, QueueConfig, Settle};
use crate::broker::vhost::{QueueName, QueueNames, VhostId, VhostLimits};
use crate::protocol::types::{FieldTable, ShortStr};
use std::sync::Arc;

/// A connection anywhere in the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub shard: u16,
    pub id: u64,
}

/// Which publish a durable copy belongs to (publisher confirms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfirmTicket {
    pub shard: u16,
    pub conn: u64,
    pub channel: u16,
    pub seq: u64,
}

/// A queue as every shard knows it (replicated by the leader).
#[derive(Clone, Debug)]
pub struct QueueMeta {
    pub name: QueueName,
    pub owner: u16,
    pub config: QueueConfig,
    /// The connection that declared an exclusive queue.
    pub exclusive_to: Option<ConnKey>,
}

/// One unit of inter-shard traffic. Shards exchange `Vec<Envelope>` batches.
#[derive(Debug)]
pub enum Envelope {
    /// A routed publish, to the owner of `queues` (one envelope per owner,
    /// so a fan-out stores its body once per shard). `confirm` asks the
    /// owner to confirm once the durable copies are on disk. `publisher`:
    /// the client connection that published it, owed one flow credit
    /// (`shard::flow`); None for the broker's own publishes.
    Enqueue {
        queues: QueueNames,
        message: MessageRef,
        confirm: Option<ConfirmTicket>,
        publisher: Option<ConnKey>,
    },
    /// Flow credit an owner pays back to a publishing connection of the
    /// receiving shard (`shard::flow`): `n` of its publishes to `owner`.
    PublishCredit {
        conn: u64,
        owner: u16,
        n: u32,
    },
    /// The durable copies of these publishes are on disk, to the publisher's shard.
    Confirmed {
        conn: u64,
        channel: u16,
        seqs: Vec<u64>,
        /// false: the owner could not keep the copies (nack them).
        ok: bool,
    },
    /// Deliveries settled on the consumer's channel, to the queue's owner.
    Settle {
        queue: QueueName,
        msg_ids: Vec<u64>,
        how: Settle,
    },
    /// `n` deliveries to `consumer` were written to its socket.
    Credit {
        queue: QueueName,
        consumer: ConsumerKey,
        n: u32,
    },
    /// A message for a consumer, to the consumer's shard.
    Deliver {
        queue: QueueName,
        owner: u16,
        delivery: Delivery,
    },
    /// A reply published to `amq.rabbitmq.reply-to.*`, straight to the
    /// requesting channel (direct reply-to), on the requester's shard.
    DirectReply {
        conn: u64,
        channel: u16,
        message: MessageRef,
    },
    /// The server cancelled a consumer (its queue went away): the consumer's
    /// channel sends basic.cancel to the client.
    ConsumerCancelled {
        consumer: ConsumerKey,
    },
    /// A channel went away: drop its consumers on this queue's owner.
    ChannelGone {
        queue: QueueName,
        conn: ConnKey,
        channel: u16,
    },
    Request {
        from: u16,
        token: u64,
        request: Request,
    },
    Reply {
        token: u64,
        reply: Reply,
    },
    /// A metadata change every shard applies; `ack` asks for a `MetaAck` to
    /// the leader's request `token`.
    Meta {
        change: MetaChange,
        token: u64,
    },
    MetaAck {
        token: u64,
    },
}

/// Operations that need an answer from another shard.
#[derive(Debug)]
pub enum Request {
    // ---- to the metadata leader (shard 0) ----
    DeclareQueue {
        name: QueueName,
        config: QueueConfig,
        owner: u16,
        conn: ConnKey,
    },
    DeleteQueue {
        name: QueueName,
        if_unused: bool,
        if_empty: bool,
        conn: Option<ConnKey>,
    },
    /// An owner auto-deleted a queue: remove it everywhere.
    ForgetQueue {
        name: QueueName,
    },
    DeclareExchange {
        vhost: VhostId,
        name: ShortStr,
        kind: ShortStr,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    },
    DeleteExchange {
        vhost: VhostId,
        name: ShortStr,
        if_unused: bool,
    },
    Bind {
        vhost: VhostId,
        source: ShortStr,
        destination: Destination,
        routing_key: ShortStr,
        arguments: FieldTable,
        conn: ConnKey,
    },
    Unbind {
        vhost: VhostId,
        source: ShortStr,
        destination: Destination,
        routing_key: ShortStr,
        arguments: FieldTable,
        conn: ConnKey,
    },
    /// Admin: `set_policy` (validated by the leader).
    SetPolicy {
        vhost: VhostId,
        def: crate::storage::definitions::PolicyDef,
    },
    /// Admin: `clear_policy`.
    ClearPolicy {
        vhost: VhostId,
        name: String,
    },
    /// Admin: `add_vhost`.
    AddVhost {
        name: ShortStr,
    },
    /// Admin: `delete_vhost` (its queues, exchanges, bindings, policies
    /// and connections go with it).
    DeleteVhost {
        name: ShortStr,
    },
    /// Admin: `set_vhost_limits` / `clear_vhost_limits`.
    SetVhostLimits {
        name: ShortStr,
        limits: VhostLimits,
    },
    /// Admin: a user or permission command (`shard::users`).
    Auth(crate::broker::auth::AuthRequest),
    /// The management API closes connection `id` of the shard it goes to
    /// with 320 CONNECTION_FORCED and `reason` (`Reply::Done`; 404 when
    /// the shard has no such connection).
    CloseConnection {
        id: u64,
        reason: String,
    },
    // ---- to a queue's owner ----
    QueueStats {
        name: QueueName,
    },
    Purge {
        name: QueueName,
    },
    /// Drop the queue's state (checks if-unused / if-empty first).
    DropQueue {
        name: QueueName,
        if_unused: bool,
        if_empty: bool,
    },
    Get {
        name: QueueName,
        no_ack: bool,
        /// The channel getting (its gets in ack mode are held to a share
        /// of the memory budget, `Queue::get_for`); None: the management
        /// API, which settles what it took before it answers.
        getter: Option<GetterKey>,
    },
    Consume {
        name: QueueName,
        spec: ConsumerSpec,
    },
    /// Start dispatching to a consumer once its consume-ok is on the wire.
    Activate {
        name: QueueName,
        key: ConsumerKey,
    },
    Cancel {
        name: QueueName,
        key: ConsumerKey,
    },
    /// Admin: the shard's view (queues it owns, connections it serves).
    Snapshot,
    /// The management API's paged queue listing (`shard::listing`).
    PickQueues(PickRequest),
    /// Admin (`warren ctl close_connection`): close this shard's
    /// connections named `name` with 320 and `reason` (`shard::close`).
    CloseConnectionsNamed {
        name: String,
        reason: String,
    },
    /// tx.commit: one channel's transaction, the part for this owner, in
    /// the order it was issued (publishes, then settlements). Answered
    /// `Done` once all of it is applied and its durable copies are on disk
    /// (see `shard::transaction`).
    TxCommit {
        ops: Vec<TxOp>,
    },
}

/// One step of a committed transaction on a queue owner.
#[derive(Debug)]
pub enum TxOp {
    /// A publish's copies for queues of this owner (routed at publish time).
    Enqueue {
        queues: QueueNames,
        message: MessageRef,
    },
    /// An ack / nack / reject of deliveries of one queue.
    Settle {
        queue: QueueName,
        msg_ids: Vec<u64>,
        how: Settle,
    },
}

#[derive(Debug)]
pub enum Reply {
    Done(Result<(), AmqpError>),
    Stats(Result<QueueStats, AmqpError>),
    Count(Result<u32, AmqpError>),
    Got(Result<Option<GotMessage>, AmqpError>),
    Snapshot(Box<ShardSnapshot>),
    Picked(Box<Picked>),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct QueueStats {
    pub messages: u32,
    pub unacked: u32,
    pub consumers: u32,
}

/// A basic.get answer.
#[derive(Debug)]
pub struct GotMessage {
    pub msg_id: u64,
    pub redelivered: bool,
    pub message: MessageRef,
    /// Ready messages left after this one.
    pub remaining: u32,
    /// Its consumer timeout in ack mode (ms; see `Delivery::consumer_timeout`).
    pub consumer_timeout: Option<u64>,
}

/// Changes the leader replicates to every shard, in order.
#[derive(Clone, Debug)]
pub enum MetaChange {
    /// Shared by every shard's catalog (`metadata::QueueCatalog`).
    QueueCreated(std::sync::Arc<QueueMeta>),
    QueueDeleted(QueueName),
    ExchangeDeclared(VhostId, ExchangeDef),
    ExchangeDeleted(VhostId, ShortStr),
    Bound(VhostId, BindingDef),
    Unbound(VhostId, BindingDef),
    /// A policy was set (validated by the leader; each shard compiles it).
    PolicySet(VhostId, crate::storage::definitions::PolicyDef),
    PolicyCleared(VhostId, String),
    /// A vhost was added, with the id the leader gave it.
    VhostAdded(VhostId, ShortStr),
    /// A vhost is gone (its queues were deleted before, one by one; the
    /// permissions on it go with it).
    VhostDeleted(VhostId, ShortStr),
    VhostLimitsSet(VhostId, VhostLimits),
    /// A user or permission changed (validated by the leader).
    Auth(crate::broker::auth::AuthChange),
}

/// One shard's state for the admin listings.
#[derive(Debug, Default)]
pub struct ShardSnapshot {
    pub shard: u16,
    pub queues: Vec<QueueSnapshot>,
    pub connections: Vec<ConnectionSnapshot>,
    pub counters: crate::shard::counters::CountersSnapshot,
    /// Delayed messages this shard holds, per exchange of a vhost
    /// (`shard::delayed`).
    pub delayed: Vec<(VhostId, ShortStr, u64)>,
    /// Management statistics of the shard (`shard::stats`).
    pub stats: crate::shard::stats::StatsSnapshot,
}

#[derive(Debug)]
pub struct QueueSnapshot {
    pub name: QueueName,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub messages: u32,
    /// Ready messages held in memory (the rest are paged out to the log).
    pub messages_ram: u64,
    pub messages_paged_out: u64,
    /// RabbitMQ's queue state: `running`, or `crashed` once a page-in
    /// failed for good (see `shard::paging`).
    pub state: &'static str,
    /// Body bytes of the ready messages (RabbitMQ's `message_bytes_ready`).
    pub message_bytes_ready: u64,
    /// Body bytes of the delivered, unsettled messages
    /// (`message_bytes_unacknowledged`).
    pub message_bytes_unacknowledged: u64,
    /// The memory the queue's messages hold by Warren's accounting: the
    /// ready ones in memory as charged against the budget, and the unacked
    /// ones at the same cost (`Queue::unacked_bytes`).
    pub memory: u64,
    pub unacked: u32,
    pub consumers: Vec<(ConsumerKey, bool, u32, u32)>,
    /// On a single-active-consumer queue, the consumer that is active.
    pub single_active_consumer: Option<ConsumerKey>,
    /// The name of the policy applied ("" when none).
    pub policy: String,
    /// RabbitMQ's `message_stats` of the queue.
    pub message_stats: crate::broker::stats::MessageStats,
    /// Seconds since the oldest ready / oldest unacked message was
    /// enqueued (`Queue::ages`); None when there is none.
    pub oldest_ready_age_seconds: Option<f64>,
    pub oldest_unacked_age_seconds: Option<f64>,
    /// RabbitMQ's `consumer_utilisation` (None without consumers).
    pub consumer_utilisation: Option<f64>,
}

#[derive(Debug)]
pub struct ConnectionSnapshot {
    pub key: ConnKey,
    pub vhost: VhostId,
    pub vhost_name: String,
    pub peer: String,
    pub user: String,
    /// The TLS session, on the amqps port (None: plain AMQP).
    pub tls: Option<TlsInfo>,
    /// What the client said of itself at connection.start-ok
    /// (`client_properties`; its `connection_name` is RabbitMQ's
    /// `user_provided_name`).
    pub client_properties: Arc<FieldTable>,
    /// What tune settled: `channel_max`, `frame_max`, and the heartbeat in
    /// seconds (RabbitMQ's `timeout`).
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    /// Octets read from / written to the client (`recv_oct` / `send_oct`).
    pub recv_oct: u64,
    pub send_oct: u64,
    pub channels: Vec<ChannelSnapshot>,
}

/// A TLS connection's session as RabbitMQ lists it (`ssl_protocol`,
/// `ssl_cipher`, `peer_cert_subject`).
#[derive(Clone, Debug)]
pub struct TlsInfo {
    /// `tlsv1.2` / `tlsv1.3`.
    pub protocol: String,
    /// The bulk cipher, as Erlang's ssl names it (`aes_128_gcm`…).
    pub cipher: String,
    /// The client certificate's subject, when it presented one.
    pub peer_cert_subject: Option<String>,
}

#[derive(Debug)]
pub struct ChannelSnapshot {
    pub id: u16,
    pub consumers: u32,
    pub unacked: u32,
    pub prefetch: u32,
    pub confirm: bool,
    /// RabbitMQ's `message_stats` of the channel.
    pub message_stats: crate::broker::stats::MessageStats,
}

/// What a paged listing wants of each shard's queues.
pub trait QueuePick: Send + Sync + std::fmt::Debug {
    /// Whether the listing shows the queues of vhost `vhost` at all
    /// (they count in `total_count`).
    fn shows(&self, vhost: &str) -> bool;
    /// Whether a shown queue passes the name filter (`filtered_count`).
    fn keeps(&self, name: &str) -> bool;
    /// Whether `a` comes before `b` in the listing (a total order).
    fn order(&self, a: SortKey<'_>, b: SortKey<'_>) -> std::cmp::Ordering;
    /// Whether the order reads a sort key (`key`); if not, queues are
    /// ordered by vhost and name alone and only the picked ones are read.
    fn sorts(&self) -> bool;
    /// The sort key of a queue (None when the listing has no sort field).
    fn key(&self, vhost: &str, q: &QueueSnapshot) -> Option<serde_json::Value>;
}

/// What a listing orders a queue by.
#[derive(Clone, Copy, Debug)]
pub struct SortKey<'a> {
    pub key: Option<&'a serde_json::Value>,
    pub vhost: &'a str,
    pub name: &'a str,
}

impl PickedQueue {
    pub fn sort_key(&self) -> SortKey<'_> {
        SortKey {
            key: self.key.as_ref(),
            vhost: &self.vhost,
            name: self.queue.name.as_str(),
        }
    }
}

/// One queue a shard picked, with what the listing orders it by.
#[derive(Debug)]
pub struct PickedQueue {
    pub key: Option<serde_json::Value>,
    pub vhost: std::sync::Arc<str>,
    pub queue: QueueSnapshot,
    /// Its declared arguments (filled in once it is among the first
    /// `limit`).
    pub arguments: FieldTable,
}

/// A shard's answer to ``Request::PickQueues``.
#[derive(Debug, Default)]
pub struct Picked {
    /// Queues of the vhosts the listing shows.
    pub total: usize,
    /// Of those, the ones the filter keeps.
    pub filtered: usize,
    /// The first `limit` kept ones in the listing's order.
    pub queues: Vec<PickedQueue>,
    /// When asked: every queue's `message_stats` that counted anything
    /// (all vhosts; for the rates' samples).
    pub stats: Vec<(QueueName, crate::broker::stats::MessageStats)>,
}

/// The request's parameters (``Request::PickQueues``).
#[derive(Clone, Debug)]
pub struct PickRequest {
    pub pick: std::sync::Arc<dyn QueuePick>,
    /// How many of the kept queues come back, at most.
    pub limit: usize,
    /// Whether `Picked::stats` is wanted.
    pub stats: bool,
}
