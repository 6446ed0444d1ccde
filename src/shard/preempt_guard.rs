//! The preemption guard: keeps glommio 0.9's lost wake-up from happening.
//!
//! The stall (see also `shard::watchdog`): glommio's `LocalExecutor::run`
//! polls I/O, arms the preemption timer (`server::PREEMPT_EVERY`), then
//! runs task queues; `run_task_queues` returns false both when nothing was
//! runnable and when the preemption was already pending before the first
//! queue ran (the thread was off the CPU for a whole preemption period
//! between arming the timer and looking at it). On false the executor
//! spins `SPIN_BEFORE_PARK` polling I/O, then parks in the kernel until
//! the next completion or *registered* timer, with runnable tasks that
//! nobody will run until then. The spin polls I/O at least once, even at
//! 0 µs (glommio calls `spin_poll_io` before it looks at the clock), and
//! that poll expires due timers: what follows holds for any spin length.
//!
//! What the spin and the park do count as a reason to go on: an expired
//! registered timer (glommio counts it as a wake-up, so the spin ends and
//! the executor runs its queues again). The guard makes sure there always
//! is one when that preemption lands: while the shard works (its ticker
//! is not at the idle pace, `shard::ticker`) it keeps `TEETH` timers
//! registered ahead of now, `spacing` apart, with `spacing` shorter than
//! the preemption period. Invariant: while the shard works, whenever the
//! executor polls I/O at T (and so expires every timer due by T), a guard
//! timer is registered and due in (T, T + spacing]; a preemption armed at
//! T fires at T + period, after that timer is due, so the spin that
//! follows a preempted-before-running `run_task_queues` always finds an
//! expired timer and does not park.
//! The teeth do not depend on the guard's task running in time (a tooth
//! that fires only makes the task runnable; the later teeth stay
//! registered); only a shard that runs no task for `TEETH × spacing`
//! (about 290 ms, a stall the watchdog would report anyway) uses them up,
//! and the first run afterwards lays a new comb.
//!
//! Other ways a preemption can be pending at that point (glommio's
//! throughput preemption after many main-ring completions; a peer shard's
//! late eventfd write) come with completions or channel items the spin
//! and the park count as wake-ups themselves, except a stray eventfd
//! write, which the next tooth ends within `spacing`.
//!
//! An idle shard (no work for `ticker::IDLE_AFTER`) keeps a sparse comb,
//! `IDLE_TICK / 2` apart: dense teeth would wake it about 220 times a
//! second, which measured 6 % of a core for an idle 2-shard broker against
//! 0.5 % without. The idle teeth also do the shard's ticking (`idle_tick`:
//! the watchdog's beat, the ticker's count, the shutdown flag), while the
//! tickers wait for work: an idle shard wakes for the teeth alone.
//!
//! The one moment the sparse comb does not cover is the first I/O poll
//! after an idle park, if the thread is taken off the CPU
//! for a whole preemption period within the microseconds between arming
//! the timer and running the first task: that park ends at the next tooth,
//! within `IDLE_TICK / 2` however long the thread was away (the shard's
//! tickers alone did not bound it: after a long enough time off the CPU
//! both of their tasks are runnable and neither has a timer registered),
//! and the first task that runs marks the shard busy, which lays the
//! dense comb again.

use crate::shard::ticker::{Ticker, IDLE_TICK};
use glommio::timer::Timer;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Timers the guard keeps registered ahead of now.
pub const TEETH: usize = 64;

/// The guard's future: spawn it (detached) on every shard before anything
/// else; it never completes.
pub struct PreemptGuard {
    ticker: Rc<Ticker>,
    /// What a tick does, run on every idle tooth that came due.
    idle_tick: Box<dyn Fn()>,
    /// Between teeth while the shard works: under the preemption period.
    working: Duration,
    /// Between teeth while the shard is idle.
    idle: Duration,
    /// Between the teeth laid now (`working` or `idle`).
    spacing: Duration,
    /// Registered timers in deadline order, `spacing` apart.
    teeth: VecDeque<(Instant, Timer)>,
}

impl PreemptGuard {
    /// A guard for an executor whose preemption timer is `preempt_every`,
    /// following the shard's `ticker` (a sparse comb while it is idle, each
    /// tooth of which runs `idle_tick`).
    pub fn new(
        preempt_every: Duration,
        ticker: Rc<Ticker>,
        idle_tick: Box<dyn Fn()>,
    ) -> PreemptGuard {
        assert!(
            preempt_every >= Duration::from_micros(500),
            "a preemption period this short would need a tooth per few microseconds"
        );
        PreemptGuard {
            ticker,
            idle_tick,
            // Due strictly before the preemption fires, whatever the
            // rounding of the two clocks' reads.
            working: preempt_every * 9 / 10,
            idle: IDLE_TICK / 2,
            spacing: preempt_every * 9 / 10,
            teeth: VecDeque::with_capacity(TEETH),
        }
    }

    /// Drops the teeth that are due by `now` (glommio has expired them or
    /// will on its next poll) and lays new ones up to `TEETH`, each
    /// registered with this task's waker. Returns how many came due.
    fn sharpen(&mut self, now: Instant, cx: &mut Context<'_>) -> usize {
        let mut due = 0;
        while self.teeth.front().is_some_and(|(at, _)| *at <= now) {
            self.teeth.pop_front();
            due += 1;
        }
        // A comb used up (the shard ran nothing for its whole span) starts
        // again from now.
        let mut last = self.teeth.back().map_or(now, |(at, _)| (*at).max(now));
        while self.teeth.len() < TEETH {
            last += self.spacing;
            let mut tooth = Timer::new(last.saturating_duration_since(Instant::now()));
            if Pin::new(&mut tooth).poll(cx).is_ready() {
                // Due already: the thread was off the CPU for a spacing
                // while laying the comb. Lay the rest from now.
                last = Instant::now();
                self.teeth.clear();
                continue;
            }
            self.teeth.push_back((last, tooth));
        }
        due
    }
}

impl Future for PreemptGuard {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let spacing = if self.ticker.idle_until_work(cx) {
            self.idle
        } else {
            self.working
        };
        if spacing != self.spacing {
            self.spacing = spacing;
            self.teeth.clear();
        }
        let due = self.sharpen(Instant::now(), cx);
        if spacing == self.idle && due > 0 {
            // One tick however many teeth passed: a shard that was off the
            // CPU catches up on nothing by ticking twice.
            (self.idle_tick)();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;

    /// The guard keeps a full comb whose first tooth is due within one
    /// spacing of now, also after the shard ran nothing for longer than
    /// the comb's span; a sparse one while the shard is idle.
    #[test]
    fn the_comb_stays_full_and_its_first_tooth_is_always_near() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let every = Duration::from_millis(5);
                let ticker = Rc::new(Ticker::default());
                let idle_ticks = Rc::new(std::cell::Cell::new(0));
                let counter = idle_ticks.clone();
                let idle_tick = Box::new(move || counter.set(counter.get() + 1));
                let mut guard = std::pin::pin!(PreemptGuard::new(every, ticker.clone(), idle_tick));
                let spacing = every * 9 / 10;
                let waker = std::task::Waker::noop();
                let mut cx = Context::from_waker(waker);
                for pause in [0, 3, 9, 400] {
                    // Blocks the executor, as a shard off the CPU would be.
                    std::thread::sleep(Duration::from_millis(pause));
                    let now = Instant::now();
                    assert!(guard.as_mut().poll(&mut cx).is_pending());
                    assert_eq!(guard.teeth.len(), TEETH);
                    let first = guard.teeth.front().expect("a tooth").0;
                    assert!(first > now, "the first tooth is not yet due");
                    assert!(
                        first <= Instant::now() + spacing,
                        "the first tooth is due within a spacing"
                    );
                }
                // An idle shard keeps a sparse comb; work lays the dense
                // one again.
                ticker.serving();
                while ticker.period() != IDLE_TICK {
                    ticker.ticked();
                }
                let spaced = |g: &PreemptGuard| {
                    g.teeth
                        .iter()
                        .zip(g.teeth.iter().skip(1))
                        .map(|((a, _), (b, _))| *b - *a)
                        .collect::<Vec<_>>()
                };
                assert!(guard.as_mut().poll(&mut cx).is_pending());
                assert_eq!(guard.teeth.len(), TEETH);
                assert!(spaced(&guard).iter().all(|d| *d == IDLE_TICK / 2));
                // The working teeth that came due above ticked nothing; an
                // idle tooth ticks once, however many passed.
                assert_eq!(idle_ticks.get(), 0);
                std::thread::sleep(IDLE_TICK / 2 + Duration::from_millis(5));
                assert!(guard.as_mut().poll(&mut cx).is_pending());
                assert_eq!(idle_ticks.get(), 1, "one tick for the tooth that came due");
                assert!(guard.as_mut().poll(&mut cx).is_pending());
                assert_eq!(idle_ticks.get(), 1, "no tooth came due since");
                std::thread::sleep(IDLE_TICK + Duration::from_millis(5));
                assert!(guard.as_mut().poll(&mut cx).is_pending());
                assert_eq!(idle_ticks.get(), 2, "two teeth passed: one tick");
                ticker.busy();
                assert!(guard.as_mut().poll(&mut cx).is_pending());
                assert_eq!(guard.teeth.len(), TEETH, "a full comb on work");
                assert!(spaced(&guard).iter().all(|d| *d == spacing));
            })
            .expect("spawn an executor")
            .join()
            .expect("the executor ran");
    }
}
