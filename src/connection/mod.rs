//! One client connection, served start to finish on the shard that accepted
//! it: the handshake, a reader that splits frames off the read buffer and
//! handles them, a writer that drains the write queue with vectored I/O, a
//! heartbeat task, and the teardown that gives unacked messages back.
//!
//! Deliveries, confirms and cancels from queue owners reach a connection
//! through its `ConnectionInbox` (`inbox.rs`), which the shard calls
//! synchronously while pumping its mesh.

pub mod assembly;
pub mod channel;
pub mod confirms;
pub mod delivery;
pub mod direct_reply;
pub mod handlers;
pub mod handshake;
pub mod inbox;
pub mod outbound;
pub mod socket;
pub mod unacked;

use crate::broker::error::{code, AmqpError};
use crate::protocol::frame::{Frame, FrameDecoder};
use crate::protocol::methods::*;
use crate::protocol::types::ShortStr;
use crate::shard::counters::Counters;
use crate::shard::envelope::{ConnKey, Envelope, Request};
use crate::shard::inbox::ConnectionInbox;
use crate::shard::{leader, Shard};
use bytes::BytesMut;
use channel::Channel;
use glommio::net::TcpStream;
use handshake::Negotiated;
use outbound::Outbound;
use std::cell::{Cell, RefCell};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Bytes reserved per socket read.
const READ_CHUNK: usize = 64 * 1024;

/// A read at least this large means the client is flooding (more is
/// waiting in the socket)…
const FLOOD_READ: usize = 16 * 1024;
/// …and the reader pauses this long after handling it (see `reader_loop`).
const FLOOD_PAUSE: Duration = Duration::from_micros(1);

/// Outbound bytes above which the reader stops reading (the client must
/// drain its deliveries before it may publish more).
const OUTBOUND_HIGH_WATER: usize = 16 * 1024 * 1024;

/// How long a closing connection waits for the client's close-ok.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the socket stays open after Warren sent connection.close-ok (or
/// refused a handshake) for the client to close it first; what the client
/// still sends meanwhile is read and dropped. RabbitMQ waits up to 30 s
/// after close-ok and 3 s after a refused login.
const CLOSE_LINGER: Duration = Duration::from_secs(3);

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
    pub channels: RefCell<crate::shard::FastMap<u16, Channel>>,
    /// Channels with confirms to send at the end of the read batch.
    pub confirm_dirty: RefCell<Vec<u16>>,
    /// Exclusive queues this connection declared (deleted when it closes).
    pub exclusive_queues: RefCell<Vec<ShortStr>>,
    pub last_read: Cell<Instant>,
    pub last_write: Cell<Instant>,
    /// Set once the connection is going away: no more frames are handled.
    pub closing: Cell<bool>,
    /// Set when the writer should exit after draining.
    pub writer_done: Cell<bool>,
    /// The connection has published (alarms block only publishers).
    pub published: Cell<bool>,
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

/// Why the frame loop ended.
enum Ending {
    /// Socket closed or failed, or a close handshake finished.
    Gone,
    /// The client sent connection.close: close-ok goes out once everything
    /// of the connection (its exclusive queues too) is gone.
    ClientClosed,
    /// A hard error: connection.close was sent; wait for close-ok.
    Closing,
}

/// Serves one accepted connection until it ends.
pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let key = shard.new_conn_key();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    if let Err(e) = stream.set_nodelay(true) {
        eprintln!(
            "warren: shard {} connection {peer}: TCP_NODELAY not set: {e}",
            shard.id
        );
    }
    let mut buf = BytesMut::new();
    let handshake = glommio::timer::timeout(handshake::HANDSHAKE_TIMEOUT, async {
        Ok(handshake::run(
            &mut stream,
            shard.id,
            &shard.settings.loopback_users,
            &mut buf,
        )
        .await)
    })
    .await;
    let negotiated = match handshake {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            eprintln!(
                "warren: shard {} connection {peer}: handshake failed: {e:?}",
                shard.id
            );
            if let handshake::HandshakeError::Refused(_) = e {
                // As RabbitMQ: the client gets time to read the refusal
                // (a connection.close it may still be answering) and to
                // close the socket itself.
                linger(&mut stream, &mut buf, None).await;
            }
            return;
        }
        Err(_) => {
            eprintln!(
                "warren: shard {} connection {peer}: handshake timed out",
                shard.id
            );
            return;
        }
    };
    eprintln!(
        "warren: shard {} accepted connection {peer} (user '{}', conn {})",
        shard.id, negotiated.user, key.id
    );
    Counters::add(&shard.counters.connections_opened, 1);
    let now = Instant::now();
    let conn = Rc::new(ConnShared {
        key,
        fd: stream.as_raw_fd(),
        peer: peer.clone(),
        out: RefCell::new(Outbound::new(negotiated.frame_max)),
        negotiated,
        writer_signal: Signal::default(),
        channels: RefCell::new(Default::default()),
        confirm_dirty: RefCell::new(Vec::new()),
        exclusive_queues: RefCell::new(Vec::new()),
        last_read: Cell::new(now),
        last_write: Cell::new(now),
        closing: Cell::new(false),
        writer_done: Cell::new(false),
        published: Cell::new(false),
    });
    shard.conns.borrow_mut().insert(key.id, conn.clone());

    // The writer gets its own handle on the socket (a dup'ed fd).
    // SAFETY: dup returns a fresh descriptor we own.
    let dup = unsafe { libc::dup(stream.as_raw_fd()) };
    let writer = if dup >= 0 {
        let wstream = unsafe { TcpStream::from_raw_fd(dup) };
        Some(glommio::spawn_local(writer_loop(
            shard.clone(),
            conn.clone(),
            wstream,
        )))
    } else {
        None
    };
    let heartbeat = glommio::spawn_local(heartbeat_loop(conn.clone(), stream.as_raw_fd()));

    let mut decoder = FrameDecoder::new(conn.negotiated.frame_max);
    let ending = reader_loop(&shard, &conn, &mut stream, &mut decoder, &mut buf).await;
    if let Ending::Closing = ending {
        // Wait (bounded) for the client's close-ok, dropping everything else
        // (a crossing connection.close is answered with close-ok).
        let _ = glommio::timer::timeout(CLOSE_TIMEOUT, async {
            await_close_ok(&conn, &mut stream, &mut decoder, &mut buf).await;
            Ok(())
        })
        .await;
    }
    conn.closing.set(true);
    teardown(&shard, &conn).await;
    if let Ending::ClientClosed = ending {
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
    if let Ending::ClientClosed = ending {
        // The client closes the socket once it has close-ok: leave it
        // open until then (bounded), so neither its last writes nor its
        // read of close-ok meet a reset.
        linger(&mut stream, &mut buf, Some(&mut decoder)).await;
    }
    // SAFETY: shutting down our own descriptor.
    unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_RDWR) };
    Counters::add(&shard.counters.connections_closed, 1);
    eprintln!(
        "warren: shard {} closed connection {peer} (conn {})",
        shard.id, key.id
    );
}

/// Warren sent connection.close: drops what the client sends until its
/// close-ok (or the end of the stream). A connection.close from the client
/// that crossed ours is answered with close-ok, and the wait for close-ok
/// goes on, as RabbitMQ does.
async fn await_close_ok(
    conn: &ConnShared,
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) {
    loop {
        loop {
            match decoder.decode(buf) {
                Ok(Some(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionCloseOk(_),
                })) => return,
                Ok(Some(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(_),
                })) => conn.send_method(0, ConnectionCloseOk {}),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match socket::read_into(stream, buf, READ_CHUNK).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Keeps a finished connection's socket open for at most `CLOSE_LINGER`,
/// until the client closes it (or, with a decoder, sends connection.close-ok,
/// after which RabbitMQ closes at once). Everything read is dropped: at most
/// one partial frame is held.
async fn linger(stream: &mut TcpStream, buf: &mut BytesMut, decoder: Option<&mut FrameDecoder>) {
    let _ = glommio::timer::timeout(CLOSE_LINGER, async {
        let mut decoder = decoder;
        loop {
            match decoder.as_deref_mut() {
                Some(d) => loop {
                    match d.decode(buf) {
                        Ok(Some(Frame::Method {
                            channel: 0,
                            method: Method::ConnectionCloseOk(_),
                        }))
                        | Err(_) => return Ok(()),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                },
                None => buf.clear(),
            }
            match socket::read_into(stream, buf, READ_CHUNK).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    })
    .await;
}

async fn reader_loop(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Ending {
    let mut last_read = 0usize;
    loop {
        // Frames already in the buffer (the handshake may have read ahead).
        loop {
            let frame = match decoder.decode(buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let err = AmqpError {
                        code: e.reply_code(),
                        text: e.reply_text(),
                    };
                    let (class_id, method_id) = e.method_ids().unwrap_or((0, 0));
                    return hard_close(conn, &err, class_id, method_id);
                }
            };
            match handle_frame(shard, conn, frame).await {
                Ok(FrameOutcome::Continue) => {}
                Ok(FrameOutcome::Closed) => {
                    conn.flush_confirms(shard);
                    return Ending::Gone;
                }
                Ok(FrameOutcome::ClientClosed) => {
                    conn.flush_confirms(shard);
                    return Ending::ClientClosed;
                }
                Err((err, class_id, method_id)) => {
                    conn.flush_confirms(shard);
                    return hard_close(conn, &err, class_id, method_id);
                }
            }
        }
        conn.flush_confirms(shard);
        shard.pump();
        if last_read >= FLOOD_READ {
            // A flooding client: its socket never makes the read wait, and
            // glommio polls I/O only once the task queue has nothing left to
            // run (or every preemption tick, 5 ms). Step out of the queue
            // for a moment so the other connections' sockets (a consumer's
            // acks) are polled between our batches instead of every 5 ms.
            glommio::timer::sleep(FLOOD_PAUSE).await;
        } else {
            // Leave the task queue so other ready tasks run between read batches.
            glommio::executor().yield_task_queue_now().await;
        }
        if shard.alarms.active() && conn.published.get() {
            wait_out_alarm(shard, conn).await;
        }
        if conn.published.get() {
            shard.wait_for_log_space().await;
        }
        // Back-pressure: stop reading while rings or our own socket are backed up.
        while shard.mesh.backlogged() || conn.out.borrow().queued_bytes() > OUTBOUND_HIGH_WATER {
            if conn.closing.get() {
                return Ending::Gone;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        match socket::read_into(stream, buf, READ_CHUNK).await {
            Ok(0) | Err(_) => return Ending::Gone,
            Ok(n) => {
                last_read = n;
                conn.last_read.set(Instant::now());
            }
        }
        if conn.closing.get() {
            return Ending::Gone;
        }
    }
}

/// A resource alarm is on and this connection publishes: tell the client
/// (connection.blocked, if it understands it) and read nothing until the
/// alarm clears.
async fn wait_out_alarm(shard: &Rc<Shard>, conn: &ConnShared) {
    let notify =
        handshake::client_capability(&conn.negotiated.client_properties, "connection.blocked");
    if notify {
        conn.send_method(
            0,
            ConnectionBlocked {
                reason: ShortStr::from_static(shard.alarms.reason()),
            },
        );
    }
    while shard.alarms.active() && !conn.closing.get() {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    if notify {
        conn.send_method(0, ConnectionUnblocked {});
    }
}

fn hard_close(conn: &ConnShared, err: &AmqpError, class_id: u16, method_id: u16) -> Ending {
    eprintln!(
        "warren: shard {} connection {} error: {}",
        conn.key.shard, conn.peer, err.text
    );
    conn.send_method(0, handshake::close_method(err, class_id, method_id));
    Ending::Closing
}

pub enum FrameOutcome {
    Continue,
    /// The client asked to close the connection.
    ClientClosed,
    /// The connection was closed by a completed close handshake.
    Closed,
}

/// A hard (connection) error with the class and method that caused it.
pub type HardError = (AmqpError, u16, u16);

async fn handle_frame(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    frame: Frame,
) -> Result<FrameOutcome, HardError> {
    match frame {
        Frame::Heartbeat { channel: 0 } => Ok(FrameOutcome::Continue),
        Frame::Heartbeat { channel } => Err((
            AmqpError::new(
                code::UNEXPECTED_FRAME,
                format!("heartbeat frame on channel {channel}"),
            ),
            0,
            0,
        )),
        Frame::Method { channel: 0, method } => handle_connection_method(conn, method),
        Frame::Method { channel, method } => {
            handlers::handle(shard, conn, channel, method).await?;
            Ok(FrameOutcome::Continue)
        }
        Frame::Header { channel, header } => {
            handlers::on_header(shard, conn, channel, header)?;
            Ok(FrameOutcome::Continue)
        }
        Frame::Body { channel, payload } => {
            handlers::on_body(shard, conn, channel, payload)?;
            Ok(FrameOutcome::Continue)
        }
    }
}

fn handle_connection_method(conn: &ConnShared, method: Method) -> Result<FrameOutcome, HardError> {
    match method {
        Method::ConnectionClose(_) => Ok(FrameOutcome::ClientClosed),
        Method::ConnectionCloseOk(_) => Ok(FrameOutcome::Closed),
        Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_) => Ok(FrameOutcome::Continue),
        Method::ConnectionUpdateSecret(_) => {
            conn.send_method(0, ConnectionUpdateSecretOk {});
            Ok(FrameOutcome::Continue)
        }
        other => Err((
            AmqpError::new(
                code::COMMAND_INVALID,
                format!("unexpected method on channel 0: {}", other.name()),
            ),
            other.class_id(),
            other.method_id(),
        )),
    }
}

async fn writer_loop(shard: Rc<Shard>, conn: Rc<ConnShared>, mut stream: TcpStream) {
    loop {
        conn.writer_signal.wait().await;
        loop {
            let (mut bufs, credits) = conn.out.borrow_mut().take();
            if bufs.is_empty() && credits.is_empty() {
                break;
            }
            if socket::write_all(&mut stream, &mut bufs).await.is_err() {
                conn.closing.set(true);
                // Wake the reader out of a blocking read.
                // SAFETY: shutting down our own descriptor.
                unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_RDWR) };
                return;
            }
            conn.last_write.set(Instant::now());
            futures_lite::future::yield_now().await;
            if !credits.is_empty() {
                for c in credits {
                    shard.send(
                        c.owner,
                        Envelope::Credit {
                            queue: c.queue,
                            consumer: c.consumer,
                            n: c.n,
                        },
                    );
                }
                shard.pump();
            }
        }
        if conn.writer_done.get() {
            return;
        }
    }
}

async fn heartbeat_loop(conn: Rc<ConnShared>, fd: i32) {
    let secs = conn.negotiated.heartbeat;
    if secs == 0 {
        return;
    }
    let interval = Duration::from_secs(secs as u64);
    loop {
        glommio::timer::sleep(interval / 2).await;
        if conn.closing.get() {
            return;
        }
        let now = Instant::now();
        if now.duration_since(conn.last_write.get()) >= interval / 2 {
            conn.out.borrow_mut().heartbeat();
            conn.notify_writer();
        }
        if now.duration_since(conn.last_read.get()) > interval * 2 {
            eprintln!(
                "warren: connection {} missed heartbeats from client, timeout: {secs}s",
                conn.peer
            );
            conn.closing.set(true);
            // SAFETY: shutting down the connection's own descriptor wakes its reader.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            return;
        }
    }
}

/// Gives everything of a dead connection back: its channels' consumers and
/// unacked messages, and its exclusive queues.
async fn teardown(shard: &Rc<Shard>, conn: &Rc<ConnShared>) {
    let ids: Vec<u16> = conn.channels.borrow().keys().copied().collect();
    for id in ids {
        let ch = conn.channels.borrow_mut().remove(&id);
        if let Some(mut ch) = ch {
            handlers::release(shard, conn.key, &mut ch);
        }
    }
    shard.pump();
    let exclusive = std::mem::take(&mut *conn.exclusive_queues.borrow_mut());
    for name in exclusive {
        let _ = shard
            .request(
                leader::LEADER,
                Request::DeleteQueue {
                    name,
                    if_unused: false,
                    if_empty: false,
                    conn: Some(conn.key),
                },
            )
            .await;
    }
}

/// Closes every connection of the shard with 320 CONNECTION_FORCED (broker
/// shutdown) and waits briefly for them to go.
pub async fn shutdown_all(shard: &Rc<Shard>) {
    let conns: Vec<Rc<dyn ConnectionInbox>> = shard.conns.borrow().values().cloned().collect();
    let err = AmqpError::new(
        code::CONNECTION_FORCED,
        "broker forced connection closure with reason 'shutdown'",
    );
    for conn in &conns {
        conn.close_for_shutdown(&err);
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline && conns.iter().any(|c| c.has_pending_output()) {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    for conn in &conns {
        conn.shut_socket();
    }
}
