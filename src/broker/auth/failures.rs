//! Slowing down repeated login failures from one address: a bounded table
//! of recent failures per IP address. Each failure beyond the first few
//! within the window delays the refusal a little more (doubling, capped),
//! so guessing passwords from one address gets slow while every other
//! address is served as before. The table holds at most `capacity`
//! addresses; when full, the entry seen longest ago makes room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures from one address forgotten after this long without another.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failures answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// The first delay, doubled per further failure.
pub const BASE_DELAY: Duration = Duration::from_millis(250);
/// The longest delay (below the handshake timeout).
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// Addresses tracked at most.
pub const CAPACITY: usize = 4096;

#[derive(Debug)]
pub struct FailureTable {
    entries: HashMap<IpAddr, (u32, Instant)>,
    capacity: usize,
}

impl Default for FailureTable {
    fn default() -> FailureTable {
        FailureTable::with_capacity(CAPACITY)
    }
}

impl FailureTable {
    pub fn with_capacity(capacity: usize) -> FailureTable {
        FailureTable {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a failed login from `ip`; returns how long to delay its
    /// refusal.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Duration {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.capacity {
            self.entries
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < WINDOW);
            if self.entries.len() >= self.capacity {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, seen))| *seen)
                    .map(|(ip, _)| *ip)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        let e = self.entries.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(e.1) >= WINDOW {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
        delay_after(e.0)
    }

    /// A successful login from `ip` forgets its failures.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

/// The delay of the `n`th failure in a row.
pub fn delay_after(n: u32) -> Duration {
    if n <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (n - FREE_FAILURES - 1).min(16);
    (BASE_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_from_one_address_slow_down() {
        let mut t = FailureTable::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let now = Instant::now();
        let delays: Vec<_> = (0..8).map(|_| t.failed(a, now)).collect();
        assert_eq!(&delays[..3], &[Duration::ZERO; 3]);
        assert_eq!(delays[3], BASE_DELAY);
        assert_eq!(delays[4], BASE_DELAY * 2);
        assert_eq!(delays[7], MAX_DELAY);
        assert_eq!(
            t.failed(b, now),
            Duration::ZERO,
            "other addresses are not slowed"
        );
        // Forgotten after the window, and after a success.
        assert_eq!(t.failed(a, now + WINDOW), Duration::ZERO);
        for _ in 0..5 {
            t.failed(b, now);
        }
        t.succeeded(b);
        assert_eq!(t.failed(b, now), Duration::ZERO);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FailureTable::with_capacity(16);
        let now = Instant::now();
        for i in 0..1000u32 {
            t.failed(
                IpAddr::from(i.to_be_bytes()),
                now + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(t.len(), 16);
    }
}
