//! Live counters of one shard (messages published, delivered, acked,
//! confirmed and nacked to publishers, paged out and back in, dead-lettered
//! and dropped in dead-letter cycles; connections;
//! the log's fsyncs; the watchdog's firings). Plain `Cell`s: each shard counts its own work and
//! the admin listing sums the shards' snapshots.

use std::cell::Cell;

#[derive(Default, Debug)]
pub struct Counters {
    pub published: Cell<u64>,
    pub routed_copies: Cell<u64>,
    pub unroutable: Cell<u64>,
    pub delivered: Cell<u64>,
    pub acked: Cell<u64>,
    /// Publishes covered by the basic.ack frames sent to publishers.
    pub confirmed: Cell<u64>,
    /// basic.nack frames sent to publishers (one publish each).
    pub nacked: Cell<u64>,
    pub connections_opened: Cell<u64>,
    pub connections_closed: Cell<u64>,
    /// Message copies paged out to the log (over the memory budget).
    pub paged_out: Cell<u64>,
    /// Paged copies read back into memory.
    pub paged_in: Cell<u64>,
    /// Messages republished through a dead-letter exchange to at least
    /// one queue (`shard::dead_letter`).
    pub dead_lettered: Cell<u64>,
    /// Dead-lettered copies dropped as part of a fully automatic cycle.
    pub dead_letter_cycles: Cell<u64>,
}

/// A copy of the counters that can travel between shards.
#[derive(Clone, Copy, Default, Debug)]
pub struct CountersSnapshot {
    pub published: u64,
    pub routed_copies: u64,
    pub unroutable: u64,
    pub delivered: u64,
    pub acked: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub paged_out: u64,
    pub paged_in: u64,
    pub dead_lettered: u64,
    pub dead_letter_cycles: u64,
    /// fdatasyncs of the shard's log completed (`LogStats::fsyncs`; filled
    /// in by the snapshot's taker, the counters do not own the log).
    pub fsyncs: u64,
    /// Stalls of the shard's executor the watchdog woke while it served
    /// (`shard::watchdog`; filled in by the snapshot's taker).
    pub watchdog_fires: u64,
    /// A gauge, not a counter: memory charged for ready messages held in
    /// memory now (see `Shard::resident_bytes`).
    pub resident_bytes: u64,
}

impl Counters {
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().wrapping_add(n));
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            published: self.published.get(),
            routed_copies: self.routed_copies.get(),
            unroutable: self.unroutable.get(),
            delivered: self.delivered.get(),
            acked: self.acked.get(),
            confirmed: self.confirmed.get(),
            nacked: self.nacked.get(),
            connections_opened: self.connections_opened.get(),
            connections_closed: self.connections_closed.get(),
            paged_out: self.paged_out.get(),
            paged_in: self.paged_in.get(),
            dead_lettered: self.dead_lettered.get(),
            dead_letter_cycles: self.dead_letter_cycles.get(),
            fsyncs: 0,
            watchdog_fires: 0,
            resident_bytes: 0,
        }
    }
}

impl CountersSnapshot {
    pub fn merge(&mut self, o: &CountersSnapshot) {
        self.published += o.published;
        self.routed_copies += o.routed_copies;
        self.unroutable += o.unroutable;
        self.delivered += o.delivered;
        self.acked += o.acked;
        self.confirmed += o.confirmed;
        self.nacked += o.nacked;
        self.connections_opened += o.connections_opened;
        self.connections_closed += o.connections_closed;
        self.paged_out += o.paged_out;
        self.paged_in += o.paged_in;
        self.dead_lettered += o.dead_lettered;
        self.dead_letter_cycles += o.dead_letter_cycles;
        self.fsyncs += o.fsyncs;
        self.watchdog_fires += o.watchdog_fires;
        self.resident_bytes += o.resident_bytes;
    }
}
