//! The backlog run (publish N with nobody consuming, then drain) and the
//! fill run (step 1 of a restart test: publish and leave queued), with the
//! publish and drain phases the recover-wait run reuses.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::consumer::spawn_consumers;
use super::monitor::{drain, wait_ready, Monitor};
use super::producer::spawn_producers;
use super::setup::{connect_admin, queue_depth, setup, teardown};
use super::shared::{lock_join, Shared};
use super::summary::{push_cpu, push_rss, rate, settings};
use crate::cli::Config;
use crate::client::{Conn, Error};
use crate::report::{Better, Report};
use crate::sys::{now_ns, CpuMeter};
use crate::topology::Topology;

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
pub(super) fn drain_backlog(
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
