//! A small blocking AMQP 0-9-1 client on Warren's codec: one `Stream` (TCP,
//! or TLS for amqps),
//! a read buffer split into frames by `FrameDecoder`, a write buffer that
//! batches many frames per `write` syscall, the handshake (PLAIN, tune-ok
//! echoing the server, heartbeats off), synchronous RPCs for setup, and the
//! pre-encoded publish path (`Publisher`) that costs no allocation per
//! message.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use warren_protocol::frame::{
    encode_header_frame, encode_method_frame, Frame, FrameDecoder, FrameError, FRAME_BODY,
    FRAME_END, FRAME_MIN_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER,
};
use warren_protocol::methods::{
    BasicPublish, ChannelClose, ChannelOpen, ConnectionClose, ConnectionCloseOk, ConnectionOpen,
    ConnectionStartOk, ConnectionTuneOk, Method,
};
use warren_protocol::properties::{BasicProperties, BASIC_CLASS_ID};
use warren_protocol::types::{FieldTable, FieldValue, ShortStr};

use crate::ids::{DelaySpread, MAX_DELAY_VALUES};
use crate::stream::Stream;
use crate::uri::AmqpUri;

/// How much to ask the kernel for per read (unless `set_read_size`).
const READ_CHUNK: usize = crate::cli::DEFAULT_READ_SIZE;
/// Flush the write buffer once it holds this much.
pub const FLUSH_AT: usize = 64 * 1024;
/// Timeout for setup RPCs and the handshake.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A client-side failure: I/O, a protocol violation, or the broker closing
/// the connection or a channel.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error(format!("I/O error: {e}"))
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        Error(format!("bad frame from broker: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Whether an error is only a read timeout (the caller polls a stop flag).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One open AMQP connection.
pub struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    /// Bytes asked for per read syscall.
    read_chunk: usize,
    pub wbuf: BytesMut,
    decoder: FrameDecoder,
    pub frame_max: u32,
    pub channel_max: u16,
    pub server_properties: FieldTable,
}

fn str_value(s: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
}

impl Conn {
    /// Sets the socket's SO_SNDBUF (the kernel doubles it for its own
    /// bookkeeping and stops autotuning it).
    pub fn set_send_buffer(&mut self, bytes: u32) -> Result<()> {
        self.stream
            .set_send_buffer(bytes)
            .map_err(|e| Error(format!("SO_SNDBUF {bytes}: {e}")))
    }

    /// Reads at most `bytes` per read syscall from now on (`--read-size`).
    pub fn set_read_size(&mut self, bytes: usize) {
        self.read_chunk = bytes.max(1);
    }

    /// Connects and runs the handshake up to `connection.open-ok`.
    pub fn connect(uri: &AmqpUri, name: &str) -> Result<Conn> {
        Conn::handshake(uri, name).map_err(|e| {
            if e.0.contains("os error 11") || e.0.contains("timed out") {
                Error(format!(
                    "no handshake reply from {} within {} s (broker overloaded, or out of \
                     file descriptors?): {e}",
                    uri.addr(),
                    RPC_TIMEOUT.as_secs()
                ))
            } else {
                e
            }
        })
    }

    fn handshake(uri: &AmqpUri, name: &str) -> Result<Conn> {
        let stream = Stream::connect(&uri.addr(), &uri.host, uri.tls)
            .map_err(|e| Error(format!("cannot connect to {}: {e}", uri.addr())))?;
        stream.set_read_timeout(Some(RPC_TIMEOUT))?;
        stream.set_write_timeout(Some(RPC_TIMEOUT))?;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK * 2),
            read_chunk: READ_CHUNK,
            wbuf: BytesMut::with_capacity(FLUSH_AT * 2),
            decoder: FrameDecoder::new(FRAME_MIN_SIZE),
            frame_max: FRAME_MIN_SIZE,
            channel_max: 0,
            server_properties: FieldTable::new(),
        };
        conn.wbuf.put_slice(&PROTOCOL_HEADER);
        conn.flush()?;
        let start = match conn.read_method(0)? {
            Method::ConnectionStart(s) => s,
            other => {
                return Err(Error(format!(
                    "expected connection.start, got {}",
                    other.name()
                )))
            }
        };
        if !start
            .mechanisms
            .split(|b| *b == b' ')
            .any(|m| m == b"PLAIN")
        {
            return Err(Error("broker does not offer PLAIN authentication".into()));
        }
        conn.server_properties = start.server_properties;
        let mut caps = FieldTable::new();
        for cap in [
            "publisher_confirms",
            "consumer_cancel_notify",
            "basic.nack",
            "connection.blocked",
        ] {
            caps.insert(ShortStr::from_static(cap), FieldValue::Bool(true));
        }
        let mut props = FieldTable::new();
        props.insert(ShortStr::from_static("product"), str_value("loadgen"));
        props.insert(ShortStr::from_static("platform"), str_value("Rust"));
        props.insert(
            ShortStr::from_static("version"),
            str_value(env!("CARGO_PKG_VERSION")),
        );
        props.insert(
            ShortStr::from_static("connection_name"),
            str_value(&name[..name.len().min(200)]),
        );
        props.insert(
            ShortStr::from_static("capabilities"),
            FieldValue::Table(caps),
        );
        let mut response = Vec::with_capacity(uri.user.len() + uri.pass.len() + 2);
        response.push(0);
        response.extend_from_slice(uri.user.as_bytes());
        response.push(0);
        response.extend_from_slice(uri.pass.as_bytes());
        conn.send(
            0,
            ConnectionStartOk {
                client_properties: props,
                mechanism: ShortStr::from_static("PLAIN"),
                response: Bytes::from(response),
                locale: ShortStr::from_static("en_US"),
            },
        );
        conn.flush()?;
        let tune = match conn.read_method(0)? {
            Method::ConnectionTune(t) => t,
            other => {
                return Err(Error(format!(
                    "expected connection.tune, got {}",
                    other.name()
                )))
            }
        };
        conn.frame_max = tune.frame_max;
        conn.channel_max = tune.channel_max;
        conn.send(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat: 0,
            },
        );
        conn.decoder.set_frame_max(tune.frame_max);
        let vhost = ShortStr::try_from_string(uri.vhost.clone())
            .ok_or_else(|| Error("vhost longer than 255 bytes".into()))?;
        conn.send(
            0,
            ConnectionOpen {
                virtual_host: vhost,
            },
        );
        conn.flush()?;
        match conn.read_method(0)? {
            Method::ConnectionOpenOk(_) => Ok(conn),
            other => Err(Error(format!(
                "expected connection.open-ok, got {}",
                other.name()
            ))),
        }
    }

    /// The largest body payload one frame may carry.
    pub fn max_body_frame(&self) -> usize {
        if self.frame_max == 0 {
            128 * 1024
        } else {
            self.frame_max as usize - FRAME_OVERHEAD
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.stream.set_read_timeout(t)?;
        Ok(())
    }

    /// Hands the read side to another thread: a second handle on the
    /// socket, whatever is already buffered, and the decoder. This `Conn`
    /// must not read afterwards (except in `close`, which tolerates it).
    pub fn take_read_half(&mut self) -> Result<(Stream, BytesMut, FrameDecoder)> {
        let stream = self.stream.try_clone()?;
        let rbuf = std::mem::replace(&mut self.rbuf, BytesMut::new());
        Ok((stream, rbuf, self.decoder.clone()))
    }

    /// Buffers a method frame (not sent until `flush`).
    pub fn send(&mut self, channel: u16, method: impl Into<Method>) {
        encode_method_frame(&mut self.wbuf, channel, &method.into());
    }

    /// Writes out the whole write buffer.
    pub fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf)?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next frame already in the read buffer, if whole.
    pub fn next_buffered(&mut self) -> Result<Option<Frame>> {
        Ok(self.decoder.decode(&mut self.rbuf)?)
    }

    /// One read syscall into the read buffer. `Ok(0)` never happens:
    /// end-of-stream is an error. Read timeouts come back as `io::Error`.
    pub fn fill(&mut self) -> io::Result<usize> {
        fill(&mut self.stream, &mut self.rbuf, self.read_chunk)
    }

    /// The next frame, reading as needed (blocking up to the read timeout).
    pub fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = self.next_buffered()? {
                return Ok(f);
            }
            self.fill()?;
        }
    }

    /// The next method on `channel`, skipping heartbeats and content; a
    /// `connection.close` or `channel.close` from the broker is an error.
    pub fn read_method(&mut self, channel: u16) -> Result<Method> {
        loop {
            match self.read_frame()? {
                Frame::Method {
                    channel: ch,
                    method,
                } => {
                    if let Method::ConnectionClose(c) = &method {
                        self.send(0, ConnectionCloseOk);
                        let _ = self.flush();
                        return Err(Error(format!(
                            "broker closed the connection: {} {}",
                            c.reply_code, c.reply_text
                        )));
                    }
                    if let Method::ChannelClose(c) = &method {
                        return Err(Error(format!(
                            "broker closed channel {ch}: {} {}",
                            c.reply_code, c.reply_text
                        )));
                    }
                    if ch == channel {
                        return Ok(method);
                    }
                }
                Frame::Header { .. } | Frame::Body { .. } | Frame::Heartbeat { .. } => {}
            }
        }
    }

    /// Sends a method and waits for the reply on the same channel.
    pub fn rpc(&mut self, channel: u16, method: impl Into<Method>) -> Result<Method> {
        let method = method.into();
        let name = method.name();
        encode_method_frame(&mut self.wbuf, channel, &method);
        self.flush()?;
        self.read_method(channel)
            .map_err(|e| Error(format!("{name}: {e}")))
    }

    /// Opens a channel.
    pub fn open_channel(&mut self, channel: u16) -> Result<()> {
        match self.rpc(channel, ChannelOpen)? {
            Method::ChannelOpenOk(_) => Ok(()),
            other => Err(Error(format!(
                "expected channel.open-ok, got {}",
                other.name()
            ))),
        }
    }

    /// Takes back the read buffer handed out by `take_read_half` (once the
    /// reader thread is done), so this `Conn` can read again in sync.
    pub fn restore_read_half(&mut self, rbuf: BytesMut) {
        debug_assert!(self.rbuf.is_empty());
        self.rbuf = rbuf;
    }

    /// Closes a channel and waits for close-ok, skipping whatever else
    /// arrives meanwhile (late confirms). The broker handles channel.close
    /// after every method sent before it, so once close-ok is back every
    /// earlier publish on that channel has been processed.
    pub fn close_channel(&mut self, channel: u16) -> Result<()> {
        self.send(
            channel,
            ChannelClose {
                reply_code: 200,
                reply_text: ShortStr::from_static("bye"),
                class_id: 0,
                method_id: 0,
            },
        );
        self.flush()?;
        loop {
            if let Method::ChannelCloseOk(_) = self.read_method(channel)? {
                return Ok(());
            }
        }
    }

    /// Closes the connection politely, waiting (bounded) for close-ok.
    pub fn close(mut self) {
        self.send(
            0,
            ConnectionClose {
                reply_code: 200,
                reply_text: ShortStr::from_static("bye"),
                class_id: 0,
                method_id: 0,
            },
        );
        if self.flush().is_err() {
            return;
        }
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
        for _ in 0..100_000 {
            match self.read_frame() {
                Ok(Frame::Method {
                    method: Method::ConnectionCloseOk(_),
                    ..
                })
                | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// One read syscall of at most `chunk` bytes appending to `rbuf`.
pub fn fill(stream: &mut Stream, rbuf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
    let len = rbuf.len();
    rbuf.resize(len + chunk, 0);
    match stream.read(&mut rbuf[len..]) {
        Ok(0) => {
            rbuf.truncate(len);
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "broker closed the socket",
            ))
        }
        Ok(n) => {
            rbuf.truncate(len + n);
            Ok(n)
        }
        Err(e) => {
            rbuf.truncate(len);
            Err(e)
        }
    }
}

/// The pre-encoded frames of one channel's publishes: method + header are
/// fixed bytes (one header per delay when publishing with `x-delay`), the
/// body is a template whose first 8 bytes are overwritten with the publish
/// timestamp and the next 8 (if the body has them) with the message id.
/// Appending a message copies bytes into the write buffer and allocates
/// nothing.
pub struct Publisher {
    /// Method + header frames; with `delays`, one per delay value, each
    /// `stride` bytes long (the `x-delay` header is a fixed-size integer).
    prefixes: Vec<u8>,
    stride: usize,
    delays: Option<DelaySpread>,
    body: Vec<u8>,
    channel: u16,
    max_frame_body: usize,
}

impl Publisher {
    pub fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        size: usize,
        persistent: bool,
        max_frame_body: usize,
        delays: Option<DelaySpread>,
    ) -> Result<Publisher> {
        assert!(size >= 8, "body must hold the 8-byte timestamp");
        assert!(max_frame_body >= 8, "frame_max below the AMQP minimum");
        let exchange = ShortStr::try_from_string(exchange.to_string())
            .ok_or_else(|| Error("exchange name longer than 255 bytes".into()))?;
        let routing_key = ShortStr::try_from_string(routing_key.to_string())
            .ok_or_else(|| Error("routing key longer than 255 bytes".into()))?;
        let values = delays.map_or(1, |d| d.values());
        if values > MAX_DELAY_VALUES {
            return Err(Error(format!(
                "{values} distinct delays: at most {MAX_DELAY_VALUES}"
            )));
        }
        let mut prefixes = BytesMut::new();
        let mut stride = 0;
        for v in 0..values {
            let start = prefixes.len();
            encode_method_frame(
                &mut prefixes,
                channel,
                &Method::BasicPublish(BasicPublish {
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    mandatory: false,
                    immediate: false,
                }),
            );
            let headers = delays.map(|d| {
                let mut h = FieldTable::new();
                let ms = i32::try_from(u64::from(d.min_ms) + v).unwrap_or(i32::MAX);
                h.insert(ShortStr::from_static("x-delay"), FieldValue::I32(ms));
                h
            });
            let props = BasicProperties {
                delivery_mode: Some(if persistent { 2 } else { 1 }),
                headers,
                ..BasicProperties::default()
            };
            encode_header_frame(
                &mut prefixes,
                channel,
                BASIC_CLASS_ID,
                size as u64,
                &props.to_bytes(),
            );
            let len = prefixes.len() - start;
            if v > 0 && len != stride {
                return Err(Error("x-delay headers of different sizes".into()));
            }
            stride = len;
        }
        let body = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        Ok(Publisher {
            prefixes: prefixes.to_vec(),
            stride,
            delays,
            body,
            channel,
            max_frame_body,
        })
    }

    /// Appends message `id` stamped with `ts_ns`.
    #[inline]
    pub fn append(&self, buf: &mut BytesMut, ts_ns: u64, id: u64) {
        let at = match self.delays {
            None => 0,
            Some(d) => (d.delay_ms(id) - d.min_ms) as usize * self.stride,
        };
        buf.reserve(self.stride + self.body.len() + FRAME_OVERHEAD * 2);
        buf.put_slice(&self.prefixes[at..at + self.stride]);
        let mut off = 0;
        while off < self.body.len() {
            let n = (self.body.len() - off).min(self.max_frame_body);
            buf.put_u8(FRAME_BODY);
            buf.put_u16(self.channel);
            buf.put_u32(n as u32);
            if off == 0 {
                buf.put_u64(ts_ns);
                if n >= 16 {
                    buf.put_u64(id);
                    buf.put_slice(&self.body[16..n]);
                } else {
                    buf.put_slice(&self.body[8..n]);
                }
            } else {
                buf.put_slice(&self.body[off..off + n]);
            }
            buf.put_u8(FRAME_END);
            off += n;
        }
    }
}

/// The timestamp in the first 8 bytes of a body (`None` if too short).
#[inline]
pub fn body_timestamp(first_body_frame: &[u8]) -> Option<u64> {
    let b: [u8; 8] = first_body_frame.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_protocol::frame::FrameDecoder;

    #[test]
    fn publisher_frames_decode_and_split() {
        // 20-byte body, frame bodies of at most 8 bytes: 3 body frames.
        let p = Publisher::new(3, "ex", "rk", 20, true, 8, None).unwrap();
        let mut buf = BytesMut::new();
        p.append(&mut buf, 0x0102_0304_0506_0708, 99);
        let mut dec = FrameDecoder::new(0);
        match dec.decode(&mut buf).unwrap().unwrap() {
            Frame::Method {
                channel: 3,
                method: Method::BasicPublish(m),
            } => {
                assert_eq!(m.exchange.as_str(), "ex");
                assert_eq!(m.routing_key.as_str(), "rk");
            }
            other => panic!("unexpected {other:?}"),
        }
        match dec.decode(&mut buf).unwrap().unwrap() {
            Frame::Header { channel: 3, header } => {
                assert_eq!(header.body_size, 20);
                assert_eq!(header.delivery_mode(), Some(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut body = Vec::new();
        for _ in 0..3 {
            match dec.decode(&mut buf).unwrap().unwrap() {
                Frame::Body {
                    channel: 3,
                    payload,
                } => body.extend_from_slice(&payload),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(buf.is_empty());
        assert_eq!(body.len(), 20);
        assert_eq!(body_timestamp(&body), Some(0x0102_0304_0506_0708));
        assert_eq!(
            &body[8..],
            b"ijklmnopqrst",
            "an 8-byte first frame has no id"
        );
        assert_eq!(body_timestamp(&body[..7]), None);
    }

    #[test]
    fn publisher_writes_the_id_and_the_delay_header_of_each_message() {
        let spread = DelaySpread {
            min_ms: 10,
            max_ms: 2000,
        };
        let p = Publisher::new(1, "dx", "q", 24, false, 4096, Some(spread)).unwrap();
        for id in [crate::ids::make_id(0, 5), crate::ids::make_id(3, 77)] {
            let mut buf = BytesMut::new();
            p.append(&mut buf, 1234, id);
            let mut dec = FrameDecoder::new(0);
            assert!(matches!(
                dec.decode(&mut buf).unwrap(),
                Some(Frame::Method {
                    method: Method::BasicPublish(_),
                    ..
                })
            ));
            let Some(Frame::Header { header, .. }) = dec.decode(&mut buf).unwrap() else {
                panic!("no header frame");
            };
            let props = header.properties().unwrap();
            let delay = props
                .headers
                .as_ref()
                .and_then(|h| h.get("x-delay"))
                .cloned();
            let want = i32::try_from(spread.delay_ms(id)).unwrap();
            assert_eq!(delay, Some(FieldValue::I32(want)));
            let Some(Frame::Body { payload, .. }) = dec.decode(&mut buf).unwrap() else {
                panic!("no body frame");
            };
            assert_eq!(body_timestamp(&payload), Some(1234));
            assert_eq!(crate::ids::body_id(&payload), Some(id));
            assert!(buf.is_empty());
        }
        let too_wide = DelaySpread {
            min_ms: 0,
            max_ms: 200_000,
        };
        assert!(Publisher::new(1, "dx", "q", 24, false, 4096, Some(too_wide)).is_err());
    }
}
