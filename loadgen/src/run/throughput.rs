//! The throughput run: producers and consumers at once, rates and
//! latencies, a progress line a second, then a drain.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::consumer::spawn_consumers;
use super::monitor::{drain, wait_ready, Monitor};
use super::producer::spawn_producers;
use super::setup::{connect_admin, setup, teardown};
use super::shared::{lock_join, Shared};
use super::summary::{push_cpu, rate, settings};
use crate::cli::Config;
use crate::report::{Better, Report};
use crate::sys::{now_ns, CpuMeter};
use crate::topology::Topology;

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
