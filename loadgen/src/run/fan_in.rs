//! The dlx-fan-in run: K source queues (one producer or more each) dead-
//! letter into one fanout exchange bound to one target queue, either
//! because a consumer on each source rejects every message (requeue=false)
//! or because nobody consumes them and they expire (`--ttl`). The target's
//! consumers record every message id: the run fails unless each message
//! published arrived exactly once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::consumer::{Observe, Settle};
use super::flow::{push_count, push_samples, queue_args, require, Declared, Flow};
use super::monitor::DRAIN_IDLE;
use super::ttl::check_arrivals;
use crate::cli::{Config, DlxVia};
use crate::ids::Seen;
use crate::report::{Better, Report};
use crate::sys::now_ns;
use crate::topology::Topology;

pub fn run_dlx_fan_in(cfg: &Config) -> Report {
    let prefix = &cfg.queue_prefix;
    let via_ttl = cfg.dlx_via == DlxVia::Ttl;
    let ttl = if via_ttl { cfg.ttl_ms } else { None };
    let sources = Topology::new(&Config {
        queue_prefix: format!("{prefix}-src"),
        consumers: if via_ttl { 0 } else { cfg.queues },
        ..cfg.clone()
    });
    let target = format!("{prefix}-target");
    let target_topo = Topology::new(&Config {
        queue_prefix: target.clone(),
        queues: 1,
        producers: 0,
        ..cfg.clone()
    });
    let exchange = format!("{prefix}-dlx");
    let declare = |c: &mut _, d: &mut Declared| {
        d.exchange(c, &exchange, "fanout", queue_args(None, None))?;
        d.queue(c, &target, queue_args(None, None))?;
        Declared::bind(c, &target, &exchange, "")?;
        let args = || queue_args(ttl, Some((exchange.as_str(), None)));
        sources
            .queues
            .iter()
            .try_for_each(|q| d.queue(c, q, args()))
    };
    let mut sampled = sources.queues.clone();
    sampled.push(target.clone());
    let mut flow = match Flow::begin(cfg, "dlx-fan-in", declare, sampled) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let seen = Arc::new(Mutex::new(Seen::new(cfg.producers)));
    let observe = Observe {
        latency: true,
        due_after_ms: ttl.unwrap_or(0),
        spread: None,
        seen: Some(seen.clone()),
    };
    let (mut ready, _) = flow.consume(&target_topo, cfg.consumers, Settle::Ack, &observe, false);
    let mut rejecters = None;
    if ready && !via_ttl {
        let (ok, shared) = flow.consume(
            &sources,
            sources.queues.len(),
            Settle::Reject,
            &Observe::default(),
            true,
        );
        ready = ok;
        rejecters = Some(shared);
    }
    let Some(p) = flow.publish(ready, &sources, &|_| cfg.pmessages) else {
        return flow.finish(0).0;
    };
    let rejected = || {
        rejecters
            .as_ref()
            .map_or(0, |s| s.rejected.load(Ordering::Relaxed))
    };
    let idle = DRAIN_IDLE + Duration::from_millis(u64::from(ttl.unwrap_or(0)));
    let arrived = flow.wait(
        "dead-letter",
        idle,
        |f| f.received() + rejected(),
        |f| f.received() >= p.total,
    );
    let left = flow.sampler.fresh_depth(now_ns());
    let received = flow.received();
    let end = flow.shared.last_recv_ns.load(Ordering::Relaxed);
    let r = &mut flow.r;
    if !via_ttl {
        let n = rejected();
        r.push("rejected at sources", n as f64, "msg", Better::Neither);
        require(r, n == p.total, || {
            format!("{n} rejected at the sources for {} published", p.total)
        });
    }
    push_count(
        r,
        ("dead-lettered", "dead-letter rate"),
        received,
        p.start_ns,
        end,
    );
    check_arrivals(r, &seen, &p, received);
    require(r, arrived && left == Some(0), || {
        format!("{left:?} messages still queued in the sources and the target at the end")
    });
    flow.mon.tick(&flow.shared, "arrived");
    let hist = flow.mon.e2e.clone();
    let what = if via_ttl {
        "arrival after TTL"
    } else {
        "publish to target latency"
    };
    flow.r.push_latency(what, &hist);
    let (mut r, samples) = flow.finish(p.total);
    push_samples(&mut r, &samples);
    r
}
