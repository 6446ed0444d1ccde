//! Consumers: one thread per connection consuming on its channels,
//! following each delivery's frames, recording end-to-end latency (or
//! lateness against an intended time) and the ids seen, and settling each
//! delivery as told: ack (every N with multiple=true, or not at all with
//! autoack), reject, or requeue a number of times then ack.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use warren_protocol::frame::Frame;
use warren_protocol::methods::{BasicAck, BasicConsume, BasicNack, BasicQos, BasicReject, Method};

use super::setup::{expect, short};
use super::shared::{Shared, POLL};
use crate::cli::Config;
use crate::client::{self, is_timeout, Conn, Error};
use crate::ids::{body_id, DelaySpread, Seen};
use crate::sys::now_ns;
use crate::topology::{group, Topology};
use crate::uri::AmqpUri;

/// What a consumer does with each whole delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settle {
    /// Ack it (every `-A` deliveries with multiple=true; nothing with -a).
    Ack,
    /// basic.reject with requeue=false (dead-lettered, or dropped).
    Reject,
    /// Requeue each message `times` times (basic.nack, or basic.reject
    /// when `reject`), then ack it. Needs the message id in the body.
    Requeue { times: u32, reject: bool },
}

/// What a consumer measures besides counting deliveries.
#[derive(Clone, Default)]
pub(super) struct Observe {
    /// Record latency (off for backlog drains, where it would only measure
    /// time spent queued).
    pub(super) latency: bool,
    /// Latency counts from publish + this many ms (a TTL) …
    pub(super) due_after_ms: u32,
    /// … plus the message's x-delay from this spread: lateness, not
    /// end-to-end latency.
    pub(super) spread: Option<DelaySpread>,
    /// Record every message id received here.
    pub(super) seen: Option<Arc<Mutex<Seen>>>,
}

struct ConsumerPlan {
    uri: AmqpUri,
    conn_index: usize,
    /// (global consumer index, queue name).
    channels: Vec<(usize, String)>,
    qos: u16,
    autoack: bool,
    ack_every: u32,
    settle: Settle,
    observe: Observe,
    /// One write syscall per ack, reject or nack (`--write-per-publish`).
    write_each: bool,
    /// Bytes per read syscall (`--read-size`).
    read_chunk: usize,
}

#[derive(Default)]
struct ChanState {
    /// Body bytes still to come for the current delivery.
    remaining: u64,
    in_content: bool,
    ts: Option<u64>,
    id: Option<u64>,
    redelivered: bool,
    tag: u64,
    /// The latest delivery tag this channel owes an ack for (a multiple
    /// ack must name an unsettled tag).
    ack_tag: u64,
    unacked: u32,
    /// Settle::Requeue: deliveries so far of each message not yet acked.
    requeues: HashMap<u64, u32>,
}

/// Per-batch counts a consumer adds to `Shared` at once.
#[derive(Default)]
struct Counts {
    received: u64,
    requeued: u64,
    rejected: u64,
    redelivered_wrong: u64,
    early: u64,
}

pub(super) fn spawn_consumers(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    latency: bool,
) -> Vec<JoinHandle<()>> {
    let observe = Observe {
        latency,
        ..Observe::default()
    };
    spawn_consumers_with(cfg, topo, shared, Settle::Ack, &observe)
}

pub(super) fn spawn_consumers_with(
    cfg: &Config,
    topo: &Topology,
    shared: &Arc<Shared>,
    settle: Settle,
    observe: &Observe,
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
                settle,
                observe: observe.clone(),
                write_each: cfg.write_per_publish,
                read_chunk: cfg.read_chunk(),
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
    conn.set_read_size(plan.read_chunk);
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
                        delivery_tag: s.ack_tag,
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
    let mut n = Counts::default();
    loop {
        while let Some(frame) = conn.next_buffered()? {
            let idx = usize::from(frame.channel()).wrapping_sub(1);
            match frame {
                Frame::Method { method, channel } => match method {
                    Method::BasicDeliver(d) if idx < states.len() => {
                        let s = &mut states[idx];
                        s.tag = d.delivery_tag;
                        s.redelivered = d.redelivered;
                        s.in_content = true;
                        s.remaining = 0;
                        s.ts = None;
                        s.id = None;
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
                        complete(conn, plan, idx, s, lat, &mut n)?;
                    }
                }
                Frame::Body { payload, .. } if idx < states.len() => {
                    let s = &mut states[idx];
                    if !s.in_content || payload.len() as u64 > s.remaining {
                        return Err(Error("unexpected body frame".into()));
                    }
                    if s.ts.is_none() {
                        s.ts = client::body_timestamp(&payload);
                        s.id = body_id(&payload);
                    }
                    s.remaining -= payload.len() as u64;
                    if s.remaining == 0 {
                        s.in_content = false;
                        complete(conn, plan, idx, s, lat, &mut n)?;
                    }
                }
                _ => {}
            }
        }
        // The read buffer is exhausted: publish this batch.
        conn.flush()?;
        if n.received > 0 {
            shared.received.fetch_add(n.received, Ordering::Relaxed);
            shared.requeued.fetch_add(n.requeued, Ordering::Relaxed);
            shared.rejected.fetch_add(n.rejected, Ordering::Relaxed);
            shared
                .redelivered_wrong
                .fetch_add(n.redelivered_wrong, Ordering::Relaxed);
            shared.early.fetch_add(n.early, Ordering::Relaxed);
            shared.last_recv_ns.fetch_max(now_ns(), Ordering::Relaxed);
            n = Counts::default();
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

/// A whole delivery: measure it, then settle it.
#[inline]
fn complete(
    conn: &mut Conn,
    plan: &ConsumerPlan,
    idx: usize,
    s: &mut ChanState,
    lat: &mut Vec<u64>,
    n: &mut Counts,
) -> Result<(), Error> {
    n.received += 1;
    let o = &plan.observe;
    if o.latency {
        if let Some(ts) = s.ts {
            let mut due_ms = u64::from(o.due_after_ms);
            if let (Some(spread), Some(id)) = (o.spread, s.id) {
                due_ms += u64::from(spread.delay_ms(id));
            }
            let due = ts + due_ms * 1_000_000;
            let now = now_ns();
            if now + 1_000_000 < due {
                n.early += 1;
            }
            lat.push(now.saturating_sub(due));
        }
    }
    if let (Some(seen), Some(id)) = (&o.seen, s.id) {
        seen.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }
    let ch = (idx + 1) as u16;
    match plan.settle {
        Settle::Ack => ack(conn, plan, idx, s),
        Settle::Reject => {
            conn.send(
                ch,
                BasicReject {
                    delivery_tag: s.tag,
                    requeue: false,
                },
            );
            n.rejected += 1;
        }
        Settle::Requeue { times, reject } => {
            let id =
                s.id.ok_or_else(|| Error("a delivery without a message id in its body".into()))?;
            let seen_before = {
                let count = s.requeues.entry(id).or_insert(0);
                *count += 1;
                *count - 1
            };
            if s.redelivered != (seen_before > 0) {
                n.redelivered_wrong += 1;
            }
            if seen_before < times {
                let tag = s.tag;
                if reject {
                    conn.send(
                        ch,
                        BasicReject {
                            delivery_tag: tag,
                            requeue: true,
                        },
                    );
                } else {
                    conn.send(
                        ch,
                        BasicNack {
                            delivery_tag: tag,
                            multiple: false,
                            requeue: true,
                        },
                    );
                }
                n.requeued += 1;
            } else {
                s.requeues.remove(&id);
                ack(conn, plan, idx, s);
            }
        }
    }
    if plan.write_each {
        // As a typical client: the settlement goes out on its own write.
        conn.flush()?;
    }
    Ok(())
}

#[inline]
fn ack(conn: &mut Conn, plan: &ConsumerPlan, idx: usize, s: &mut ChanState) {
    if plan.autoack {
        return;
    }
    s.ack_tag = s.tag;
    s.unacked += 1;
    if s.unacked >= plan.ack_every {
        conn.send(
            (idx + 1) as u16,
            BasicAck {
                delivery_tag: s.ack_tag,
                multiple: plan.ack_every > 1,
            },
        );
        s.unacked = 0;
    }
}
