//! `consumer_utilisation` as RabbitMQ computes it
//! (`rabbit_queue_consumers`: `update_use`, `utilisation`, `use_avg`): the
//! queue is *active* while it could hand a message to a consumer at once
//! and *inactive* while messages wait because every consumer is saturated
//! (prefetch, `x-max-unacked`) or there is none; the figure is a moving
//! average of the active fraction of each active + inactive period, with
//! a half-life of one second. Dispatch only notes the state it found
//! (`want`); the owner stamps a change with its clock once per dispatch
//! round (`stamp`), so no message reads a clock.
//!
//! Differences from RabbitMQ: its queue starts active at creation, Warren's
//! at its first stamp (a consumer's arrival or first dispatch), and the
//! clock is the coarse one (milliseconds).

/// RabbitMQ's `USE_AVG_HALF_LIFE` (1 s), in ms.
const HALF_LIFE_MS: f64 = 1000.0;

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Active since (None: never stamped, as new).
    Active { since: Option<u64>, avg: f64 },
    /// Inactive since, after an active period of `active` ms.
    Inactive { since: u64, active: u64, avg: f64 },
}

/// One queue's consumer use.
#[derive(Clone, Debug)]
pub struct ConsumerUse {
    state: State,
    /// The state dispatch last found, not yet stamped.
    wanted: Option<bool>,
}

impl Default for ConsumerUse {
    fn default() -> Self {
        ConsumerUse {
            state: State::Active {
                since: None,
                avg: 1.0,
            },
            wanted: None,
        }
    }
}

impl ConsumerUse {
    /// Notes that the queue could (`true`) or could not deliver.
    #[inline]
    pub fn want(&mut self, active: bool) {
        self.wanted = Some(active);
    }

    /// Whether a noted state waits for `stamp` and differs from the
    /// current one (so the owner reads its clock only then).
    #[inline]
    pub fn needs_stamp(&self) -> bool {
        match (self.wanted, self.state) {
            (None, _) => false,
            (Some(true), State::Active { since, .. }) => since.is_none(),
            (Some(false), State::Inactive { .. }) => false,
            _ => true,
        }
    }

    /// Applies the noted state at `now_ms`.
    pub fn stamp(&mut self, now_ms: u64) {
        let Some(active) = self.wanted.take() else {
            return;
        };
        self.state = match (self.state, active) {
            (State::Active { since: None, avg }, true) => State::Active {
                since: Some(now_ms),
                avg,
            },
            (State::Active { since, avg }, false) => State::Inactive {
                since: now_ms,
                active: since.map_or(0, |s| now_ms.saturating_sub(s)),
                avg,
            },
            (
                State::Inactive {
                    since,
                    active: was_active,
                    avg,
                },
                true,
            ) => State::Active {
                since: Some(now_ms),
                avg: use_avg(was_active, now_ms.saturating_sub(since), avg),
            },
            (same, _) => same,
        };
    }

    /// The figure at `now_ms`, between 0 and 1.
    pub fn utilisation(&self, now_ms: u64) -> f64 {
        match self.state {
            State::Active { since: None, avg } => avg,
            State::Active {
                since: Some(s),
                avg,
            } => use_avg(now_ms.saturating_sub(s), 0, avg),
            State::Inactive { since, active, avg } => {
                use_avg(active, now_ms.saturating_sub(since), avg)
            }
        }
    }
}

fn use_avg(active: u64, inactive: u64, avg: f64) -> f64 {
    if active == 0 && inactive == 0 {
        return avg;
    }
    let time = (active + inactive) as f64;
    let weight = (time * 0.5f64.ln() / HALF_LIFE_MS).exp();
    (active as f64 / time) * (1.0 - weight) + avg * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_one_while_active_and_decays_while_blocked() {
        let mut u = ConsumerUse::default();
        assert_eq!(u.utilisation(0), 1.0);
        u.want(true);
        assert!(u.needs_stamp());
        u.stamp(1_000);
        u.want(true);
        assert!(!u.needs_stamp(), "no clock read without a change");
        assert_eq!(u.utilisation(60_000), 1.0);
        // Blocked after 100 ms active: half-life 1 s towards 100/(100+t).
        u.want(false);
        u.stamp(1_100);
        let after_1s = u.utilisation(2_100);
        let want = 0.1 * 0.5 + 0.5; // fraction 100/1100 ~ 0.09 weighted 1/2
        assert!((after_1s - want).abs() < 0.05, "{after_1s}");
        assert!(u.utilisation(11_100) < 0.02);
        // Active again: the average restarts from the blocked period's.
        u.want(true);
        u.stamp(11_100);
        let back = u.utilisation(11_100);
        assert!(back < 0.02, "{back}");
        assert!(u.utilisation(21_100) > 0.99);
    }
}
