//! `Shared`: the counters, flags and interval histograms every worker
//! thread of a run updates, and joining those threads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::new_histogram;

/// How often blocked readers wake up to look at the stop flags.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// Counters and interval histograms shared by every worker thread.
pub(super) struct Shared {
    pub(super) go: AtomicBool,
    pub(super) start_ns: AtomicU64,
    /// Producers stop publishing (watchdog or a fatal error).
    pub(super) stop_producers: AtomicBool,
    /// Consumers and ack readers stop.
    pub(super) stop: AtomicBool,
    pub(super) ready: AtomicUsize,
    pub(super) failed: AtomicUsize,
    pub(super) sent: AtomicU64,
    pub(super) confirmed: AtomicU64,
    pub(super) nacked: AtomicU64,
    pub(super) received: AtomicU64,
    /// Deliveries consumers requeued (basic.nack / basic.reject, requeue=true).
    pub(super) requeued: AtomicU64,
    /// Deliveries consumers rejected with requeue=false.
    pub(super) rejected: AtomicU64,
    /// Deliveries whose redelivered flag said otherwise than the consumer's
    /// count of earlier deliveries of that message.
    pub(super) redelivered_wrong: AtomicU64,
    /// Deliveries that arrived more than 1 ms before their intended time
    /// (publish + TTL or x-delay).
    pub(super) early: AtomicU64,
    pub(super) last_confirm_ns: AtomicU64,
    pub(super) last_recv_ns: AtomicU64,
    /// Latencies recorded since the monitor last looked.
    pub(super) e2e: Mutex<Histogram<u64>>,
    pub(super) confirm: Mutex<Histogram<u64>>,
    pub(super) errors: Mutex<Vec<String>>,
}

impl Shared {
    pub(super) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            go: AtomicBool::new(false),
            start_ns: AtomicU64::new(0),
            stop_producers: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            redelivered_wrong: AtomicU64::new(0),
            early: AtomicU64::new(0),
            last_confirm_ns: AtomicU64::new(0),
            last_recv_ns: AtomicU64::new(0),
            e2e: Mutex::new(new_histogram()),
            confirm: Mutex::new(new_histogram()),
            errors: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn error(&self, e: String) {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.len() < 100 {
            errs.push(e);
        }
    }

    pub(super) fn first_error(&self) -> Option<String> {
        let errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errs.first().map(|e| {
            if errs.len() > 1 {
                format!("{e} (and {} more errors)", errs.len() - 1)
            } else {
                e.clone()
            }
        })
    }

    pub(super) fn record(hist: &Mutex<Histogram<u64>>, values: &mut Vec<u64>) {
        if values.is_empty() {
            return;
        }
        let mut h = hist.lock().unwrap_or_else(|p| p.into_inner());
        for &v in values.iter() {
            h.saturating_record(v.max(1));
        }
        values.clear();
    }
}

pub(super) fn lock_join<T>(handles: Vec<JoinHandle<T>>, shared: &Shared) -> Vec<T> {
    handles
        .into_iter()
        .filter_map(|h| match h.join() {
            Ok(v) => Some(v),
            Err(_) => {
                shared.error("a worker thread panicked".to_string());
                None
            }
        })
        .collect()
}
