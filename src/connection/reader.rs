//! A connection's reader: splits frames off the read buffer and handles
//! them in order (channel 0's connection methods here, the rest through
//! `handlers`), flushes the batch's confirms, then reads again unless
//! back-pressure (no publish credit left with some owner shard, a full
//! mesh ring, a write queue over its high-water mark, a resource alarm, a
//! full log) says to wait. A hard error sends
//! connection.close and ends the loop.

use crate::broker::error::{code, AmqpError};
use crate::connection::transport::Transport;
use crate::connection::{handlers, handshake, ConnShared, HardError};
use crate::connection::{OUTBOUND_HIGH_WATER, READ_CHUNK};
use crate::protocol::frame::{Frame, FrameDecoder};
use crate::protocol::methods::{
    ConnectionBlocked, ConnectionUnblocked, ConnectionUpdateSecretOk, Method,
};
use crate::protocol::types::ShortStr;
use crate::shard::Shard;
use bytes::BytesMut;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A read at least this large means the client is flooding (more is
/// waiting in the socket)…
const FLOOD_READ: usize = 16 * 1024;
/// …and the reader pauses this long after handling it (see `reader_loop`).
const FLOOD_PAUSE: Duration = Duration::from_micros(1);

/// How often a reader waiting for flow credit looks whether its
/// connection is closing.
const CREDIT_POLL: Duration = Duration::from_millis(20);

/// Why the frame loop ended.
pub(super) enum Ending {
    /// Socket closed or failed, or a close handshake finished.
    Gone,
    /// The client sent connection.close: close-ok goes out once everything
    /// of the connection (its exclusive queues too) is gone.
    ClientClosed,
    /// A hard error: connection.close was sent; wait for close-ok.
    Closing,
}

pub(super) async fn reader_loop(
    shard: &Rc<Shard>,
    conn: &Rc<ConnShared>,
    stream: &mut Transport,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Ending {
    let mut last_read = 0usize;
    loop {
        // Frames already in the buffer (the handshake may have read ahead).
        // Each is matched where the decoder returns it and its parts handed
        // on: a frame (as large as the largest method) is never moved whole,
        // and the per-message frames are handled without a future.
        loop {
            let outcome = match decoder.decode(buf) {
                Ok(Some(Frame::Body { channel, payload })) => {
                    handlers::on_body(shard, conn, channel, payload)
                        .map(|()| FrameOutcome::Continue)
                }
                Ok(Some(Frame::Header { channel, header })) => {
                    handlers::on_header(shard, conn, channel, header)
                        .map(|()| FrameOutcome::Continue)
                }
                Ok(Some(Frame::Method { channel: 0, method })) => {
                    handle_connection_method(conn, method)
                }
                Ok(Some(Frame::Method { channel, method })) => {
                    match handlers::handle_now(shard, conn, channel, method) {
                        Ok(None) => Ok(FrameOutcome::Continue),
                        Ok(Some(method)) => handlers::handle(shard, conn, channel, method)
                            .await
                            .map(|()| FrameOutcome::Continue),
                        Err(e) => Err(e),
                    }
                }
                Ok(Some(Frame::Heartbeat { channel })) => on_heartbeat(channel),
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
            match outcome {
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
        handlers::forget_closed(conn);
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
        // From here to the read the reader may wait on purpose (an alarm,
        // the log's write window, credit, back-pressure): the heartbeat
        // monitor pauses meanwhile and restarts its clock after, as
        // RabbitMQ's reader does (`rabbit_heartbeat:pause_monitor`), so a
        // blocked publisher is not dropped for the heartbeats it could not
        // get read.
        conn.read_paused.set(true);
        if shard.alarms.active() && conn.published.get() {
            wait_out_alarm(shard, conn).await;
        }
        if conn.published.get() {
            shard.wait_for_log_space().await;
        }
        // Flow control: no credit left with some owner shard (its queues
        // are ahead of their consumers, `shard::flow`): wait to be paid.
        conn.credit.limit_receive_buffer(stream.fd());
        while conn.held_for_credit() {
            if conn.closing.get() {
                return Ending::Gone;
            }
            futures_lite::future::or(conn.credit.paid_back(), glommio::timer::sleep(CREDIT_POLL))
                .await;
        }
        // Back-pressure: stop reading while rings or our own socket are backed up.
        while shard.mesh.backlogged() || conn.out.borrow().queued_bytes() > OUTBOUND_HIGH_WATER {
            if conn.closing.get() {
                return Ending::Gone;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        conn.read_paused.set(false);
        conn.last_read.set(Instant::now());
        match stream.read_into(buf, READ_CHUNK).await {
            Ok(0) | Err(_) => return Ending::Gone,
            Ok(n) => {
                last_read = n;
                conn.last_read.set(Instant::now());
                conn.recv_oct.set(conn.recv_oct.get() + n as u64);
            }
        }
        if stream.tls_wants_write() {
            // TLS records of its own (a key update's answer) go out with
            // the writer's next batch.
            conn.notify_writer();
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
    let (shard, peer, id) = (conn.key.shard, &conn.peer, conn.key.id);
    if err.code == code::INTERNAL_ERROR {
        tracing::error!(shard, peer = %peer, conn = id, code = err.code, "connection error: {}", err.text);
    } else {
        tracing::warn!(shard, peer = %peer, conn = id, code = err.code, "connection error: {}", err.text);
    }
    conn.send_method(0, handshake::close_method(err, class_id, method_id));
    Ending::Closing
}

enum FrameOutcome {
    Continue,
    /// The client asked to close the connection.
    ClientClosed,
    /// The connection was closed by a completed close handshake.
    Closed,
}

/// A heartbeat frame: only on channel 0.
fn on_heartbeat(channel: u16) -> Result<FrameOutcome, HardError> {
    if channel == 0 {
        return Ok(FrameOutcome::Continue);
    }
    Err((
        AmqpError::new(
            code::UNEXPECTED_FRAME,
            // RabbitMQ's text (the frame's type and its empty payload).
            "type 8, all octets = <<>>",
        ),
        0,
        0,
    ))
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
                code::CHANNEL_ERROR,
                "unexpected method in connection state running",
            ),
            other.class_id(),
            other.method_id(),
        )),
    }
}
