//! One client connection, served start to finish on the shard that accepted
//! it. This file holds `serve` (the handshake, then the connection's tasks
//! until it ends) and `ConnShared`, what those tasks and the shard share.
//! The rest, one concern per file:
//! - `handshake` — protocol header to connection.open-ok;
//! - `reader` — frames in: connection methods, then `handlers` (channel
//!   methods, one module per AMQP class, and the publish path);
//! - `channel` — one channel's state and synchronous behaviour, with
//!   `assembly` (publish frames), `unacked` (delivery tags), `confirms`,
//!   `actions` (what it asks its shard to do) and `transaction` (an open
//!   tx.select transaction);
//! - `delivery` — the one encoder of a delivery, get-ok or return;
//! - `outbound`, `writer`, `socket` — the write queue, the writer and
//!   heartbeat tasks, socket reads and writes;
//! - `consumer_timeout` — the task closing channels whose oldest unacked
//!   delivery waited past its consumer timeout;
//! - `transport` — plain or TLS, chosen per connection; `tls` (the rustls
//!   session's I/O and handshake), `tls_config` (certificates, reload, the
//!   handshake bound), `peer_cert` (the EXTERNAL user: a certificate's CN);
//! - `closing` — close-ok wait, linger, teardown, broker shutdown;
//! - `inbox` — what the shard hands the connection (deliveries, confirms,
//!   cancels, direct replies, through `ConnectionInbox`, called
//!   synchronously while the shard pumps its mesh); `direct_reply`.

pub mod actions;
pub mod assembly;
pub mod channel;
mod closing;
pub mod confirms;
pub mod consumer_timeout;
pub mod credit;
pub mod delivery;
pub mod direct_reply;
pub mod handlers;
pub mod handshake;
pub mod inbox;
pub mod outbound;
pub mod peer_cert;
mod reader;
pub mod socket;
pub mod tls;
pub mod tls_config;
pub mod transaction;
pub mod transport;
pub mod unacked;
mod writer;

pub use closing::shutdown_all;

use crate::broker::error::AmqpError;
use crate::protocol::frame::FrameDecoder;
use crate::protocol::methods::*;
use crate::shard::counters::Counters;
use crate::shard::envelope::ConnKey;
use crate::shard::Shard;
use bytes::BytesMut;
use channel::Channel;
use glommio::net::TcpStream;
use handshake::Negotiated;
use outbound::Outbound;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};
use tls_config::TlsContext;
use transport::Transport;

/// Bytes reserved per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// Outbound bytes above which the reader stops reading (the client must
/// drain its deliveries before it may publish more).
const OUTBOUND_HIGH_WATER: usize = 16 * 1024 * 1024;

/// A wake-up flag for one waiting task (the writer).
#[derive(Default)]
pub struct Signal {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.set.replace(false) {
                std::task::Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// The part of a connection other tasks of the shard reach: its channels,
/// its write queue, and its bookkeeping.
pub struct ConnShared {
    pub key: ConnKey,
    /// The socket, for shutting it down from other tasks.
    pub fd: i32,
    pub peer: String,
    pub negotiated: Negotiated,
    pub out: RefCell<Outbound>,
    pub writer_signal: Signal,
    /// Raised by a delivery (or basic.get-ok) that has a consumer timeout:
    /// the connection's timeout watch starts only then, so connections
    /// without one never wake for it.
    pub timed_delivery: Signal,
    pub channels: RefCell<crate::shard::FastMap<u16, Channel>>,
    /// Channels the client closed in the read batch being handled: their
    /// markers (`Phase::ClosedByClient`) go at the end of the batch.
    pub closed_by_client: RefCell<Vec<u16>>,
    /// Channels with confirms to send at the end of the read batch.
    pub confirm_dirty: RefCell<Vec<u16>>,
    /// Exclusive queues this connection declared (deleted when it closes).
    pub exclusive_queues: RefCell<Vec<crate::broker::vhost::QueueName>>,
    pub last_read: Cell<Instant>,
    /// The reader is between read batches, possibly waiting on purpose
    /// (alarm, credit, back-pressure): missed heartbeats do not count.
    pub read_paused: Cell<bool>,
    pub last_write: Cell<Instant>,
    /// Octets read from and written to the client since the handshake
    /// (AMQP bytes; TLS records' own overhead is not counted): RabbitMQ's
    /// `recv_oct` / `send_oct`.
    pub recv_oct: Cell<u64>,
    pub send_oct: Cell<u64>,
    /// The channel whose method the reader is handling (a handler may be
    /// awaiting a reply): other tasks leave that channel alone meanwhile
    /// (`consumer_timeout` closes it at a later check).
    pub handling: Cell<Option<u16>>,
    /// Set once the connection is going away: no more frames are handled.
    pub closing: Cell<bool>,
    /// Set when the writer should exit after draining.
    pub writer_done: Cell<bool>,
    /// The connection has published (alarms block only publishers).
    pub published: Cell<bool>,
    /// Bytes held by the open transactions of its channels (bounded:
    /// `transaction::MAX_CONNECTION_BYTES`).
    pub tx_bytes: Rc<Cell<u64>>,
    /// The TLS session (amqps), as listings show it.
    pub tls: Option<crate::shard::envelope::TlsInfo>,
    /// Publishes on their way to each owner shard (flow control).
    pub credit: credit::PublishCredit,
}

impl ConnShared {
    pub fn notify_writer(&self) {
        self.writer_signal.notify();
    }

    /// Queues a method frame and wakes the writer.
    pub fn send_method(&self, channel: u16, method: impl Into<Method>) {
        self.out.borrow_mut().method(channel, &method.into());
        self.notify_writer();
    }

    /// Runs `f` on channel `id`'s state; `None` when there is no such channel.
    pub fn with_channel<R>(&self, id: u16, f: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        self.channels.borrow_mut().get_mut(&id).map(f)
    }

    /// Whether the reader must wait for flow credit before reading more:
    /// out of credit with some owner, and no unacked deliveries of its own
    /// (acks read behind the publishes free its consumers; holding them
    /// back could stall the very queue that holds the credit).
    pub fn held_for_credit(&self) -> bool {
        self.credit.blocked()
            && !self
                .channels
                .borrow()
                .values()
                .any(|ch| ch.unacked_count() > 0)
    }

    /// Channel `channel` has confirms to send at the end of the read batch.
    pub fn mark_confirm_dirty(&self, channel: u16) {
        let mut dirty = self.confirm_dirty.borrow_mut();
        if !dirty.contains(&channel) {
            dirty.push(channel);
        }
    }

    /// Sends the confirms of the publishes settled during this read batch:
    /// one basic.ack (multiple) per channel, and a basic.nack for each
    /// publish an owner failed.
    pub fn flush_confirms(&self, shard: &Shard) {
        let dirty = std::mem::take(&mut *self.confirm_dirty.borrow_mut());
        if dirty.is_empty() {
            return;
        }
        let mut channels = self.channels.borrow_mut();
        let mut out = self.out.borrow_mut();
        for id in dirty {
            if let Some(ch) = channels.get_mut(&id) {
                // The counters count what the publishers are told.
                let told = ch.write_confirms(&mut out);
                ch.stats
                    .add(crate::broker::stats::Stat::Confirm, told.acked);
                Counters::add(&shard.counters.confirmed, told.acked);
                Counters::add(&shard.counters.nacked, told.nacked);
            }
        }
        drop(out);
        self.notify_writer();
    }

    /// After acks or a qos change on a channel with a global prefetch:
    /// writes the held deliveries the limit now allows.
    pub fn release_held(&self, channel: u16) {
        let wrote = self
            .with_channel(channel, |ch| ch.release_held(&mut self.out.borrow_mut()))
            .unwrap_or(false);
        if wrote {
            self.notify_writer();
        }
    }

    /// A queue.delete on `channel` was answered: sends the basic.cancel
    /// notifications held back meanwhile.
    pub fn send_deferred_cancels(&self, channel: u16) {
        let Some(tags) = self.with_channel(channel, |ch| ch.end_queue_delete()) else {
            return;
        };
        for tag in tags {
            self.send_method(
                channel,
                BasicCancel {
                    consumer_tag: tag,
                    no_wait: true,
                },
            );
        }
    }
}

/// The peer's address for log lines; sets TCP_NODELAY.
fn prepare(shard: &Shard, stream: &TcpStream) -> String {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    if let Err(e) = stream.set_nodelay(true) {
        tracing::error!(shard = shard.id, peer = %peer, error = %e, "TCP_NODELAY not set");
    }
    peer
}

/// Serves one connection accepted on the AMQP port until it ends.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = prepare(&shard, &stream);
    serve_on(shard, Transport::plain(stream), peer).await
}

/// Serves one connection accepted on the amqps port: the TLS handshake
/// (bounded in time, and in number across the broker), then AMQP. A client
/// that fails the handshake (garbage, a stall, a bad certificate) is
/// dropped with a log line.
pub async fn serve_tls(shard: Rc<Shard>, mut stream: TcpStream, tls: Arc<TlsContext>) {
    let peer = prepare(&shard, &stream);
    let Some(permit) = tls.begin_handshake() else {
        tracing::warn!(
            shard = shard.id,
            peer = %peer,
            "TLS handshake refused: {} handshakes already in progress (--tls-max-handshakes)",
            tls.options.max_handshakes
        );
        return;
    };
    // The one count for the whole broker (every shard's listener shares
    // the context): a handshake holds its place from here until it ends.
    tracing::debug!(
        shard = shard.id,
        peer = %peer,
        "TLS handshake started ({} of at most {} in progress)",
        permit.in_progress_at_start(),
        tls.options.max_handshakes
    );
    let timeout = tls.options.handshake_timeout;
    let handshake = glommio::timer::timeout(timeout, async {
        Ok(tls::accept(&mut stream, tls.current()).await)
    })
    .await;
    drop(permit);
    let session = match handshake {
        Ok(Ok(session)) => session,
        Ok(Err(reason)) => {
            tracing::warn!(shard = shard.id, peer = %peer, "TLS handshake failed: {reason}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                shard = shard.id,
                peer = %peer,
                "TLS handshake timed out after {} ms",
                timeout.as_millis()
            );
            return;
        }
    };
    tracing::debug!(shard = shard.id, peer = %peer, "TLS established: {}", session.describe());
    serve_on(shard, Transport::tls(stream, Rc::new(session)), peer).await
}

/// Serves one connection, plain or TLS, from the AMQP handshake to its end.
async fn serve_on(shard: Rc<Shard>, mut stream: Transport, peer: String) {
    let key = shard.new_conn_key();
    let mut buf = BytesMut::new();
    let handshake = glommio::timer::timeout(handshake::HANDSHAKE_TIMEOUT, async {
        Ok(handshake::run(&mut stream, &shard, &mut buf).await)
    })
    .await;
    let negotiated = match handshake {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::warn!(shard = shard.id, peer = %peer, error = ?e, "handshake failed");
            if let handshake::HandshakeError::Refused(_) = e {
                // As RabbitMQ: the client gets time to read the refusal
                // (a connection.close it may still be answering) and to
                // close the socket itself.
                closing::linger(&mut stream, &mut buf, None).await;
            }
            return;
        }
        Err(_) => {
            tracing::warn!(shard = shard.id, peer = %peer, "handshake timed out");
            return;
        }
    };
    let tls_info = stream.session().map(|s| s.info());
    let tls = stream
        .session()
        .map_or_else(|| "none".to_string(), |s| s.describe());
    tracing::info!(
        shard = shard.id,
        peer = %peer,
        conn = key.id,
        user = %negotiated.user,
        vhost = %negotiated.vhost_name,
        tls = %tls,
        "accepted connection"
    );
    Counters::add(&shard.counters.connections_opened, 1);
    let now = Instant::now();
    let conn = Rc::new(ConnShared {
        key,
        fd: stream.fd(),
        peer: peer.clone(),
        out: RefCell::new(Outbound::new(negotiated.frame_max)),
        negotiated,
        writer_signal: Signal::default(),
        timed_delivery: Signal::default(),
        channels: RefCell::new(Default::default()),
        closed_by_client: RefCell::new(Vec::new()),
        confirm_dirty: RefCell::new(Vec::new()),
        exclusive_queues: RefCell::new(Vec::new()),
        last_read: Cell::new(now),
        read_paused: Cell::new(false),
        last_write: Cell::new(now),
        recv_oct: Cell::new(0),
        send_oct: Cell::new(0),
        handling: Cell::new(None),
        closing: Cell::new(false),
        writer_done: Cell::new(false),
        published: Cell::new(false),
        tx_bytes: Rc::new(Cell::new(0)),
        credit: credit::PublishCredit::new(shard.count as usize),
        tls: tls_info,
    });
    shard.conns.borrow_mut().insert(key.id, conn.clone());

    // The writer gets its own handle on the socket (a dup'ed fd).
    let writer = stream.writer_half().map(|wstream| {
        glommio::spawn_local(writer::writer_loop(shard.clone(), conn.clone(), wstream))
    });
    let heartbeat = glommio::spawn_local(writer::heartbeat_loop(conn.clone(), stream.fd()));
    let timeouts = glommio::spawn_local(consumer_timeout::watch(shard.clone(), conn.clone()));

    let mut decoder = FrameDecoder::new(conn.negotiated.frame_max);
    let ending = reader::reader_loop(&shard, &conn, &mut stream, &mut decoder, &mut buf).await;
    if let reader::Ending::Closing = ending {
        // Wait (bounded) for the client's close-ok, dropping everything else
        // (a crossing connection.close is answered with close-ok).
        let _ = glommio::timer::timeout(closing::CLOSE_TIMEOUT, async {
            closing::await_close_ok(&conn, &mut stream, &mut decoder, &mut buf).await;
            Ok(())
        })
        .await;
    }
    conn.closing.set(true);
    closing::teardown(&shard, &conn).await;
    if let reader::Ending::ClientClosed = ending {
        // As RabbitMQ: by the time the client has close-ok, its exclusive
        // queues are gone and its unacked messages are back in their queues.
        conn.send_method(0, ConnectionCloseOk {});
    }
    shard.conns.borrow_mut().remove(&key.id);
    conn.writer_done.set(true);
    conn.notify_writer();
    if let Some(w) = writer {
        let _ = glommio::timer::timeout(Duration::from_secs(1), async {
            w.await;
            Ok(())
        })
        .await;
    }
    heartbeat.cancel().await;
    timeouts.cancel().await;
    if let reader::Ending::ClientClosed = ending {
        // The client closes the socket once it has close-ok: leave it
        // open until then (bounded), so neither its last writes nor its
        // read of close-ok meet a reset.
        closing::linger(&mut stream, &mut buf, Some(&mut decoder)).await;
    }
    // SAFETY: shutting down our own descriptor.
    unsafe { libc::shutdown(stream.fd(), libc::SHUT_RDWR) };
    Counters::add(&shard.counters.connections_closed, 1);
    tracing::info!(shard = shard.id, peer = %peer, conn = key.id, "closed connection");
}

/// A hard (connection) error with the class and method that caused it.
pub type HardError = (AmqpError, u16, u16);
