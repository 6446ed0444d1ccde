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
    /// The counts of the latest run of publishes to one exchange, not yet
    /// in `exchanges`: a shard's publishes mostly go to the exchange of
    /// the one before, and adding them up here costs a name comparison
    /// instead of two map lookups per publish. Flushed when a publish to
    /// another exchange comes and before a snapshot.
    pending: RefCell<Option<PendingExchange>>,
    /// Log bytes written for paged-out copies / read back by page-ins.
    paged_out_bytes: Cell<u64>,
    paged_in_bytes: Cell<u64>,
}

/// `ShardStats::pending`: counts of one exchange not yet in the map.
struct PendingExchange {
    vhost: VhostId,
    exchange: ShortStr,
    stats: MessageStats,
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
        let mut pending = self.pending.borrow_mut();
        let same = pending
            .as_ref()
            .is_some_and(|p| p.vhost == vhost && p.exchange == *exchange);
        if !same {
            if let Some(p) = pending.take() {
                self.add_to_map(p);
            }
            *pending = Some(PendingExchange {
                vhost,
                // A copy: the publish's name is a slice of the read buffer
                // it arrived in, which a kept key would pin for good.
                exchange: ShortStr::from(exchange.as_str()),
                stats: MessageStats::default(),
            });
        }
        let stats = &mut pending.as_mut().expect("set above").stats;
        stats.add(Stat::PublishIn, 1);
        if routed {
            stats.add(Stat::PublishOut, 1);
        }
    }

    /// Adds pending counts to the per-exchange map (dropped if the map
    /// is full and the exchange is not in it).
    fn add_to_map(&self, p: PendingExchange) {
        let mut map = self.exchanges.borrow_mut();
        let names = map.entry(p.vhost).or_default();
        let stats = match names.get_mut(p.exchange.as_str()) {
            Some(s) => s,
            None if self.exchange_count.get() >= MAX_EXCHANGES => return,
            None => {
                self.exchange_count.set(self.exchange_count.get() + 1);
                names.entry(p.exchange).or_default()
            }
        };
        stats.merge(&p.stats);
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
        if let Some(p) = self.pending.borrow_mut().take() {
            self.add_to_map(p);
        }
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

    /// Runs of publishes are added up before they reach the map
    /// (`pending`); interleaved exchanges and vhosts, and a snapshot in
    /// the middle of a run, count every publish once.
    #[test]
    fn interleaved_exchanges_and_vhosts_count_every_publish_once() {
        let s = ShardStats::default();
        let (x, y) = (ShortStr::from("x"), ShortStr::from("y"));
        let other = VhostId(7);
        let publishes = [
            (VhostId::DEFAULT, &x, true),
            (VhostId::DEFAULT, &x, true),
            (VhostId::DEFAULT, &y, false),
            (other, &x, true),
            (VhostId::DEFAULT, &x, false),
            (other, &x, true),
        ];
        let mut model: std::collections::HashMap<(VhostId, &str), (u64, u64)> = Default::default();
        let mut snaps = Vec::new();
        for (i, (v, e, routed)) in publishes.iter().enumerate() {
            s.exchange_publish(*v, e, *routed);
            let m = model.entry((*v, e.as_str())).or_default();
            m.0 += 1;
            m.1 += u64::from(*routed);
            if i == 3 {
                snaps.push(s.snapshot(|_, _| true));
            }
        }
        snaps.push(s.snapshot(|_, _| true));
        // Snapshots carry running totals: the last one has everything.
        let last = snaps.pop().unwrap();
        assert_eq!(last.exchanges.len(), model.len());
        for ((v, e), stats) in &last.exchanges {
            let (published, routed) = model[&(*v, e.as_str())];
            assert_eq!(stats.get(Stat::PublishIn), published, "{v:?} {e}");
            assert_eq!(stats.get(Stat::PublishOut), routed, "{v:?} {e}");
        }
        // The one taken mid-run saw the first four publishes.
        let mid: u64 = snaps[0]
            .exchanges
            .iter()
            .map(|(_, s)| s.get(Stat::PublishIn))
            .sum();
        assert_eq!(mid, 4);
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
