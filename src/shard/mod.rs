//! The shard runtime: one glommio executor per core, each owning a shard of
//! the queues, the connections the kernel handed to it, and a replica of the
//! metadata (exchanges, bindings, the queue catalog).
//!
//! Everything a shard does to its state happens synchronously in
//! `Shard::handle` or in a connection's reader; the only awaits are on
//! sockets, on the rings, and on replies to cross-shard requests.
//! `Shard::pump` runs the local outbox and flushes remote ones in batches.

pub mod alarms;
pub mod close;
pub mod confirm;
pub mod connection_slots;
pub mod counters;
pub mod dead_letter;
pub mod definitions;
pub mod delayed;
pub mod durability;
pub mod envelope;
pub mod expiry;
pub mod flow;
pub mod inbox;
pub mod leader;
pub mod limits;
pub mod listing;
pub mod mesh;
pub mod metadata;
pub mod oneshot;
pub mod owner;
pub mod paging;
pub mod policies;
pub mod preempt_guard;
pub mod replay;
pub mod replica;
pub mod slices;
pub mod stats;
pub mod ticker;
pub mod transaction;
pub mod ttl;
pub mod users;
pub mod vhosts;
pub mod watchdog;

use crate::broker::queue::{Delivery, Queue, Settle};
use crate::broker::vhost::QueueName;
use crate::storage::Lsn;
use confirm::{ConfirmOutcome, SyncWaiters};
use counters::Counters;
use envelope::{ConfirmTicket, ConnKey, Envelope, Reply, Request};
use inbox::ConnectionInbox;
use mesh::Mesh;
use metadata::{Metadata, QueueKey};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The shard that orders metadata changes (see `leader`).
pub const LEADER: u16 = 0;

/// The hash map of the message path: aHash instead of SipHash (keys are
/// queue names and connection ids; no untrusted-key DoS concern beyond
/// what aHash's random keys already cover).
pub type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// The broker's settings every shard reads.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The node's name (`--node-name`, RabbitMQ's `RABBITMQ_NODENAME`) as
    /// the management API and the metrics show it.
    pub node_name: String,
    pub bind: String,
    pub port: u16,
    pub data_dir: std::path::PathBuf,
    pub shards: usize,
    pub limits: alarms::Limits,
    /// The management server's port (`crate::management`; 0: any free
    /// port; None: off), which also carries `warren ctl`'s requests.
    pub management_port: Option<u16>,
    /// The address the management server listens on.
    pub management_bind: String,
    /// Memory for messages held in memory (ready, and delivered but
    /// unacked), all shards together; beyond it queues page new messages
    /// out to the log, and consumers holding their share of it unacked get
    /// no more until they ack.
    pub memory_budget: u64,
    /// Users who may log in only from a loopback address (RabbitMQ's
    /// `loopback_users`; default `guest`).
    pub loopback_users: Vec<String>,
    /// What the broker logs: a level or a `RUST_LOG`-style filter
    /// (`--log-level`); applied once by `main` (see `crate::logging`).
    pub log_filter: String,
    /// The user a first start creates (RabbitMQ's default user, guest /
    /// guest unless `--default-user` / `--default-pass`): name and
    /// password hash, hashed once for every shard.
    pub default_user: (String, String),
    /// Recent login failures per address, shared by every shard
    /// (`broker::auth::failures`).
    pub auth_failures:
        std::sync::Arc<std::sync::Mutex<crate::broker::auth::failures::FailureTable>>,
    /// The amqps listener (`--tls-*`); None: no TLS port, as RabbitMQ
    /// unless configured.
    pub tls: Option<TlsOptions>,
    /// The largest message body a publisher may send (`--max-message-size`,
    /// RabbitMQ's `max_message_size`); larger ones are refused with 406.
    pub max_message_size: u64,
    /// `--consumer-timeout` (RabbitMQ's `consumer_timeout`, ms): the timeout
    /// of deliveries whose queue sets none; None: off.
    pub consumer_timeout: Option<u64>,
    /// `--max-connections` (RabbitMQ's `connection_max`): client
    /// connections open at once on the node; None: no limit.
    pub max_connections: Option<u32>,
    /// `--consumer-max-per-channel` (RabbitMQ's `consumer_max_per_channel`);
    /// None: no limit.
    pub consumer_max_per_channel: Option<u32>,
}

/// The amqps listener's settings, as given on the command line (the files
/// are read by `connection::tls_config`, at start and on `reload_tls`).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsOptions {
    /// 0 picks a free port; default 5671.
    pub port: u16,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// CA certificates that client certificates must chain to.
    pub ca: Option<std::path::PathBuf>,
    /// Ask for a client certificate and verify it against `ca`.
    pub verify_peer: bool,
    /// With `verify_peer`: refuse clients that present none.
    pub fail_if_no_peer_cert: bool,
    /// How long a TLS handshake may take (RabbitMQ's `ssl_handshake_timeout`).
    pub handshake_timeout: std::time::Duration,
    /// TLS handshakes in progress at once, all shards together; more are
    /// dropped at once.
    pub max_handshakes: usize,
}

/// A queue keeps this much in memory even while its shard is over its
/// budget, so a queue with a small backlog and a live consumer never
/// round-trips through the disk because another queue is large.
pub const QUEUE_MEMORY_FLOOR: u64 = 128 << 10;

/// One shard: all state of one core.
pub struct Shard {
    pub id: u16,
    pub count: u16,
    pub settings: Settings,
    pub mesh: Rc<Mesh>,
    /// Replica of the metadata (on shard 0 also the authoritative copy).
    pub meta: RefCell<Metadata>,
    /// The queues this shard owns, keyed by their catalog entries
    /// (`metadata::QueueKey`: looked up by `&QueueName`).
    /// Boxed: the map keeps spare capacity, and an idle queue's slot
    /// should cost two pointers, not the whole queue.
    pub queues: RefCell<FastMap<QueueKey, Box<Queue>>>,
    /// Queues that may have deliveries to make.
    dirty: RefCell<Vec<QueueName>>,
    /// The client connections this shard hosts, by connection id.
    pub conns: RefCell<FastMap<u64, Rc<dyn ConnectionInbox>>>,
    next_conn_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, oneshot::Sender<Reply>>>,
    next_token: Cell<u64>,
    /// Only on the leader (shard 0): serialises metadata changes.
    pub leader: Option<leader::LeaderState>,
    pub counters: Counters,
    /// Management statistics no queue or channel owns (`stats`).
    pub stats: stats::ShardStats,
    pub shutting_down: Cell<bool>,
    /// Publishes whose durable copies on this shard wait for the fsync
    /// covering their records' end (see `confirm::ConfirmOutcome`).
    awaiting_fsync: RefCell<Vec<(Lsn, ConfirmTicket)>>,
    /// Reused by every publish routed on this shard (queue names).
    pub route_scratch: RefCell<Vec<crate::protocol::types::ShortStr>>,
    /// Publishes confirmed by the next pump.
    confirm_ready: RefCell<Vec<ConfirmTicket>>,
    /// This shard's log (persistent messages of the durable queues it owns).
    pub log: Option<crate::storage::Log>,
    /// Memory and disk alarms (read-only here; set by the monitor thread).
    pub alarms: std::sync::Arc<alarms::Alarms>,
    /// `memory_bytes` of every queue of this shard (ready messages in
    /// memory and unacked ones), summed.
    resident: Cell<u64>,
    /// The last (segment, live references) compaction looked at and left.
    pub compaction_checked: Cell<Option<(u32, u64)>>,
    /// Delayed messages published on this shard (`delayed`).
    pub delayed: delayed::Scheduler,
    /// Message TTL: the expiry schedule and its one timer.
    pub ttl: ttl::Timer,
    /// Dead-lettered messages waiting for their copies' owners.
    pub dead_letters: dead_letter::Pending,
    /// Connections open per vhost, counted for the whole broker (shared by
    /// every shard): `max-connections`.
    pub connection_slots: std::sync::Arc<connection_slots::ConnectionSlots>,
    /// The stalled-executor watchdog (its firings go into the snapshot);
    /// set by the server once the shard is built.
    pub watchdog: RefCell<Option<std::sync::Arc<watchdog::Watchdog>>>,
    /// The tickers' pace: told of work by `pump` and `handle_batch`.
    pub ticker: Rc<ticker::Ticker>,
    /// Publish flow control: the credit this shard's queues owe publishers.
    pub flow: flow::Flow,
    /// Small waiting messages still slices of their read buffers, and the
    /// sweep that copies them out (`slices`).
    pub slices: slices::SliceSweep,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u16,
        settings: Settings,
        mesh: Rc<Mesh>,
        meta: Metadata,
        log: Option<crate::storage::Log>,
        alarms: std::sync::Arc<alarms::Alarms>,
        connection_slots: std::sync::Arc<connection_slots::ConnectionSlots>,
        ticker: Rc<ticker::Ticker>,
    ) -> Shard {
        let count = settings.shards as u16;
        assert!(id < count);
        Shard {
            id,
            count,
            settings,
            mesh,
            meta: RefCell::new(meta),
            queues: RefCell::new(FastMap::default()),
            dirty: RefCell::new(Vec::new()),
            conns: RefCell::new(FastMap::default()),
            next_conn_id: Cell::new(1),
            waiters: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            leader: (id == LEADER).then(leader::LeaderState::new),
            counters: Counters::default(),
            stats: stats::ShardStats::default(),
            shutting_down: Cell::new(false),
            awaiting_fsync: RefCell::new(Vec::new()),
            route_scratch: RefCell::new(Vec::new()),
            confirm_ready: RefCell::new(Vec::new()),
            log,
            alarms,
            resident: Cell::new(0),
            compaction_checked: Cell::new(None),
            delayed: delayed::Scheduler::default(),
            ttl: ttl::Timer::default(),
            dead_letters: dead_letter::Pending::default(),
            connection_slots,
            watchdog: RefCell::new(None),
            ticker,
            flow: flow::Flow::default(),
            slices: slices::SliceSweep::default(),
        }
    }

    /// This shard's share of the memory budget.
    pub fn memory_budget(&self) -> u64 {
        self.settings.memory_budget / self.count as u64
    }

    /// Memory charged for the messages this shard's queues hold in memory:
    /// ready and delivered but unacked.
    pub fn resident_bytes(&self) -> u64 {
        self.resident.get()
    }

    /// How much a queue may hold in memory before it pages new messages
    /// out: the shard's whole budget while the shard is under it, else
    /// only `QUEUE_MEMORY_FLOOR`.
    pub fn queue_memory_limit(&self) -> u64 {
        let budget = self.memory_budget();
        if self.resident.get() < budget {
            budget
        } else {
            QUEUE_MEMORY_FLOOR.min(budget)
        }
    }

    /// How much a queue holding `own` bytes in memory may hold in all
    /// (what its consumers' unacked messages may take, `Queue::
    /// set_memory_limit`): the budget less what the shard's other queues
    /// hold, and never less than `QUEUE_MEMORY_FLOOR`, so every queue's
    /// consumers make progress.
    pub fn queue_memory_room(&self, own: u64) -> u64 {
        let budget = self.memory_budget();
        let others = self.resident.get().saturating_sub(own);
        budget
            .saturating_sub(others)
            .max(QUEUE_MEMORY_FLOOR.min(budget))
    }

    /// Runs `f` on one of this shard's queues, keeping the resident total
    /// in step with what `f` did to the queue's.
    pub fn tracked<R>(&self, q: &mut Queue, f: impl FnOnce(&mut Queue) -> R) -> R {
        let before = q.memory_bytes();
        let r = f(q);
        self.resident_changed(before, q.memory_bytes());
        r
    }

    /// A queue's resident bytes went from `before` to `after`.
    pub fn resident_changed(&self, before: u64, after: u64) {
        let total = self.resident.get();
        debug_assert!(total >= before, "resident total below a queue's share");
        self.resident.set((total + after).saturating_sub(before));
    }

    /// A queue left the shard: its resident bytes leave the total.
    pub fn untrack(&self, q: &Queue) {
        self.resident_changed(q.memory_bytes(), 0);
    }

    /// One of the connections this shard hosts.
    pub fn connection(&self, id: u64) -> Option<Rc<dyn ConnectionInbox>> {
        self.conns.borrow().get(&id).cloned()
    }

    /// A delivery that found no live consumer goes back to its queue: the
    /// message (unless it was no-ack) and the consumer's credit.
    pub fn bounce_delivery(&self, queue: QueueName, owner: u16, delivery: Delivery) {
        if !delivery.no_ack {
            self.send(
                owner,
                Envelope::Settle {
                    queue: queue.clone(),
                    msg_ids: vec![delivery.msg_id],
                    how: Settle::Requeue,
                },
            );
        }
        self.send(
            owner,
            Envelope::Credit {
                queue,
                consumer: delivery.consumer,
                n: 1,
            },
        );
    }

    pub fn new_conn_key(&self) -> ConnKey {
        let id = self.next_conn_id.get();
        self.next_conn_id.set(id + 1);
        ConnKey { shard: self.id, id }
    }

    /// The shard that owns a queue of this vhost and name (without an
    /// explicit pin).
    pub fn owner_by_hash(&self, vhost: &str, name: &str) -> u16 {
        owner_of(vhost, name, self.count)
    }

    /// Queues an envelope (for this shard or another); sent at the next pump.
    pub fn send(&self, dest: u16, envelope: Envelope) {
        debug_assert!(dest < self.count);
        self.mesh.push(dest, envelope);
    }

    /// Sends a request and returns the future of its reply. Pumps, so local
    /// requests are answered before this returns. Never call while holding a
    /// borrow of shard or connection state.
    pub fn request(self: &Rc<Self>, dest: u16, request: Request) -> oneshot::ReplyFuture<Reply> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().insert(token, tx);
        self.send(
            dest,
            Envelope::Request {
                from: self.id,
                token,
                request,
            },
        );
        self.pump();
        rx
    }

    /// Answers a request (token 0 means nobody waits).
    pub fn reply(&self, to: u16, token: u64, reply: Reply) {
        if token != 0 {
            self.send(to, Envelope::Reply { token, reply });
        }
    }

    /// Answers a publish as its owner's `ConfirmOutcome` says: the only
    /// way a publish of this shard's queues gets confirmed or failed.
    pub fn settle_confirm(&self, ticket: ConfirmTicket, outcome: ConfirmOutcome) {
        match outcome {
            ConfirmOutcome::Now => self.confirm_ready.borrow_mut().push(ticket),
            ConfirmOutcome::AfterSync(lsn) => {
                self.awaiting_fsync.borrow_mut().push((lsn, ticket));
            }
            ConfirmOutcome::Failed(reason) => {
                if reason == limits::REJECTED {
                    tracing::debug!(shard = self.id, "publish nacked: {reason}");
                } else {
                    tracing::error!(shard = self.id, "publish nacked: {reason}");
                }
                self.nack_now(ticket);
            }
        }
    }

    /// Fails a publish whose copies on this shard could not be kept (the
    /// log refused them): its publisher gets a basic.nack.
    pub fn nack_now(&self, ticket: ConfirmTicket) {
        self.release_confirms(vec![ticket], false);
    }

    /// Sends confirmations (`ok`) or failures to the publishers' shards,
    /// one envelope per channel.
    fn release_confirms(&self, mut tickets: Vec<ConfirmTicket>, ok: bool) {
        tickets.sort_unstable_by_key(|t| (t.shard, t.conn, t.channel, t.seq));
        let mut i = 0;
        while i < tickets.len() {
            let t = tickets[i];
            let mut seqs = Vec::new();
            while i < tickets.len()
                && (tickets[i].shard, tickets[i].conn, tickets[i].channel)
                    == (t.shard, t.conn, t.channel)
            {
                seqs.push(tickets[i].seq);
                i += 1;
            }
            self.send(
                t.shard,
                Envelope::Confirmed {
                    conn: t.conn,
                    channel: t.channel,
                    seqs,
                    ok,
                },
            );
        }
    }

    /// Releases each waiting publish once a completed fsync covers the LSN
    /// it waits for (group commit: one fsync serves every waiter it
    /// covers); nacks the rest if the log fails first.
    fn confirm_after_fsync(self: &Rc<Self>, waiting: Vec<(Lsn, ConfirmTicket)>) {
        // Only a log append yields an LSN (`ConfirmOutcome::AfterSync`):
        // a shard without a log never has a publish waiting for one.
        let log = self
            .log
            .as_ref()
            .expect("a publish waits for an fsync on a shard without a log");
        let mut waiters = SyncWaiters::new(waiting);
        let first = waiters.first().expect("at least one waiter");
        let synced = log.sync(first);
        let shard = self.clone();
        glommio::spawn_local(async move {
            let mut synced = Some(synced);
            loop {
                let result = match synced.take() {
                    Some(f) => f.await,
                    None => match waiters.first() {
                        Some(lsn) => shard.log.as_ref().expect("checked").sync(lsn).await,
                        None => break,
                    },
                };
                match result {
                    Ok(()) => {
                        let durable = shard.log.as_ref().expect("checked").durable_lsn();
                        let done = waiters.covered(durable);
                        debug_assert!(!done.is_empty(), "a completed sync covers its lsn");
                        shard.release_confirms(done, true);
                        shard.pump();
                    }
                    Err(e) => {
                        let failed = waiters.all();
                        tracing::error!(
                            shard = shard.id,
                            "log sync failed, {} publishes nacked: {e}",
                            failed.len()
                        );
                        shard.release_confirms(failed, false);
                        shard.pump();
                        break;
                    }
                }
            }
        })
        .detach();
    }

    /// Waits while this shard's log has more unsynced bytes than its limit
    /// (publishers that do not wait for confirms must not outrun the disk).
    /// Readers of this shard and ring receivers from other shards call it,
    /// so a full ring pushes back on remote publishers too.
    pub async fn wait_for_log_space(&self) {
        if let Some(log) = &self.log {
            log.wait_for_space().await;
        }
    }

    /// Appends a log record of queues in `vhost`: as it is for `/`, else
    /// inside an `InVhost` record naming the vhost.
    pub fn append_in(
        &self,
        log: &crate::storage::Log,
        vhost: crate::broker::vhost::VhostId,
        record: crate::storage::RecordRef<'_>,
    ) -> Result<crate::storage::RecordPos, crate::storage::log::AppendError> {
        if vhost == crate::broker::vhost::VhostId::DEFAULT {
            return log.append(record);
        }
        let name = self.meta.borrow().vhost_name(vhost);
        log.append(crate::storage::RecordRef::InVhost {
            vhost: &name,
            inner: &record,
        })
    }

    pub fn mark_dirty(&self, queue: &QueueName) {
        let mut dirty = self.dirty.borrow_mut();
        // Batches mostly touch one queue over and over: skip the repeat.
        if dirty.last() != Some(queue) {
            dirty.push(queue.clone());
        }
    }

    /// Runs everything queued for this shard itself, then hands the remote
    /// outboxes to the rings (one batch per destination).
    pub fn pump(self: &Rc<Self>) {
        self.ticker.busy();
        loop {
            let mut local = self.mesh.take_local();
            if local.is_empty()
                && self.dirty.borrow().is_empty()
                && self.awaiting_fsync.borrow().is_empty()
                && self.confirm_ready.borrow().is_empty()
            {
                self.mesh.recycle_local(local);
                break;
            }
            for envelope in local.drain(..) {
                self.handle(envelope);
            }
            self.mesh.recycle_local(local);
            self.dispatch_dirty();
            // After the deliveries: credit the queues no longer hold.
            flow::settle(self);
            let ready = std::mem::take(&mut *self.confirm_ready.borrow_mut());
            if !ready.is_empty() {
                self.release_confirms(ready, true);
            }
            let durable = std::mem::take(&mut *self.awaiting_fsync.borrow_mut());
            if !durable.is_empty() {
                self.confirm_after_fsync(durable);
            }
        }
        self.mesh.flush_remote();
    }

    /// Handles one batch that arrived over a ring.
    pub fn handle_batch(self: &Rc<Self>, batch: mesh::Batch) {
        self.ticker.busy();
        for envelope in batch {
            self.handle(envelope);
        }
        self.pump();
    }

    fn handle(self: &Rc<Self>, envelope: Envelope) {
        match envelope {
            Envelope::Enqueue {
                queues,
                message,
                confirm,
                publisher,
            } => {
                let outcome = owner::enqueue(self, queues, message, publisher);
                if let Some(ticket) = confirm {
                    self.settle_confirm(ticket, outcome);
                }
            }
            Envelope::Confirmed {
                conn,
                channel,
                seqs,
                ok,
            } => {
                if conn == delayed::CONFIRM_CONN {
                    delayed::confirmed(self, &seqs, ok);
                } else if conn == dead_letter::INTERNAL_CONN {
                    dead_letter::confirmed(self, &seqs, ok);
                } else if let Some(conn) = self.connection(conn) {
                    conn.confirmed(self, channel, &seqs, ok);
                }
            }
            Envelope::PublishCredit { conn, owner, n } => {
                if let Some(conn) = self.connection(conn) {
                    conn.publish_credit(owner, n);
                }
            }
            Envelope::Settle {
                queue,
                msg_ids,
                how,
            } => owner::settle(self, &queue, &msg_ids, how),
            Envelope::Credit { queue, consumer, n } => owner::credit(self, &queue, &consumer, n),
            Envelope::ChannelGone {
                queue,
                conn,
                channel,
            } => owner::channel_gone(self, &queue, conn, channel),
            Envelope::Deliver {
                queue,
                owner,
                delivery,
            } => match self.connection(delivery.consumer.conn) {
                Some(conn) => conn.deliver(self, queue, owner, delivery),
                None => self.bounce_delivery(queue, owner, delivery),
            },
            Envelope::DirectReply {
                conn,
                channel,
                message,
            } => {
                if let Some(conn) = self.connection(conn) {
                    conn.direct_reply(channel, message);
                }
            }
            Envelope::ConsumerCancelled { consumer } => {
                if let Some(conn) = self.connection(consumer.conn) {
                    conn.consumer_cancelled(&consumer);
                }
            }
            Envelope::Request {
                from,
                token,
                request,
            } => self.handle_request(from, token, request),
            Envelope::Reply { token, reply } => {
                if let Some(waiter) = self.waiters.borrow_mut().remove(&token) {
                    waiter.send(reply);
                }
            }
            Envelope::Meta { change, token } => {
                replica::apply(self, &change);
                if token != 0 {
                    self.send(LEADER, Envelope::MetaAck { token });
                }
            }
            Envelope::MetaAck { token } => leader::meta_ack(self, token),
        }
    }

    fn handle_request(self: &Rc<Self>, from: u16, token: u64, request: Request) {
        if leader::is_leader_request(&request) {
            leader::spawn(self.clone(), from, token, request);
        } else if let Request::CloseConnection { id, reason } = request {
            let closed = vhosts::close_connection(self, id, &reason);
            self.reply(from, token, Reply::Done(closed));
        } else if let Request::CloseConnectionsNamed { name, reason } = &request {
            let n = close::close_named(self, name, reason);
            self.reply(from, token, Reply::Count(Ok(n)));
        } else if let Request::TxCommit { ops } = request {
            transaction::commit(self, from, token, ops);
        } else if let Request::Get {
            name,
            no_ack,
            getter,
        } = &request
        {
            // basic.get on a queue whose ready messages are all paged out
            // answers once the head chunk is back in memory (unless the
            // channel holds its share of the budget in gets: get-empty).
            let waits = self
                .queues
                .borrow()
                .get(name)
                .is_some_and(|q| match getter {
                    Some(g) => q.get_waits_for_page_in(
                        g,
                        *no_ack,
                        self.queue_memory_room(q.memory_bytes()),
                    ),
                    None => q.needs_page_in_for_get(),
                });
            if waits {
                let shard = self.clone();
                glommio::spawn_local(async move {
                    if let Request::Get { name, .. } = &request {
                        paging::read_head(&shard, name).await;
                    }
                    let reply = owner::handle_request(&shard, request);
                    shard.reply(from, token, reply);
                    shard.pump();
                })
                .detach();
            } else {
                let reply = owner::handle_request(self, request);
                self.reply(from, token, reply);
            }
        } else {
            let reply = owner::handle_request(self, request);
            self.reply(from, token, reply);
        }
    }

    /// Makes every delivery the dirty queues can make now.
    fn dispatch_dirty(self: &Rc<Self>) {
        let mut dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        dirty.sort_unstable();
        dirty.dedup();
        for name in dirty {
            owner::dispatch(self, &name);
        }
    }
}

/// `hash(vhost, name) % shards`, stable across restarts for the same shard
/// count. Queues of `/` hash their name alone (where they were placed
/// before vhosts existed); other vhosts hash the vhost's name, a zero byte
/// and the queue's name (placement only: a collision puts two queues on
/// one shard, nothing more).
pub fn owner_of(vhost: &str, name: &str, shards: u16) -> u16 {
    // FNV-1a: tiny, deterministic across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let prefix: &[u8] = if vhost == crate::broker::vhost::DEFAULT_VHOST {
        &[]
    } else {
        vhost.as_bytes()
    };
    let sep: &[u8] = if prefix.is_empty() { &[] } else { &[0] };
    for b in prefix.iter().chain(sep).chain(name.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards as u64) as u16
}
