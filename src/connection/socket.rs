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

/// Reads land in the shard's shared receive buffer unless the frame
/// buffer still has this much room; a receive that brought fewer bytes
/// than this (with what was pending) is copied into an allocation of its
/// own size. Message bodies are slices of the buffer they were read into
/// and keep all of it alive: without this, a slow publisher (one message
/// per read) would pin a 64 KiB buffer per queued message. Larger reads
/// stay zero-copy.
const COPY_BELOW: usize = 16 * 1024;

/// An AMQP frame's header (type, channel, payload size) and end octet.
const FRAME_HEADER: usize = 7;
const FRAME_END: usize = 1;

thread_local! {
    /// Per shard (thread): the receive buffer that reads land in, shared
    /// by the shard's connections so that what they read is packed densely
    /// (a retained body pins its neighbours' bytes, not a half-empty buffer
    /// of its own). Empty between reads.
    static RECEIVE: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Reads at least one byte into `buf`. Returns 0 at end of stream.
///
/// While data keeps coming it lands in the shard's receive buffer, behind
/// the (small) part of a frame still pending, and is split off it without
/// copying; small reads are copied out instead (see `COPY_BELOW`). A large
/// pending frame gets an allocation of its exact size. A connection
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
        grow_exact(buf, n);
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
    if buf.len() >= COPY_BELOW {
        // A large frame is pending: give it an allocation of exactly its
        // size (one copy of what came so far), so the rest of it is read
        // in place and nothing beyond it is held by its body.
        let rest = frame_rest(buf)
            .unwrap_or(chunk)
            .clamp(1, chunk.max(MAX_FRAME_REST));
        grow_exact(buf, rest);
        return recv_nonblocking(fd, buf);
    }
    RECEIVE.with(|receive| {
        let mut receive = receive.borrow_mut();
        debug_assert!(
            receive.is_empty(),
            "the receive buffer is empty between reads"
        );
        // The small pending part of a frame moves into the receive buffer
        // ahead of what arrives after it (a copy of under COPY_BELOW bytes).
        let pending = buf.len();
        let want = pending + COPY_BELOW.min(chunk);
        if receive.capacity() < want {
            // Exactly this size: `reserve` on a buffer whose earlier parts
            // are still shared would allocate at least the original size.
            *receive = BytesMut::with_capacity(chunk.max(want));
        }
        receive.extend_from_slice(buf);
        let n = match recv_nonblocking(fd, &mut receive) {
            Ok(n) => n,
            Err(e) => {
                receive.clear();
                return Err(e);
            }
        };
        let total = pending + n;
        if total < COPY_BELOW {
            *buf = BytesMut::from(&receive[..total]);
            receive.clear();
        } else {
            *buf = receive.split_to(total);
        }
        Ok(n)
    })
}

/// Gives `buf` room for `additional` more bytes, in an allocation of
/// exactly the size needed if it must grow: `BytesMut::reserve` on a buffer
/// split off the shared receive buffer would allocate at least that
/// buffer's original size.
fn grow_exact(buf: &mut BytesMut, additional: usize) {
    if buf.capacity() - buf.len() < additional {
        let mut grown = BytesMut::with_capacity(buf.len() + additional);
        grown.extend_from_slice(buf);
        *buf = grown;
    }
}

/// The largest rest of a frame `recv_some` allocates for: the largest
/// frame the server accepts (`handshake::FRAME_MAX`, which counts header
/// and end octet; a test there checks the two agree).
pub(super) const MAX_FRAME_REST: usize = 131_072;

/// How many bytes the frame that starts `buf` still lacks, if its header is
/// there and it is not complete. A claimed size beyond the server's
/// frame_max is the reader's to refuse; callers clamp what they allocate.
fn frame_rest(buf: &[u8]) -> Option<usize> {
    let size = u32::from_be_bytes(buf.get(3..FRAME_HEADER)?.try_into().ok()?) as usize;
    let whole = FRAME_HEADER + size + FRAME_END;
    whole.checked_sub(buf.len()).filter(|rest| *rest > 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn frame(payload: usize) -> Vec<u8> {
        let mut f = vec![3, 0, 1];
        f.extend_from_slice(&(payload as u32).to_be_bytes());
        f.extend(std::iter::repeat_n(b'x', payload));
        f.push(0xCE);
        f
    }

    #[test]
    fn frame_rest_counts_what_a_started_frame_lacks() {
        let f = frame(100);
        assert_eq!(frame_rest(&f[..3]), None, "no size yet");
        assert_eq!(frame_rest(&f[..7]), Some(101));
        assert_eq!(frame_rest(&f[..50]), Some(58));
        assert_eq!(frame_rest(&f), None, "complete");
    }

    /// Small bursts that each end inside a frame (a client writing
    /// message by message and pausing) get buffers of their own size, not
    /// a fresh 64 KiB buffer per burst that a retained body would keep
    /// alive.
    #[test]
    fn small_bursts_ending_inside_a_frame_get_buffers_of_their_size() {
        let (mut client, server) = UnixStream::pair().expect("socketpair");
        server.set_nonblocking(true).expect("nonblocking");
        let fd = server.as_raw_fd();
        let stream: Vec<u8> = (0..64).flat_map(|_| frame(300)).collect();
        let mut buf = BytesMut::new();
        let mut frames = 0;
        for burst in stream.chunks(3000) {
            client.write_all(burst).expect("write");
            let n = recv_some(fd, &mut buf, 64 * 1024).expect("data is there");
            assert_eq!(n, burst.len());
            assert!(
                buf.capacity() < COPY_BELOW,
                "a {} byte read holds a {} byte buffer",
                n,
                buf.capacity()
            );
            // Take the complete frames, as the reader does.
            while buf.len() >= FRAME_HEADER && frame_rest(&buf).is_none() {
                let size = u32::from_be_bytes(buf[3..7].try_into().expect("4 bytes")) as usize;
                let _body = buf.split_to(FRAME_HEADER + size + FRAME_END).freeze();
                frames += 1;
            }
        }
        assert_eq!(frames, 64);
        assert!(buf.is_empty());
    }

    /// A large frame pending gets an allocation of exactly its size.
    #[test]
    fn a_large_pending_frame_is_completed_in_an_allocation_of_its_size() {
        let (mut client, server) = UnixStream::pair().expect("socketpair");
        server.set_nonblocking(true).expect("nonblocking");
        let fd = server.as_raw_fd();
        let big = frame(100_000);
        client.write_all(&big[..20_000]).expect("write");
        let mut buf = BytesMut::new();
        assert_eq!(recv_some(fd, &mut buf, 64 * 1024).expect("read"), 20_000);
        client.write_all(&big[20_000..]).expect("write");
        client.write_all(&frame(10)).expect("write");
        while frame_rest(&buf).is_some() || buf.len() < FRAME_HEADER {
            recv_some(fd, &mut buf, 64 * 1024).expect("read");
        }
        assert_eq!(&buf[..big.len()], &big[..]);
        assert_eq!(buf.capacity(), big.len(), "nothing beyond the frame");
    }
}
