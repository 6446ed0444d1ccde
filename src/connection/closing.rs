//! How a connection ends: waiting for the client's close-ok after Warren
//! sent connection.close, lingering on the socket after close-ok (or a
//! refused handshake) so the client closes it first, the teardown that
//! gives everything of a dead connection back, and the broker-wide
//! shutdown that closes every connection with 320.

use crate::broker::error::{code, AmqpError};
use crate::connection::transport::Transport;
use crate::connection::{handlers, ConnShared, READ_CHUNK};
use crate::protocol::frame::{Frame, FrameDecoder};
use crate::protocol::methods::{ConnectionCloseOk, Method};
use crate::shard::envelope::Request;
use crate::shard::inbox::ConnectionInbox;
use crate::shard::{leader, Shard};
use bytes::BytesMut;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a closing connection waits for the client's close-ok.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the socket stays open after Warren sent connection.close-ok (or
/// refused a handshake) for the client to close it first; what the client
/// still sends meanwhile is read and dropped. RabbitMQ waits up to 30 s
/// after close-ok and 3 s after a refused login.
const CLOSE_LINGER: Duration = Duration::from_secs(3);

/// Warren sent connection.close: drops what the client sends until its
/// close-ok (or the end of the stream). A connection.close from the client
/// that crossed ours is answered with close-ok, and the wait for close-ok
/// goes on, as RabbitMQ does.
pub(super) async fn await_close_ok(
    conn: &ConnShared,
    stream: &mut Transport,
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
        match stream.read_into(buf, READ_CHUNK).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Keeps a finished connection's socket open for at most `CLOSE_LINGER`,
/// until the client closes it (or, with a decoder, sends connection.close-ok,
/// after which RabbitMQ closes at once). Everything read is dropped: at most
/// one partial frame is held.
pub(super) async fn linger(
    stream: &mut Transport,
    buf: &mut BytesMut,
    decoder: Option<&mut FrameDecoder>,
) {
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
            match stream.read_into(buf, READ_CHUNK).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Gives everything of a dead connection back: its channels' consumers and
/// unacked messages, and its exclusive queues.
pub(super) async fn teardown(shard: &Rc<Shard>, conn: &Rc<ConnShared>) {
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
