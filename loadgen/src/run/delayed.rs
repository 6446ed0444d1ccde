//! The delayed run: producers publish to an `x-delayed-message` exchange
//! (`x-delayed-type` direct) with an `x-delay` header spread over
//! `--delay-min..=--delay-max` ms by message id; consumers measure each
//! message's lateness (delivery − publish − x-delay) and record its id.
//! A broker without the exchange type (RabbitMQ without the
//! rabbitmq_delayed_message_exchange plugin) fails the run at setup, saying
//! so: there is nothing to compare against.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warren_protocol::types::{FieldTable, FieldValue, ShortStr};

use super::consumer::{Observe, Settle};
use super::flow::{push_count, push_samples, require, Declared, Flow};
use super::monitor::DRAIN_IDLE;
use super::ttl::check_arrivals;
use crate::cli::{Config, ExchangeKind};
use crate::ids::Seen;
use crate::report::{Better, Report};
use crate::topology::Topology;

pub fn run_delayed(cfg: &Config) -> Report {
    let spread = cfg.delay;
    let mut topo = Topology::new(&Config {
        exchange: ExchangeKind::Direct,
        ..cfg.clone()
    });
    let exchange = format!("{}-delayed", cfg.queue_prefix);
    topo.exchange.clone_from(&exchange);
    for route in &mut topo.routes {
        route.exchange.clone_from(&exchange);
    }
    let declare = |c: &mut _, d: &mut Declared| {
        let mut args = FieldTable::new();
        args.insert(
            ShortStr::from_static("x-delayed-type"),
            FieldValue::LongStr(bytes::Bytes::from_static(b"direct")),
        );
        d.exchange(c, &exchange, "x-delayed-message", args)
            .map_err(|e| {
                crate::client::Error(format!(
                    "{e} (the broker has no x-delayed-message exchange type; RabbitMQ needs the \
                     rabbitmq_delayed_message_exchange plugin)"
                ))
            })?;
        for (q, key) in &topo.bindings {
            d.queue(c, &topo.queues[*q], FieldTable::new())?;
            Declared::bind(c, &topo.queues[*q], &exchange, key)?;
        }
        Ok(())
    };
    let mut flow = match Flow::begin(cfg, "delayed", declare, topo.queues.clone()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let seen = Arc::new(Mutex::new(Seen::new(cfg.producers)));
    let observe = Observe {
        latency: true,
        due_after_ms: 0,
        spread: Some(spread),
        seen: Some(seen.clone()),
    };
    let (ready, _) = flow.consume(&topo, cfg.consumers, Settle::Ack, &observe, false);
    let Some(p) = flow.publish(ready, &topo, &|_| cfg.pmessages) else {
        return flow.finish(0).0;
    };
    let idle = DRAIN_IDLE + Duration::from_millis(u64::from(spread.max_ms));
    flow.wait(
        "delayed",
        idle,
        |f| f.received(),
        |f| f.received() >= p.total,
    );
    let received = flow.received();
    let end = flow.shared.last_recv_ns.load(Ordering::Relaxed);
    let early = flow.shared.early.load(Ordering::Relaxed);
    let r = &mut flow.r;
    push_count(r, ("received", "receive rate"), received, p.start_ns, end);
    r.push("delivered early", early as f64, "msg", Better::Lower);
    check_arrivals(r, &seen, &p, received);
    require(r, early == 0, || {
        format!("{early} messages delivered more than 1 ms before their x-delay")
    });
    flow.mon.tick(&flow.shared, "delivered");
    let hist = flow.mon.e2e.clone();
    flow.r.push_latency("lateness", &hist);
    let (mut r, samples) = flow.finish(p.total);
    push_samples(&mut r, &samples);
    r
}
