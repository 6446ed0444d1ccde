//! Watching a run: the progress line every second (rates and interval
//! latencies) with the totals merged, waiting for workers to be ready, and
//! waiting for the drain after the producers stop.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::shared::Shared;
use crate::client;
use crate::report::new_histogram;

/// Consumers still receiving after the producers stop get this long without
/// a single delivery before the run ends anyway.
pub(super) const DRAIN_IDLE: Duration = Duration::from_secs(10);
/// Upper bound on the drain after the producers stop.
const DRAIN_MAX: Duration = Duration::from_secs(300);

/// Totals merged from the interval histograms, and the progress printer.
pub(super) struct Monitor {
    pub(super) e2e: Histogram<u64>,
    pub(super) confirm: Histogram<u64>,
    pub(super) quiet: bool,
    pub(super) last: (u64, u64, u64),
    pub(super) last_t: Instant,
    pub(super) started: Instant,
}

impl Monitor {
    pub(super) fn new(quiet: bool) -> Monitor {
        Monitor {
            e2e: new_histogram(),
            confirm: new_histogram(),
            quiet,
            last: (0, 0, 0),
            last_t: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Merges the interval histograms and prints one progress line.
    pub(super) fn tick(&mut self, shared: &Shared, label: &str) {
        let take = |h: &Mutex<Histogram<u64>>| {
            let mut h = h.lock().unwrap_or_else(|p| p.into_inner());
            let out = h.clone();
            h.reset();
            out
        };
        let e2e = take(&shared.e2e);
        let confirm = take(&shared.confirm);
        let _ = self.e2e.add(&e2e);
        let _ = self.confirm.add(&confirm);
        let now = (
            shared.sent.load(Ordering::Relaxed),
            shared.confirmed.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed),
        );
        let dt = self.last_t.elapsed().as_secs_f64().max(1e-6);
        if !self.quiet {
            let rate = |a: u64, b: u64| (a - b) as f64 / dt;
            let mut line = format!(
                "[{:>6.1}s {label}] sent {:>9.0}/s  confirmed {:>9.0}/s  received {:>9.0}/s",
                self.started.elapsed().as_secs_f64(),
                rate(now.0, self.last.0),
                rate(now.1, self.last.1),
                rate(now.2, self.last.2),
            );
            let pct = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
            if !e2e.is_empty() {
                line += &format!(
                    "  e2e p50/p99 {:.2}/{:.2} ms",
                    pct(&e2e, 0.5),
                    pct(&e2e, 0.99)
                );
            }
            if !confirm.is_empty() {
                line += &format!(
                    "  confirm p50/p99 {:.2}/{:.2} ms",
                    pct(&confirm, 0.5),
                    pct(&confirm, 0.99)
                );
            }
            eprintln!("{line}");
        }
        self.last = now;
        self.last_t = Instant::now();
    }

    /// Ticks every second until `done()` or `limit` passes; returns false
    /// on the limit.
    pub(super) fn watch(
        &mut self,
        shared: &Shared,
        label: &str,
        limit: Duration,
        mut done: impl FnMut() -> bool,
    ) -> bool {
        let until = Instant::now() + limit;
        let mut next = Instant::now() + Duration::from_secs(1);
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
            if Instant::now() >= next {
                self.tick(shared, label);
                next += Duration::from_secs(1);
            }
        }
    }
}

/// Waits until `n` workers are ready (or failed); false on failure.
pub(super) fn wait_ready(shared: &Shared, n: usize) -> bool {
    let until = Instant::now() + client::RPC_TIMEOUT;
    while shared.ready.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) < n
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(5));
    }
    shared.failed.load(Ordering::SeqCst) == 0 && shared.ready.load(Ordering::SeqCst) >= n
}

/// Waits for deliveries to reach `expected`, giving up after
/// `DRAIN_IDLE` without progress (or `DRAIN_MAX` overall).
pub(super) fn drain(mon: &mut Monitor, shared: &Shared, expected: u64, label: &str) {
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    mon.watch(shared, label, DRAIN_MAX, || {
        let r = shared.received.load(Ordering::Relaxed);
        if r != last {
            last = r;
            last_change = Instant::now();
        }
        r >= expected
            || last_change.elapsed() >= DRAIN_IDLE
            || shared.failed.load(Ordering::SeqCst) > 0
    });
}
