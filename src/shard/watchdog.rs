//! A guard against a lost wake-up in glommio 0.9: an executor parked in the
//! kernel (waiting on its main io_uring, with the latency ring linked to
//! it) is sometimes never woken by its own timer. Under heavy load a shard
//! was seen parked for minutes in the middle of joining the mesh, and only
//! a debugger attaching (which interrupts the wait) set it going again.
//!
//! Every shard bumps a heartbeat on each tick of its ticking timer (1 ms
//! while starting, 10 ms while serving). A watchdog thread looks at the
//! heartbeats every `CHECK_EVERY`; a shard whose heartbeat has not moved for
//! `STALL_AFTER` gets a no-op signal (`WAKE_SIGNAL`, installed without
//! SA_RESTART) aimed at its thread, which interrupts the kernel wait so the
//! executor polls its rings again. A busy shard beats too (it runs its
//! timers at every 5 ms preemption), so only a parked-and-forgotten or
//! blocked one is signalled; the signal is harmless either way.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the watchdog looks.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// A heartbeat this old means the shard is stuck.
const STALL_AFTER: Duration = Duration::from_millis(500);
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
                if quiet[id] == STALL_AFTER && self.serving[id].load(Ordering::SeqCst) {
                    tracing::warn!(
                        shard = id,
                        "made no progress for {} ms; waking it",
                        STALL_AFTER.as_millis()
                    );
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
