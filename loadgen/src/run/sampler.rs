//! `Sampler`: a background thread that, every `INTERVAL`, reads the ready
//! depth of a run's queues (passive declares on its own connection) and
//! the broker's RSS (/proc/PID/status): the latest depth, its peak and
//! mean, and the RSS peak overall and since the last `take_phase_peak`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::setup::queue_depth;
use crate::cli::Config;
use crate::client::{Conn, Error};
use crate::sys::{now_ns, pid_rss_bytes};

/// How often the sampler looks.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);
const NONE: u64 = u64::MAX;

#[derive(Default)]
struct State {
    stop: AtomicBool,
    /// Depth (all queues together) of the latest sample, `NONE` before one.
    depth: AtomicU64,
    /// When the latest sample started (ns, `sys::now_ns`).
    depth_at_ns: AtomicU64,
    max_depth: AtomicU64,
    depth_sum: AtomicU64,
    samples: AtomicU64,
    peak_rss: AtomicU64,
    phase_peak_rss: AtomicU64,
    error: Mutex<Option<String>>,
}

/// What the sampler saw over the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Samples {
    pub(super) max_depth: u64,
    pub(super) mean_depth: f64,
    /// Bytes; 0 without a broker pid.
    pub(super) peak_rss: u64,
}

pub(super) struct Sampler {
    state: Arc<State>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `queues` (and the RSS of `cfg.broker_pid`).
    pub(super) fn start(cfg: &Config, queues: Vec<String>) -> Result<Sampler, Error> {
        let mut conn = Conn::connect(&cfg.uri, "loadgen-sampler")?;
        conn.open_channel(1)?;
        let state = Arc::new(State {
            depth: AtomicU64::new(NONE),
            ..State::default()
        });
        let pid = cfg.broker_pid;
        let st = state.clone();
        let handle = thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                while !st.stop.load(Ordering::SeqCst) {
                    let t = now_ns();
                    let depth: Result<u64, Error> = queues
                        .iter()
                        .map(|q| queue_depth(&mut conn, q).map(u64::from))
                        .sum();
                    match depth {
                        Ok(d) => {
                            st.depth.store(d, Ordering::SeqCst);
                            st.depth_at_ns.store(t, Ordering::SeqCst);
                            st.max_depth.fetch_max(d, Ordering::Relaxed);
                            st.depth_sum.fetch_add(d, Ordering::Relaxed);
                            st.samples.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            *st.error.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("sampling the queue depth: {e}"));
                            return;
                        }
                    }
                    if let Some(rss) = pid.and_then(pid_rss_bytes) {
                        st.peak_rss.fetch_max(rss, Ordering::Relaxed);
                        st.phase_peak_rss.fetch_max(rss, Ordering::Relaxed);
                    }
                    thread::sleep(INTERVAL);
                }
                conn.close();
            })
            .expect("spawn sampler thread");
        Ok(Sampler {
            state,
            handle: Some(handle),
        })
    }

    /// The latest depth, if it was sampled at or after `since_ns`.
    pub(super) fn depth_since(&self, since_ns: u64) -> Option<u64> {
        let d = self.state.depth.load(Ordering::SeqCst);
        let at = self.state.depth_at_ns.load(Ordering::SeqCst);
        (d != NONE && at >= since_ns).then_some(d)
    }

    /// The latest depth sampled (`None` before the first sample).
    pub(super) fn depth(&self) -> Option<u64> {
        self.depth_since(0)
    }

    /// Why sampling stopped early, if it did.
    pub(super) fn error(&self) -> Option<String> {
        self.state
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The RSS peak since the previous call (bytes; 0 if unknown), and a
    /// new phase starting now.
    pub(super) fn take_phase_peak(&self) -> u64 {
        self.state.phase_peak_rss.swap(0, Ordering::SeqCst)
    }

    /// Waits (bounded) for a sample that started at or after `since_ns`
    /// and returns its depth.
    pub(super) fn fresh_depth(&self, since_ns: u64) -> Option<u64> {
        for _ in 0..(50 * 1000 / INTERVAL.as_millis() as u64) {
            if let Some(d) = self.depth_since(since_ns) {
                return Some(d);
            }
            if self.error().is_some() {
                return None;
            }
            thread::sleep(INTERVAL / 4);
        }
        None
    }

    pub(super) fn stop(mut self) -> Samples {
        self.halt();
        let st = &self.state;
        let samples = st.samples.load(Ordering::Relaxed);
        Samples {
            max_depth: st.max_depth.load(Ordering::Relaxed),
            mean_depth: st.depth_sum.load(Ordering::Relaxed) as f64 / samples.max(1) as f64,
            peak_rss: st.peak_rss.load(Ordering::Relaxed),
        }
    }
}

impl Sampler {
    fn halt(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}
