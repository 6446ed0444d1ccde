//! Producers: one thread per connection publishing on its channels at the
//! configured rate and count, within the confirm window, until the
//! deadline; then waiting for outstanding confirms and closing cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use warren_protocol::methods::ConfirmSelect;

use super::confirms::{ack_reader, ConfirmTrack};
use super::setup::expect;
use super::shared::{Shared, POLL};
use crate::cli::Config;
use crate::client::{self, Conn, Error, Publisher};
use crate::ids::{make_id, DelaySpread};
use crate::sys::now_ns;
use crate::topology::{group, Topology};
use crate::uri::AmqpUri;

/// How long to wait for outstanding confirms once publishing stops.
const CONFIRM_GRACE: Duration = Duration::from_secs(30);

/// What one producer connection did.
#[derive(Default)]
pub(super) struct ProducerOut {
    /// (global producer index, messages sent).
    pub(super) sent: Vec<(usize, u64)>,
    pub(super) publish_end_ns: u64,
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
    /// Publish with an `x-delay` header from this spread (delayed mode).
    delays: Option<DelaySpread>,
    /// SO_SNDBUF of the socket (`--producer-sndbuf`).
    sndbuf: Option<u32>,
    /// One write syscall per publish (`--write-per-publish`).
    write_each: bool,
    /// Bytes per read syscall of the confirm reader (`--read-size`).
    read_chunk: usize,
}

pub(super) fn spawn_producers(
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
                delays: cfg.delay_spread(),
                sndbuf: cfg.producer_sndbuf,
                write_each: cfg.write_per_publish,
                read_chunk: cfg.read_chunk(),
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
    conn.set_read_size(plan.read_chunk);
    if let Some(bytes) = plan.sndbuf {
        conn.set_send_buffer(bytes)?;
    }
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
            plan.delays,
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
        let (ci, chunk) = (plan.conn_index, plan.read_chunk);
        thread::Builder::new()
            .name(format!("acks-{ci}"))
            .spawn(move || {
                let mut rbuf = rbuf;
                let res = ack_reader(
                    rstream, &mut rbuf, chunk, decoder, &tracks, &shared, &stop, &writer,
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
        let id = make_id(plan.channels[c].0, out.sent[c].1);
        pubs[c].append(&mut conn.wbuf, now, id);
        out.sent[c].1 += 1;
        unreported += 1;
        if plan.write_each || conn.wbuf.len() >= client::FLUSH_AT {
            conn.flush()?;
            shared.sent.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    conn.flush()?;
    shared.sent.fetch_add(unreported, Ordering::Relaxed);
    Ok(())
}
