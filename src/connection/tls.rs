//! TLS on one connection, in user space with rustls over glommio's
//! `TcpStream` (a thin adapter of our own: the reader and the writer are
//! separate tasks on their own descriptors, and share the one rustls
//! session through an `Rc<RefCell<…>>` borrowed only between awaits, which a
//! single-stream adapter such as futures-rustls cannot do without a lock).
//!
//! - `accept`: the server handshake, with its own reads and writes.
//! - Reads: ciphertext is received in 64 KiB non-blocking reads (the same
//!   wait as the plain path when there is none), fed to rustls from memory,
//!   and the plaintext lands in the connection's frame buffer, whose frames
//!   are split off as `Bytes` exactly as on the plain path.
//! - Writes: the write queue's buffers go to rustls as one vectored write
//!   (rustls packs them into full 16 KiB records) and the records go out
//!   with `sendmsg`; only when the socket is full are the pending records
//!   copied out of rustls to wait for writability.

use crate::connection::socket;
use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;

/// Ciphertext bytes reserved per socket read.
const CIPHER_CHUNK: usize = 64 * 1024;

/// Bytes of the first read after a wait.
const WAKE_READ: usize = 2048;

/// The most plaintext one TLS record carries.
const MAX_RECORD: usize = 16 * 1024;

/// Plaintext buffers handed to rustls per vectored write.
const MAX_IOVECS: usize = 64;

/// One connection's TLS session, shared by its reader and writer tasks.
pub struct TlsSession {
    conn: RefCell<ServerConnection>,
}

impl TlsSession {
    /// The client's certificate chain, leaf first (verified by rustls
    /// against `--tls-ca` when `--tls-verify-peer` is on; absent otherwise).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let conn = self.conn.borrow();
        conn.peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.as_ref().to_vec())
    }

    /// "TLSv1_3 TLS13_AES_128_GCM_SHA256", for the connection's log line.
    pub fn describe(&self) -> String {
        let conn = self.conn.borrow();
        let version = conn
            .protocol_version()
            .map_or_else(|| "?".into(), |v| format!("{v:?}"));
        let suite = conn
            .negotiated_cipher_suite()
            .map_or_else(|| "?".into(), |s| format!("{:?}", s.suite()));
        format!("{version} {suite}")
    }

    /// The session as `list_connections` shows it.
    pub fn info(&self) -> crate::shard::envelope::TlsInfo {
        let conn = self.conn.borrow();
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "tlsv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "tlsv1.2".to_string(),
            other => other.map_or_else(String::new, |v| format!("{v:?}").to_lowercase()),
        };
        let suite = conn
            .negotiated_cipher_suite()
            .map_or_else(String::new, |s| format!("{:?}", s.suite()).to_lowercase());
        let cipher = ["aes_128_gcm", "aes_256_gcm", "chacha20_poly1305"]
            .into_iter()
            .find(|c| suite.contains(c))
            .map_or(suite.clone(), str::to_string);
        drop(conn);
        crate::shard::envelope::TlsInfo {
            protocol,
            cipher,
            peer_cert_subject: self
                .peer_certificate()
                .and_then(|der| crate::connection::peer_cert::subject(&der)),
        }
    }

    /// rustls has records to send (alerts, key updates) besides our writes.
    pub fn wants_write(&self) -> bool {
        self.conn.borrow().wants_write()
    }
}

/// The server side of the TLS handshake. Err is the reason to log; rustls'
/// alert (bad certificate, garbage…) has been sent when there is one.
pub async fn accept(
    stream: &mut TcpStream,
    config: Arc<ServerConfig>,
) -> Result<TlsSession, String> {
    let mut conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut input = vec![0u8; 16 * 1024];
    loop {
        flush_handshake(stream, &mut conn).await?;
        if !conn.is_handshaking() {
            return Ok(TlsSession {
                conn: RefCell::new(conn),
            });
        }
        let n = stream
            .read(&mut input)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection during the handshake".into());
        }
        let mut fresh = &input[..n];
        while !fresh.is_empty() {
            conn.read_tls(&mut fresh).map_err(|e| e.to_string())?;
            if let Err(e) = conn.process_new_packets() {
                // Send rustls' alert, then give up.
                let _ = flush_handshake(stream, &mut conn).await;
                return Err(e.to_string());
            }
        }
    }
}

async fn flush_handshake(
    stream: &mut TcpStream,
    conn: &mut ServerConnection,
) -> Result<(), String> {
    if !conn.wants_write() {
        return Ok(());
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).map_err(|e| e.to_string())?;
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("write: {e}"))
}

/// The reading side of a TLS connection: the session and the ciphertext
/// received but not yet given to rustls.
pub struct TlsReader {
    pub session: Rc<TlsSession>,
    incoming: BytesMut,
    eof: bool,
}

impl TlsReader {
    pub fn new(session: Rc<TlsSession>) -> TlsReader {
        TlsReader {
            session,
            incoming: BytesMut::new(),
            eof: false,
        }
    }

    /// Feeds received ciphertext to rustls and appends the plaintext to
    /// `buf`. Some(n): n bytes appended (Some(0): the client closed the TLS
    /// session cleanly); None: rustls needs more ciphertext.
    fn decrypt(
        &mut self,
        fd: RawFd,
        buf: &mut BytesMut,
        chunk: usize,
    ) -> io::Result<Option<usize>> {
        let mut conn = self.session.conn.borrow_mut();
        let mut total = 0;
        loop {
            let state = match conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Best effort: the alert rustls queued for the client.
                    let _ = conn.write_tls(&mut FdWriter(fd));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                // Room for this record and, at most, the plaintext of the
                // ciphertext still to come in this call: one allocation.
                let expect = (available + self.incoming.len()).min(chunk + MAX_RECORD);
                total += take_plaintext(&mut conn, buf, available, expect)?;
            } else if state.peer_has_closed() {
                return Ok(Some(total));
            }
            if total >= chunk {
                return Ok(Some(total));
            }
            if self.incoming.is_empty() {
                if total > 0 {
                    return Ok(Some(total));
                }
                if self.eof {
                    // rustls tells a clean close (Ok(0)) from a truncated one.
                    conn.read_tls(&mut io::empty())?;
                    let mut probe = [0u8; 1];
                    return conn.reader().read(&mut probe).map(|_| Some(0));
                }
                return Ok(None);
            }
            let n = conn.read_tls(&mut &self.incoming[..])?;
            self.incoming.advance(n);
        }
    }
}

/// Moves `available` plaintext bytes out of rustls onto the end of `buf`,
/// growing it to hold `expect` bytes if it must grow: an idle connection's
/// small message gets a buffer of its own size (bodies slice this buffer
/// and keep it alive, as on the plain path), a flood one per read batch.
fn take_plaintext(
    conn: &mut ServerConnection,
    buf: &mut BytesMut,
    available: usize,
    expect: usize,
) -> io::Result<usize> {
    if buf.capacity() - buf.len() < available {
        buf.reserve(expect.max(available));
    }
    // Copied straight from rustls' buffers (no zero-fill first).
    let mut reader = conn.reader();
    let mut got = 0;
    while got < available {
        let chunk = match reader.fill_buf() {
            Ok(chunk) if !chunk.is_empty() => chunk,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) if got > 0 => break,
            Err(e) => return Err(e),
        };
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        reader.consume(n);
        got += n;
    }
    Ok(got)
}

/// Reads at least one plaintext byte into `buf`; 0 at the end of the
/// session. See `socket::read_into` for the plain path it mirrors.
pub async fn read_into(
    stream: &mut TcpStream,
    reader: &mut TlsReader,
    buf: &mut BytesMut,
    chunk: usize,
) -> io::Result<usize> {
    let fd = stream.as_raw_fd();
    loop {
        if let Some(n) = reader.decrypt(fd, buf, chunk)? {
            return Ok(n);
        }
        if reader.incoming.capacity() < CIPHER_CHUNK {
            reader.incoming.reserve(CIPHER_CHUNK);
        }
        match socket::recv_nonblocking(fd, &mut reader.incoming) {
            Ok(0) => reader.eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Idle: hold no buffers while waiting.
                if buf.is_empty() {
                    *buf = BytesMut::new();
                }
                reader.incoming = BytesMut::new();
                let mut first = [0u8; WAKE_READ];
                let n = stream.read(&mut first).await?;
                if n == 0 {
                    reader.eof = true;
                }
                reader.incoming.extend_from_slice(&first[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Encrypts and writes every buffer of `queue`, awaiting writability when
/// the socket is full. Buffers are consumed from the front.
pub async fn write_all(
    stream: &mut TcpStream,
    session: &TlsSession,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    loop {
        let mut blocked = VecDeque::new();
        {
            let mut conn = session.conn.borrow_mut();
            // rustls takes up to its buffer limit (64 KiB) at a time.
            while !queue.is_empty() {
                let slices: Vec<IoSlice<'_>> = queue
                    .iter()
                    .filter(|b| !b.is_empty())
                    .take(MAX_IOVECS)
                    .map(|b| IoSlice::new(b))
                    .collect();
                if slices.is_empty() {
                    // Only empty buffers were left.
                    drop(slices);
                    queue.clear();
                    break;
                }
                let n = conn.writer().write_vectored(&slices)?;
                drop(slices);
                if n == 0 {
                    if !conn.wants_write() {
                        // Nothing sealed and nothing taken: never spin.
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    // rustls' buffer is full: send what it sealed first.
                    break;
                }
                socket::advance(queue, n);
            }
            while conn.wants_write() {
                match conn.write_tls(&mut FdWriter(fd)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Socket full: take the records out of rustls and
                        // wait for writability with them.
                        let mut rest = Vec::new();
                        while conn.wants_write() {
                            conn.write_tls(&mut rest)?;
                        }
                        blocked.push_back(Bytes::from(rest));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !blocked.is_empty() {
            socket::write_all(stream, &mut blocked).await?;
        }
        if queue.is_empty() && !session.wants_write() {
            return Ok(());
        }
    }
}

/// Tells the client the session ends (close_notify), best effort.
pub async fn close_notify(stream: &mut TcpStream, session: &TlsSession) {
    session.conn.borrow_mut().send_close_notify();
    let _ = write_all(stream, session, &mut VecDeque::new()).await;
}

/// Non-blocking writes of rustls' records straight to the socket.
struct FdWriter(RawFd);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: a zeroed msghdr is valid; IoSlice is ABI-compatible with
        // iovec and the slices outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(socket::MAX_IOVECS) as _;
        let n = unsafe { libc::sendmsg(self.0, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
