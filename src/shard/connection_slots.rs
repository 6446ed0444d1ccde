//! The connections open in each vhost, counted once for the whole broker:
//! one counter per vhost, shared by every shard (`Arc<AtomicU32>`), so
//! `max-connections` admits exactly that many whichever shards the opens
//! land on and however they interleave (a compare-and-swap reserves the
//! place at connection.open; the `ConnectionSlot` gives it back when the
//! connection ends). The map of counters is locked only to find a vhost's
//! counter at connection.open and to forget a deleted vhost; nothing on
//! the message path touches it.

use crate::broker::vhost::VhostId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Every vhost's open-connection counter (one for the broker).
#[derive(Default)]
pub struct ConnectionSlots {
    counters: Mutex<HashMap<VhostId, Arc<AtomicU32>>>,
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

    /// Reserves a place in `vhost` for a new connection: None when `max`
    /// connections are already open there.
    pub fn reserve(&self, vhost: VhostId, max: Option<u32>) -> Option<ConnectionSlot> {
        let counter = self.counter(vhost);
        let mut now = counter.load(Ordering::Relaxed);
        loop {
            if max.is_some_and(|max| now >= max) {
                return None;
            }
            match counter.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(ConnectionSlot(counter)),
                Err(seen) => now = seen,
            }
        }
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

/// One admitted connection's place in its vhost; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicU32>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
                        .filter_map(|_| slots.reserve(v, Some(50)))
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(taken.len(), 50);
        assert_eq!(slots.open(v), 50);
        assert!(slots.reserve(v, Some(50)).is_none());
        drop(taken);
        assert_eq!(slots.open(v), 0);
        assert!(slots.reserve(VhostId(4), None).is_some(), "no limit");
    }
}
