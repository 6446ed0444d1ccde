//! One fuzzing connection: its generator, what it knows of its channels,
//! how it reads the broker's answers (deliveries, confirms and closes on
//! the way), the lock-step ledger steps and the orderly finish.

use super::common::raw::{
    Args, RawConn, RawMethod, FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD,
};
use super::common::unique_name;
use super::{ANSWER_WAIT, CHANNELS, FRAME_MAX, LEDGERS, LEDGER_CHANNEL};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::io;
use warren::protocol::methods::Method;
use warren::protocol::properties::ContentHeader;

/// A small xorshift generator per connection, seeded from the test seed.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The names one run uses (unique per run, so RabbitMQ can be reused).
#[derive(Clone)]
pub struct Names {
    pub queues: Vec<String>,
    pub exchanges: Vec<String>,
    pub ledgers: Vec<String>,
}

impl Names {
    pub fn new() -> Names {
        let p = unique_name("pfz");
        Names {
            queues: (0..3).map(|i| format!("{p}-q{i}")).collect(),
            exchanges: (0..3).map(|i| format!("{p}-x{i}")).collect(),
            ledgers: (0..LEDGERS).map(|i| format!("{p}-ledger{i}")).collect(),
        }
    }
}

/// How a synchronous method was answered (the codes show in panic messages).
#[derive(Debug)]
#[allow(dead_code)]
pub enum Answer {
    Ok(RawMethod),
    ChannelClosed(u16),
    ConnectionClosed(u16),
    /// The socket ended without a connection.close.
    Dropped,
}

/// A channel as the client sees it.
#[derive(Default)]
pub struct Chan {
    pub confirm: bool,
    /// Publishes sent in confirm mode, and the highest tag confirmed.
    pub published: u64,
    pub confirmed: u64,
    /// Unacknowledged delivery tags (chaos deliveries only).
    pub tags: Vec<u64>,
    pub consumers: Vec<String>,
}

/// Counters printed at the end of a run.
#[derive(Default, Debug)]
pub struct Tally {
    pub steps: u64,
    pub oks: u64,
    pub channel_closes: BTreeMap<u16, u64>,
    pub connection_closes: BTreeMap<u16, u64>,
    pub drops: u64,
    pub deliveries: u64,
}

/// One fuzzing connection.
pub struct Fuzzer {
    pub addr: String,
    pub names: Names,
    pub rng: Gen,
    pub conn: Option<RawConn>,
    pub chans: HashMap<u16, Chan>,
    /// Content still expected per channel (None: the header is next).
    pub content: HashMap<u16, Option<u64>>,
    /// Messages each ledger queue holds by this connection's account.
    pub ledger: [i64; LEDGERS],
    pub tally: Tally,
    pub external: bool,
}

impl Fuzzer {
    pub fn new(addr: String, names: Names, seed: u64, external: bool) -> Fuzzer {
        Fuzzer {
            addr,
            names,
            rng: Gen(seed | 1),
            conn: None,
            chans: HashMap::new(),
            content: HashMap::new(),
            ledger: [0; LEDGERS],
            tally: Tally::default(),
            external,
        }
    }

    pub fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.ensure_connected();
            self.tally.steps += 1;
            match self.rng.below(100) {
                0..=9 => self.ledger_step(),
                10..=15 => self.violation(),
                _ => self.random_step(),
            }
        }
        self.finish();
    }

    pub fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        let mut c = RawConn::connect(&self.addr);
        c.stream
            .set_read_timeout(Some(ANSWER_WAIT))
            .expect("timeout");
        c.begin();
        c.start_ok("guest", "guest", false);
        let tune = c.expect_method();
        assert_eq!((tune.class, tune.method), (10, 30), "connection.tune");
        let channel_max = tune.reader().short();
        c.send_method(
            0,
            10,
            31,
            &Args::new()
                .short(channel_max)
                .long(FRAME_MAX)
                .short(0)
                .done(),
        );
        c.send_method(
            0,
            10,
            40,
            &Args::new().shortstr("/").shortstr("").octet(0).done(),
        );
        let ok = c.expect_method();
        assert_eq!(
            (ok.class, ok.method),
            (10, 41),
            "connection.open-ok: {ok:?}"
        );
        self.conn = Some(c);
        self.chans.clear();
        self.content.clear();
    }

    pub fn conn(&mut self) -> &mut RawConn {
        self.conn.as_mut().expect("connected")
    }

    pub fn send(&mut self, channel: u16, class: u16, method: u16, args: &[u8]) {
        let bytes = RawConn::method_bytes(channel, class, method, args);
        self.send_bytes(&bytes);
    }

    /// Writes bytes; a write the server refused (it closed the socket) is
    /// left for the next read to report.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let _ = self.conn().stream.write_all(bytes);
    }

    /// Reads frames until `channel` is answered with one of `oks`, a
    /// channel.close, or the connection ends. Deliveries, confirms and
    /// closes of other channels are handled on the way.
    pub fn answer(&mut self, channel: u16, oks: &[(u16, u16)]) -> Answer {
        loop {
            let frame = match self.conn().read_frame() {
                Ok(f) => f,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("no answer on channel {channel} (waiting for {oks:?}) within {ANSWER_WAIT:?}")
                }
                Err(_) => {
                    self.tally.drops += 1;
                    self.conn = None;
                    return Answer::Dropped;
                }
            };
            match frame.kind {
                FRAME_HEARTBEAT => continue,
                FRAME_HEADER | FRAME_BODY => {
                    self.content_frame(frame.kind, frame.channel, &frame.payload);
                    continue;
                }
                FRAME_METHOD => {}
                other => panic!("the broker sent a frame of type {other}"),
            }
            // Every method the broker sends decodes (Warren's own codec,
            // which is RabbitMQ's format): no truncated or trailing bytes.
            if let Err(e) = Method::decode(Bytes::copy_from_slice(&frame.payload)) {
                panic!("the broker sent a method that does not decode: {e}");
            }
            let m = RawMethod {
                channel: frame.channel,
                class: u16::from_be_bytes([frame.payload[0], frame.payload[1]]),
                method: u16::from_be_bytes([frame.payload[2], frame.payload[3]]),
                args: frame.payload[4..].to_vec(),
            };
            assert!(
                !self.content.contains_key(&m.channel),
                "a method ({}, {}) in the middle of content on channel {}",
                m.class,
                m.method,
                m.channel
            );
            match (m.class, m.method) {
                (10, 50) => {
                    let (code, text) = m.close_reason();
                    if std::env::var("PROTOCOL_FUZZ_VERBOSE").is_ok_and(|v| v == "1") {
                        eprintln!("connection.close {code} {text}");
                    }
                    *self.tally.connection_closes.entry(code).or_default() += 1;
                    self.send(0, 10, 51, &[]);
                    let _ = self.conn().closed_by_server();
                    self.conn = None;
                    return Answer::ConnectionClosed(code);
                }
                (20, 40) => {
                    let code = m.close_reason().0;
                    *self.tally.channel_closes.entry(code).or_default() += 1;
                    self.send(m.channel, 20, 41, &[]);
                    self.chans.remove(&m.channel);
                    if m.channel == channel {
                        return Answer::ChannelClosed(code);
                    }
                    continue;
                }
                (60, 60) | (60, 71) | (60, 50) => {
                    self.content.insert(m.channel, None);
                    if (m.class, m.method) == (60, 60) {
                        self.tally.deliveries += 1;
                        let mut r = m.reader();
                        let _consumer = r.shortstr();
                        let tag = r.longlong();
                        if let Some(c) = self.chans.get_mut(&m.channel) {
                            c.tags.push(tag);
                        }
                    }
                }
                (60, 80) | (60, 120) => {
                    let tag = m.reader().longlong();
                    if let Some(c) = self.chans.get_mut(&m.channel) {
                        c.confirmed = c.confirmed.max(tag);
                    }
                }
                (60, 30) => {} // the server cancelled a consumer (its queue went)
                (20, 20) => self.send(m.channel, 20, 21, &[1]),
                _ => {}
            }
            if m.channel == channel && oks.contains(&(m.class, m.method)) {
                self.tally.oks += 1;
                return Answer::Ok(m);
            }
        }
    }

    pub fn content_frame(&mut self, kind: u8, channel: u16, payload: &[u8]) {
        let left = match self.content.get(&channel) {
            Some(left) => *left,
            None => panic!("a content frame (type {kind}) on channel {channel} without a method"),
        };
        let left = match (kind, left) {
            (FRAME_HEADER, None) => {
                let header =
                    ContentHeader::decode(Bytes::copy_from_slice(payload)).unwrap_or_else(|e| {
                        panic!("the broker sent a header that does not decode: {e}")
                    });
                header.body_size
            }
            (FRAME_BODY, Some(left)) => {
                assert!(
                    payload.len() as u64 <= left,
                    "body frame beyond the body size"
                );
                // Bodies come back as they were published: the random
                // steps publish only 'f's, the ledger steps "ledger N".
                if channel != LEDGER_CHANNEL {
                    assert!(
                        payload.iter().all(|b| *b == b'f'),
                        "a delivered body is not what was published"
                    );
                }
                left - payload.len() as u64
            }
            _ => panic!("content frame of type {kind} out of order on channel {channel}"),
        };
        if left == 0 {
            self.content.remove(&channel);
        } else {
            self.content.insert(channel, Some(left));
        }
    }

    /// Sends a synchronous method and waits for its answer.
    pub fn call(
        &mut self,
        channel: u16,
        class: u16,
        method: u16,
        args: &[u8],
        oks: &[(u16, u16)],
    ) -> Answer {
        self.send(channel, class, method, args);
        self.answer(channel, oks)
    }

    /// An open channel among the random ones (opened if need be), or None
    /// if the connection ended meanwhile.
    pub fn channel(&mut self) -> Option<u16> {
        let ch = 1 + self.rng.below(u64::from(CHANNELS)) as u16;
        self.open(ch).then_some(ch)
    }

    pub fn open(&mut self, ch: u16) -> bool {
        if self.chans.contains_key(&ch) {
            return true;
        }
        match self.call(ch, 20, 10, &Args::new().shortstr("").done(), &[(20, 11)]) {
            Answer::Ok(_) => {
                self.chans.insert(ch, Chan::default());
                true
            }
            Answer::ConnectionClosed(_) | Answer::Dropped => false,
            other => panic!("channel.open on {ch} answered {other:?}"),
        }
    }

    /// basic.qos (prefetch 0) on `ch`: a synchronous method that changes
    /// nothing the steps rely on, so its answer marks that everything sent
    /// before it on the channel was handled.
    pub fn qos_sync(&mut self, ch: u16) -> Answer {
        let args = Args::new().long(0).short(0).bits(&[false]).done();
        self.call(ch, 60, 10, &args, &[(60, 11)])
    }

    /// Every open channel answers a basic.qos: the errors of earlier
    /// asynchronous methods have arrived. False if the connection ended.
    pub fn sync_channels(&mut self) -> bool {
        let mut open: Vec<u16> = self.chans.keys().copied().collect();
        open.sort_unstable();
        for ch in open {
            if !self.chans.contains_key(&ch) {
                continue;
            }
            match self.qos_sync(ch) {
                Answer::Ok(_) | Answer::ChannelClosed(_) => {}
                Answer::ConnectionClosed(_) | Answer::Dropped => return false,
            }
        }
        true
    }

    /// The checkable steps, in lock-step on their own confirm channel:
    /// a confirmed publish to a ledger queue counts +1, a basic.get with
    /// no-ack, or a get acknowledged (and synced with basic.qos), -1.
    pub fn ledger_step(&mut self) {
        let ch = LEDGER_CHANNEL;
        if !self.open(ch) {
            return;
        }
        if !self.chans[&ch].confirm {
            match self.call(ch, 85, 10, &[0], &[(85, 11)]) {
                Answer::Ok(_) => self.chans.get_mut(&ch).expect("ledger channel").confirm = true,
                other => panic!("confirm.select on the ledger channel answered {other:?}"),
            }
        }
        let i = self.rng.below(LEDGERS as u64) as usize;
        let q = self.names.ledgers[i].clone();
        match self.rng.below(3) {
            0 => {
                let body = format!("ledger {}", self.rng.next());
                let bytes = RawConn::publish_bytes(ch, "", &q, false, false, body.as_bytes());
                self.send_bytes(&bytes);
                let seq = {
                    let c = self.chans.get_mut(&ch).expect("ledger channel");
                    c.published += 1;
                    c.published
                };
                loop {
                    match self.answer(ch, &[(60, 80), (60, 120)]) {
                        Answer::Ok(m) if m.method == 80 => {
                            if self.chans[&ch].confirmed >= seq {
                                self.ledger[i] += 1;
                                break;
                            }
                        }
                        other => panic!("a ledger publish was answered {other:?}"),
                    }
                }
            }
            1 => match self.call(
                ch,
                60,
                70,
                &Args::new().short(0).shortstr(&q).bits(&[true]).done(),
                &[(60, 71), (60, 72)],
            ) {
                Answer::Ok(m) if m.method == 71 => self.ledger[i] -= 1,
                Answer::Ok(_) => {}
                other => panic!("a ledger basic.get was answered {other:?}"),
            },
            _ => match self.call(
                ch,
                60,
                70,
                &Args::new().short(0).shortstr(&q).bits(&[false]).done(),
                &[(60, 71), (60, 72)],
            ) {
                Answer::Ok(m) if m.method == 71 => {
                    let tag = m.reader().longlong();
                    self.send(ch, 60, 80, &Args::new().longlong(tag).bits(&[false]).done());
                    match self.qos_sync(ch) {
                        Answer::Ok(_) => self.ledger[i] -= 1,
                        other => panic!("basic.qos after a ledger ack was answered {other:?}"),
                    }
                }
                Answer::Ok(_) => {}
                other => panic!("a ledger basic.get was answered {other:?}"),
            },
        }
    }

    /// Every open channel answers a basic.qos, then the connection closes
    /// with close-ok.
    pub fn finish(&mut self) {
        self.ensure_connected();
        if !self.sync_channels() {
            return;
        }
        match self.call(
            0,
            10,
            50,
            &Args::new()
                .short(200)
                .shortstr("done")
                .short(0)
                .short(0)
                .done(),
            &[(10, 51)],
        ) {
            Answer::Ok(_) => {
                assert!(
                    self.conn().closed_by_server(),
                    "the socket stays open after close-ok"
                );
                self.conn = None;
            }
            other => panic!("connection.close was answered {other:?}"),
        }
    }
}
