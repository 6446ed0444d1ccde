//! The message-moving runs: throughput (producers and consumers at once,
//! rates and latencies, a progress line a second) and backlog (publish N
//! with no consumer, then drain). One thread per connection; producers that
//! use confirms get a second thread reading acks off the same socket.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use warren_protocol::frame::{Frame, FrameDecoder};
use warren_protocol::methods::{
    BasicAck, BasicConsume, BasicQos, ConfirmSelect, ExchangeDeclare, ExchangeDelete, Method,
    QueueBind, QueueDeclare, QueueDelete,
};
use warren_protocol::types::{FieldTable, ShortStr};

use crate::cli::{Config, Mode};
use crate::client::{self, is_timeout, Conn, Error, Publisher};
use crate::report::{new_histogram, Better, Report};
use crate::sys::{now_ns, CpuMeter, CpuUsage};
use crate::topology::{group, Topology};
use crate::uri::AmqpUri;

/// How often blocked readers wake up to look at the stop flags.
const POLL: Duration = Duration::from_millis(100);
/// How long to wait for outstanding confirms once publishing stops.
const CONFIRM_GRACE: Duration = Duration::from_secs(30);
/// Consumers still receiving after the producers stop get this long without
/// a single delivery before the run ends anyway.
const DRAIN_IDLE: Duration = Duration::from_secs(10);
/// Upper bound on the drain after the producers stop.
const DRAIN_MAX: Duration = Duration::from_secs(300);

/// Counters and interval histograms shared by every worker thread.
pub struct Shared {
    go: AtomicBool,
    start_ns: AtomicU64,
    /// Producers stop publishing (watchdog or a fatal error).
    stop_producers: AtomicBool,
    /// Consumers and ack readers stop.
    stop: AtomicBool,
    ready: AtomicUsize,
    failed: AtomicUsize,
    sent: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    received: AtomicU64,
    last_confirm_ns: AtomicU64,
    last_recv_ns: AtomicU64,
    /// Latencies recorded since the monitor last looked.
    e2e: Mutex<Histogram<u64>>,
    confirm: Mutex<Histogram<u64>>,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            go: AtomicBool::new(false),
            start_ns: AtomicU64::new(0),
            stop_producers: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_confirm_ns: AtomicU64::new(0),
            last_recv_ns: AtomicU64::new(0),
            e2e: Mutex::new(new_histogram()),
            confirm: Mutex::new(new_histogram()),
            errors: Mutex::new(Vec::new()),
        })
    }

    fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 100 {
            errs.push(e);
        }
    }

    fn first_error(&self) -> Option<String> {
        let errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errs.first().map(|e| {
            if errs.len() > 1 {
                format!("{e} (and {} more errors)", errs.len() - 1)
            } else {
                e.clone()
            }
        })
    }

    fn record(hist: &Mutex<Histogram<u64>>, values: &mut Vec<u64>) {
        if values.is_empty() {
            return;
        }
        let mut h = hist.lock().unwrap_or_else(|p| p.into_inner());
        for &v in values.iter() {
            h.saturating_record(v.max(1));
        }
        values.clear();
    }
}

// ---------------------------------------------------------------- setup

fn short(s: &str) -> Result<ShortStr, Error> {
    ShortStr::try_from_string(s.to_string()).ok_or_else(|| Error(format!("{s:?}: name too long")))
}

fn expect(m: Method, want: &str) -> Result<Method, Error> {
    if m.name() == want {
        Ok(m)
    } else {
        Err(Error(format!("expected {want}, got {}", m.name())))
    }
}

/// Declares the exchange, queues and bindings (deleting leftovers of an
/// earlier run first, so stale messages cannot skew the numbers).
pub fn setup(conn: &mut Conn, cfg: &Config, topo: &Topology) -> Result<(), Error> {
    conn.open_channel(1)?;
    for q in &topo.queues {
        delete_queue(conn, q)?;
        let m = conn.rpc(
            1,
            QueueDeclare {
                queue: short(q)?,
                durable: cfg.persistent,
                ..QueueDeclare::default()
            },
        )?;
        expect(m, "queue.declare_ok")?;
    }
    if !topo.exchange.is_empty() {
        let m = conn.rpc(
            1,
            ExchangeDelete {
                exchange: short(&topo.exchange)?,
                ..ExchangeDelete::default()
            },
        )?;
        expect(m, "exchange.delete_ok")?;
        let m = conn.rpc(
            1,
            ExchangeDeclare {
                exchange: short(&topo.exchange)?,
                kind: ShortStr::from_static(topo.exchange_kind.as_str()),
                durable: cfg.persistent,
                ..ExchangeDeclare::default()
            },
        )?;
        expect(m, "exchange.declare_ok")?;
        for (q, key) in &topo.bindings {
            let m = conn.rpc(
                1,
                QueueBind {
                    queue: short(&topo.queues[*q])?,
                    exchange: short(&topo.exchange)?,
                    routing_key: short(key)?,
                    no_wait: false,
                    arguments: FieldTable::new(),
                },
            )?;
            expect(m, "queue.bind_ok")?;
        }
    }
    Ok(())
}

fn delete_queue(conn: &mut Conn, q: &str) -> Result<(), Error> {
    let m = conn.rpc(
        1,
        QueueDelete {
            queue: short(q)?,
            ..QueueDelete::default()
        },
    )?;
    expect(m, "queue.delete_ok").map(|_| ())
}

/// Deletes what `setup` created.
pub fn teardown(conn: &mut Conn, topo: &Topology) -> Result<(), Error> {
    for q in &topo.queues {
        delete_queue(conn, q)?;
    }
    if !topo.exchange.is_empty() {
        let m = conn.rpc(
            1,
            ExchangeDelete {
                exchange: short(&topo.exchange)?,
                ..ExchangeDelete::default()
            },
        )?;
        expect(m, "exchange.delete_ok")?;
    }
    Ok(())
}

/// The number of ready messages in a queue (passive declare).
fn queue_depth(conn: &mut Conn, q: &str) -> Result<u32, Error> {
    match conn.rpc(
        1,
        QueueDeclare {
            queue: short(q)?,
            passive: true,
            ..QueueDeclare::default()
        },
    )? {
        Method::QueueDeclareOk(ok) => Ok(ok.message_count),
        other => Err(Error(format!(
            "expected queue.declare_ok, got {}",
            other.name()
        ))),
    }
}

// ---------------------------------------------------------------- producers

/// Per-channel confirm bookkeeping shared by the publishing thread (which
/// stamps and counts) and the ack-reading thread (which confirms).
struct ConfirmTrack {
    mask: u64,
    window: u64,
    /// Publish timestamp of tag `t` at `t & mask`.
    ts: Box<[AtomicU64]>,
    /// Highest delivery tag published so far.
    published: AtomicU64,
    /// Lowest delivery tag not yet confirmed.
    low: AtomicU64,
}

impl ConfirmTrack {
    fn new(window: u32) -> ConfirmTrack {
        let size = u64::from(window.max(1)).next_power_of_two();
        ConfirmTrack {
            mask: size - 1,
            window: u64::from(window.max(1)),
            ts: (0..size).map(|_| AtomicU64::new(0)).collect(),
            published: AtomicU64::new(0),
            low: AtomicU64::new(1),
        }
    }

    /// Whether tag `published + 1` may go out: the span of unconfirmed
    /// tags stays below the window (and below the ring's size).
    fn has_room(&self) -> bool {
        let next = self.published.load(Ordering::Relaxed) + 1;
        next - self.low.load(Ordering::Acquire) < self.window
    }

    fn all_confirmed(&self) -> bool {
        self.low.load(Ordering::Acquire) > self.published.load(Ordering::Acquire)
    }
}

/// The ack reader's private view of one channel.
struct AckState {
    acked: Vec<bool>,
}

impl AckState {
    /// Applies a basic.ack / basic.nack; returns how many messages it
    /// settled and pushes their confirm latencies.
    fn settle(
        &mut self,
        t: &ConfirmTrack,
        tag: u64,
        multiple: bool,
        now: u64,
        lat: &mut Vec<u64>,
    ) -> u64 {
        let published = t.published.load(Ordering::Acquire);
        let mut low = t.low.load(Ordering::Relaxed);
        if tag < low || tag > published {
            return 0; // already settled, or not ours
        }
        let mut n = 0;
        let mut stamp = |tag: u64, n: &mut u64| {
            let ts = t.ts[(tag & t.mask) as usize].load(Ordering::Relaxed);
            lat.push(now.saturating_sub(ts));
            *n += 1;
        };
        if multiple {
            for x in low..=tag {
                let slot = &mut self.acked[(x & t.mask) as usize];
                if !*slot {
                    stamp(x, &mut n);
                }
                *slot = false;
            }
            low = tag + 1;
        } else {
            let slot = &mut self.acked[(tag & t.mask) as usize];
            if !*slot {
                *slot = true;
                stamp(tag, &mut n);
            }
        }
        while low <= published && self.acked[(low & t.mask) as usize] {
            self.acked[(low & t.mask) as usize] = false;
            low += 1;
        }
        t.low.store(low, Ordering::Release);
        n
    }
}

/// What one producer connection did.
#[derive(Default)]
struct ProducerOut {
    /// (global producer index, messages sent).
    sent: Vec<(usize, u64)>,
    publish_end_ns: u64,
}

struct ProducerPlan {
    uri: AmqpUri,
    conn_index: usize,
    /// (global producer index, exchange, routing key).
    channels: Vec<(usize, String, String)>,
    size: usize,
    persistent: bool,
    confirm: u32,
    /// msg/s per channel, 0 = unlimited.
    rate: u64,
    /// Messages per channel, 0 = no limit.
    count: u64,
    duration_ns: Option<u64>,
}

fn spawn_producers(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    counts: &dyn Fn(usize) -> u64,
    duration_ns: Option<u64>,
) -> Vec<JoinHandle<ProducerOut>> {
    group(cfg.producers, cfg.channels_per_connection)
        .into_iter()
        .enumerate()
        .map(|(ci, range)| {
            let channels = range
                .clone()
                .map(|p| {
                    let r = &topo.routes[p];
                    (p, r.exchange.clone(), r.routing_key.clone())
                })
                .collect();
            let plan = ProducerPlan {
                uri: cfg.uri.clone(),
                conn_index: ci,
                channels,
                size: cfg.size,
                persistent: cfg.persistent,
                confirm: cfg.confirm,
                rate: cfg.rate,
                count: counts(range.start),
                duration_ns,
            };
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("producer-{ci}"))
                .spawn(move || {
                    let mut out = ProducerOut::default();
                    if let Err(e) = producer(&plan, &shared, &mut out) {
                        shared.error(format!("producer connection {ci}: {e}"));
                        shared.failed.fetch_add(1, Ordering::SeqCst);
                    }
                    out
                })
                .expect("spawn producer thread")
        })
        .collect()
}

fn producer(plan: &ProducerPlan, shared: &Arc<Shared>, out: &mut ProducerOut) -> Result<(), Error> {
    let mut conn = Conn::connect(&plan.uri, &format!("loadgen-producer-{}", plan.conn_index))?;
    let k = plan.channels.len();
    let mut pubs = Vec::with_capacity(k);
    let mut tracks = Vec::with_capacity(k);
    for (i, (_, exchange, key)) in plan.channels.iter().enumerate() {
        let ch = (i + 1) as u16;
        conn.open_channel(ch)?;
        if plan.confirm > 0 {
            expect(
                conn.rpc(ch, ConfirmSelect { nowait: false })?,
                "confirm.select_ok",
            )?;
        }
        pubs.push(Publisher::new(
            ch,
            exchange,
            key,
            plan.size,
            plan.persistent,
            conn.max_body_frame(),
        )?);
        tracks.push(Arc::new(ConfirmTrack::new(plan.confirm)));
        out.sent.push((plan.channels[i].0, 0));
    }
    conn.set_read_timeout(Some(POLL))?;
    let (rstream, rbuf, decoder) = conn.take_read_half()?;
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader_dead = Arc::new(AtomicBool::new(false));
    let reader = {
        let (tracks, shared, stop, dead) = (
            tracks.clone(),
            shared.clone(),
            reader_stop.clone(),
            reader_dead.clone(),
        );
        let writer = thread::current();
        let ci = plan.conn_index;
        thread::Builder::new()
            .name(format!("acks-{ci}"))
            .spawn(move || {
                let mut rbuf = rbuf;
                let res = ack_reader(
                    rstream, &mut rbuf, decoder, &tracks, &shared, &stop, &writer,
                );
                if let Err(e) = &res {
                    shared.error(format!("producer connection {ci}: {e}"));
                }
                dead.store(true, Ordering::SeqCst);
                writer.unpark();
                res.ok().map(|_| rbuf)
            })
            .expect("spawn ack reader thread")
    };
    shared.ready.fetch_add(1, Ordering::SeqCst);
    while !shared.go.load(Ordering::Acquire) {
        if shared.stop_producers.load(Ordering::Relaxed) {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let result = publish_loop(plan, shared, &mut conn, &pubs, &tracks, &reader_dead, out);
    out.publish_end_ns = now_ns();
    if result.is_ok() && plan.confirm > 0 {
        let deadline = Instant::now() + CONFIRM_GRACE;
        while !tracks.iter().all(|t| t.all_confirmed())
            && !reader_dead.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            thread::park_timeout(Duration::from_millis(10));
        }
        if !tracks.iter().all(|t| t.all_confirmed()) {
            shared.error(format!(
                "producer connection {}: confirms still outstanding {}s after publishing stopped",
                plan.conn_index,
                CONFIRM_GRACE.as_secs()
            ));
        }
    }
    reader_stop.store(true, Ordering::SeqCst);
    if let Ok(Some(rbuf)) = reader.join() {
        // Close the channels before the connection: once their close-ok is
        // back, the broker has handled every publish (without confirms a
        // broker may drop publishes still in flight at connection close).
        conn.restore_read_half(rbuf);
        conn.set_read_timeout(Some(client::RPC_TIMEOUT))?;
        for ch in 1..=pubs.len() {
            if let Err(e) = conn.close_channel(ch as u16) {
                shared.error(format!(
                    "producer connection {}: closing channel {ch}: {e}",
                    plan.conn_index
                ));
                break;
            }
        }
    }
    conn.close();
    result
}

fn publish_loop(
    plan: &ProducerPlan,
    shared: &Shared,
    conn: &mut Conn,
    pubs: &[Publisher],
    tracks: &[Arc<ConfirmTrack>],
    reader_dead: &AtomicBool,
    out: &mut ProducerOut,
) -> Result<(), Error> {
    let k = pubs.len() as u64;
    let start = shared.start_ns.load(Ordering::Acquire);
    let deadline = plan.duration_ns.map_or(u64::MAX, |d| start + d);
    let thread_rate = plan.rate.saturating_mul(k);
    let mut i: u64 = 0;
    let mut unreported: u64 = 0;
    let mut done = vec![false; pubs.len()];
    let mut n_done = 0;
    while n_done < pubs.len() {
        let c = (i % k) as usize;
        i += 1;
        if done[c] {
            continue;
        }
        if plan.count > 0 && out.sent[c].1 >= plan.count {
            done[c] = true;
            n_done += 1;
            continue;
        }
        let mut now = now_ns();
        if now >= deadline {
            break;
        }
        if i.is_multiple_of(256)
            && (shared.stop_producers.load(Ordering::Relaxed)
                || reader_dead.load(Ordering::Relaxed))
        {
            break;
        }
        if thread_rate > 0 {
            let total_sent: u64 = out.sent.iter().map(|s| s.1).sum();
            let due = start + (total_sent as u128 * 1_000_000_000 / thread_rate as u128) as u64;
            if now < due {
                conn.flush()?;
                shared.sent.fetch_add(unreported, Ordering::Relaxed);
                unreported = 0;
                thread::sleep(Duration::from_nanos((due - now).min(deadline - now)));
                now = now_ns();
                if now >= deadline {
                    break;
                }
            }
        }
        if plan.confirm > 0 {
            let t = &tracks[c];
            if !t.has_room() {
                conn.flush()?;
                shared.sent.fetch_add(unreported, Ordering::Relaxed);
                unreported = 0;
                while !t.has_room() {
                    if reader_dead.load(Ordering::Relaxed)
                        || shared.stop_producers.load(Ordering::Relaxed)
                        || now_ns() >= deadline
                    {
                        return Ok(());
                    }
                    thread::park_timeout(Duration::from_millis(5));
                }
                now = now_ns();
            }
            let tag = t.published.load(Ordering::Relaxed) + 1;
            t.ts[(tag & t.mask) as usize].store(now, Ordering::Relaxed);
            t.published.store(tag, Ordering::Release);
        }
        pubs[c].append(&mut conn.wbuf, now);
        out.sent[c].1 += 1;
        unreported += 1;
        if conn.wbuf.len() >= client::FLUSH_AT {
            conn.flush()?;
            shared.sent.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    conn.flush()?;
    shared.sent.fetch_add(unreported, Ordering::Relaxed);
    Ok(())
}

fn ack_reader(
    mut stream: TcpStream,
    rbuf: &mut BytesMut,
    mut decoder: FrameDecoder,
    tracks: &[Arc<ConfirmTrack>],
    shared: &Shared,
    stop: &AtomicBool,
    writer: &thread::Thread,
) -> Result<(), Error> {
    let mut states: Vec<AckState> = tracks
        .iter()
        .map(|t| AckState {
            acked: vec![false; t.ts.len()],
        })
        .collect();
    let mut lat = Vec::with_capacity(4096);
    loop {
        let mut settled = 0;
        let mut nacked = 0;
        while let Some(frame) = decoder.decode(rbuf)? {
            let Frame::Method { channel, method } = frame else {
                continue; // returned message content, heartbeats
            };
            let idx = usize::from(channel).wrapping_sub(1);
            match method {
                Method::BasicAck(a) if idx < tracks.len() => {
                    settled += states[idx].settle(
                        &tracks[idx],
                        a.delivery_tag,
                        a.multiple,
                        now_ns(),
                        &mut lat,
                    );
                }
                Method::BasicNack(a) if idx < tracks.len() => {
                    nacked += states[idx].settle(
                        &tracks[idx],
                        a.delivery_tag,
                        a.multiple,
                        now_ns(),
                        &mut lat,
                    );
                }
                Method::ConnectionClose(c) => {
                    return Err(Error(format!(
                        "broker closed the connection: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                Method::ChannelClose(c) => {
                    return Err(Error(format!(
                        "broker closed channel {channel}: {} {}",
                        c.reply_code, c.reply_text
                    )))
                }
                _ => {}
            }
        }
        if settled + nacked > 0 {
            let now = now_ns();
            shared.confirmed.fetch_add(settled, Ordering::Relaxed);
            shared.nacked.fetch_add(nacked, Ordering::Relaxed);
            shared.last_confirm_ns.fetch_max(now, Ordering::Relaxed);
            Shared::record(&shared.confirm, &mut lat);
            writer.unpark();
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match client::fill(&mut stream, rbuf) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------- consumers

struct ConsumerPlan {
    uri: AmqpUri,
    conn_index: usize,
    /// (global consumer index, queue name).
    channels: Vec<(usize, String)>,
    qos: u16,
    autoack: bool,
    ack_every: u32,
    /// Record end-to-end latency (off for backlog drains, where it would
    /// only measure time spent queued).
    latency: bool,
}

#[derive(Default)]
struct ChanState {
    /// Body bytes still to come for the current delivery.
    remaining: u64,
    in_content: bool,
    ts: Option<u64>,
    tag: u64,
    unacked: u32,
}

fn spawn_consumers(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    latency: bool,
) -> Vec<JoinHandle<()>> {
    group(cfg.consumers, cfg.channels_per_connection)
        .into_iter()
        .enumerate()
        .map(|(ci, range)| {
            let plan = ConsumerPlan {
                uri: cfg.uri.clone(),
                conn_index: ci,
                channels: range
                    .map(|c| (c, topo.queues[topo.consumer_queue[c]].clone()))
                    .collect(),
                qos: cfg.qos,
                autoack: cfg.autoack,
                ack_every: cfg.multi_ack_every.max(1),
                latency,
            };
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("consumer-{ci}"))
                .spawn(move || {
                    if let Err(e) = consumer(&plan, &shared) {
                        shared.error(format!("consumer connection {ci}: {e}"));
                        shared.failed.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .expect("spawn consumer thread")
        })
        .collect()
}

fn consumer(plan: &ConsumerPlan, shared: &Shared) -> Result<(), Error> {
    let mut conn = Conn::connect(&plan.uri, &format!("loadgen-consumer-{}", plan.conn_index))?;
    for (i, (c, queue)) in plan.channels.iter().enumerate() {
        let ch = (i + 1) as u16;
        conn.open_channel(ch)?;
        if plan.qos > 0 {
            expect(
                conn.rpc(
                    ch,
                    BasicQos {
                        prefetch_size: 0,
                        prefetch_count: plan.qos,
                        global: false,
                    },
                )?,
                "basic.qos_ok",
            )?;
        }
        expect(
            conn.rpc(
                ch,
                BasicConsume {
                    queue: short(queue)?,
                    consumer_tag: short(&format!("loadgen-c{c}"))?,
                    no_ack: plan.autoack,
                    ..BasicConsume::default()
                },
            )?,
            "basic.consume_ok",
        )?;
    }
    conn.set_read_timeout(Some(POLL))?;
    shared.ready.fetch_add(1, Ordering::SeqCst);
    let mut states: Vec<ChanState> = plan.channels.iter().map(|_| ChanState::default()).collect();
    let mut lat = Vec::with_capacity(4096);
    let result = consume_loop(plan, shared, &mut conn, &mut states, &mut lat);
    if result.is_ok() && !plan.autoack {
        for (i, s) in states.iter_mut().enumerate() {
            if s.unacked > 0 {
                conn.send(
                    (i + 1) as u16,
                    BasicAck {
                        delivery_tag: s.tag,
                        multiple: true,
                    },
                );
                s.unacked = 0;
            }
        }
        let _ = conn.flush();
    }
    conn.close();
    result
}

fn consume_loop(
    plan: &ConsumerPlan,
    shared: &Shared,
    conn: &mut Conn,
    states: &mut [ChanState],
    lat: &mut Vec<u64>,
) -> Result<(), Error> {
    let mut received: u64 = 0;
    loop {
        while let Some(frame) = conn.next_buffered()? {
            let idx = usize::from(frame.channel()).wrapping_sub(1);
            match frame {
                Frame::Method { method, channel } => match method {
                    Method::BasicDeliver(d) if idx < states.len() => {
                        let s = &mut states[idx];
                        s.tag = d.delivery_tag;
                        s.in_content = true;
                        s.remaining = 0;
                        s.ts = None;
                    }
                    Method::ConnectionClose(c) => {
                        return Err(Error(format!(
                            "broker closed the connection: {} {}",
                            c.reply_code, c.reply_text
                        )))
                    }
                    Method::ChannelClose(c) => {
                        return Err(Error(format!(
                            "broker closed channel {channel}: {} {}",
                            c.reply_code, c.reply_text
                        )))
                    }
                    Method::BasicCancel(_) => {
                        return Err(Error(format!(
                            "broker cancelled the consumer on channel {channel}"
                        )))
                    }
                    _ => {}
                },
                Frame::Header { header, .. } if idx < states.len() => {
                    let s = &mut states[idx];
                    if !s.in_content {
                        return Err(Error("content header without basic.deliver".into()));
                    }
                    s.remaining = header.body_size;
                    if s.remaining == 0 {
                        s.in_content = false;
                        received += 1;
                        ack(conn, plan, idx, s);
                    }
                }
                Frame::Body { payload, .. } if idx < states.len() => {
                    let s = &mut states[idx];
                    if !s.in_content || payload.len() as u64 > s.remaining {
                        return Err(Error("unexpected body frame".into()));
                    }
                    if s.ts.is_none() {
                        s.ts = client::body_timestamp(&payload);
                    }
                    s.remaining -= payload.len() as u64;
                    if s.remaining == 0 {
                        s.in_content = false;
                        received += 1;
                        if plan.latency {
                            if let Some(ts) = s.ts {
                                lat.push(now_ns().saturating_sub(ts));
                            }
                        }
                        ack(conn, plan, idx, s);
                    }
                }
                _ => {}
            }
        }
        // The read buffer is exhausted: publish this batch.
        conn.flush()?;
        if received > 0 {
            shared.received.fetch_add(received, Ordering::Relaxed);
            shared.last_recv_ns.fetch_max(now_ns(), Ordering::Relaxed);
            received = 0;
        }
        Shared::record(&shared.e2e, lat);
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match conn.fill() {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[inline]
fn ack(conn: &mut Conn, plan: &ConsumerPlan, idx: usize, s: &mut ChanState) {
    if plan.autoack {
        return;
    }
    s.unacked += 1;
    if s.unacked >= plan.ack_every {
        conn.send(
            (idx + 1) as u16,
            BasicAck {
                delivery_tag: s.tag,
                multiple: plan.ack_every > 1,
            },
        );
        s.unacked = 0;
    }
}

// ---------------------------------------------------------------- monitor

/// Totals merged from the interval histograms, and the progress printer.
struct Monitor {
    e2e: Histogram<u64>,
    confirm: Histogram<u64>,
    quiet: bool,
    last: (u64, u64, u64),
    last_t: Instant,
    started: Instant,
}

impl Monitor {
    fn new(quiet: bool) -> Monitor {
        Monitor {
            e2e: new_histogram(),
            confirm: new_histogram(),
            quiet,
            last: (0, 0, 0),
            last_t: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Merges the interval histograms and prints one progress line.
    fn tick(&mut self, shared: &Shared, label: &str) {
        let take = |h: &Mutex<Histogram<u64>>| {
            let mut h = h.lock().unwrap_or_else(|p| p.into_inner());
            let out = h.clone();
            h.reset();
            out
        };
        let e2e = take(&shared.e2e);
        let confirm = take(&shared.confirm);
        let _ = self.e2e.add(&e2e);
        let _ = self.confirm.add(&confirm);
        let now = (
            shared.sent.load(Ordering::Relaxed),
            shared.confirmed.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        );
        let dt = self.last_t.elapsed().as_secs_f64().max(1e-6);
        if !self.quiet {
            let rate = |a: u64, b: u64| (a - b) as f64 / dt;
            let mut line = format!(
                "[{:>6.1}s {label}] sent {:>9.0}/s  confirmed {:>9.0}/s  received {:>9.0}/s",
                self.started.elapsed().as_secs_f64(),
                rate(now.0, self.last.0),
                rate(now.1, self.last.1),
                rate(now.2, self.last.2),
            );
            let pct = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
            if !e2e.is_empty() {
                line += &format!(
                    "  e2e p50/p99 {:.2}/{:.2} ms",
                    pct(&e2e, 0.5),
                    pct(&e2e, 0.99)
                );
            }
            if !confirm.is_empty() {
                line += &format!(
                    "  confirm p50/p99 {:.2}/{:.2} ms",
                    pct(&confirm, 0.5),
                    pct(&confirm, 0.99)
                );
            }
            eprintln!("{line}");
        }
        self.last = now;
        self.last_t = Instant::now();
    }

    /// Ticks every second until `done()` or `limit` passes; returns false
    /// on the limit.
    fn watch(
        &mut self,
        shared: &Shared,
        label: &str,
        limit: Duration,
        mut done: impl FnMut() -> bool,
    ) -> bool {
        let until = Instant::now() + limit;
        let mut next = Instant::now() + Duration::from_secs(1);
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
            if Instant::now() >= next {
                self.tick(shared, label);
                next += Duration::from_secs(1);
            }
        }
    }
}

/// Waits until `n` workers are ready (or failed); false on failure.
fn wait_ready(shared: &Shared, n: usize) -> bool {
    let until = Instant::now() + client::RPC_TIMEOUT;
    while shared.ready.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) < n
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(5));
    }
    shared.failed.load(Ordering::SeqCst) == 0 && shared.ready.load(Ordering::SeqCst) >= n
}

/// Waits for deliveries to reach `expected`, giving up after
/// `DRAIN_IDLE` without progress (or `DRAIN_MAX` overall).
fn drain(mon: &mut Monitor, shared: &Shared, expected: u64, label: &str) {
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    mon.watch(shared, label, DRAIN_MAX, || {
        let r = shared.received.load(Ordering::Relaxed);
        if r != last {
            last = r;
            last_change = Instant::now();
        }
        r >= expected
            || last_change.elapsed() >= DRAIN_IDLE
            || shared.failed.load(Ordering::SeqCst) > 0
    });
}

fn settings(cfg: &Config) -> String {
    let mut s = format!(
        "mode {}, {} producer(s), {} consumer(s), {} queue(s), exchange {}, {} B, ",
        cfg.mode.as_str(),
        cfg.producers,
        cfg.consumers,
        cfg.queues,
        cfg.exchange.as_str(),
        cfg.size
    );
    s += &if cfg.rate > 0 {
        format!("rate {}/s per producer, ", cfg.rate)
    } else {
        "unlimited rate, ".to_string()
    };
    s += if cfg.persistent {
        "persistent, "
    } else {
        "transient, "
    };
    if cfg.confirm > 0 {
        s += &format!("confirm window {}, ", cfg.confirm);
    }
    s += &if cfg.autoack {
        "autoack".to_string()
    } else {
        format!("qos {}, ack every {}", cfg.qos, cfg.multi_ack_every.max(1))
    };
    match cfg.mode {
        Mode::Backlog | Mode::Fill => s += &format!(", backlog {}", cfg.backlog),
        Mode::RecoverWait => s += &format!(", expecting {} ready", cfg.expect),
        _ => {
            if let Some(t) = cfg.time_s {
                s += &format!(", {t} s");
            }
            if cfg.pmessages > 0 {
                s += &format!(", {} msg per producer", cfg.pmessages);
            }
        }
    }
    s
}

fn push_cpu(r: &mut Report, cpu: &CpuUsage, messages: u64, pid: Option<u32>) {
    r.push("wall time", cpu.wall_s, "s", Better::Neither);
    r.push("loadgen CPU", cpu.loadgen_cpu_s, "s", Better::Neither);
    r.push(
        "loadgen CPU per wall s",
        cpu.loadgen_cpu_s / cpu.wall_s.max(1e-9),
        "cores",
        Better::Neither,
    );
    match cpu.broker_cpu_s {
        Some(b) => {
            r.push("broker CPU", b, "s", Better::Lower);
            r.push(
                "broker CPU per wall s",
                b / cpu.wall_s.max(1e-9),
                "cores",
                Better::Neither,
            );
            if messages > 0 {
                r.push(
                    "broker CPU per msg",
                    b / messages as f64 * 1e6,
                    "us",
                    Better::Lower,
                );
            }
        }
        None if pid.is_some() => r
            .notes
            .push("could not read the broker's /proc/PID/stat".to_string()),
        None => {}
    }
}

fn rate(n: u64, from_ns: u64, to_ns: u64) -> f64 {
    if n == 0 || to_ns <= from_ns {
        return 0.0;
    }
    n as f64 / ((to_ns - from_ns) as f64 / 1e9)
}

fn lock_join<T>(handles: Vec<JoinHandle<T>>, shared: &Shared) -> Vec<T> {
    handles
        .into_iter()
        .filter_map(|h| match h.join() {
            Ok(v) => Some(v),
            Err(_) => {
                shared.error("a worker thread panicked".to_string());
                None
            }
        })
        .collect()
}

fn connect_admin(cfg: &Config) -> Result<Conn, Error> {
    Conn::connect(&cfg.uri, "loadgen-admin")
}

/// Producers and consumers at once.
pub fn run_throughput(cfg: &Config) -> Report {
    let name = cfg.scenario.clone().unwrap_or_else(|| "custom".into());
    let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
    let topo = Topology::new(cfg);
    let mut admin = match connect_admin(cfg).and_then(|mut c| setup(&mut c, cfg, &topo).map(|_| c))
    {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("setup: {e}"));
            return r;
        }
    };
    let shared = Shared::new();
    let cpu = CpuMeter::start(cfg.broker_pid);
    let mut mon = Monitor::new(cfg.quiet);
    let consumers = spawn_consumers(cfg, &topo, &shared, true);
    let n_consumer_conns = consumers.len();
    let consumers_ok = wait_ready(&shared, n_consumer_conns);
    let duration_ns = cfg.time_s.map(|t| (t * 1e9) as u64);
    let count = cfg.pmessages;
    let producers = if consumers_ok {
        spawn_producers(cfg, &topo, &shared, &|_| count, duration_ns)
    } else {
        Vec::new()
    };
    let n_producer_conns = producers.len();
    let start;
    if consumers_ok && wait_ready(&shared, n_consumer_conns + n_producer_conns) {
        start = now_ns();
        shared.start_ns.store(start, Ordering::Release);
        shared.go.store(true, Ordering::Release);
        let limit = Duration::from_secs_f64(cfg.time_s.unwrap_or(86_400.0) + 60.0);
        let finished = mon.watch(&shared, "run", limit, || {
            producers.iter().all(|h| h.is_finished())
        });
        if !finished {
            shared.error("producers did not stop within 60 s of the deadline".into());
            shared.stop_producers.store(true, Ordering::SeqCst);
        }
    } else {
        start = now_ns();
        shared.stop_producers.store(true, Ordering::SeqCst);
        shared.go.store(true, Ordering::Release);
    }
    let outs = lock_join(producers, &shared);
    let sent_per_producer = {
        let mut v = vec![0u64; cfg.producers];
        for o in &outs {
            for &(p, n) in &o.sent {
                v[p] = n;
            }
        }
        v
    };
    let publish_end = outs.iter().map(|o| o.publish_end_ns).max().unwrap_or(start);
    let expected = topo.expected_deliveries(&sent_per_producer);
    if n_consumer_conns > 0 {
        drain(&mut mon, &shared, expected, "drain");
    }
    shared.stop.store(true, Ordering::SeqCst);
    lock_join(consumers, &shared);
    mon.tick(&shared, "end");
    let usage = cpu.stop();

    let sent: u64 = sent_per_producer.iter().sum();
    let confirmed = shared.confirmed.load(Ordering::Relaxed);
    let nacked = shared.nacked.load(Ordering::Relaxed);
    let received = shared.received.load(Ordering::Relaxed);
    r.push("published", sent as f64, "msg", Better::Neither);
    r.push(
        "publish rate",
        rate(sent, start, publish_end),
        "msg/s",
        Better::Higher,
    );
    if cfg.confirm > 0 {
        r.push("confirmed", confirmed as f64, "msg", Better::Neither);
        let end = shared.last_confirm_ns.load(Ordering::Relaxed);
        r.push(
            "confirm rate",
            rate(confirmed, start, end),
            "msg/s",
            Better::Higher,
        );
        if nacked > 0 {
            r.push("nacked", nacked as f64, "msg", Better::Lower);
        }
    }
    if n_consumer_conns > 0 {
        r.push("received", received as f64, "msg", Better::Neither);
        let end = shared.last_recv_ns.load(Ordering::Relaxed);
        r.push(
            "receive rate",
            rate(received, start, end),
            "msg/s",
            Better::Higher,
        );
        if received < expected {
            r.notes.push(format!(
                "{} of {expected} expected deliveries never arrived",
                expected - received
            ));
        }
    }
    r.push_latency("e2e latency", &mon.e2e);
    r.push_latency("confirm latency", &mon.confirm);
    push_cpu(&mut r, &usage, received.max(sent), cfg.broker_pid);
    if let Err(e) = teardown(&mut admin, &topo) {
        r.notes.push(format!("teardown: {e}"));
    }
    admin.close();
    if r.error.is_none() {
        r.error = shared.first_error();
    }
    r
}

/// Publishes `cfg.backlog` messages with nobody consuming (phase 1 of the
/// backlog and fill runs): pushes the publish metrics and the queue depth,
/// returns (messages sent, depth). `None` when the producers could not
/// start (the error is in `shared`).
fn publish_backlog(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    mon: &mut Monitor,
    admin: &mut Conn,
    r: &mut Report,
) -> Option<(u64, u64)> {
    let total = cfg.backlog;
    let np = cfg.producers.max(1) as u64;
    let (per, extra) = (total / np, total % np);
    let counts = |p: usize| per + u64::from((p as u64) < extra);
    let producers = spawn_producers(cfg, topo, shared, &counts, None);
    let n_prod = producers.len();
    let mut start = now_ns();
    let ok = wait_ready(shared, n_prod);
    if ok {
        start = now_ns();
        shared.start_ns.store(start, Ordering::Release);
        shared.go.store(true, Ordering::Release);
        mon.watch(shared, "publish", Duration::from_secs(86_400), || {
            producers.iter().all(|h| h.is_finished())
        });
    } else {
        shared.stop_producers.store(true, Ordering::SeqCst);
        shared.go.store(true, Ordering::Release);
    }
    let outs = lock_join(producers, shared);
    if !ok {
        return None;
    }
    let sent: u64 = outs.iter().flat_map(|o| o.sent.iter().map(|s| s.1)).sum();
    let publish_end = outs.iter().map(|o| o.publish_end_ns).max().unwrap_or(start);
    let confirm_end = shared.last_confirm_ns.load(Ordering::Relaxed);
    // With confirms the broker has taken every message once they are all
    // confirmed; without, only once it has read them.
    let ingest_end = if cfg.confirm > 0 {
        confirm_end.max(publish_end)
    } else {
        publish_end
    };
    r.push("published", sent as f64, "msg", Better::Neither);
    r.push(
        "publish rate",
        rate(sent, start, ingest_end),
        "msg/s",
        Better::Higher,
    );
    if cfg.confirm > 0 {
        let confirmed = shared.confirmed.load(Ordering::Relaxed);
        r.push("confirmed", confirmed as f64, "msg", Better::Neither);
        let nacked = shared.nacked.load(Ordering::Relaxed);
        if nacked > 0 {
            r.push("nacked", nacked as f64, "msg", Better::Lower);
        }
    }
    r.push_latency("confirm latency", &{
        mon.tick(shared, "published");
        mon.confirm.clone()
    });
    let depth: u64 = topo
        .queues
        .iter()
        .map(|q| queue_depth(admin, q).map(u64::from))
        .sum::<Result<u64, Error>>()
        .unwrap_or_else(|e| {
            r.notes.push(format!("queue depth: {e}"));
            0
        });
    r.push("queued after publish", depth as f64, "msg", Better::Neither);
    Some((sent, depth))
}

/// Drains `expected` messages with `cfg.consumers` (at least 1) consumers
/// and pushes the drain metrics (the drain phase of the backlog and
/// recover-wait runs). `other_workers` counts workers already marked ready.
fn drain_backlog(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    mon: &mut Monitor,
    other_workers: usize,
    expected: u64,
    r: &mut Report,
) {
    let consumers_cfg = Config {
        consumers: cfg.consumers.max(1),
        ..cfg.clone()
    };
    let drain_start = now_ns();
    let consumers = spawn_consumers(&consumers_cfg, topo, shared, false);
    let n_cons = consumers.len();
    if wait_ready(shared, other_workers + n_cons) {
        drain(mon, shared, expected, "drain");
    }
    shared.stop.store(true, Ordering::SeqCst);
    lock_join(consumers, shared);
    let received = shared.received.load(Ordering::Relaxed);
    let end = shared.last_recv_ns.load(Ordering::Relaxed);
    r.push("drained", received as f64, "msg", Better::Neither);
    r.push(
        "drain rate",
        rate(received, drain_start, end),
        "msg/s",
        Better::Higher,
    );
    if received < expected {
        r.notes.push(format!(
            "{} of {expected} queued messages were not drained",
            expected - received
        ));
    }
}

fn push_rss(r: &mut Report, name: &str, rss: u64) {
    r.push(name, rss as f64 / (1024.0 * 1024.0), "MiB", Better::Lower);
}

/// Publish `backlog` messages with nobody consuming, then drain them.
pub fn run_backlog(cfg: &Config) -> Report {
    let name = cfg.scenario.clone().unwrap_or_else(|| "backlog".into());
    let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
    if cfg.channels_per_connection != 1 && cfg.producers > 1 {
        r.error = Some("backlog runs use one channel per producer connection".into());
        return r;
    }
    let topo = Topology::new(cfg);
    let mut admin = match connect_admin(cfg).and_then(|mut c| setup(&mut c, cfg, &topo).map(|_| c))
    {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("setup: {e}"));
            return r;
        }
    };
    let shared = Shared::new();
    let rss_before = cfg.broker_pid.and_then(crate::sys::pid_rss_bytes);
    let cpu = CpuMeter::start(cfg.broker_pid);
    let mut mon = Monitor::new(cfg.quiet);
    let published = publish_backlog(cfg, &topo, &shared, &mut mon, &mut admin, &mut r);
    if let (Some((_, depth)), Some(pid)) = (published, cfg.broker_pid) {
        if let Some(rss) = crate::sys::pid_rss_bytes(pid) {
            push_rss(&mut r, "broker RSS with backlog", rss);
            if let (Some(before), true) = (rss_before, depth > 0) {
                r.push(
                    "broker RSS per queued msg",
                    (rss as f64 - before as f64) / depth as f64,
                    "B",
                    Better::Lower,
                );
            }
        }
    }
    if let (Some((sent, depth)), None) = (published, shared.first_error()) {
        let expected = topo.expected_deliveries(&[sent]).max(depth.min(sent));
        drain_backlog(
            cfg,
            &topo,
            &shared,
            &mut mon,
            cfg.producers.max(1),
            expected,
            &mut r,
        );
    }
    let usage = cpu.stop();
    let sent = published.map_or(0, |p| p.0);
    let received = shared.received.load(Ordering::Relaxed);
    push_cpu(&mut r, &usage, received.max(sent), cfg.broker_pid);
    if let Err(e) = teardown(&mut admin, &topo) {
        r.notes.push(format!("teardown: {e}"));
    }
    admin.close();
    if r.error.is_none() {
        r.error = shared.first_error();
    }
    r
}

/// Step 1 of a restart test: publish `backlog` persistent messages to a
/// fresh durable queue, wait for every confirm and leave them queued.
pub fn run_fill(cfg: &Config) -> Report {
    let name = cfg.scenario.clone().unwrap_or_else(|| "fill".into());
    let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
    let topo = Topology::new(cfg);
    let mut admin = match connect_admin(cfg).and_then(|mut c| setup(&mut c, cfg, &topo).map(|_| c))
    {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("setup: {e}"));
            return r;
        }
    };
    let shared = Shared::new();
    let mut mon = Monitor::new(cfg.quiet);
    let published = publish_backlog(cfg, &topo, &shared, &mut mon, &mut admin, &mut r);
    shared.stop.store(true, Ordering::SeqCst);
    if let Some(rss) = cfg.broker_pid.and_then(crate::sys::pid_rss_bytes) {
        push_rss(&mut r, "broker RSS after fill", rss);
    }
    // No CPU figures here: persistent-confirms-1k measures the cost of
    // publishing; recover-wait reports the recovery's.
    let sent = published.map_or(0, |p| p.0);
    admin.close();
    r.error = shared.first_error();
    if r.error.is_none() {
        let confirmed = shared.confirmed.load(Ordering::Relaxed);
        let depth = published.map_or(0, |p| p.1);
        if sent != cfg.backlog || confirmed != sent || depth != sent {
            r.error = Some(format!(
                "fill incomplete: {sent} of {} published, {confirmed} confirmed, {depth} queued",
                cfg.backlog
            ));
        }
    }
    r
}

/// Longest recover-wait waits for the broker and then for its messages.
const RECOVER_MAX: Duration = Duration::from_secs(900);
/// Polling interval while waiting for a restarting broker.
const RECOVER_POLL: Duration = Duration::from_millis(5);

/// Seconds since `since_unix_ns` (or since `fallback` when not given).
fn elapsed_since(since_unix_ns: Option<u64>, fallback: Instant) -> f64 {
    match since_unix_ns {
        Some(t0) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            now.saturating_sub(t0) as f64 / 1e9
        }
        None => fallback.elapsed().as_secs_f64(),
    }
}

/// Step 2 of a restart test, started right after the broker process:
/// times until the broker completes an AMQP handshake and until a passive
/// declare reports `expect` ready messages, measures the broker's RSS, then
/// drains the queue and deletes it.
pub fn run_recover_wait(cfg: &Config) -> Report {
    let name = cfg
        .scenario
        .clone()
        .unwrap_or_else(|| "recover-wait".into());
    let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
    let began = Instant::now();
    let topo = Topology::new(cfg);
    let queue = topo.queues[0].clone();
    let mut last_err = String::new();
    let first = loop {
        match connect_admin(cfg) {
            Ok(c) => break Some(c),
            Err(e) => last_err = e.to_string(),
        }
        if began.elapsed() >= RECOVER_MAX {
            break None;
        }
        thread::sleep(RECOVER_POLL);
    };
    let Some(mut conn) = first else {
        r.error = Some(format!(
            "broker not accepting connections after {} s: {last_err}",
            RECOVER_MAX.as_secs()
        ));
        return r;
    };
    r.push(
        "time to accept connections",
        elapsed_since(cfg.since_unix_ns, began),
        "s",
        Better::Lower,
    );
    // Poll the queue; a refused passive declare (queue not recovered yet)
    // closes the channel, so start over on a fresh connection.
    let mut depth = 0u64;
    let mut channel_open = false;
    loop {
        let polled = (|| {
            if !channel_open {
                conn.open_channel(1)?;
                channel_open = true;
            }
            queue_depth(&mut conn, &queue).map(u64::from)
        })();
        match polled {
            Ok(d) => {
                depth = d;
                if d >= cfg.expect {
                    break;
                }
            }
            Err(e) => {
                last_err = e.to_string();
                conn.close();
                channel_open = false;
                match connect_admin(cfg) {
                    Ok(c) => conn = c,
                    Err(e) => {
                        r.error = Some(format!("reconnecting while polling the queue: {e}"));
                        return r;
                    }
                }
            }
        }
        if began.elapsed() >= RECOVER_MAX {
            r.error = Some(format!(
                "{queue}: {depth} of {} messages ready after {} s (last error: {last_err})",
                cfg.expect,
                RECOVER_MAX.as_secs()
            ));
            return r;
        }
        thread::sleep(RECOVER_POLL);
    }
    r.push(
        "time to all messages ready",
        elapsed_since(cfg.since_unix_ns, began),
        "s",
        Better::Lower,
    );
    r.push("ready after restart", depth as f64, "msg", Better::Neither);
    if depth > cfg.expect {
        r.notes.push(format!(
            "{depth} messages ready, more than the {} expected",
            cfg.expect
        ));
    }
    let pid = cfg
        .broker_pid
        .or_else(|| crate::sys::listener_pid(cfg.uri.port));
    match pid.and_then(crate::sys::pid_rss_bytes) {
        Some(rss) => {
            push_rss(&mut r, "broker RSS after recovery", rss);
            r.push(
                "broker RSS after recovery per msg",
                rss as f64 / depth.max(1) as f64,
                "B",
                Better::Lower,
            );
        }
        None => r.notes.push(format!(
            "broker RSS not measured: no --broker-pid and no readable process listening on \
             port {}",
            cfg.uri.port
        )),
    }
    let shared = Shared::new();
    let cpu = CpuMeter::start(pid);
    let mut mon = Monitor::new(cfg.quiet);
    drain_backlog(cfg, &topo, &shared, &mut mon, 0, depth, &mut r);
    let usage = cpu.stop();
    let received = shared.received.load(Ordering::Relaxed);
    push_cpu(&mut r, &usage, received, pid);
    if let Err(e) = teardown(&mut conn, &topo) {
        r.notes.push(format!("teardown: {e}"));
    }
    conn.close();
    r.error = shared.first_error();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_window_in_order_and_out_of_order() {
        let t = ConfirmTrack::new(4);
        let mut s = AckState {
            acked: vec![false; t.ts.len()],
        };
        let mut lat = Vec::new();
        for tag in 1..=4 {
            assert!(t.has_room());
            t.ts[(tag & t.mask) as usize].store(100, Ordering::Relaxed);
            t.published.store(tag, Ordering::Release);
        }
        assert!(!t.has_room(), "window of 4 is full");
        // Out of order: 2 then 1 (which releases both).
        assert_eq!(s.settle(&t, 2, false, 150, &mut lat), 1);
        assert_eq!(t.low.load(Ordering::Relaxed), 1);
        assert_eq!(s.settle(&t, 1, false, 160, &mut lat), 1);
        assert_eq!(t.low.load(Ordering::Relaxed), 3);
        assert!(t.has_room());
        // Duplicate and foreign tags settle nothing.
        assert_eq!(s.settle(&t, 2, false, 170, &mut lat), 0);
        assert_eq!(s.settle(&t, 9, false, 170, &mut lat), 0);
        // Multiple covers the rest.
        assert_eq!(s.settle(&t, 4, true, 200, &mut lat), 2);
        assert!(t.all_confirmed());
        assert_eq!(lat, vec![50, 60, 100, 100]);
    }

    #[test]
    fn multiple_ack_skips_already_acked() {
        let t = ConfirmTrack::new(8);
        let mut s = AckState {
            acked: vec![false; t.ts.len()],
        };
        let mut lat = Vec::new();
        t.published.store(5, Ordering::Release);
        assert_eq!(s.settle(&t, 3, false, 10, &mut lat), 1);
        assert_eq!(s.settle(&t, 4, true, 10, &mut lat), 3);
        assert_eq!(t.low.load(Ordering::Relaxed), 5);
        assert_eq!(s.settle(&t, 5, false, 10, &mut lat), 1);
        assert!(t.all_confirmed());
        assert!(
            s.acked.iter().all(|a| !a),
            "marks are cleared as low passes them"
        );
    }

    #[test]
    fn rates() {
        assert_eq!(rate(1000, 0, 1_000_000_000), 1000.0);
        assert_eq!(rate(0, 0, 10), 0.0);
        assert_eq!(rate(5, 10, 10), 0.0);
    }
}
