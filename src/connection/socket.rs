//! Thin socket I/O for connections on top of glommio's `TcpStream`:
//! reading straight into the spare capacity of a `BytesMut` (so frames can be
//! split off it as zero-copy `Bytes`), and vectored writes of queued `Bytes`
//! (frame headers from a scratch buffer, bodies as slices of the buffers
//! they were read into) with `sendmsg`.
//!
//! Both try a non-blocking syscall first and fall back to glommio's readiness
//! wait only when the kernel says `EAGAIN`.

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::collections::VecDeque;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};

/// At most this many buffers go into one `sendmsg`.
pub(super) const MAX_IOVECS: usize = 64;

/// Bytes of the first read after a wait (copied once into the frame buffer).
const WAKE_READ: usize = 1024;

/// A read that starts a fresh frame buffer goes into the shard's shared
/// receive buffer; if it brought fewer bytes than this they are copied into
/// an allocation of their own size. Message bodies are slices of the buffer
/// they were read into and keep all of it alive: without this, a slow
/// publisher (one message per read) would pin a 64 KiB buffer per queued
/// message. Larger reads stay zero-copy.
const COPY_BELOW: usize = 16 * 1024;

thread_local! {
    /// Per shard (thread): the receive buffer that fresh reads land in.
    static RECEIVE: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Reads at least one byte into `buf`. Returns 0 at end of stream.
///
/// While data keeps coming it is received without copying: into `buf`'s
/// spare capacity when a frame is pending or room is left, else into the
/// shard's receive buffer (`chunk` bytes reserved) and split off it —
/// small reads are copied out instead (see `COPY_BELOW`). A connection
/// with nothing to read waits through glommio's read path into a small
/// bounce buffer, and an empty `buf` gives its capacity back first, so an
/// idle connection holds no read buffer at all.
pub async fn read_into(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    chunk: usize,
) -> io::Result<usize> {
    let fd = stream.as_raw_fd();
    loop {
        match recv_some(fd, buf, chunk) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if buf.is_empty() {
            // Nothing pending: release the read buffer while we wait.
            *buf = BytesMut::new();
        }
        // Wait for readability through glommio's own read path (a
        // readiness poll, then recv).
        let mut first = [0u8; WAKE_READ];
        let n = stream.read(&mut first).await?;
        buf.extend_from_slice(&first[..n]);
        return Ok(n);
    }
}

/// One non-blocking receive; see `read_into` for where the bytes go.
fn recv_some(fd: RawFd, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    if room >= COPY_BELOW.min(chunk) {
        return recv_nonblocking(fd, buf);
    }
    if !buf.is_empty() {
        // A frame is pending: grow (this copies the pending bytes once).
        buf.reserve(chunk);
        return recv_nonblocking(fd, buf);
    }
    RECEIVE.with(|receive| {
        let mut receive = receive.borrow_mut();
        if receive.capacity() - receive.len() < COPY_BELOW.min(chunk) {
            receive.reserve(chunk);
        }
        let n = recv_nonblocking(fd, &mut receive)?;
        if n < COPY_BELOW {
            *buf = BytesMut::from(&receive[..n]);
            receive.clear();
        } else {
            *buf = receive.split_to(n);
        }
        Ok(n)
    })
}

pub(super) fn recv_nonblocking(fd: RawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: recv writes at most `spare.len()` bytes into the spare
    // capacity; we only mark as initialised what the kernel reported.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr() as *mut libc::c_void,
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised exactly n bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Writes every buffer of `queue` (vectored), awaiting writability when the
/// socket is full. Buffers are consumed from the front as they are written.
pub async fn write_all(stream: &mut TcpStream, queue: &mut VecDeque<Bytes>) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    while !queue.is_empty() {
        match send_vectored(fd, queue) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Let glommio wait for writability by writing the head buffer
                // through it, then carry on vectored.
                let head = queue.front_mut().expect("non-empty");
                let n = stream.write(head).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                advance(queue, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn send_vectored(fd: RawFd, queue: &mut VecDeque<Bytes>) -> io::Result<()> {
    let mut iov: [libc::iovec; MAX_IOVECS] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOVECS];
    let mut count = 0;
    for b in queue.iter().take(MAX_IOVECS) {
        iov[count] = libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        };
        count += 1;
    }
    // SAFETY: a zeroed msghdr is valid; we point it at `count` live iovecs
    // whose buffers outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = count as _;
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    advance(queue, n as usize);
    Ok(())
}

pub(super) fn advance(queue: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let head = queue.front_mut().expect("wrote more than queued");
        if head.len() <= n {
            n -= head.len();
            queue.pop_front();
        } else {
            head.advance(n);
            n = 0;
        }
    }
    while queue.front().is_some_and(|b| b.is_empty()) {
        queue.pop_front();
    }
}

/// Reads exactly `buf.len()` bytes (used for the protocol header).
pub async fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    stream.read_exact(buf).await
}
