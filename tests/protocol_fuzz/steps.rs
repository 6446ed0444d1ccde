//! The random steps of a fuzzing connection: well-formed methods with
//! random names, flags and arguments, publishes over several frames,
//! acknowledgements of held and unknown tags, and methods out of place.

use super::common::raw::{Args, RawConn, FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT};
use super::fuzzer::{Answer, Fuzzer};
use super::{CHANNELS, FRAME_MAX};

impl Fuzzer {
    pub fn queue(&mut self) -> String {
        self.rng.pick(&self.names.queues.clone()).clone()
    }

    pub fn exchange(&mut self) -> String {
        let mut all = self.names.exchanges.clone();
        all.extend(["", "amq.direct", "amq.topic", "amq.fanout", "amq.headers"].map(String::from));
        self.rng.pick(&all).clone()
    }

    pub fn key(&mut self) -> String {
        let mut keys = self.names.queues.clone();
        keys.extend(["#", "a.*", "a.b", ""].map(String::from));
        self.rng.pick(&keys).clone()
    }

    pub fn bits(&mut self, n: usize) -> Vec<bool> {
        (0..n).map(|_| self.rng.chance(30)).collect()
    }

    /// Queue arguments from a menu (some invalid, some conflicting).
    pub fn queue_args(&mut self) -> Vec<u8> {
        let mut t = Vec::new();
        let entry = |t: &mut Vec<u8>, key: &str, tag: u8, value: &[u8]| {
            t.push(key.len() as u8);
            t.extend_from_slice(key.as_bytes());
            t.push(tag);
            t.extend_from_slice(value);
        };
        let longstr = |s: &str| [&(s.len() as u32).to_be_bytes()[..], s.as_bytes()].concat();
        for _ in 0..self.rng.below(3) {
            let n = self.rng.below(100_000) as u32;
            match self.rng.below(7) {
                0 => entry(&mut t, "x-message-ttl", b'I', &n.to_be_bytes()),
                1 => entry(&mut t, "x-max-length", b'I', &(n % 5).to_be_bytes()),
                2 => entry(&mut t, "x-max-priority", b'B', &[(n % 12) as u8]),
                3 => entry(
                    &mut t,
                    "x-overflow",
                    b'S',
                    &longstr(if n.is_multiple_of(2) {
                        "reject-publish"
                    } else {
                        "drop-head"
                    }),
                ),
                4 => entry(&mut t, "x-max-length", b'S', &longstr("ten")),
                5 => {
                    let x = self.names.exchanges[0].clone();
                    entry(&mut t, "x-dead-letter-exchange", b'S', &longstr(&x))
                }
                _ => entry(&mut t, "x-expires", b'I', &(1000 + n).to_be_bytes()),
            }
        }
        t
    }

    /// One random, well-formed method on a random channel.
    pub fn random_step(&mut self) {
        let Some(ch) = self.channel() else { return };
        match self.rng.below(20) {
            0 | 1 => {
                let q = if self.rng.chance(10) {
                    String::new()
                } else {
                    self.queue()
                };
                let flags = self.bits(5);
                let (passive, durable, exclusive, auto_delete) =
                    (flags[0], flags[1], flags[2], flags[3]);
                let args = self.queue_args();
                let a = Args::new()
                    .short(0)
                    .shortstr(&q)
                    .bits(&[passive, durable, exclusive, auto_delete, false])
                    .table(&args)
                    .done();
                self.call(ch, 50, 10, &a, &[(50, 11)]);
            }
            2 => {
                let x = self.exchange();
                let kind = *self
                    .rng
                    .pick(&["direct", "fanout", "topic", "headers", "x-bogus"]);
                let f = self.bits(4);
                let a = Args::new()
                    .short(0)
                    .shortstr(&x)
                    .shortstr(kind)
                    .bits(&[f[0], f[1], f[2], f[3], false])
                    .empty_table()
                    .done();
                self.call(ch, 40, 10, &a, &[(40, 11)]);
            }
            3 | 4 => {
                let (q, x, k) = (self.queue(), self.exchange(), self.key());
                let head = Args::new().short(0).shortstr(&q).shortstr(&x).shortstr(&k);
                if self.rng.chance(70) {
                    // queue.bind has a no-wait bit; queue.unbind has none.
                    let a = head.bits(&[false]).empty_table().done();
                    self.call(ch, 50, 20, &a, &[(50, 21)]);
                } else {
                    self.call(ch, 50, 50, &head.empty_table().done(), &[(50, 51)]);
                }
            }
            5 => {
                let (d, s, k) = (self.exchange(), self.exchange(), self.key());
                let unbind = self.rng.chance(40);
                let a = Args::new()
                    .short(0)
                    .shortstr(&d)
                    .shortstr(&s)
                    .shortstr(&k)
                    .bits(&[false])
                    .empty_table()
                    .done();
                if unbind {
                    self.call(ch, 40, 40, &a, &[(40, 51)]);
                } else {
                    self.call(ch, 40, 30, &a, &[(40, 31)]);
                }
            }
            6 => {
                let q = self.queue();
                let f = self.bits(2);
                match self.rng.below(3) {
                    0 => self.call(
                        ch,
                        50,
                        30,
                        &Args::new().short(0).shortstr(&q).bits(&[false]).done(),
                        &[(50, 31)],
                    ),
                    1 => self.call(
                        ch,
                        50,
                        40,
                        &Args::new()
                            .short(0)
                            .shortstr(&q)
                            .bits(&[f[0], f[1], false])
                            .done(),
                        &[(50, 41)],
                    ),
                    _ => {
                        let x = self.rng.pick(&self.names.exchanges.clone()).clone();
                        self.call(
                            ch,
                            40,
                            20,
                            &Args::new()
                                .short(0)
                                .shortstr(&x)
                                .bits(&[f[0], false])
                                .done(),
                            &[(40, 21)],
                        )
                    }
                };
            }
            7..=10 => self.publish(ch),
            11 => {
                let q = self.queue();
                let no_ack = self.rng.chance(50);
                if let Answer::Ok(m) = self.call(
                    ch,
                    60,
                    70,
                    &Args::new().short(0).shortstr(&q).bits(&[no_ack]).done(),
                    &[(60, 71), (60, 72)],
                ) {
                    if m.method == 71 && !no_ack {
                        let tag = m.reader().longlong();
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.tags.push(tag);
                        }
                    }
                }
            }
            12 => {
                let q = self.queue();
                let tag = self.rng.pick(&["", "fz-c1", "fz-c2"]).to_string();
                let f = self.bits(3);
                let a = Args::new()
                    .short(0)
                    .shortstr(&q)
                    .shortstr(&tag)
                    .bits(&[false, f[0], f[1], false])
                    .empty_table()
                    .done();
                if let Answer::Ok(m) = self.call(ch, 60, 20, &a, &[(60, 21)]) {
                    let tag = m.reader().shortstr();
                    if let Some(c) = self.chans.get_mut(&ch) {
                        c.consumers.push(tag);
                    }
                }
            }
            13 => {
                let known = self
                    .chans
                    .get(&ch)
                    .map(|c| c.consumers.clone())
                    .unwrap_or_default();
                let tag = if known.is_empty() || self.rng.chance(20) {
                    "fz-none".to_string()
                } else {
                    self.rng.pick(&known).clone()
                };
                self.call(
                    ch,
                    60,
                    30,
                    &Args::new().shortstr(&tag).bits(&[false]).done(),
                    &[(60, 31)],
                );
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.consumers.retain(|t| *t != tag);
                }
            }
            14 | 15 => self.settle(ch),
            16 => {
                let count = self.rng.below(20) as u16;
                let global = self.rng.chance(20);
                self.call(
                    ch,
                    60,
                    10,
                    &Args::new().long(0).short(count).bits(&[global]).done(),
                    &[(60, 11)],
                );
            }
            17 => {
                let requeue = self.rng.chance(70);
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.tags.clear();
                }
                self.call(
                    ch,
                    60,
                    110,
                    &Args::new().bits(&[requeue]).done(),
                    &[(60, 111)],
                );
            }
            18 => {
                let (class, method) = *self.rng.pick(&[(85, 10), (90, 10), (90, 20), (90, 30)]);
                let args = if class == 85 { vec![0] } else { vec![] };
                if let Answer::Ok(_) = self.call(ch, class, method, &args, &[(class, method + 1)]) {
                    if class == 85 {
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.confirm = true;
                        }
                    }
                }
            }
            _ => {
                if self.rng.chance(50) {
                    self.call(
                        ch,
                        20,
                        40,
                        &Args::new()
                            .short(200)
                            .shortstr("bye")
                            .short(0)
                            .short(0)
                            .done(),
                        &[(20, 41), (20, 40)],
                    );
                    self.chans.remove(&ch);
                } else {
                    let active = self.rng.below(2) as u8;
                    self.call(ch, 20, 20, &[active], &[(20, 21)]);
                }
            }
        }
    }

    /// basic.publish with random properties and a body over 0..3 frames,
    /// not waited for (its errors come back as a later channel.close).
    pub fn publish(&mut self, ch: u16) {
        let (x, k) = (self.exchange(), self.key());
        let mandatory = self.rng.chance(30);
        let mut bytes = RawConn::method_bytes(
            ch,
            60,
            40,
            &Args::new()
                .short(0)
                .shortstr(&x)
                .shortstr(&k)
                .bits(&[mandatory, false])
                .done(),
        );
        let size = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(100),
            _ => self.rng.below(3 * u64::from(FRAME_MAX)),
        } as usize;
        let mut props = Args::new();
        let mut flags = 0u16;
        if self.rng.chance(50) {
            flags |= 1 << 12;
            props = props.octet(1 + self.rng.below(2) as u8);
        }
        if self.rng.chance(30) {
            flags |= 1 << 11;
            props = props.octet(self.rng.below(12) as u8);
        }
        if self.rng.chance(20) {
            flags |= 1 << 8;
            let e = *self.rng.pick(&["0", "10", "60000", "soon"]);
            props = props.shortstr(e);
        }
        let header = Args::new()
            .short(60)
            .short(0)
            .longlong(size as u64)
            .short(flags)
            .done();
        bytes.extend(RawConn::frame_bytes(
            FRAME_HEADER,
            ch,
            &[header, props.done()].concat(),
        ));
        let body = vec![b'f'; size];
        for part in body.chunks(FRAME_MAX as usize - 8) {
            bytes.extend(RawConn::frame_bytes(FRAME_BODY, ch, part));
        }
        self.send_bytes(&bytes);
        if let Some(c) = self.chans.get_mut(&ch) {
            if c.confirm {
                c.published += 1;
            }
        }
    }

    /// basic.ack / nack / reject of a delivery this channel holds, or of a
    /// tag it does not (a 406 channel error), not waited for.
    pub fn settle(&mut self, ch: u16) {
        let tags = self
            .chans
            .get(&ch)
            .map(|c| c.tags.clone())
            .unwrap_or_default();
        let mut multiple = self.rng.chance(30);
        let tag = if tags.is_empty() && self.rng.chance(50) {
            // Tag 0 with multiple: everything outstanding (or nothing).
            multiple = true;
            0
        } else if tags.is_empty() || self.rng.chance(10) {
            1000 + self.rng.below(1000)
        } else {
            *self.rng.pick(&tags)
        };
        let requeue = self.rng.chance(50);
        match self.rng.below(3) {
            0 => self.send(
                ch,
                60,
                80,
                &Args::new().longlong(tag).bits(&[multiple]).done(),
            ),
            1 => self.send(
                ch,
                60,
                120,
                &Args::new().longlong(tag).bits(&[multiple, requeue]).done(),
            ),
            _ => self.send(
                ch,
                60,
                90,
                &Args::new().longlong(tag).bits(&[requeue]).done(),
            ),
        }
        if let Some(c) = self.chans.get_mut(&ch) {
            c.tags.retain(|t| !(multiple && *t <= tag || *t == tag));
        }
    }

    /// A method out of place: each one is a connection error.
    pub fn violation(&mut self) {
        if !self.sync_channels() {
            return;
        }
        let open: Vec<u16> = self
            .chans
            .keys()
            .copied()
            .filter(|c| *c <= CHANNELS)
            .collect();
        let unopened = (1..=CHANNELS)
            .find(|c| !self.chans.contains_key(c))
            .unwrap_or(CHANNELS + 1);
        let (ch, bytes) = match self.rng.below(8) {
            0 if !open.is_empty() => {
                let ch = *self.rng.pick(&open);
                (
                    ch,
                    RawConn::method_bytes(ch, 20, 10, &Args::new().shortstr("").done()),
                )
            }
            1 => (
                0,
                RawConn::method_bytes(
                    0,
                    50,
                    10,
                    &Args::new()
                        .short(0)
                        .shortstr("q")
                        .bits(&[false])
                        .empty_table()
                        .done(),
                ),
            ),
            2 => (
                0,
                RawConn::method_bytes(
                    0,
                    10,
                    31,
                    &Args::new().short(2047).long(FRAME_MAX).short(0).done(),
                ),
            ),
            3 => (
                1,
                RawConn::method_bytes(
                    1,
                    10,
                    40,
                    &Args::new().shortstr("/").shortstr("").octet(0).done(),
                ),
            ),
            4 => (
                unopened,
                RawConn::method_bytes(
                    unopened,
                    60,
                    10,
                    &Args::new().long(0).short(1).bits(&[false]).done(),
                ),
            ),
            5 => (1, RawConn::frame_bytes(FRAME_HEARTBEAT, 1, &[])),
            6 if !open.is_empty() => {
                let ch = *self.rng.pick(&open);
                (
                    ch,
                    RawConn::frame_bytes(
                        FRAME_HEADER,
                        ch,
                        &Args::new().short(60).short(0).longlong(1).short(0).done(),
                    ),
                )
            }
            _ if !open.is_empty() => {
                let ch = *self.rng.pick(&open);
                (ch, RawConn::frame_bytes(FRAME_BODY, ch, b"stray"))
            }
            _ => (
                0,
                RawConn::method_bytes(
                    0,
                    10,
                    31,
                    &Args::new().short(2047).long(FRAME_MAX).short(0).done(),
                ),
            ),
        };
        self.send_bytes(&bytes);
        // Only the connection's end answers these; wait on an id nothing
        // replies on.
        match self.answer(u16::MAX, &[]) {
            Answer::ConnectionClosed(_) => {}
            Answer::Dropped if self.external => {}
            other => panic!("a connection error on channel {ch} was answered {other:?}"),
        }
    }
}
