//! A shard's ticking timers and how fast they tick.
//!
//! Two tickers run per shard (`server::tick`, half a period apart): each
//! tick beats the watchdog's heartbeat and looks at the broker's shutdown
//! flag (`request_stop`). Whether the shard is idle also sets how densely
//! `shard::preempt_guard` guards against glommio 0.9's lost wake-up.
//! They tick fast while the shard starts (1 ms) and while it works
//! (10 ms); once a serving shard has seen no work for `IDLE_AFTER` they
//! stop and wait for work: the preemption guard's sparse comb then does
//! the ticking, one tick on each of its teeth (`IDLE_TICK / 2` apart), so
//! an idle shard wakes only for those teeth (every wake-up also spins
//! `SPIN_BEFORE_PARK` before it parks again). The first sign of work
//! (`Ticker::busy`, from `Shard::pump` and the ring receivers) wakes both
//! tickers at once, back to the fast period: the lost wake-up needs a
//! preemption, so a busy shard, and a busy shard ticks fast.
//!
//! Invariant: while a shard serves, it ticks every `SERVING_TICK` (each
//! ticker) unless no work was seen for `IDLE_AFTER`, then every
//! `IDLE_TICK / 2` (the comb); the watchdog's `STALL_AFTER` is longer than
//! `IDLE_TICK`, so an idle shard still beats in time.
//!
//! Memory back to the OS: when a serving shard goes idle after work, its
//! ticker runs the process's idle release on the shard's thread (the
//! binary installs it with `set_idle_release`: mimalloc's forced collect),
//! and once more after `RELEASE_AGAIN_AFTER` of idleness, for blocks other
//! shards freed into this thread's pages after the first release. An
//! allocator gives freed memory back only when its thread calls into it,
//! and an idle shard hardly does; a shard that stays idle releases
//! nothing more, so an idle broker does not pay for it on every tick.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The period while a shard starts (recovery, joining the mesh).
pub const STARTUP_TICK: Duration = Duration::from_millis(1);
/// The period while a shard serves and works.
pub const SERVING_TICK: Duration = Duration::from_millis(10);
/// The period of an idle shard's tickers, were they ticking: the guard's
/// idle comb ticks for both, every `IDLE_TICK / 2`.
pub const IDLE_TICK: Duration = Duration::from_millis(200);
/// How long a shard sees no work before it ticks slowly.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How long an idle shard waits before its second (and last) release.
pub const RELEASE_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// Ticks (of both tickers) without work before the shard counts as idle.
const QUIET_TICKS: u32 = (2 * IDLE_AFTER.as_millis() / SERVING_TICK.as_millis()) as u32;
/// Idle ticks (the guard's comb ticks for both tickers, `IDLE_TICK / 2`
/// apart) from going idle to the second release.
const RELEASE_AGAIN_TICKS: u32 =
    (2 * RELEASE_AGAIN_AFTER.as_millis() / IDLE_TICK.as_millis()) as u32;

/// What a shard's thread runs to give freed memory back to the OS; set
/// once by the binary, which owns the allocator.
static IDLE_RELEASE: OnceLock<fn()> = OnceLock::new();

/// Installs the idle release every shard's ticker runs (see the module
/// doc); before the shards start. A second call is ignored.
pub fn set_idle_release(release: fn()) {
    let _ = IDLE_RELEASE.set(release);
}

/// One shard's tick period and the work seen since the last tick.
pub struct Ticker {
    period: Cell<Duration>,
    serving: Cell<bool>,
    /// Work was seen since the last tick.
    busy: Cell<bool>,
    /// Ticks in a row that saw no work.
    quiet: Cell<u32>,
    /// Idle ticks since the shard went idle, up to the second release.
    idle_ticks: Cell<u32>,
    /// The idle release (`set_idle_release`), if any.
    release: Option<fn()>,
    /// The tickers waiting out an idle period, to wake on work.
    sleepers: RefCell<Vec<Waker>>,
    /// A tick saw the broker's shutdown flag (`request_stop`).
    stop: Cell<bool>,
    /// The task waiting for `stopped`.
    stop_waiter: RefCell<Option<Waker>>,
}

impl Default for Ticker {
    fn default() -> Ticker {
        Ticker {
            period: Cell::new(STARTUP_TICK),
            serving: Cell::new(false),
            busy: Cell::new(false),
            quiet: Cell::new(0),
            idle_ticks: Cell::new(0),
            release: IDLE_RELEASE.get().copied(),
            sleepers: RefCell::new(Vec::new()),
            stop: Cell::new(false),
            stop_waiter: RefCell::new(None),
        }
    }
}

impl Ticker {
    /// The current period.
    pub fn period(&self) -> Duration {
        self.period.get()
    }

    /// The shard has started: tick at the serving pace.
    pub fn serving(&self) {
        self.serving.set(true);
        self.quiet.set(0);
        self.period.set(SERVING_TICK);
    }

    /// The shard has work: an idle ticker goes back to the serving pace now.
    /// Cheap when not idle (the message path calls it per batch).
    pub fn busy(&self) {
        self.busy.set(true);
        if self.period.get() == IDLE_TICK {
            self.period.set(SERVING_TICK);
            for waker in self.sleepers.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }

    /// A tick: counts it as quiet or not, and slows down after
    /// `IDLE_AFTER` of quiet ticks; going idle runs the idle release, and
    /// `RELEASE_AGAIN_AFTER` later once more.
    pub fn ticked(&self) {
        if self.busy.replace(false) {
            self.quiet.set(0);
            return;
        }
        let quiet = self.quiet.get().saturating_add(1);
        self.quiet.set(quiet);
        if !self.serving.get() || quiet < QUIET_TICKS {
            return;
        }
        if self.period.replace(IDLE_TICK) != IDLE_TICK {
            self.idle_ticks.set(0);
            self.release();
        } else if self.idle_ticks.get() < RELEASE_AGAIN_TICKS {
            let idle = self.idle_ticks.get() + 1;
            self.idle_ticks.set(idle);
            if idle == RELEASE_AGAIN_TICKS {
                self.release();
            }
        }
    }

    fn release(&self) {
        if let Some(release) = self.release {
            release();
        }
    }

    /// Sleeps one period, or, while the shard is idle, until work comes
    /// (the guard's comb ticks meanwhile); true if work woke it.
    pub async fn sleep(&self) -> bool {
        let period = self.period();
        if period != IDLE_TICK {
            glommio::timer::sleep(period).await;
            return false;
        }
        Woken { ticker: self }.await;
        true
    }

    /// A tick saw the broker's shutdown flag: `stopped` resolves.
    pub fn request_stop(&self) {
        if !self.stop.replace(true) {
            if let Some(waker) = self.stop_waiter.take() {
                waker.wake();
            }
        }
    }

    /// Resolves once a tick has seen the shutdown flag (`request_stop`):
    /// within a tick of the flag being set, and without a timer of its
    /// own.
    pub async fn stopped(&self) {
        std::future::poll_fn(|cx| {
            if self.stop.get() {
                Poll::Ready(())
            } else {
                *self.stop_waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Ticker {
    /// Whether the shard ticks at the idle pace; if it does, `cx`'s task
    /// is woken when work comes (`busy`).
    pub fn idle_until_work(&self, cx: &Context<'_>) -> bool {
        if self.period.get() != IDLE_TICK {
            return false;
        }
        let mut sleepers = self.sleepers.borrow_mut();
        if !sleepers.iter().any(|w| w.will_wake(cx.waker())) {
            sleepers.push(cx.waker().clone());
        }
        true
    }
}

/// Resolves once the ticker is no longer idle.
struct Woken<'a> {
    ticker: &'a Ticker,
}

impl Future for Woken<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ticker.idle_until_work(cx) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serving_shard_slows_down_after_a_quiet_second_and_speeds_up_on_work() {
        let t = Ticker::default();
        for _ in 0..QUIET_TICKS * 2 {
            t.ticked();
        }
        assert_eq!(t.period(), STARTUP_TICK, "a starting shard never idles");
        t.serving();
        for _ in 0..QUIET_TICKS - 1 {
            t.ticked();
        }
        assert_eq!(t.period(), SERVING_TICK);
        t.busy();
        t.ticked();
        for _ in 0..QUIET_TICKS - 1 {
            t.ticked();
        }
        assert_eq!(t.period(), SERVING_TICK, "work restarts the count");
        t.ticked();
        assert_eq!(t.period(), IDLE_TICK);
        t.busy();
        assert_eq!(t.period(), SERVING_TICK);
    }

    thread_local! {
        static RELEASES: Cell<u32> = const { Cell::new(0) };
    }

    fn count_release() {
        RELEASES.with(|r| r.set(r.get() + 1));
    }

    fn releases() -> u32 {
        RELEASES.with(Cell::get)
    }

    #[test]
    fn a_shard_releases_memory_when_it_goes_idle_after_work_and_once_more_later() {
        let t = Ticker {
            release: Some(count_release),
            ..Ticker::default()
        };
        for _ in 0..QUIET_TICKS * 2 {
            t.ticked();
        }
        assert_eq!(releases(), 0, "a starting shard never releases");
        t.serving();
        for _ in 0..QUIET_TICKS - 1 {
            t.ticked();
        }
        assert_eq!(releases(), 0, "not idle yet");
        t.ticked();
        assert_eq!((t.period(), releases()), (IDLE_TICK, 1), "went idle");
        for _ in 0..RELEASE_AGAIN_TICKS - 1 {
            t.ticked();
        }
        assert_eq!(releases(), 1);
        t.ticked();
        assert_eq!(releases(), 2, "once more after RELEASE_AGAIN_AFTER");
        for _ in 0..RELEASE_AGAIN_TICKS * 10 {
            t.ticked();
        }
        assert_eq!(releases(), 2, "an idle shard stays idle without releasing");
        // Work, then quiet again: a new pair of releases.
        t.busy();
        t.ticked();
        for _ in 0..QUIET_TICKS {
            t.ticked();
        }
        assert_eq!((t.period(), releases()), (IDLE_TICK, 3));
        for _ in 0..RELEASE_AGAIN_TICKS {
            t.ticked();
        }
        assert_eq!(releases(), 4);
        // Work that ends before the shard went idle costs no release.
        t.busy();
        t.ticked();
        for _ in 0..QUIET_TICKS - 1 {
            t.ticked();
        }
        t.busy();
        t.ticked();
        assert_eq!(releases(), 4);
    }

    #[test]
    fn stopped_resolves_once_a_tick_saw_the_shutdown_flag() {
        let t = Ticker::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut stopped = std::pin::pin!(t.stopped());
        assert!(stopped.as_mut().poll(&mut cx).is_pending());
        t.request_stop();
        assert!(stopped.as_mut().poll(&mut cx).is_ready());
        // Asked for after the request: at once.
        assert!(std::pin::pin!(t.stopped()).poll(&mut cx).is_ready());
    }

    #[test]
    fn the_idle_tick_beats_well_within_the_watchdogs_stall_limit() {
        // The guard's idle comb ticks every IDLE_TICK / 2 (for both tickers).
        assert!(IDLE_TICK < crate::shard::watchdog::STALL_AFTER / 2);
    }
}
