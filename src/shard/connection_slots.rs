//! The connections open in each vhost and on the node, counted once for
//! the whole broker: one counter per vhost and one for the node, shared by
//! every shard (`Arc<AtomicU32>`), so a vhost's `max-connections` and the
//! node's `--max-connections` admit exactly that many whichever shards the
//! opens land on and however they interleave (a compare-and-swap reserves
//! the place at connection.open; the `ConnectionSlot` gives both back when
//! the connection ends). The map of counters is locked only to find a
//! vhost's counter at connection.open and to forget a deleted vhost;
//! nothing on the message path touches it.

use crate::broker::vhost::VhostId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Every vhost's open-connection counter, and the node's (one for the
/// broker).
#[derive(Default)]
pub struct ConnectionSlots {
    counters: Mutex<HashMap<VhostId, Arc<AtomicU32>>>,
    node: Arc<AtomicU32>,
}

/// Takes one place on `counter` unless `max` are taken.
fn take(counter: &AtomicU32, max: Option<u32>) -> bool {
    let mut now = counter.load(Ordering::Relaxed);
    loop {
        if max.is_some_and(|max| now >= max) {
            return false;
        }
        match counter.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(seen) => now = seen,
        }
    }
}

impl ConnectionSlots {
    fn counter(&self, vhost: VhostId) -> Arc<AtomicU32> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(vhost)
            .or_default()
            .clone()
    }

    /// Reserves a place on the node for a new connection: None when `max`
    /// connections are already open on it.
    pub fn reserve_node(&self, max: Option<u32>) -> Option<NodeSlot> {
        take(&self.node, max).then(|| NodeSlot(self.node.clone()))
    }

    /// Reserves a place in `vhost` for a new connection that holds its
    /// place on the node: None when `max` connections are already open
    /// there (the node's place is then given back).
    pub fn reserve(
        &self,
        node: NodeSlot,
        vhost: VhostId,
        max: Option<u32>,
    ) -> Option<ConnectionSlot> {
        let counter = self.counter(vhost);
        take(&counter, max).then(|| ConnectionSlot {
            vhost: counter,
            _node: node,
        })
    }

    /// Client connections open on the node now.
    pub fn open_on_node(&self) -> u32 {
        self.node.load(Ordering::Relaxed)
    }

    /// Connections open in `vhost` now.
    pub fn open(&self, vhost: VhostId) -> u32 {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&vhost)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A deleted vhost's counter goes (its connections, closing, keep
    /// theirs until they end; ids are never reused).
    pub fn forget(&self, vhost: VhostId) {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&vhost);
    }
}

/// A connection's place on the node; given back when dropped.
#[derive(Debug)]
pub struct NodeSlot(Arc<AtomicU32>);

impl Drop for NodeSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One admitted connection's place in its vhost and on the node; both
/// given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    vhost: Arc<AtomicU32>,
    _node: NodeSlot,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.vhost.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_max_places_among_many_threads_and_they_come_back() {
        let slots = Arc::new(ConnectionSlots::default());
        let v = VhostId(3);
        let taken: Vec<_> = (0..8)
            .map(|_| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter_map(|_| slots.reserve(slots.reserve_node(None)?, v, Some(50)))
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(taken.len(), 50);
        assert_eq!(slots.open(v), 50);
        assert_eq!(
            slots.open_on_node(),
            50,
            "refused ones gave the node's back"
        );
        let node = slots.reserve_node(None).unwrap();
        assert!(slots.reserve(node, v, Some(50)).is_none());
        drop(taken);
        assert_eq!((slots.open(v), slots.open_on_node()), (0, 0));
        let node = slots.reserve_node(None).unwrap();
        assert!(slots.reserve(node, VhostId(4), None).is_some(), "no limit");
    }

    #[test]
    fn the_node_admits_exactly_its_limit_among_many_threads() {
        let slots = Arc::new(ConnectionSlots::default());
        let taken: Vec<_> = (0..8)
            .map(|i| {
                let slots = slots.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter_map(|_| {
                            slots.reserve(slots.reserve_node(Some(30))?, VhostId(i), None)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(taken.len(), 30);
        assert!(slots.reserve_node(Some(30)).is_none());
        drop(taken);
        assert_eq!(slots.open_on_node(), 0);
    }
}
