//! Live counters of one shard (messages published, delivered, acked,
//! confirmed, paged out and back in; connections). Plain `Cell`s: each shard counts its own work and
//! the admin listing sums the shards' snapshots.

use std::cell::Cell;

#[derive(Default, Debug)]
pub struct Counters {
    pub published: Cell<u64>,
    pub routed_copies: Cell<u64>,
    pub unroutable: Cell<u64>,
    pub delivered: Cell<u64>,
    pub acked: Cell<u64>,
    pub confirmed: Cell<u64>,
    pub connections_opened: Cell<u64>,
    pub connections_closed: Cell<u64>,
    /// Message copies paged out to the log (over the memory budget).
    pub paged_out: Cell<u64>,
    /// Paged copies read back into memory.
    pub paged_in: Cell<u64>,
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
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub paged_out: u64,
    pub paged_in: u64,
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
            connections_opened: self.connections_opened.get(),
            connections_closed: self.connections_closed.get(),
            paged_out: self.paged_out.get(),
            paged_in: self.paged_in.get(),
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
        self.connections_opened += o.connections_opened;
        self.connections_closed += o.connections_closed;
        self.paged_out += o.paged_out;
        self.paged_in += o.paged_in;
        self.resident_bytes += o.resident_bytes;
    }
}
