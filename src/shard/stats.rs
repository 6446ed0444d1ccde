//! A shard's share of the management statistics that no queue or channel
//! owns: `message_stats` of its channels that closed (live channels keep
//! their own, `Channel::stats`), per-exchange `publish_in` / `publish_out`
//! of the publishes routed here, log bytes paged out and in, and the coarse
//! clock of message ages. Plain cells: only this shard touches them; the
//! management thread reads copies (`StatsSnapshot`).

use crate::broker::stats::{MessageStats, Stat};
use crate::broker::vhost::VhostId;
use crate::protocol::types::ShortStr;
use crate::shard::FastMap;
use std::cell::{Cell, RefCell};

/// Exchanges counted per shard at most; past it a new exchange's
/// publishes are not counted per exchange (the totals still are), so a
/// client cycling through exchange names cannot grow the map unbounded.
pub const MAX_EXCHANGES: usize = 100_000;

#[derive(Default)]
pub struct ShardStats {
    /// `message_stats` of this shard's closed channels, summed.
    retired: Cell<MessageStats>,
    /// Per exchange: publishes in, and publishes routed to a queue.
    /// Keyed by vhost, then name (looked up by `&str`: no key clone per
    /// publish).
    exchanges: RefCell<FastMap<VhostId, FastMap<ShortStr, MessageStats>>>,
    /// Exchanges in `exchanges`.
    exchange_count: Cell<usize>,
    /// Log bytes written for paged-out copies / read back by page-ins.
    paged_out_bytes: Cell<u64>,
    paged_in_bytes: Cell<u64>,
}

impl ShardStats {
    /// A channel closed: its counts stay in the totals.
    pub fn retire(&self, stats: &MessageStats) {
        let mut r = self.retired.get();
        r.merge(stats);
        self.retired.set(r);
    }

    /// A publish to `exchange` of `vhost`; `routed`: it reached a queue.
    #[inline]
    pub fn exchange_publish(&self, vhost: VhostId, exchange: &ShortStr, routed: bool) {
        let mut map = self.exchanges.borrow_mut();
        let names = map.entry(vhost).or_default();
        let stats = match names.get_mut(exchange.as_str()) {
            Some(s) => s,
            None if self.exchange_count.get() >= MAX_EXCHANGES => return,
            None => {
                self.exchange_count.set(self.exchange_count.get() + 1);
                names.entry(exchange.clone()).or_default()
            }
        };
        stats.add(Stat::PublishIn, 1);
        if routed {
            stats.add(Stat::PublishOut, 1);
        }
    }

    pub fn paged_out(&self, bytes: u64) {
        self.paged_out_bytes.set(self.paged_out_bytes.get() + bytes);
    }

    pub fn paged_in(&self, bytes: u64) {
        self.paged_in_bytes.set(self.paged_in_bytes.get() + bytes);
    }

    /// A copy for a snapshot; exchanges `exists` says are gone are
    /// forgotten (their counts leave with them, as in RabbitMQ).
    pub fn snapshot(&self, exists: impl Fn(VhostId, &str) -> bool) -> StatsSnapshot {
        let mut map = self.exchanges.borrow_mut();
        let mut exchanges = Vec::new();
        for (v, names) in map.iter_mut() {
            names.retain(|x, _| exists(*v, x.as_str()));
            exchanges.extend(names.iter().map(|(x, s)| ((*v, x.clone()), *s)));
        }
        map.retain(|_, names| !names.is_empty());
        self.exchange_count.set(exchanges.len());
        StatsSnapshot {
            retired_channels: self.retired.get(),
            exchanges,
            paged_out_bytes: self.paged_out_bytes.get(),
            paged_in_bytes: self.paged_in_bytes.get(),
            ..StatsSnapshot::default()
        }
    }
}

/// What a shard snapshot carries of `ShardStats`, the log and the mesh.
#[derive(Clone, Debug, Default)]
pub struct StatsSnapshot {
    pub retired_channels: MessageStats,
    pub exchanges: Vec<((VhostId, ShortStr), MessageStats)>,
    pub paged_out_bytes: u64,
    pub paged_in_bytes: u64,
    /// The log's fdatasync latencies (none without a log).
    pub fsync_seconds: crate::storage::log::FsyncHistogram,
    /// The log's size on disk (`Log::disk_bytes`).
    pub log_bytes: u64,
    /// Batches this shard handed to the ring to each shard / took from
    /// the ring from each shard (index: the other shard). The ring from A
    /// to B holds A's `ring_sent[B]` minus B's `ring_received[A]`.
    pub ring_sent: Vec<u64>,
    pub ring_received: Vec<u64>,
    /// Envelopes waiting in this shard's outbox to each shard.
    pub outbox: Vec<u64>,
    /// The names of the vhosts the snapshot's queues, connections and
    /// exchanges are in.
    pub vhost_names: Vec<(VhostId, ShortStr)>,
}

/// Milliseconds since the Unix epoch from the kernel's coarse clock (a
/// few ms of resolution, no system call): the clock of message ages.
pub fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_REALTIME_COARSE
    // exists on every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_are_counted_and_forgotten_with_their_exchange() {
        let s = ShardStats::default();
        let x = ShortStr::from("x");
        s.exchange_publish(VhostId::DEFAULT, &x, true);
        s.exchange_publish(VhostId::DEFAULT, &x, false);
        let snap = s.snapshot(|_, _| true);
        assert_eq!(snap.exchanges.len(), 1);
        assert_eq!(snap.exchanges[0].1.get(Stat::PublishIn), 2);
        assert_eq!(snap.exchanges[0].1.get(Stat::PublishOut), 1);
        assert!(s.snapshot(|_, _| false).exchanges.is_empty());
    }

    #[test]
    fn the_coarse_clock_is_near_the_real_one() {
        let a = coarse_now_ms();
        let b = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(b + 50 >= a && a + 50 >= b, "{a} vs {b}");
    }
}
