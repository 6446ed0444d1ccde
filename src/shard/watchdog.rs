//! A guard against a lost wake-up in glommio 0.9: an executor parked in the
//! kernel (waiting on its main io_uring, with the latency ring linked to
//! it) is sometimes never woken by its own timer. Under heavy load a shard
//! was seen parked for minutes in the middle of joining the mesh, and only
//! a debugger attaching (which interrupts the wait) set it going again.
//!
//! Every shard bumps a heartbeat on each tick of its ticking timers (1 ms
//! while starting, 10 ms while serving, 200 ms while idle: `shard::ticker`).
//! A watchdog thread looks at the heartbeats every `CHECK_EVERY`; a shard
//! whose heartbeat has not moved for `STALL_AFTER` of its own time gets a
//! no-op signal (`WAKE_SIGNAL`, installed without
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
//! another thread wakes it. `shard::preempt_guard` keeps that park from
//! happening (a comb of registered timers, so the spin after such a
//! preemption always finds one expired); this watchdog stays as the
//! safety net.
//!
//! A stall is `STALL_AFTER` of the shard's own time without a heartbeat:
//! the CPU time its thread used (`/proc/self/task/<tid>/schedstat`) plus
//! the time it slept in the kernel (an interval between two looks that
//! both found it asleep, with no CPU time used between them: a thread
//! cannot fall asleep again without running). Time it spent runnable but
//! waiting for a CPU does not count,
//! because on an overloaded machine a shard that gets no CPU is not
//! stuck, and a signal does not help it. Such starved windows are counted apart (`starved`),
//! never as stalls. Every stall the watchdog acts on while a shard serves
//! is logged and counted per shard (`fires`: the shard snapshot's
//! `watchdog_fires`, `warren ctl status`, the log line at shutdown), and
//! of those, the ones that found the thread asleep in the kernel
//! (`parked_fires`: a lost wake-up) apart from the ones that found it
//! running (a task that ran `STALL_AFTER` without yielding); stalls while
//! a shard starts (recovery may legitimately block it) are counted apart
//! (`startup_fires`).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the watchdog looks.
const CHECK_EVERY: Duration = Duration::from_millis(100);
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
    /// (the lost wake-up), not running (a task that did not yield).
    parked_fires: Vec<AtomicU64>,
    /// Windows of `STALL_AFTER` wall time without a heartbeat in which the
    /// shard waited for a CPU long enough not to be a stall.
    starved: Vec<AtomicU64>,
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

/// CPU nanoseconds thread `tid` of this process has used, from
/// `/proc/self/task/<tid>/schedstat` (its first field; the run-queue
/// wait in the second is only updated once the thread runs again, so it
/// cannot tell a starved thread while it starves); None where the kernel
/// does not keep it.
fn cpu_ns(tid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// What one look saw of a shard's thread.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// `cpu_ns`, if known.
    cpu_ns: Option<u64>,
    /// Asleep in the kernel (state `S` or `D`) at the look.
    asleep: bool,
}

impl Sample {
    fn of(tid: i32) -> Sample {
        Sample {
            cpu_ns: cpu_ns(tid),
            asleep: matches!(thread_state(tid), Some('S' | 'D')),
        }
    }
}

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
            starved: (0..shards).map(|_| AtomicU64::new(0)).collect(),
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

    /// Every shard's stalls acted on, and its starved windows.
    pub fn totals(&self) -> StallTotals {
        let sum = |v: &[AtomicU64]| v.iter().map(|f| f.load(Ordering::Relaxed)).sum();
        StallTotals {
            fires: sum(&self.fires),
            parked: sum(&self.parked_fires),
            startup: sum(&self.startup_fires),
            starved: sum(&self.starved),
        }
    }

    fn watch(&self) {
        let n = self.beats.len();
        let mut shards: Vec<Watch> = (0..n).map(|_| Watch::default()).collect();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut last = std::time::Instant::now();
        loop {
            std::thread::sleep(CHECK_EVERY);
            // The watchdog may itself wait for a CPU: the real interval.
            let now = std::time::Instant::now();
            let since = now - last;
            last = now;
            for (id, w) in shards.iter_mut().enumerate() {
                let tid = self.tids[id].load(Ordering::SeqCst);
                let beat = self.beats[id].load(Ordering::Relaxed);
                // /proc is read only for a shard that has not beaten since
                // the last look.
                let quiet = tid != 0 && tid == w.tid && beat == w.beat;
                let sample = if quiet {
                    Sample::of(tid)
                } else {
                    Sample::default()
                };
                match w.look(tid, beat, since, sample) {
                    Look::Fine => continue,
                    Look::Starved => {
                        self.starved[id].fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Look::Stalled { first } => {
                        if first {
                            self.act(id, tid, w.wall);
                        }
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

    /// Counts and logs a stall of shard `id` (thread `tid`) seen after
    /// `wall` without a heartbeat.
    fn act(&self, id: usize, tid: i32, wall: Duration) {
        if !self.serving[id].load(Ordering::SeqCst) {
            let n = self.startup_fires[id].fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(
                shard = id,
                startup_fires = n,
                state = %thread_state(tid).unwrap_or('?'),
                "made no progress for {} ms while starting; waking it",
                STALL_AFTER.as_millis()
            );
            return;
        }
        let n = self.fires[id].fetch_add(1, Ordering::Relaxed) + 1;
        let state = thread_state(tid);
        if state == Some('S') {
            self.parked_fires[id].fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(
            shard = id,
            watchdog_fires = n,
            "made no progress for {} ms of its own time ({} ms wall) ({}); waking it",
            STALL_AFTER.as_millis(),
            wall.as_millis(),
            match state {
                Some('S') => "parked in the kernel: a lost wake-up",
                Some('R') => "running: a task that does not yield",
                Some('D') => "in uninterruptible I/O",
                _ => "thread state unknown",
            }
        );
    }
}

/// The watchdog's counts over every shard (`Watchdog::totals`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallTotals {
    /// Stalls acted on while serving.
    pub fires: u64,
    /// Of `fires`, with the thread asleep in the kernel (lost wake-ups).
    pub parked: u64,
    /// Stalls acted on while starting.
    pub startup: u64,
    /// Quiet windows that were the machine's (the shard waited for a CPU),
    /// not stalls.
    pub starved: u64,
}

/// What the watchdog thread remembers of one shard since its last
/// heartbeat.
#[derive(Default)]
struct Watch {
    tid: i32,
    beat: u64,
    /// The thread's CPU time at the last look.
    cpu_ns: Option<u64>,
    /// The thread was asleep in the kernel at the last look.
    asleep: bool,
    /// `cpu_ns` and `asleep` hold a sample of this quiet spell.
    sampled: bool,
    /// Wall time without a heartbeat.
    wall: Duration,
    /// Of it, time the thread ran or slept in the kernel (not waiting for
    /// a CPU).
    own: Duration,
    /// This quiet spell was counted as starved.
    starved: bool,
    /// This quiet spell was counted as a stall.
    acted: bool,
}

/// What one look at a shard found.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    /// It beat, is not watched, or has not been quiet for long.
    Fine,
    /// Quiet for `STALL_AFTER` of wall time, but much of it waiting for a
    /// CPU: counted once per quiet spell, not a stall.
    Starved,
    /// Quiet for `STALL_AFTER` of its own time (`first` on the look that
    /// crossed it).
    Stalled { first: bool },
}

impl Watch {
    /// One look, `since` after the last, at thread `tid` with heartbeat
    /// `beat`, as `sample` shows it. The time since the last look counts
    /// as the shard's own if the thread slept through it (asleep at both
    /// looks, no CPU time used); otherwise only the CPU time it used does
    /// (without CPU times, all of it counts).
    fn look(&mut self, tid: i32, beat: u64, since: Duration, sample: Sample) -> Look {
        if tid == 0 || beat != self.beat || tid != self.tid {
            *self = Watch {
                tid,
                beat,
                ..Watch::default()
            };
            return Look::Fine;
        }
        if !self.sampled {
            // The first quiet look sets the baseline; the spell is
            // measured from it (a stall is found one look later).
            self.sampled = true;
            self.cpu_ns = sample.cpu_ns;
            self.asleep = sample.asleep;
            return Look::Fine;
        }
        let ran = match (self.cpu_ns, sample.cpu_ns) {
            (Some(before), Some(now)) => Some(Duration::from_nanos(now.saturating_sub(before))),
            _ => None,
        };
        let slept = self.asleep && sample.asleep && ran == Some(Duration::ZERO);
        self.cpu_ns = sample.cpu_ns;
        self.asleep = sample.asleep;
        let own = match ran {
            _ if slept => since,
            Some(ran) => ran.min(since),
            None => since,
        };
        self.wall += since;
        self.own += own;
        debug_assert!(self.own <= self.wall);
        if self.own >= STALL_AFTER {
            let first = !self.acted;
            self.acted = true;
            return Look::Stalled { first };
        }
        if self.wall >= STALL_AFTER && !self.starved {
            self.starved = true;
            return Look::Starved;
        }
        Look::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A thread registered as shard `id` that never beats, asleep until
    /// the watchdog has acted on it (or 10 s pass).
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
            // Asleep in the kernel like a parked executor, until the
            // watchdog's signal interrupts the sleep (EINTR).
            while acted(&dog) == 0 && Instant::now() < deadline {
                let ts = libc::timespec {
                    tv_sec: 10,
                    tv_nsec: 0,
                };
                // SAFETY: a valid timespec; the remainder is not wanted.
                unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
            }
        })
    }

    /// Quiet time spent waiting for a CPU does not make a stall; quiet
    /// time of the shard's own (running, or asleep in the kernel) does,
    /// once per quiet spell; a heartbeat starts a new spell.
    #[test]
    fn only_the_shards_own_quiet_time_makes_a_stall() {
        let looks = (STALL_AFTER.as_millis() / CHECK_EVERY.as_millis()) as u64;
        let check_ns = CHECK_EVERY.as_nanos() as u64;
        let runnable = |cpu_ns| Sample {
            cpu_ns: Some(cpu_ns),
            asleep: false,
        };
        let mut w = Watch::default();
        // A heartbeat starts a spell; the first quiet look is its baseline.
        assert_eq!(w.look(7, 1, CHECK_EVERY, runnable(0)), Look::Fine);
        // Running 10 % of every window, waiting for a CPU the rest: starved
        // once, never stalled.
        let mut cpu = 0;
        let mut found = Vec::new();
        for _ in 0..3 * looks {
            cpu += check_ns / 10;
            found.push(w.look(7, 1, CHECK_EVERY, runnable(cpu)));
        }
        assert_eq!(found.iter().filter(|l| **l == Look::Starved).count(), 1);
        assert!(!found.iter().any(|l| matches!(l, Look::Stalled { .. })));
        // A heartbeat, then running flat out: a stall after exactly
        // STALL_AFTER, acted on once.
        assert_eq!(w.look(7, 2, CHECK_EVERY, runnable(cpu)), Look::Fine);
        assert_eq!(w.look(7, 2, CHECK_EVERY, runnable(cpu)), Look::Fine);
        for _ in 1..looks {
            cpu += check_ns;
            assert_eq!(w.look(7, 2, CHECK_EVERY, runnable(cpu)), Look::Fine);
        }
        cpu += check_ns;
        assert_eq!(
            w.look(7, 2, CHECK_EVERY, runnable(cpu)),
            Look::Stalled { first: true }
        );
        cpu += check_ns;
        assert_eq!(
            w.look(7, 2, CHECK_EVERY, runnable(cpu)),
            Look::Stalled { first: false }
        );
        // Asleep in the kernel without a heartbeat (a lost wake-up): all
        // of the time counts.
        let asleep = Sample {
            cpu_ns: Some(cpu),
            asleep: true,
        };
        assert_eq!(looks_to_stall(&mut w, 7, 3, asleep), looks);
        // Without CPU times every quiet moment counts.
        let mut w = Watch::default();
        assert_eq!(looks_to_stall(&mut w, 8, 1, Sample::default()), looks);
    }

    /// A heartbeat `beat` of thread `tid`, then looks that all see
    /// `sample`: how many looks after the baseline until a stall.
    fn looks_to_stall(w: &mut Watch, tid: i32, beat: u64, sample: Sample) -> u64 {
        assert_eq!(w.look(tid, beat, CHECK_EVERY, sample), Look::Fine);
        assert_eq!(
            w.look(tid, beat, CHECK_EVERY, sample),
            Look::Fine,
            "baseline"
        );
        for n in 1..=100 {
            match w.look(tid, beat, CHECK_EVERY, sample) {
                Look::Fine => {}
                Look::Stalled { first: true } => return n,
                other => panic!("look {n}: {other:?}"),
            }
        }
        panic!("no stall in 100 looks");
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
        let t = dog.totals();
        assert_eq!((t.fires, t.startup), (1, 1));
        // The stalled serving thread slept through it, as a parked
        // executor does.
        assert_eq!(t.parked, 1);
    }
}
