//! Live counters of one shard (messages published, delivered, acked,
//! confirmed; connections). Plain `Cell`s: each shard counts its own work and
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
    }
}
