//! A shard's ticking timers and how fast they tick.
//!
//! Two tickers run per shard (`server::tick`, half a period apart): each
//! tick beats the watchdog's heartbeat, and the timer that is always
//! registered bounds glommio 0.9's lost wake-up (see `shard::watchdog`).
//! They tick fast while the shard starts (1 ms) and while it works
//! (10 ms); once a serving shard has seen no work for `IDLE_AFTER` they tick
//! every `IDLE_TICK`, so an idle broker hardly wakes (every wake-up also
//! spins `SPIN_BEFORE_PARK` before it parks again). The first sign of work
//! (`Ticker::busy`, from `Shard::pump` and the ring receivers) wakes both
//! tickers at once, back to the fast period: the lost wake-up needs a
//! preemption, so a busy shard, and a busy shard ticks fast.
//!
//! Invariant: while a shard serves, a ticker's period is `SERVING_TICK`
//! unless no work was seen for `IDLE_AFTER`; the watchdog's `STALL_AFTER`
//! is longer than `IDLE_TICK`, so an idle shard still beats in time.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The period while a shard starts (recovery, joining the mesh).
pub const STARTUP_TICK: Duration = Duration::from_millis(1);
/// The period while a shard serves and works.
pub const SERVING_TICK: Duration = Duration::from_millis(10);
/// The period of an idle shard.
pub const IDLE_TICK: Duration = Duration::from_millis(200);
/// How long a shard sees no work before it ticks slowly.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Ticks (of both tickers) without work before the shard counts as idle.
const QUIET_TICKS: u32 = (2 * IDLE_AFTER.as_millis() / SERVING_TICK.as_millis()) as u32;

/// One shard's tick period and the work seen since the last tick.
pub struct Ticker {
    period: Cell<Duration>,
    serving: Cell<bool>,
    /// Work was seen since the last tick.
    busy: Cell<bool>,
    /// Ticks in a row that saw no work.
    quiet: Cell<u32>,
    /// The tickers waiting out an idle period, to wake on work.
    sleepers: RefCell<Vec<Waker>>,
}

impl Default for Ticker {
    fn default() -> Ticker {
        Ticker {
            period: Cell::new(STARTUP_TICK),
            serving: Cell::new(false),
            busy: Cell::new(false),
            quiet: Cell::new(0),
            sleepers: RefCell::new(Vec::new()),
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
    /// `IDLE_AFTER` of quiet ticks.
    pub fn ticked(&self) {
        if self.busy.replace(false) {
            self.quiet.set(0);
            return;
        }
        let quiet = self.quiet.get().saturating_add(1);
        self.quiet.set(quiet);
        if self.serving.get() && quiet >= QUIET_TICKS {
            self.period.set(IDLE_TICK);
        }
    }

    /// Sleeps one period, or until work wakes an idle ticker; true if
    /// work woke it.
    pub async fn sleep(&self) -> bool {
        let period = self.period();
        if period != IDLE_TICK {
            glommio::timer::sleep(period).await;
            return false;
        }
        futures_lite::future::or(
            async {
                glommio::timer::sleep(period).await;
                false
            },
            async {
                Woken { ticker: self }.await;
                true
            },
        )
        .await
    }
}

/// Resolves once the ticker is no longer idle.
struct Woken<'a> {
    ticker: &'a Ticker,
}

impl Future for Woken<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ticker.period.get() != IDLE_TICK {
            return Poll::Ready(());
        }
        let mut sleepers = self.ticker.sleepers.borrow_mut();
        if !sleepers.iter().any(|w| w.will_wake(cx.waker())) {
            sleepers.push(cx.waker().clone());
        }
        Poll::Pending
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

    #[test]
    fn the_idle_tick_beats_well_within_the_watchdogs_stall_limit() {
        // Two tickers half a period apart: a beat every IDLE_TICK / 2.
        assert!(IDLE_TICK < crate::shard::watchdog::STALL_AFTER / 2);
    }
}
