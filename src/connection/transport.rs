//! What a connection reads and writes through, decided once per connection:
//! the plain TCP socket (`socket`: zero-copy reads, vectored `sendmsg` of
//! the queued `Bytes`) or TLS over it (`tls`). The plain path pays one
//! branch per read or write batch for the choice, nothing per frame.

use crate::connection::socket;
use crate::connection::tls::{self, TlsReader, TlsSession};
use bytes::{Bytes, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use std::collections::VecDeque;
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::rc::Rc;

/// One end of a connection: the reader's, or the writer's (a dup'ed
/// descriptor sharing the TLS session).
pub struct Transport {
    stream: TcpStream,
    tls: Option<TlsReader>,
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Transport {
        Transport { stream, tls: None }
    }

    pub fn tls(stream: TcpStream, session: Rc<TlsSession>) -> Transport {
        Transport {
            stream,
            tls: Some(TlsReader::new(session)),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// The TLS session, on an amqps connection.
    pub fn session(&self) -> Option<&Rc<TlsSession>> {
        self.tls.as_ref().map(|r| &r.session)
    }

    /// A second handle for the writer task: a dup'ed descriptor and the
    /// same TLS session. None if the descriptor could not be duplicated.
    pub fn writer_half(&self) -> Option<Transport> {
        // SAFETY: dup returns a fresh descriptor we own.
        let dup = unsafe { libc::dup(self.fd()) };
        if dup < 0 {
            return None;
        }
        let stream = unsafe { TcpStream::from_raw_fd(dup) };
        Some(match self.session() {
            Some(s) => Transport::tls(stream, s.clone()),
            None => Transport::plain(stream),
        })
    }

    /// Reads at least one byte into `buf` (0 at the end of the stream).
    pub async fn read_into(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        match &mut self.tls {
            None => socket::read_into(&mut self.stream, buf, chunk).await,
            Some(reader) => tls::read_into(&mut self.stream, reader, buf, chunk).await,
        }
    }

    /// Reads exactly `out.len()` bytes (the protocol header). On TLS what
    /// came with them stays in `buf` for the frames that follow.
    pub async fn read_exact(&mut self, out: &mut [u8], buf: &mut BytesMut) -> io::Result<()> {
        if self.tls.is_none() {
            return socket::read_exact(&mut self.stream, out).await;
        }
        while buf.len() < out.len() {
            if self.read_into(buf, 4096).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        out.copy_from_slice(&buf.split_to(out.len()));
        Ok(())
    }

    /// Writes every buffer of `queue`; see `socket::write_all`.
    pub async fn write_queue(&mut self, queue: &mut VecDeque<Bytes>) -> io::Result<()> {
        match &self.tls {
            None => socket::write_all(&mut self.stream, queue).await,
            Some(reader) => tls::write_all(&mut self.stream, &reader.session, queue).await,
        }
    }

    /// Writes `data` (handshake frames, before the writer task exists).
    pub async fn write_bytes(&mut self, data: &[u8]) -> io::Result<()> {
        match &self.tls {
            None => self.stream.write_all(data).await,
            Some(_) => {
                let mut queue = VecDeque::from([Bytes::copy_from_slice(data)]);
                self.write_queue(&mut queue).await
            }
        }
    }

    /// TLS has records of its own to send (an alert, a key update).
    pub fn tls_wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|r| r.session.wants_write())
    }

    /// The connection is done: on TLS, says so with close_notify.
    pub async fn finish(&mut self) {
        if let Some(reader) = &self.tls {
            tls::close_notify(&mut self.stream, &reader.session).await;
        }
    }
}
