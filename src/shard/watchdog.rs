//! A guard against a lost wake-up in glommio 0.9: an executor parked in the
//! kernel (waiting on its main io_uring, with the latency ring linked to
//! it) is sometimes never woken by its own timer. Under heavy load a shard
//! was seen parked for minutes in the middle of joining the mesh, and only
//! a debugger attaching (which interrupts the wait) set it going again.
//!
//! Every shard bumps a heartbeat on each tick of its ticking timers (1 ms
//! while starting, 10 ms while serving, 200 ms while idle: `shard::ticker`). A watchdog thread looks at the
//! heartbeats every `CHECK_EVERY`; a shard whose heartbeat has not moved for
//! `STALL_AFTER` gets a no-op signal (`WAKE_SIGNAL`, installed without
//! SA_RESTART) aimed at its thread, which interrupts the kernel wait so the
//! executor polls its rings again. A busy shard beats too (it runs its
//! timers at every 5 ms preemption), so only a parked-and-forgotten or
//! blocked one is signalled; the signal is harmless either way.
//!
//! The cause (glommio 0.9, `LocalExecutor::run`): `run_task_queues`
//! returns false both when nothing was runnable and when the preemption
//! timer had already expired before the first task queue ran (the thread
//! was descheduled between arming it and looking at it); either way the
//! executor spins briefly, then parks with the next *registered* timer as
//! its only wake-up. When the timer that just fired was the only one (the
//! tick's, while a shard starts), the tick's task is runnable but never
//! run, nothing is registered, and the park lasts until some I/O or
//! another thread wakes it. The mitigation is in `server::tick`: two
//! tickers half a period apart, so a park always finds the other one's
//! timer registered unless the shard was off the CPU for half a period
//! and then preempted before running anything; this watchdog stays as the
//! safety net for that.
//!
//! Every stall the watchdog acts on (a serving shard's heartbeat still for
//! `STALL_AFTER`) is logged and counted per shard (`fires`: the shard
//! snapshot's `watchdog_fires`, `warren ctl status`, the log line at
//! shutdown); stalls while a shard starts (recovery may legitimately
//! block it) are counted apart (`startup_fires`).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the watchdog looks.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// A heartbeat this old means the shard is stuck.
pub(crate) const STALL_AFTER: Duration = Duration::from_millis(500);
/// The signal that interrupts a stuck shard's wait (its handler does nothing).
const WAKE_SIGNAL: libc::c_int = libc::SIGURG;

/// Heartbeats and thread ids of every shard.
pub struct Watchdog {
    beats: Vec<AtomicU64>,
    /// Kernel thread id of each shard's executor while it is watched, else 0.
    tids: Vec<AtomicI32>,
    /// Whether the shard is serving: a stall is logged only then (recovery
    /// may legitimately block a shard for a while; it is woken all the same).
    serving: Vec<AtomicBool>,
    /// Stalls acted on while the shard served.
    fires: Vec<AtomicU64>,
    /// Stalls acted on while the shard started.
    startup_fires: Vec<AtomicU64>,
    /// Of `fires`, those where the shard's thread was asleep in the kernel
    /// (the lost wake-up), not running or waiting for a CPU (a busy or
    /// starved shard, which the signal does not help).
    parked_fires: Vec<AtomicU64>,
}

/// Keeps a shard watched; dropping it stops the watching.
pub struct Watched {
    dog: Arc<Watchdog>,
    id: usize,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dog.tids[self.id].store(0, Ordering::SeqCst);
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The scheduler state letter of thread `tid` of this process (`S`
/// sleeping, `R` running or runnable, `D` uninterruptible…), from
/// `/proc/self/task/<tid>/stat` (the field after the command's `)`).
fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

impl Watchdog {
    /// Installs the wake signal's handler and starts the watchdog thread.
    pub fn start(shards: usize) -> Arc<Watchdog> {
        // SAFETY: a handler that does nothing, installed once, no SA_RESTART
        // so that the interrupted io_uring wait returns (EINTR).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(WAKE_SIGNAL, &action, std::ptr::null_mut());
        }
        let dog = Arc::new(Watchdog {
            beats: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            tids: (0..shards).map(|_| AtomicI32::new(0)).collect(),
            serving: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            fires: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            startup_fires: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            parked_fires: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        });
        let watched = dog.clone();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || watched.watch())
            .expect("spawn the watchdog");
        dog
    }

    /// The calling thread is shard `id`'s executor: watch it until the
    /// returned guard is dropped (when the executor's work ends).
    pub fn register(self: &Arc<Self>, id: usize) -> Watched {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        self.tids[id].store(tid, Ordering::SeqCst);
        Watched {
            dog: self.clone(),
            id,
        }
    }

    /// Shard `id` started serving: its stalls are worth a log line.
    pub fn serving(&self, id: usize) {
        self.serving[id].store(true, Ordering::SeqCst);
    }

    /// Shard `id` is alive.
    pub fn beat(&self, id: usize) {
        self.beats[id].fetch_add(1, Ordering::Relaxed);
    }

    /// Stalls of shard `id` the watchdog acted on while it served.
    pub fn fires(&self, id: usize) -> u64 {
        self.fires[id].load(Ordering::Relaxed)
    }

    /// Every shard's stalls acted on: (while serving, of those with the
    /// thread parked in the kernel, while starting).
    pub fn totals(&self) -> (u64, u64, u64) {
        let sum = |v: &[AtomicU64]| v.iter().map(|f| f.load(Ordering::Relaxed)).sum();
        (
            sum(&self.fires),
            sum(&self.parked_fires),
            sum(&self.startup_fires),
        )
    }

    fn watch(&self) {
        let n = self.beats.len();
        let mut last = vec![0u64; n];
        let mut quiet = vec![Duration::ZERO; n];
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        loop {
            std::thread::sleep(CHECK_EVERY);
            for id in 0..n {
                let tid = self.tids[id].load(Ordering::SeqCst);
                let beat = self.beats[id].load(Ordering::Relaxed);
                if tid == 0 || beat != last[id] {
                    last[id] = beat;
                    quiet[id] = Duration::ZERO;
                    continue;
                }
                quiet[id] += CHECK_EVERY;
                if quiet[id] < STALL_AFTER {
                    continue;
                }
                if quiet[id] == STALL_AFTER {
                    if self.serving[id].load(Ordering::SeqCst) {
                        let n = self.fires[id].fetch_add(1, Ordering::Relaxed) + 1;
                        let state = thread_state(tid);
                        if state == Some('S') {
                            self.parked_fires[id].fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::warn!(
                            shard = id,
                            watchdog_fires = n,
                            "made no progress for {} ms ({}); waking it",
                            STALL_AFTER.as_millis(),
                            match state {
                                Some('S') => "parked in the kernel: a lost wake-up",
                                Some('R') => "running or waiting for a CPU: busy or starved",
                                Some('D') => "in uninterruptible I/O",
                                _ => "thread state unknown",
                            }
                        );
                    } else {
                        let n = self.startup_fires[id].fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::info!(
                            shard = id,
                            startup_fires = n,
                            state = %thread_state(tid).unwrap_or('?'),
                            "made no progress for {} ms while starting; waking it",
                            STALL_AFTER.as_millis()
                        );
                    }
                }
                // SAFETY: tgkill to a thread of this process; a thread that
                // has just exited gives ESRCH, which is fine to ignore.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, pid, tid, WAKE_SIGNAL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A thread registered as shard `id` that never beats, until the
    /// watchdog has acted on it (or 10 s pass).
    fn stall(dog: &Arc<Watchdog>, id: usize, serving: bool) -> std::thread::JoinHandle<()> {
        let dog = dog.clone();
        std::thread::spawn(move || {
            let _watched = dog.register(id);
            if serving {
                dog.serving(id);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let acted = |d: &Watchdog| {
                d.fires[id].load(Ordering::Relaxed) + d.startup_fires[id].load(Ordering::Relaxed)
            };
            while acted(&dog) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }

    #[test]
    fn stalls_are_counted_apart_while_serving_and_while_starting() {
        let dog = Watchdog::start(2);
        let serving = stall(&dog, 0, true);
        let starting = stall(&dog, 1, false);
        serving.join().expect("serving thread");
        starting.join().expect("starting thread");
        assert_eq!(dog.fires(0), 1, "one stall of the serving shard");
        assert_eq!(
            dog.fires(1),
            0,
            "a starting shard's stall is not a serving one"
        );
        let (fires, parked, startup) = dog.totals();
        assert_eq!((fires, startup), (1, 1));
        // The stalled thread mostly sleeps (thread::sleep), as a parked
        // executor does, but may be caught running.
        assert!(parked <= 1);
    }
}
