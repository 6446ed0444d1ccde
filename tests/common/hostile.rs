//! Table-driven hostile-input rows (`docs/bad-input.md`): a row brings a raw
//! connection to a stage of the handshake, sends hand-written bytes and
//! expects exact replies; the runner then checks that a well-behaved lapin
//! client on the same broker still publishes and consumes. With
//! `HOSTILE_OBSERVE=1` the runner prints what every row got instead of
//! asserting (how RabbitMQ's answers in the table were measured).

use super::raw::{Args, RawConn, FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER};
use super::*;
use std::io::{self, Read};

/// How far a row's raw connection gets before its steps run.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// TCP connected, nothing sent.
    Tcp,
    /// Protocol header, start, start-ok (guest) sent and connection.tune read.
    Tuning,
    /// The connection is open (server's tune values, heartbeat 0).
    Open,
    /// Open, and channel 1 too.
    Channel,
}

/// A reply text: exact, or its beginning.
#[derive(Debug, Clone)]
pub enum Text {
    Exact(String),
    Prefix(String),
}

pub fn exact(s: impl Into<String>) -> Text {
    Text::Exact(s.into())
}

pub fn prefix(s: impl Into<String>) -> Text {
    Text::Prefix(s.into())
}

impl Text {
    fn matches(&self, got: &str) -> bool {
        match self {
            Text::Exact(s) => got == s,
            Text::Prefix(s) => got.starts_with(s.as_str()),
        }
    }
}

/// What a row expects next from the server.
#[derive(Debug, Clone)]
pub enum Reply {
    /// connection.close with these fields; the runner answers close-ok and
    /// expects the socket to end.
    ConnClose {
        code: u16,
        text: Text,
        class: u16,
        method: u16,
    },
    /// channel.close on `channel` (the row sends close-ok itself).
    ChanClose {
        channel: u16,
        code: u16,
        text: Text,
        class: u16,
        method: u16,
    },
    /// A method (open-ok, declare-ok…) on `channel`.
    Method {
        channel: u16,
        class: u16,
        method: u16,
    },
    /// The AMQP 0-9-1 protocol header, then the end of the stream.
    Header,
    /// The socket ends (EOF or reset) without a byte.
    Dropped,
    /// Nothing at all for this long, and the socket stays open.
    Quiet(Duration),
}

/// One step of a row.
#[derive(Debug, Clone)]
pub enum Step {
    Send(Vec<u8>),
    Expect(Reply),
}

/// One bad input.
pub struct Row {
    pub name: &'static str,
    pub stage: Stage,
    pub steps: Vec<Step>,
    /// Why Warren deliberately answers otherwise than RabbitMQ 3.10 (the
    /// row then skips against an external broker).
    pub warren_differs: Option<&'static str>,
}

/// What came off the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Method {
        channel: u16,
        class: u16,
        method: u16,
        /// Code, text, class and method of a connection or channel close.
        close: Option<(u16, String, u16, u16)>,
    },
    Frame {
        kind: u8,
        channel: u16,
        len: usize,
    },
    /// Bytes that are not a frame (a protocol header), up to the end.
    Bytes(Vec<u8>),
    Eof,
    Reset,
    Quiet,
}

/// How long a row waits for a reply it expects.
const REPLY_WAIT: Duration = Duration::from_secs(15);

fn read_some(c: &mut RawConn, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
    c.stream.set_read_timeout(Some(wait))?;
    let mut got = 0;
    while got < buf.len() {
        match c.stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if got > 0 && e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if got == 0 => return Err(e),
            Err(e) => panic!("read broke off mid-frame after {got} octets: {e}"),
        }
    }
    Ok(got)
}

/// The next thing the server sends (heartbeats skipped), waiting at most `wait`.
pub fn next_seen(c: &mut RawConn, wait: Duration) -> Seen {
    loop {
        let seen = next_raw(c, wait);
        if !matches!(
            seen,
            Seen::Frame {
                kind: FRAME_HEARTBEAT,
                ..
            }
        ) {
            return seen;
        }
    }
}

fn next_raw(c: &mut RawConn, wait: Duration) -> Seen {
    let mut head = [0u8; 7];
    let n = match read_some(c, &mut head, wait) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Seen::Reset,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Seen::Quiet
        }
        Err(e) => panic!("reading from the broker: {e}"),
    };
    if n == 0 {
        return Seen::Eof;
    }
    if n < 7 || head.starts_with(b"AMQP") {
        let mut all = head[..n].to_vec();
        if n == 7 {
            let mut rest = Vec::new();
            c.stream.set_read_timeout(Some(wait)).expect("timeout");
            let _ = c.stream.read_to_end(&mut rest);
            all.extend(rest);
        }
        return Seen::Bytes(all);
    }
    let kind = head[0];
    let channel = u16::from_be_bytes([head[1], head[2]]);
    let len = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    assert!(len <= 1 << 20, "frame of {len} octets from the broker");
    let mut payload = vec![0u8; len + 1];
    let got = read_some(c, &mut payload, wait).expect("frame payload");
    assert_eq!(got, len + 1, "frame cut short");
    if kind != FRAME_METHOD || len < 4 {
        return Seen::Frame { kind, channel, len };
    }
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    let close = if (class, method) == (10, 50) || (class, method) == (20, 40) {
        let m = raw::RawMethod {
            channel,
            class,
            method,
            args: payload[4..len].to_vec(),
        };
        let (code, text) = m.close_reason();
        let ids = m.reader().skip_close_text();
        Some((code, text, (ids >> 16) as u16, ids as u16))
    } else {
        None
    };
    Seen::Method {
        channel,
        class,
        method,
        close,
    }
}

fn matches(reply: &Reply, seen: &Seen) -> bool {
    match (reply, seen) {
        (
            Reply::ConnClose {
                code,
                text,
                class,
                method,
            },
            Seen::Method {
                channel: 0,
                class: 10,
                method: 50,
                close: Some((c, t, k, m)),
            },
        ) => c == code && text.matches(t) && k == class && m == method,
        (
            Reply::ChanClose {
                channel,
                code,
                text,
                class,
                method,
            },
            Seen::Method {
                channel: ch,
                class: 20,
                method: 40,
                close: Some((c, t, k, m)),
            },
        ) => ch == channel && c == code && text.matches(t) && k == class && m == method,
        (
            Reply::Method {
                channel,
                class,
                method,
            },
            Seen::Method {
                channel: ch,
                class: k,
                method: m,
                ..
            },
        ) => (ch, k, m) == (channel, class, method),
        (Reply::Header, Seen::Bytes(b)) => b == PROTOCOL_HEADER,
        (Reply::Dropped, Seen::Eof | Seen::Reset) => true,
        (Reply::Quiet(_), Seen::Quiet) => true,
        _ => false,
    }
}

/// Brings a raw connection to `stage`.
fn connect_to(b: &Broker, stage: Stage) -> RawConn {
    match stage {
        Stage::Tcp => RawConn::connect(&b.addr()),
        Stage::Tuning => {
            let mut c = RawConn::connect(&b.addr());
            c.begin();
            c.start_ok("guest", "guest", false);
            let tune = c.expect_method();
            assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
            c
        }
        Stage::Open => RawConn::open(&b.addr()).0,
        Stage::Channel => {
            let (mut c, _) = RawConn::open(&b.addr());
            c.channel_open(1);
            c
        }
    }
}

/// Whether rows print what they got instead of asserting.
pub fn observing() -> bool {
    std::env::var("HOSTILE_OBSERVE").is_ok_and(|v| v == "1")
}

/// Runs one row's steps on a fresh raw connection.
fn run_steps(b: &Broker, row: &Row) {
    let mut c = connect_to(b, row.stage);
    for step in &row.steps {
        match step {
            Step::Send(bytes) => {
                // The broker may have closed already (a row that expects
                // that checks it next).
                let _ = io::Write::write_all(&mut c.stream, bytes);
            }
            Step::Expect(reply) => {
                let wait = match reply {
                    Reply::Quiet(d) => *d,
                    _ => REPLY_WAIT,
                };
                let seen = next_seen(&mut c, wait);
                if observing() {
                    eprintln!("OBSERVED {}: {seen:?}", row.name);
                } else {
                    assert!(
                        matches(reply, &seen),
                        "row {}: expected {reply:?}, got {seen:?}",
                        row.name
                    );
                }
                answer_close(&mut c, &seen, row.name);
            }
        }
    }
}

/// Answers a connection.close the server sent (close-ok), as a polite
/// client would; the socket must then end. (A channel.close is answered by
/// the row itself, which may first send more on the closing channel.)
fn answer_close(c: &mut RawConn, seen: &Seen, row: &str) {
    if let Seen::Method {
        channel: 0,
        class: 10,
        method: 50,
        ..
    } = seen
    {
        {
            let _ = io::Write::write_all(&mut c.stream, &RawConn::method_bytes(0, 10, 51, &[]));
            let end = next_seen(c, REPLY_WAIT);
            if observing() {
                eprintln!("OBSERVED {row}: after close-ok: {end:?}");
            } else {
                assert!(
                    matches!(end, Seen::Eof | Seen::Reset),
                    "row {row}: socket still open after close-ok: {end:?}"
                );
            }
        }
    }
}

/// A well-behaved lapin client publishes and consumes on `b`.
pub fn second_client_works(b: &Broker, row: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(within(async {
        use lapin::options::*;
        let conn = lapin_connect(b).await;
        let ch = conn.create_channel().await.expect("channel");
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("declare");
        let body = format!("after {row}");
        ch.basic_publish(
            "".into(),
            q.name().as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            Default::default(),
        )
        .await
        .expect("publish");
        let mut consumer = ch
            .basic_consume(
                q.name().as_str().into(),
                "well-behaved".into(),
                BasicConsumeOptions::default(),
                Default::default(),
            )
            .await
            .expect("consume");
        let d = futures_lite::StreamExt::next(&mut consumer)
            .await
            .expect("a delivery")
            .expect("delivery ok");
        assert_eq!(d.data, body.as_bytes(), "row {row}: second client's body");
        d.ack(BasicAckOptions::default()).await.expect("ack");
        conn.close(200, "bye".into()).await.expect("close");
    }));
}

/// Runs every row against one broker per shard count (or the external
/// broker), each followed by the second-client check.
pub fn run_rows(rows: &[Row]) {
    let shard_counts: &[usize] = if external() { &[1] } else { &SHARD_COUNTS };
    for &shards in shard_counts {
        let b = Broker::start(shards);
        for row in rows {
            if external() && !observing() {
                if let Some(why) = row.warren_differs {
                    eprintln!(
                        "row {}: skipped against an external broker: {why}",
                        row.name
                    );
                    continue;
                }
            }
            run_steps(&b, row);
            second_client_works(&b, row.name);
        }
    }
}

/// Step builders for rows.
pub fn send(bytes: Vec<u8>) -> Step {
    Step::Send(bytes)
}

pub fn conn_close(code: u16, text: Text, class: u16, method: u16) -> Step {
    Step::Expect(Reply::ConnClose {
        code,
        text,
        class,
        method,
    })
}

pub fn expect_method(channel: u16, class: u16, method: u16) -> Step {
    Step::Expect(Reply::Method {
        channel,
        class,
        method,
    })
}

/// Marks a row where Warren deliberately answers otherwise than RabbitMQ.
pub fn differs(mut r: Row, why: &'static str) -> Row {
    r.warren_differs = Some(why);
    r
}

pub fn qos(channel: u16) -> Vec<u8> {
    method(
        channel,
        60,
        10,
        Args::new().long(0).short(10).bits(&[false]),
    )
}
/// Frame builders for rows.
pub fn method(channel: u16, class: u16, method: u16, args: Args) -> Vec<u8> {
    RawConn::method_bytes(channel, class, method, &args.done())
}

/// A content header frame: class, body size, no properties.
pub fn header(channel: u16, class: u16, size: u64) -> Vec<u8> {
    let p = Args::new().short(class).short(0).longlong(size).short(0);
    RawConn::frame_bytes(raw::FRAME_HEADER, channel, &p.done())
}

pub fn body(channel: u16, bytes: &[u8]) -> Vec<u8> {
    RawConn::frame_bytes(raw::FRAME_BODY, channel, bytes)
}

/// basic.publish to the default exchange with `routing_key` (method only).
pub fn publish(channel: u16, routing_key: &str) -> Vec<u8> {
    method(
        channel,
        60,
        40,
        Args::new()
            .short(0)
            .shortstr("")
            .shortstr(routing_key)
            .bits(&[false, false]),
    )
}

/// queue.declare (not passive, exclusive) of `name` with raw table bytes
/// (the entries, without the length prefix) as arguments.
pub fn declare_with_table(channel: u16, name: &str, entries: &[u8]) -> Vec<u8> {
    method(
        channel,
        50,
        10,
        Args::new()
            .short(0)
            .shortstr(name)
            .bits(&[false, false, true, false, false])
            .table(entries),
    )
}
