//! A connection's writer and heartbeat tasks. The writer drains the write
//! queue with vectored I/O whenever it is signalled, and once deliveries
//! are on the socket hands their owners the transport credit back. The
//! heartbeat task sends heartbeats when the connection has been quiet and
//! shuts the socket down when the client has missed two.

use crate::connection::transport::Transport;
use crate::connection::ConnShared;
use crate::shard::envelope::Envelope;
use crate::shard::Shard;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(super) async fn writer_loop(shard: Rc<Shard>, conn: Rc<ConnShared>, mut stream: Transport) {
    loop {
        conn.writer_signal.wait().await;
        loop {
            let (mut bufs, credits) = conn.out.borrow_mut().take();
            if bufs.is_empty() && credits.is_empty() && !stream.tls_wants_write() {
                break;
            }
            let octets: usize = bufs.iter().map(|b| b.len()).sum();
            if stream.write_queue(&mut bufs).await.is_err() {
                conn.closing.set(true);
                // Wake the reader out of a blocking read.
                // SAFETY: shutting down our own descriptor.
                unsafe { libc::shutdown(stream.fd(), libc::SHUT_RDWR) };
                return;
            }
            conn.last_write.set(Instant::now());
            conn.send_oct.set(conn.send_oct.get() + octets as u64);
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
            stream.finish().await;
            return;
        }
    }
}

pub(super) async fn heartbeat_loop(conn: Rc<ConnShared>, fd: i32) {
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
        if !conn.read_paused.get() && now.duration_since(conn.last_read.get()) > interval * 2 {
            tracing::warn!(
                shard = conn.key.shard,
                peer = %conn.peer,
                conn = conn.key.id,
                timeout_s = secs,
                "missed heartbeats from client, timeout: {secs}s"
            );
            conn.closing.set(true);
            // SAFETY: shutting down the connection's own descriptor wakes its reader.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            return;
        }
    }
}
