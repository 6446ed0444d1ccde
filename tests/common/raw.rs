//! A minimal, blocking, hand-rolled AMQP 0-9-1 client for tests that need
//! byte-level control the client libraries don't give: wrong protocol
//! headers, exact tune values, illegal channel ids, and dropping the TCP
//! socket without a connection.close. Only what those tests need.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;

/// The largest frame payload this client accepts from a server.
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// The protocol header of AMQP 0-9-1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// One frame as read off the socket.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Vec<u8>,
}

/// A decoded method frame: channel, class id, method id and argument bytes.
#[derive(Debug, Clone)]
pub struct RawMethod {
    pub channel: u16,
    pub class: u16,
    pub method: u16,
    pub args: Vec<u8>,
}

impl RawMethod {
    pub fn reader(&self) -> ArgReader<'_> {
        ArgReader {
            buf: &self.args,
            pos: 0,
        }
    }

    /// `(reply_code, reply_text)` of a connection.close or channel.close.
    pub fn close_reason(&self) -> (u16, String) {
        assert!(
            (self.class, self.method) == (10, 50) || (self.class, self.method) == (20, 40),
            "not a close method: {self:?}"
        );
        let mut r = self.reader();
        let code = r.short();
        let text = r.shortstr();
        (code, text)
    }

    /// Asserts this is a connection.close (on channel 0) with `code` and `text`.
    #[track_caller]
    pub fn assert_connection_close(&self, code: u16, text: &str) {
        assert_eq!(
            (self.channel, self.class, self.method),
            (0, 10, 50),
            "connection.close: {self:?}"
        );
        assert_eq!(self.close_reason(), (code, text.to_string()));
    }
}

/// The values a server proposed in connection.tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tune {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
}

/// A delivery read by [`RawConn::read_delivery`].
#[derive(Debug, Clone)]
pub struct RawDelivery {
    pub channel: u16,
    pub consumer_tag: String,
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub body: Vec<u8>,
}

/// A blocking AMQP connection over a plain TcpStream.
pub struct RawConn {
    pub stream: TcpStream,
    /// The encoded server-properties table from connection.start.
    pub server_properties: Vec<u8>,
}

impl RawConn {
    /// Opens a TCP connection (no AMQP yet) with a 10 s read timeout.
    pub fn connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawConn {
            stream,
            server_properties: Vec::new(),
        }
    }

    /// Connects, performs the whole handshake as guest/guest on vhost `/`
    /// (answering tune with the server's channel_max and frame_max and
    /// heartbeat 0), and returns the server's tune proposal.
    pub fn open(addr: &str) -> (RawConn, Tune) {
        let mut c = RawConn::connect(addr);
        let tune = c.handshake("guest", "guest");
        (c, tune)
    }

    /// Sends the protocol header and reads connection.start, keeping the
    /// server properties in `self.server_properties`.
    pub fn begin(&mut self) {
        self.send_bytes(PROTOCOL_HEADER);
        let start = self.expect_method();
        assert_eq!((start.class, start.method), (10, 10), "connection.start");
        let mut r = start.reader();
        assert_eq!((r.octet(), r.octet()), (0, 9), "version-major/minor");
        self.server_properties = r.table_raw();
        let mechanisms = String::from_utf8(r.longstr()).expect("utf8 mechanisms");
        assert!(
            mechanisms.split(' ').any(|m| m == "PLAIN"),
            "PLAIN offered: {mechanisms:?}"
        );
    }

    /// Sends connection.start-ok with PLAIN credentials; advertises the
    /// `authentication_failure_close` capability if asked.
    pub fn start_ok(&mut self, user: &str, password: &str, auth_failure_close: bool) {
        let mut response = vec![0u8];
        response.extend_from_slice(user.as_bytes());
        response.push(0);
        response.extend_from_slice(password.as_bytes());
        self.start_ok_with("PLAIN", &response, auth_failure_close);
    }

    /// Sends connection.start-ok with `mechanism` and its `response`.
    pub fn start_ok_with(&mut self, mechanism: &str, response: &[u8], auth_failure_close: bool) {
        let mut props = Vec::new();
        if auth_failure_close {
            let mut caps = Vec::new();
            let key = b"authentication_failure_close";
            caps.push(key.len() as u8);
            caps.extend_from_slice(key);
            caps.extend_from_slice(b"t\x01");
            let key = b"capabilities";
            props.push(key.len() as u8);
            props.extend_from_slice(key);
            props.push(b'F');
            props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
            props.extend_from_slice(&caps);
        }
        let args = Args::new()
            .table(&props)
            .shortstr(mechanism)
            .longstr(response)
            .shortstr("en_US")
            .done();
        self.send_method(0, 10, 11, &args);
    }

    /// Runs the handshake after connect up to connection.open on `vhost`;
    /// returns the server's answer to it (open-ok, or connection.close).
    pub fn open_vhost(&mut self, user: &str, password: &str, vhost: &str) -> RawMethod {
        self.begin();
        self.start_ok(user, password, false);
        let tune = self.expect_method();
        assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
        let mut r = tune.reader();
        let args = Args::new().short(r.short()).long(r.long()).short(0).done();
        self.send_method(0, 10, 31, &args);
        let args = Args::new().shortstr(vhost).shortstr("").octet(0).done();
        self.send_method(0, 10, 40, &args);
        self.expect_method()
    }

    /// Runs the handshake after connect; panics if the server refuses.
    pub fn handshake(&mut self, user: &str, password: &str) -> Tune {
        self.begin();
        self.start_ok(user, password, false);
        let tune = self.expect_method();
        assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
        let mut r = tune.reader();
        let t = Tune {
            channel_max: r.short(),
            frame_max: r.long(),
            heartbeat: r.short(),
        };
        let args = Args::new()
            .short(t.channel_max)
            .long(t.frame_max)
            .short(0)
            .done();
        self.send_method(0, 10, 31, &args);
        let args = Args::new().shortstr("/").shortstr("").octet(0).done();
        self.send_method(0, 10, 40, &args);
        let ok = self.expect_method();
        assert_eq!(
            (ok.class, ok.method),
            (10, 41),
            "connection.open-ok: {ok:?}"
        );
        t
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to broker");
    }

    /// Writes one frame.
    pub fn send_frame(&mut self, kind: u8, channel: u16, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("payload fits u32");
        let mut f = Vec::with_capacity(payload.len() + 8);
        f.push(kind);
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(payload);
        f.push(FRAME_END);
        self.send_bytes(&f);
    }

    pub fn send_method(&mut self, channel: u16, class: u16, method: u16, args: &[u8]) {
        let mut p = Vec::with_capacity(args.len() + 4);
        p.extend_from_slice(&class.to_be_bytes());
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        self.send_frame(FRAME_METHOD, channel, &p);
    }

    /// Reads one frame; Err on EOF, reset or timeout.
    pub fn read_frame(&mut self) -> io::Result<RawFrame> {
        let mut head = [0u8; 7];
        self.stream.read_exact(&mut head)?;
        let kind = head[0];
        let channel = u16::from_be_bytes([head[1], head[2]]);
        let len = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame payload of {len} bytes"),
            ));
        }
        let mut payload = vec![0u8; len + 1];
        self.stream.read_exact(&mut payload)?;
        let end = payload.pop();
        if end != Some(FRAME_END) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame end {end:?}"),
            ));
        }
        Ok(RawFrame {
            kind,
            channel,
            payload,
        })
    }

    /// Reads the next non-heartbeat frame, which must be a method frame.
    pub fn read_method(&mut self) -> io::Result<RawMethod> {
        loop {
            let f = self.read_frame()?;
            match f.kind {
                FRAME_HEARTBEAT => continue,
                FRAME_METHOD if f.payload.len() >= 4 => {
                    return Ok(RawMethod {
                        channel: f.channel,
                        class: u16::from_be_bytes([f.payload[0], f.payload[1]]),
                        method: u16::from_be_bytes([f.payload[2], f.payload[3]]),
                        args: f.payload[4..].to_vec(),
                    })
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("expected a method frame, got {f:?}"),
                    ))
                }
            }
        }
    }

    #[track_caller]
    pub fn expect_method(&mut self) -> RawMethod {
        self.read_method()
            .unwrap_or_else(|e| panic!("reading a method frame: {e}"))
    }

    /// True if the server closed the socket (EOF or reset) within the read
    /// timeout, discarding whatever frames came first.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Reads everything until the server closes the socket; returns it.
    /// Panics if the socket stays open past the read timeout.
    pub fn read_until_eof(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    assert!(out.len() <= MAX_PAYLOAD, "too much data before EOF");
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("server did not close the socket: {e}"),
            }
        }
    }

    /// channel.open on `channel`, expecting channel.open-ok.
    pub fn channel_open(&mut self, channel: u16) {
        self.send_method(channel, 20, 10, &Args::new().shortstr("").done());
        let m = self.expect_method();
        assert_eq!(
            (m.channel, m.class, m.method),
            (channel, 20, 11),
            "channel.open-ok"
        );
    }

    /// queue.declare (non-passive, non-durable, not exclusive, no auto-delete)
    /// expecting declare-ok; returns `(name, message_count, consumer_count)`.
    pub fn queue_declare(&mut self, channel: u16, name: &str) -> (String, u32, u32) {
        let args = Args::new()
            .short(0)
            .shortstr(name)
            .bits(&[false, false, false, false, false])
            .empty_table()
            .done();
        self.send_method(channel, 50, 10, &args);
        let m = self.expect_method();
        assert_eq!((m.class, m.method), (50, 11), "queue.declare-ok: {m:?}");
        let mut r = m.reader();
        (r.shortstr(), r.long(), r.long())
    }

    /// basic.qos(prefetch_count), expecting qos-ok.
    pub fn basic_qos(&mut self, channel: u16, prefetch_count: u16) {
        let args = Args::new()
            .long(0)
            .short(prefetch_count)
            .bits(&[false])
            .done();
        self.send_method(channel, 60, 10, &args);
        let m = self.expect_method();
        assert_eq!((m.class, m.method), (60, 11), "basic.qos-ok: {m:?}");
    }

    /// basic.consume with manual acks, expecting consume-ok; returns the tag.
    pub fn basic_consume(&mut self, channel: u16, queue: &str, tag: &str) -> String {
        self.basic_consume_with(channel, queue, tag, &[])
    }

    /// basic.consume (ack mode) with the arguments table `table` (its
    /// entries' encoding), expecting consume-ok; returns the tag.
    pub fn basic_consume_with(
        &mut self,
        channel: u16,
        queue: &str,
        tag: &str,
        table: &[u8],
    ) -> String {
        let args = Args::new()
            .short(0)
            .shortstr(queue)
            .shortstr(tag)
            .bits(&[false, false, false, false])
            .table(table)
            .done();
        self.send_method(channel, 60, 20, &args);
        let m = self.expect_method();
        assert_eq!((m.class, m.method), (60, 21), "basic.consume-ok: {m:?}");
        m.reader().shortstr()
    }

    /// basic.publish of `body` with no properties, in frames of at most
    /// `frame_max` bytes.
    pub fn basic_publish(
        &mut self,
        channel: u16,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        frame_max: u32,
    ) {
        let args = Args::new()
            .short(0)
            .shortstr(exchange)
            .shortstr(routing_key)
            .bits(&[false, false])
            .done();
        self.send_method(channel, 60, 40, &args);
        let header = Args::new()
            .short(60)
            .short(0)
            .longlong(body.len() as u64)
            .short(0)
            .done();
        self.send_frame(FRAME_HEADER, channel, &header);
        let chunk = (frame_max as usize).saturating_sub(8).max(1);
        for part in body.chunks(chunk) {
            self.send_frame(FRAME_BODY, channel, part);
        }
    }

    /// Reads a basic.deliver + header + body frames.
    pub fn read_delivery(&mut self) -> RawDelivery {
        let m = self.expect_method();
        assert_eq!((m.class, m.method), (60, 60), "basic.deliver: {m:?}");
        let mut r = m.reader();
        let consumer_tag = r.shortstr();
        let delivery_tag = r.longlong();
        let redelivered = r.octet() & 1 == 1;
        let header = self.read_frame().expect("content header");
        assert_eq!(header.kind, FRAME_HEADER, "content header frame");
        let mut hr = ArgReader {
            buf: &header.payload,
            pos: 0,
        };
        assert_eq!(hr.short(), 60, "header class");
        let _weight = hr.short();
        let size = usize::try_from(hr.longlong()).expect("size fits usize");
        assert!(size <= MAX_PAYLOAD, "body of {size} bytes");
        let mut body = Vec::with_capacity(size);
        while body.len() < size {
            let f = self.read_frame().expect("body frame");
            assert_eq!(f.kind, FRAME_BODY, "body frame");
            body.extend_from_slice(&f.payload);
        }
        assert_eq!(body.len(), size, "body size");
        RawDelivery {
            channel: m.channel,
            consumer_tag,
            delivery_tag,
            redelivered,
            body,
        }
    }

    /// Drops the TCP connection without any AMQP close.
    pub fn drop_socket(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Builder for method argument bytes.
#[derive(Default)]
pub struct Args {
    buf: Vec<u8>,
}

impl Args {
    pub fn new() -> Args {
        Args::default()
    }
    pub fn octet(mut self, v: u8) -> Args {
        self.buf.push(v);
        self
    }
    pub fn short(mut self, v: u16) -> Args {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: u32) -> Args {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn longlong(mut self, v: u64) -> Args {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn shortstr(mut self, s: &str) -> Args {
        let len = u8::try_from(s.len()).expect("shortstr fits 255");
        self.buf.push(len);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    pub fn longstr(mut self, s: &[u8]) -> Args {
        let len = u32::try_from(s.len()).expect("longstr fits u32");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(s);
        self
    }
    pub fn empty_table(self) -> Args {
        self.long(0)
    }
    /// A field table from already-encoded entries.
    pub fn table(self, entries: &[u8]) -> Args {
        self.longstr(entries)
    }
    /// Packs consecutive bit fields into octets, first bit lowest.
    pub fn bits(mut self, bits: &[bool]) -> Args {
        for chunk in bits.chunks(8) {
            let mut o = 0u8;
            for (i, b) in chunk.iter().enumerate() {
                if *b {
                    o |= 1 << i;
                }
            }
            self.buf.push(o);
        }
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.buf
    }
}

/// Reader over method argument bytes; panics on truncated input (test code).
pub struct ArgReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl ArgReader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        assert!(self.pos + n <= self.buf.len(), "truncated method arguments");
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn octet(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn short(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_be_bytes([b[0], b[1]])
    }
    pub fn long(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    pub fn longlong(&mut self) -> u64 {
        let b = self.take(8);
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_be_bytes(a)
    }
    pub fn shortstr(&mut self) -> String {
        let n = self.octet() as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
    pub fn longstr(&mut self) -> Vec<u8> {
        let n = self.long() as usize;
        self.take(n).to_vec()
    }
    /// A field table's raw bytes (not decoded).
    pub fn table_raw(&mut self) -> Vec<u8> {
        self.longstr()
    }
}

/// The top-level entries of an encoded field table (without its length
/// prefix): each key with its type tag and, for integer types, the value.
/// Returns None on malformed input.
pub fn table_entries(table: &[u8]) -> Option<Vec<(String, u8, Option<i64>)>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = table.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        Some(s)
    };
    while pos < table.len() {
        let klen = *take(&mut pos, 1)?.first()? as usize;
        let key = String::from_utf8_lossy(take(&mut pos, klen)?).into_owned();
        let tag = *take(&mut pos, 1)?.first()?;
        let be = |b: &[u8]| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        let value = match tag {
            b't' | b'B' => Some(i64::from(take(&mut pos, 1)?[0])),
            b'b' => Some(i64::from(take(&mut pos, 1)?[0] as i8)),
            b'u' => Some(be(take(&mut pos, 2)?) as i64),
            b's' => Some(i64::from(be(take(&mut pos, 2)?) as u16 as i16)),
            b'i' => Some(be(take(&mut pos, 4)?) as i64),
            b'I' => Some(i64::from(be(take(&mut pos, 4)?) as u32 as i32)),
            b'l' | b'L' => Some(be(take(&mut pos, 8)?) as i64),
            b'f' => take(&mut pos, 4).map(|_| None)?,
            b'd' | b'T' => take(&mut pos, 8).map(|_| None)?,
            b'D' => take(&mut pos, 5).map(|_| None)?,
            b'V' => None,
            b'S' | b'x' | b'A' | b'F' => {
                let n = be(take(&mut pos, 4)?) as usize;
                take(&mut pos, n).map(|_| None)?
            }
            _ => return None,
        };
        out.push((key, tag, value));
    }
    Some(out)
}

/// What became of a socket while a test watched it: see
/// [`RawConn::watch_socket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEnd {
    /// Still open (no EOF, no reset) when the wait ran out.
    Open,
    /// The server closed it (EOF) after this long.
    Eof(Duration),
    /// The server reset it after this long.
    Reset(Duration),
}

impl RawConn {
    /// One encoded frame, for tests that pipeline several in one write.
    pub fn frame_bytes(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("payload fits u32");
        let mut f = Vec::with_capacity(payload.len() + 8);
        f.push(kind);
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(payload);
        f.push(FRAME_END);
        f
    }

    /// One encoded method frame.
    pub fn method_bytes(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(args.len() + 4);
        p.extend_from_slice(&class.to_be_bytes());
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        RawConn::frame_bytes(FRAME_METHOD, channel, &p)
    }

    /// The frames of a basic.publish (method with the given flags, header
    /// without properties, one body frame).
    pub fn publish_bytes(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        immediate: bool,
        body: &[u8],
    ) -> Vec<u8> {
        let args = Args::new()
            .short(0)
            .shortstr(exchange)
            .shortstr(routing_key)
            .bits(&[mandatory, immediate])
            .done();
        let mut out = RawConn::method_bytes(channel, 60, 40, &args);
        let header = Args::new()
            .short(60)
            .short(0)
            .longlong(body.len() as u64)
            .short(0)
            .done();
        out.extend(RawConn::frame_bytes(FRAME_HEADER, channel, &header));
        out.extend(RawConn::frame_bytes(FRAME_BODY, channel, body));
        out
    }

    /// Like [`RawConn::open`], advertising these client capabilities
    /// (each `true`) in connection.start-ok.
    pub fn open_with_capabilities(addr: &str, capabilities: &[&str]) -> RawConn {
        let mut c = RawConn::connect(addr);
        c.begin();
        let mut caps = Vec::new();
        for key in capabilities {
            caps.push(key.len() as u8);
            caps.extend_from_slice(key.as_bytes());
            caps.extend_from_slice(b"t\x01");
        }
        let mut props = Vec::new();
        let key = b"capabilities";
        props.push(key.len() as u8);
        props.extend_from_slice(key);
        props.push(b'F');
        props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
        props.extend_from_slice(&caps);
        let args = Args::new()
            .table(&props)
            .shortstr("PLAIN")
            .longstr(b"\0guest\0guest")
            .shortstr("en_US")
            .done();
        c.send_method(0, 10, 11, &args);
        let tune = c.expect_method();
        assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
        let mut r = tune.reader();
        let (channel_max, frame_max) = (r.short(), r.long());
        let args = Args::new()
            .short(channel_max)
            .long(frame_max)
            .short(0)
            .done();
        c.send_method(0, 10, 31, &args);
        let args = Args::new().shortstr("/").shortstr("").octet(0).done();
        c.send_method(0, 10, 40, &args);
        let ok = c.expect_method();
        assert_eq!((ok.class, ok.method), (10, 41), "connection.open-ok");
        c
    }

    /// Reads (and drops) whatever arrives for up to `wait`, and says whether
    /// the server closed or reset the socket meanwhile, and when.
    pub fn watch_socket(&mut self, wait: Duration) -> SocketEnd {
        let end = self.watch(wait);
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        end
    }

    fn watch(&mut self, wait: Duration) -> SocketEnd {
        let start = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            let left = wait.saturating_sub(start.elapsed());
            if left.is_zero() {
                return SocketEnd::Open;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            match self.stream.read(&mut buf) {
                Ok(0) => return SocketEnd::Eof(start.elapsed()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return SocketEnd::Reset(start.elapsed())
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return SocketEnd::Open
                }
                Err(e) => panic!("reading from the broker: {e}"),
            }
        }
    }
}

impl ArgReader<'_> {
    /// For a connection.close / channel.close: skips code and text and
    /// returns `class_id << 16 | method_id`.
    pub fn skip_close_text(&mut self) -> u32 {
        let _code = self.short();
        let _text = self.shortstr();
        (self.short() as u32) << 16 | self.short() as u32
    }
}
