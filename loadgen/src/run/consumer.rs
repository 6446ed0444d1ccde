//! Consumers: one thread per connection consuming on its channels,
//! following each delivery's frames, recording end-to-end latency and
//! acking (every N with multiple=true, or not at all with autoack).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use warren_protocol::frame::Frame;
use warren_protocol::methods::{BasicAck, BasicConsume, BasicQos, Method};

use super::setup::{expect, short};
use super::shared::{Shared, POLL};
use crate::cli::Config;
use crate::client::{self, is_timeout, Conn, Error};
use crate::sys::now_ns;
use crate::topology::{group, Topology};
use crate::uri::AmqpUri;

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

pub(super) fn spawn_consumers(
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
