//! The TTL runs. ttl-expiry: producers flood a queue with
//! `x-message-ttl` that nobody consumes, optionally dead-lettering (through
//! the default exchange) into a queue that is drained; it reports the
//! expiry and dead-letter rates, the expiry lateness, the depth over time
//! and the broker's RSS peak. ttl-memory: `backlog` messages are published
//! into such a queue and left to expire, with the broker's RSS read through
//! the fill and the expiry.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::consumer::{Observe, Settle};
use super::flow::{push_count, push_samples, queue_args, require, Declared, Flow, Published};
use super::summary::push_rss;
use crate::cli::Config;
use crate::ids::Seen;
use crate::memory::settled_rss;
use crate::report::{Better, Report};
use crate::sys::{now_ns, pid_rss_bytes};
use crate::topology::Topology;

/// How long a queue may go without losing a message (or a consumer without
/// a delivery) before the wait for expiry gives up, on top of the TTL.
const EXPIRY_IDLE: Duration = Duration::from_secs(30);

/// Producers flood a TTL queue; wait until it is empty (and, with
/// dead-lettering, until every message has arrived in the drain queue).
pub fn run_ttl_expiry(cfg: &Config) -> Report {
    let ttl = cfg.ttl_ms.unwrap_or(0);
    let src = cfg.queue_prefix.clone();
    let drain = format!("{src}-expired");
    let dl = cfg.dead_letter;
    let topo = Topology::new(&Config {
        queues: 1,
        consumers: 0,
        ..cfg.clone()
    });
    let drain_topo = Topology::new(&Config {
        queue_prefix: drain.clone(),
        queues: 1,
        producers: 0,
        ..cfg.clone()
    });
    let declare = |c: &mut _, d: &mut Declared| {
        if dl {
            d.queue(c, &drain, queue_args(None, None))?;
        }
        let args = queue_args(Some(ttl), dl.then_some(("", Some(drain.as_str()))));
        d.queue(c, &src, args)
    };
    let mut flow = match Flow::begin(cfg, "ttl-expiry", declare, vec![src.clone()]) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let seen = Arc::new(Mutex::new(Seen::new(cfg.producers)));
    let mut ready = true;
    if dl {
        let observe = Observe {
            latency: true,
            due_after_ms: ttl,
            spread: None,
            seen: Some(seen.clone()),
        };
        ready = flow
            .consume(&drain_topo, cfg.consumers, Settle::Ack, &observe, false)
            .0;
    }
    let Some(p) = flow.publish(ready, &topo, &|_| cfg.pmessages) else {
        return flow.finish(0).0;
    };
    let after = now_ns();
    let idle = EXPIRY_IDLE + Duration::from_millis(u64::from(ttl));
    let emptied = flow.wait(
        "expire",
        idle,
        |f| f.sampler.depth().unwrap_or(0) + f.received(),
        |f| f.sampler.depth_since(after) == Some(0) && (!dl || f.received() >= p.total),
    );
    let empty_ns = now_ns();
    let left = flow.sampler.fresh_depth(empty_ns);
    let received = flow.received();
    let r = &mut flow.r;
    let expired = p.total.saturating_sub(left.unwrap_or(p.total));
    // Messages expire from start + TTL on: the rate over that window.
    let window_start = p.start_ns + u64::from(ttl) * 1_000_000;
    let expired_end = if dl {
        flow.shared.last_recv_ns.load(Ordering::Relaxed)
    } else {
        empty_ns
    };
    let window = (window_start, expired_end);
    push_count(r, ("expired", "expire rate"), expired, window.0, window.1);
    require(r, emptied && left == Some(0), || {
        format!(
            "the queue still held {} of {} messages {} s after the last change",
            left.map_or("an unknown number".to_string(), |d| d.to_string()),
            p.total,
            idle.as_secs()
        )
    });
    if dl {
        push_count(
            r,
            ("dead-lettered", "dead-letter rate"),
            received,
            window.0,
            window.1,
        );
        check_arrivals(r, &seen, &p, received);
        flow.mon.tick(&flow.shared, "expired");
        let hist = flow.mon.e2e.clone();
        flow.r.push_latency("expiry lateness", &hist);
        let early = flow.shared.early.load(Ordering::Relaxed);
        require(&mut flow.r, early == 0, || {
            format!("{early} messages dead-lettered more than 1 ms before their TTL")
        });
    }
    let (mut r, samples) = flow.finish(p.total);
    push_samples(&mut r, &samples);
    r
}

/// Every message sent arrived exactly once (by id): no loss, no
/// duplicate, nothing foreign.
pub(super) fn check_arrivals(r: &mut Report, seen: &Mutex<Seen>, p: &Published, received: u64) {
    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
    let missing = s.missing(&p.per_producer);
    r.push("missing", missing as f64, "msg", Better::Lower);
    r.push("duplicates", s.duplicates as f64, "msg", Better::Lower);
    require(
        r,
        missing == 0 && s.duplicates == 0 && s.foreign == 0 && received == p.total,
        || {
            format!(
                "{received} delivered for {} published: {missing} missing, {} duplicates, \
                 {} with ids no producer sent",
                p.total, s.duplicates, s.foreign
            )
        },
    );
}

/// Publishes `backlog` messages into a TTL queue nobody consumes and waits
/// until they have all expired, reading the broker's RSS throughout.
pub fn run_ttl_memory(cfg: &Config) -> Report {
    let ttl = cfg.ttl_ms.unwrap_or(0);
    let q = cfg.queue_prefix.clone();
    let topo = Topology::new(&Config {
        queues: 1,
        consumers: 0,
        ..cfg.clone()
    });
    let declare = |c: &mut _, d: &mut Declared| d.queue(c, &q, queue_args(Some(ttl), None));
    let mut flow = match Flow::begin(cfg, "ttl-memory", declare, vec![q.clone()]) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let before = settled_rss(cfg, &mut flow.r, "before");
    flow.sampler.take_phase_peak();
    let np = cfg.producers.max(1) as u64;
    let (per, extra) = (cfg.backlog / np, cfg.backlog % np);
    let Some(p) = flow.publish(true, &topo, &|i| per + u64::from((i as u64) < extra)) else {
        return flow.finish(0).0;
    };
    let fill_end = now_ns();
    let queued = flow.sampler.fresh_depth(fill_end);
    let fill_peak = flow.sampler.take_phase_peak();
    let r = &mut flow.r;
    r.push(
        "fill time",
        (p.end_ns - p.start_ns) as f64 / 1e9,
        "s",
        Better::Lower,
    );
    r.push(
        "queued after fill",
        queued.unwrap_or(0) as f64,
        "msg",
        Better::Neither,
    );
    require(r, queued == Some(p.total) && p.total == cfg.backlog, || {
        format!(
            "{} of {} published, {} queued after the fill: messages expired (or were lost) \
             before the fill ended; raise --ttl",
            p.total,
            cfg.backlog,
            queued.map_or("?".into(), |d| d.to_string())
        )
    });
    let idle = EXPIRY_IDLE + Duration::from_millis(u64::from(ttl));
    let emptied = flow.wait(
        "expire",
        idle,
        |f| f.sampler.depth().unwrap_or(0),
        |f| f.sampler.depth_since(fill_end) == Some(0),
    );
    let empty_ns = now_ns();
    let expiry_peak = flow.sampler.take_phase_peak();
    let rss_empty = cfg.broker_pid.and_then(pid_rss_bytes);
    let r = &mut flow.r;
    require(r, emptied, || {
        format!(
            "the queue did not empty: {} messages left {} s after the last change",
            flow.sampler
                .depth()
                .map_or("an unknown number of".into(), |d| d.to_string()),
            idle.as_secs()
        )
    });
    r.push(
        "empty after fill end",
        (empty_ns - fill_end) as f64 / 1e9,
        "s",
        Better::Neither,
    );
    // The last message was published at end_ns and is due at end_ns + TTL.
    let due_last = p.end_ns + u64::from(ttl) * 1_000_000;
    r.push(
        "last expiry late by",
        empty_ns.saturating_sub(due_last) as f64 / 1e9,
        "s",
        Better::Lower,
    );
    if let Some(b) = before {
        push_rss(r, "broker RSS before", b);
        push_rss(r, "broker RSS peak during fill", fill_peak.max(b));
        push_rss(r, "broker RSS peak during expiry", expiry_peak.max(b));
        if let Some(e) = rss_empty {
            push_rss(r, "broker RSS when empty", e);
        }
        let peak = fill_peak.max(expiry_peak);
        let growth = peak.saturating_sub(b) as f64 / (1024.0 * 1024.0);
        r.push("broker RSS growth at peak", growth, "MiB", Better::Lower);
        if let Some(bound) = cfg.rss_bound_mib {
            require(r, growth <= bound, || {
                format!("the broker's RSS grew {growth:.1} MiB, over the bound of {bound} MiB")
            });
        }
    } else if cfg.rss_bound_mib.is_some() {
        require(r, false, || "--rss-bound-mib needs --broker-pid".into());
    }
    let (r, _) = flow.finish(p.total);
    r
}
