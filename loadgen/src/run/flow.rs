//! `Flow`: the moving parts every queue-feature run (ttl-expiry,
//! nack-requeue, dlx-fan-in, delayed, ttl-memory) goes through — its own
//! topology declared with queue and exchange arguments, consumers with a
//! settle policy, a publishing phase, waiting for the broker to settle
//! (expire, dead-letter, deliver late) with a no-progress limit, depth and
//! RSS sampling, CPU accounting, teardown — and `require`, which turns a
//! count that does not add up into the run's error.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use warren_protocol::methods::{ExchangeDeclare, QueueBind, QueueDeclare};
use warren_protocol::types::{FieldTable, FieldValue, ShortStr};

use super::consumer::{spawn_consumers_with, Observe, Settle};
use super::monitor::{wait_ready, Monitor};
use super::producer::spawn_producers;
use super::sampler::{Sampler, Samples};
use super::setup::{connect_admin, delete_exchange, delete_queue, expect, short};
use super::shared::{lock_join, Shared};
use super::summary::{push_cpu, rate, settings};
use crate::cli::Config;
use crate::client::{Conn, Error};
use crate::report::{Better, Report};
use crate::sys::{now_ns, CpuMeter};
use crate::topology::Topology;

/// The longest any wait for the broker to settle may take.
const WAIT_MAX: Duration = Duration::from_secs(900);

/// Queue arguments: `x-message-ttl` and dead-lettering (exchange, and
/// routing key if any).
pub(super) fn queue_args(ttl_ms: Option<u32>, dlx: Option<(&str, Option<&str>)>) -> FieldTable {
    let mut t = FieldTable::new();
    if let Some(ttl) = ttl_ms {
        t.insert(
            ShortStr::from_static("x-message-ttl"),
            FieldValue::I64(i64::from(ttl)),
        );
    }
    let lstr = |s: &str| FieldValue::LongStr(bytes::Bytes::copy_from_slice(s.as_bytes()));
    if let Some((exchange, key)) = dlx {
        t.insert(
            ShortStr::from_static("x-dead-letter-exchange"),
            lstr(exchange),
        );
        if let Some(k) = key {
            t.insert(ShortStr::from_static("x-dead-letter-routing-key"), lstr(k));
        }
    }
    t
}

/// Declares a run's queues and exchanges on the admin connection,
/// deleting leftovers of an earlier run first; remembers them for the
/// teardown.
#[derive(Default)]
pub(super) struct Declared {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Declared {
    pub(super) fn queue(
        &mut self,
        c: &mut Conn,
        name: &str,
        args: FieldTable,
    ) -> Result<(), Error> {
        delete_queue(c, name)?;
        self.queues.push(name.to_string());
        let m = c.rpc(
            1,
            QueueDeclare {
                queue: short(name)?,
                arguments: args,
                ..QueueDeclare::default()
            },
        )?;
        expect(m, "queue.declare_ok").map(|_| ())
    }

    pub(super) fn exchange(
        &mut self,
        c: &mut Conn,
        name: &str,
        kind: &str,
        args: FieldTable,
    ) -> Result<(), Error> {
        delete_exchange(c, name)?;
        self.exchanges.push(name.to_string());
        let m = c.rpc(
            1,
            ExchangeDeclare {
                exchange: short(name)?,
                kind: short(kind)?,
                arguments: args,
                ..ExchangeDeclare::default()
            },
        )?;
        expect(m, "exchange.declare_ok").map(|_| ())
    }

    pub(super) fn bind(c: &mut Conn, queue: &str, exchange: &str, key: &str) -> Result<(), Error> {
        let m = c.rpc(
            1,
            QueueBind {
                queue: short(queue)?,
                exchange: short(exchange)?,
                routing_key: short(key)?,
                no_wait: false,
                arguments: FieldTable::new(),
            },
        )?;
        expect(m, "queue.bind_ok").map(|_| ())
    }

    fn teardown(&self, c: &mut Conn) -> Result<(), Error> {
        for q in &self.queues {
            delete_queue(c, q)?;
        }
        for x in &self.exchanges {
            delete_exchange(c, x)?;
        }
        Ok(())
    }
}

/// What the publishing phase did.
pub(super) struct Published {
    /// Messages sent by each producer (global index).
    pub(super) per_producer: Vec<u64>,
    pub(super) total: u64,
    pub(super) start_ns: u64,
    /// When the last message went out (or, with confirms, was confirmed).
    pub(super) end_ns: u64,
}

/// One queue-feature run in progress.
pub(super) struct Flow<'a> {
    pub(super) cfg: &'a Config,
    pub(super) r: Report,
    pub(super) shared: Arc<Shared>,
    pub(super) mon: Monitor,
    pub(super) sampler: Sampler,
    admin: Conn,
    declared: Declared,
    cpu: CpuMeter,
    consumers: Vec<JoinHandle<()>>,
    /// Counters of consumers that are not the run's main consumers (the
    /// rejecting consumers of dlx-fan-in's sources).
    others: Vec<Arc<Shared>>,
    /// Worker connections of `shared` that are ready so far.
    ready: usize,
}

impl<'a> Flow<'a> {
    /// Connects, declares the topology (`declare`), starts sampling
    /// `sampled` queues and the CPU meter. On failure: the report, failed.
    pub(super) fn begin(
        cfg: &'a Config,
        default_name: &str,
        declare: impl FnOnce(&mut Conn, &mut Declared) -> Result<(), Error>,
        sampled: Vec<String>,
    ) -> Result<Flow<'a>, Box<Report>> {
        let name = cfg.scenario.clone().unwrap_or_else(|| default_name.into());
        let mut r = Report::new(&name, &cfg.uri.to_string(), &settings(cfg));
        let mut declared = Declared::default();
        let admin = connect_admin(cfg).and_then(|mut c| {
            c.open_channel(1)?;
            declare(&mut c, &mut declared)?;
            Ok(c)
        });
        let mut admin = match admin {
            Ok(c) => c,
            Err(e) => {
                // Best effort: what was declared before the failure goes.
                if let Ok(mut c) = connect_admin(cfg) {
                    if c.open_channel(1).is_ok() {
                        let _ = declared.teardown(&mut c);
                    }
                    c.close();
                }
                r.error = Some(format!("setup: {e}"));
                return Err(Box::new(r));
            }
        };
        let sampler = match Sampler::start(cfg, sampled) {
            Ok(s) => s,
            Err(e) => {
                r.error = Some(format!("sampler: {e}"));
                if let Err(e) = declared.teardown(&mut admin) {
                    r.notes.push(format!("teardown: {e}"));
                }
                admin.close();
                return Err(Box::new(r));
            }
        };
        Ok(Flow {
            cfg,
            r,
            shared: Shared::new(),
            mon: Monitor::new(cfg.quiet),
            sampler,
            admin,
            declared,
            cpu: CpuMeter::start(cfg.broker_pid),
            consumers: Vec::new(),
            others: Vec::new(),
            ready: 0,
        })
    }

    /// Starts `consumers` consumers on `topo`'s queues, counting into the
    /// run's `shared` (or, with `own`, into separate counters, returned),
    /// and waits until they are consuming. False if any failed.
    pub(super) fn consume(
        &mut self,
        topo: &Topology,
        consumers: usize,
        settle: Settle,
        observe: &Observe,
        own: bool,
    ) -> (bool, Arc<Shared>) {
        let cfg = Config {
            consumers,
            ..self.cfg.clone()
        };
        let shared = if own {
            Shared::new()
        } else {
            self.shared.clone()
        };
        let handles = spawn_consumers_with(&cfg, topo, &shared, settle, observe);
        let n = handles.len();
        self.consumers.extend(handles);
        let ok = if own {
            self.others.push(shared.clone());
            wait_ready(&shared, n)
        } else {
            self.ready += n;
            wait_ready(&shared, self.ready)
        };
        (ok, shared)
    }

    /// The publishing phase: `cfg.producers` producers along `topo`'s
    /// routes, `count(p)` messages each (0 = until `cfg.time_s`). Pushes
    /// the publish metrics. `None` if the consumers were not `ready` or a
    /// producer could not start.
    pub(super) fn publish(
        &mut self,
        ready: bool,
        topo: &Topology,
        count: &dyn Fn(usize) -> u64,
    ) -> Option<Published> {
        if !ready {
            return None;
        }
        let cfg = self.cfg;
        let shared = &self.shared;
        let duration_ns = cfg.time_s.map(|t| (t * 1e9) as u64);
        let producers = spawn_producers(cfg, topo, shared, count, duration_ns);
        let n = producers.len();
        let ok = wait_ready(shared, self.ready + n);
        let start = now_ns();
        shared.start_ns.store(start, Ordering::Release);
        if ok {
            shared.go.store(true, Ordering::Release);
            self.mon
                .watch(shared, "publish", Duration::from_secs(86_400), || {
                    producers.iter().all(|h| h.is_finished())
                });
        } else {
            shared.stop_producers.store(true, Ordering::SeqCst);
            shared.go.store(true, Ordering::Release);
        }
        let outs = lock_join(producers, shared);
        self.ready += n;
        if !ok {
            return None;
        }
        let mut per_producer = vec![0u64; cfg.producers];
        for o in &outs {
            for &(p, sent) in &o.sent {
                per_producer[p] = sent;
            }
        }
        let total: u64 = per_producer.iter().sum();
        let mut end_ns = outs.iter().map(|o| o.publish_end_ns).max().unwrap_or(start);
        let r = &mut self.r;
        r.push("published", total as f64, "msg", Better::Neither);
        if cfg.confirm > 0 {
            end_ns = end_ns.max(shared.last_confirm_ns.load(Ordering::Relaxed));
            let confirmed = shared.confirmed.load(Ordering::Relaxed);
            r.push("confirmed", confirmed as f64, "msg", Better::Neither);
            let nacked = shared.nacked.load(Ordering::Relaxed);
            require(r, nacked == 0, || format!("{nacked} publishes nacked"));
        }
        r.push(
            "publish rate",
            rate(total, start, end_ns),
            "msg/s",
            Better::Higher,
        );
        Some(Published {
            per_producer,
            total,
            start_ns: start,
            end_ns,
        })
    }

    /// Waits until `done()`, giving up once `progress()` has not changed
    /// for `idle` (or a worker failed). Returns whether `done()` held.
    pub(super) fn wait(
        &mut self,
        label: &str,
        idle: Duration,
        mut progress: impl FnMut(&Flow) -> u64,
        mut done: impl FnMut(&Flow) -> bool,
    ) -> bool {
        let mut last = progress(self);
        let mut last_change = Instant::now();
        let deadline = Instant::now() + WAIT_MAX;
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        loop {
            if done(self) {
                return true;
            }
            let p = progress(self);
            if p != last {
                last = p;
                last_change = Instant::now();
            }
            let failed = self.shared.failed.load(Ordering::SeqCst) > 0
                || self
                    .others
                    .iter()
                    .any(|s| s.failed.load(Ordering::SeqCst) > 0)
                || self.sampler.error().is_some();
            if failed || last_change.elapsed() >= idle || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
            if Instant::now() >= next_tick {
                self.mon.tick(&self.shared, label);
                next_tick += Duration::from_secs(1);
            }
        }
    }

    /// Deliveries so far, all consumers of the run's `shared`.
    pub(super) fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Stops the consumers and the sampler, pushes the CPU metrics (per
    /// `messages`), tears the topology down, and collects every worker's
    /// error into the report.
    pub(super) fn finish(mut self, messages: u64) -> (Report, Samples) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in &self.others {
            s.stop.store(true, Ordering::SeqCst);
        }
        let consumers = std::mem::take(&mut self.consumers);
        lock_join(consumers, &self.shared);
        self.mon.tick(&self.shared, "end");
        let usage = self.cpu.stop();
        let sampler_error = self.sampler.error();
        let samples = self.sampler.stop();
        let mut r = self.r;
        push_cpu(&mut r, &usage, messages, self.cfg.broker_pid);
        if let Err(e) = self.declared.teardown(&mut self.admin) {
            r.notes.push(format!("teardown: {e}"));
        }
        self.admin.close();
        let errors = std::iter::once(&self.shared)
            .chain(&self.others)
            .filter_map(|s| s.first_error())
            .chain(sampler_error);
        for e in errors {
            require(&mut r, false, || e);
        }
        (r, samples)
    }
}

/// Records a failed check: `what()` joins the run's error.
pub(super) fn require(r: &mut Report, ok: bool, what: impl FnOnce() -> String) {
    if ok {
        return;
    }
    let m = what();
    r.error = Some(match r.error.take() {
        Some(e) => format!("{e}; {m}"),
        None => m,
    });
}

/// Pushes a count and its rate over `from_ns..to_ns`.
pub(super) fn push_count(
    r: &mut Report,
    (name, rate_name): (&str, &str),
    n: u64,
    from_ns: u64,
    to_ns: u64,
) {
    r.push(name, n as f64, "msg", Better::Neither);
    r.push(rate_name, rate(n, from_ns, to_ns), "msg/s", Better::Higher);
}

/// Pushes the queue-depth samples and the broker's RSS peak.
pub(super) fn push_samples(r: &mut Report, s: &Samples) {
    r.push(
        "queue depth max (sampled)",
        s.max_depth as f64,
        "msg",
        Better::Neither,
    );
    r.push(
        "queue depth mean (sampled)",
        s.mean_depth,
        "msg",
        Better::Neither,
    );
    if s.peak_rss > 0 {
        r.push(
            "broker RSS peak",
            s.peak_rss as f64 / (1024.0 * 1024.0),
            "MiB",
            Better::Lower,
        );
    }
}
