//! The nack-requeue run: one consumer per queue requeues every message
//! `requeues` times (basic.nack or basic.reject with requeue=true) before
//! acking it, checking each delivery's redelivered flag against its own
//! count; reports deliveries/s, acks/s and the broker's CPU per delivery.

use std::sync::atomic::Ordering;

use warren_protocol::types::FieldTable;

use super::consumer::{Observe, Settle};
use super::flow::{push_count, push_samples, require, Declared, Flow};
use super::monitor::DRAIN_IDLE;
use crate::cli::Config;
use crate::report::{Better, Report};
use crate::sys::now_ns;
use crate::topology::Topology;

pub fn run_nack_requeue(cfg: &Config) -> Report {
    let topo = Topology::new(cfg);
    let queues = topo.queues.clone();
    let declare = |c: &mut _, d: &mut Declared| {
        queues
            .iter()
            .try_for_each(|q| d.queue(c, q, FieldTable::new()))
    };
    let mut flow = match Flow::begin(cfg, "nack-requeue", declare, topo.queues.clone()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let times = cfg.requeues;
    let settle = Settle::Requeue {
        times,
        reject: cfg.requeue_with_reject,
    };
    let (ready, _) = flow.consume(&topo, cfg.consumers, settle, &Observe::default(), false);
    let Some(p) = flow.publish(ready, &topo, &|_| cfg.pmessages) else {
        return flow.finish(0).0;
    };
    let acked = |f: &Flow| f.received() - f.shared.requeued.load(Ordering::Relaxed);
    let settled = flow.wait(
        "requeue",
        DRAIN_IDLE,
        |f| f.received(),
        |f| acked(f) >= p.total,
    );
    let left = flow.sampler.fresh_depth(now_ns());
    let received = flow.received();
    let requeued = flow.shared.requeued.load(Ordering::Relaxed);
    let acks = received - requeued;
    let wrong = flow.shared.redelivered_wrong.load(Ordering::Relaxed);
    let end = flow.shared.last_recv_ns.load(Ordering::Relaxed);
    let r = &mut flow.r;
    push_count(
        r,
        ("deliveries", "delivery rate"),
        received,
        p.start_ns,
        end,
    );
    r.push("requeued", requeued as f64, "msg", Better::Neither);
    push_count(r, ("acked", "ack rate"), acks, p.start_ns, end);
    r.push("redelivered flag wrong", wrong as f64, "msg", Better::Lower);
    let want = u64::from(times);
    require(r, settled && acks == p.total, || {
        format!("{acks} of {} messages acked", p.total)
    });
    require(
        r,
        requeued == p.total * want && received == p.total * (want + 1),
        || {
            format!(
                "{received} deliveries and {requeued} requeues for {} messages requeued {times} \
                 times each (expected {} and {})",
                p.total,
                p.total * (want + 1),
                p.total * want
            )
        },
    );
    require(r, wrong == 0, || {
        format!("{wrong} deliveries with a wrong redelivered flag")
    });
    require(r, left == Some(0), || {
        format!("{left:?} messages still queued after every message was acked")
    });
    let (mut r, samples) = flow.finish(p.total);
    if let Some(cpu) = r.get("broker CPU") {
        if received > 0 {
            r.push(
                "broker CPU per delivery",
                cpu / received as f64 * 1e6,
                "us",
                Better::Lower,
            );
        }
    }
    push_samples(&mut r, &samples);
    r
}
