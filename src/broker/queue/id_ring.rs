//! Values keyed by u64 ids that mostly arrive in increasing id order and
//! mostly leave oldest first: a queue's unacked deliveries (handed out in
//! id order, acked in delivery-tag order). Such entries live in an
//! id-ordered ring, found without hashing (the oldest at the front; else
//! the slot `id - front` when no ids were skipped; else a binary search);
//! one taken out of order leaves a tombstone there. Entries that arrive out
//! of order (a requeued message redelivered behind newer ones, a priority
//! queue's higher level) go to a hash map beside it.
//!
//! Bounded by what it holds: tombstones at either end are dropped at once,
//! and the ring is compacted once it holds more tombstones than entries,
//! so it never has more than twice as many slots as entries (plus a few);
//! both parts give capacity back as they drain (`broker::capacity`).

use crate::broker::capacity::shrunk_capacity;
use std::collections::{HashMap, VecDeque};

/// Out-of-order entries: ids the queue assigns itself, hashed with ahash.
type Strays<T> = HashMap<u64, T, ahash::RandomState>;

/// The ring is compacted only when it has at least this many slots (a
/// smaller one costs nothing to keep or to search).
const COMPACT_FROM: usize = 64;

#[derive(Debug)]
pub(super) struct IdRing<T> {
    /// Ids strictly increasing from front to back; None is a tombstone
    /// (taken out of order). The front and the back are never tombstones.
    ring: VecDeque<(u64, Option<T>)>,
    /// The entries (not tombstones) in `ring`.
    live: usize,
    /// Entries inserted out of order (an id between the ring's front and
    /// back); None while there are none.
    strays: Option<Box<Strays<T>>>,
}

impl<T> Default for IdRing<T> {
    fn default() -> Self {
        IdRing {
            ring: VecDeque::new(),
            live: 0,
            strays: None,
        }
    }
}

impl<T> IdRing<T> {
    pub(super) fn len(&self) -> usize {
        self.live + self.strays.as_ref().map_or(0, |s| s.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `value` under `id`, which it must not hold already.
    pub(super) fn insert(&mut self, id: u64, value: T) {
        debug_assert!(!self.contains(id), "id {id} held twice");
        let (front, back) = match (self.ring.front(), self.ring.back()) {
            (Some(f), Some(b)) => (f.0, b.0),
            _ => (u64::MAX, 0),
        };
        if self.ring.is_empty() || id > back {
            self.ring.push_back((id, Some(value)));
        } else if id < front {
            self.ring.push_front((id, Some(value)));
        } else {
            self.strays
                .get_or_insert_with(Default::default)
                .insert(id, value);
            return;
        }
        self.live += 1;
    }

    /// Takes the entry `id`, if held.
    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        if let Some(at) = self.position(id) {
            if let Some(value) = self.ring[at].1.take() {
                self.live -= 1;
                self.tidy();
                return Some(value);
            }
            // A tombstone: the id left the ring, and may have come back
            // out of order (a requeued message redelivered).
        }
        let strays = self.strays.as_mut()?;
        let value = strays.remove(&id)?;
        if strays.is_empty() {
            self.strays = None;
        } else if let Some(to) = shrunk_capacity(strays.len(), strays.capacity()) {
            strays.shrink_to(to);
        }
        Some(value)
    }

    /// The smallest id held.
    pub(super) fn min_id(&self) -> Option<u64> {
        let ring = self.ring.front().map(|s| s.0);
        let strays = self.strays.as_ref().and_then(|s| s.keys().min().copied());
        match (ring, strays) {
            (Some(r), Some(s)) => Some(r.min(s)),
            (r, s) => r.or(s),
        }
    }

    /// Every entry, in no particular order.
    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        let ring = self.ring.iter().filter_map(|s| s.1.as_ref());
        ring.chain(self.strays.iter().flat_map(|s| s.values()))
    }

    /// Every entry, to change, in no particular order.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let ring = self.ring.iter_mut().filter_map(|s| s.1.as_mut());
        ring.chain(self.strays.iter_mut().flat_map(|s| s.values_mut()))
    }

    fn contains(&self, id: u64) -> bool {
        self.position(id)
            .is_some_and(|at| self.ring[at].1.is_some())
            || self.strays.as_ref().is_some_and(|s| s.contains_key(&id))
    }

    /// The ring slot of `id` (an entry or a tombstone), if it has one.
    #[inline]
    fn position(&self, id: u64) -> Option<usize> {
        let front = self.ring.front()?.0;
        if id < front || id > self.ring.back()?.0 {
            return None;
        }
        // No ids skipped between the front and `id`: its slot is `id - front`.
        let guess = (id - front) as usize;
        if self.ring.get(guess).is_some_and(|s| s.0 == id) {
            return Some(guess);
        }
        self.ring.binary_search_by_key(&id, |s| s.0).ok()
    }

    /// After a removal from the ring: tombstones at the ends go, the ring
    /// is compacted once tombstones outnumber entries, and capacity is
    /// given back as it drains.
    fn tidy(&mut self) {
        while self.ring.front().is_some_and(|s| s.1.is_none()) {
            self.ring.pop_front();
        }
        while self.ring.back().is_some_and(|s| s.1.is_none()) {
            self.ring.pop_back();
        }
        let tombstones = self.ring.len() - self.live;
        if tombstones > self.live && self.ring.len() >= COMPACT_FROM {
            self.ring.retain(|s| s.1.is_some());
        }
        if let Some(to) = shrunk_capacity(self.ring.len(), self.ring.capacity()) {
            self.ring.shrink_to(to);
        }
    }

    #[cfg(test)]
    fn slots(&self) -> (usize, usize) {
        (self.ring.len(), self.ring.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::capacity::KEEP_CAPACITY;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn in_order_entries_stay_in_the_ring_and_leave_from_the_front() {
        let mut r = IdRing::default();
        for id in 10..20u64 {
            r.insert(id, id * 2);
        }
        assert!(r.strays.is_none());
        assert_eq!(r.len(), 10);
        assert_eq!(r.min_id(), Some(10));
        for id in 10..20u64 {
            assert_eq!(r.remove(id), Some(id * 2));
            assert_eq!(r.slots().0, (19 - id) as usize, "no tombstone left");
        }
        assert!(r.is_empty() && r.remove(10).is_none());
    }

    #[test]
    fn ids_skipped_and_taken_out_of_order_are_found() {
        let mut r = IdRing::default();
        // Every third id: the guessed slot misses, the search finds them.
        for id in (0..300u64).step_by(3) {
            r.insert(id, id);
        }
        for id in (150..300u64).step_by(3) {
            assert_eq!(r.remove(id), Some(id));
        }
        assert_eq!(r.remove(151), None);
        assert_eq!(r.remove(1000), None);
        assert_eq!(r.len(), 50);
    }

    #[test]
    fn a_redelivered_id_behind_newer_ones_is_a_stray_until_taken() {
        let mut r = IdRing::default();
        for id in 1..=5u64 {
            r.insert(id, id);
        }
        // 3 is requeued (a tombstone), then delivered again out of order.
        assert_eq!(r.remove(3), Some(3));
        r.insert(3, 33);
        assert_eq!(r.strays.as_ref().map(|s| s.len()), Some(1));
        assert_eq!(r.len(), 5);
        assert_eq!(r.remove(3), Some(33));
        assert!(r.strays.is_none(), "an empty stray map is dropped");
        // Older than the front: back at the front of the ring.
        assert_eq!(r.remove(1), Some(1));
        r.insert(1, 11);
        assert!(r.strays.is_none());
        assert_eq!(r.min_id(), Some(1));
        let mut all: Vec<u64> = r.values().copied().collect();
        all.sort_unstable();
        assert_eq!(all, [2, 4, 5, 11]);
    }

    #[test]
    fn tombstones_never_outnumber_entries_in_a_large_ring() {
        let mut r = IdRing::default();
        for id in 0..10_000u64 {
            r.insert(id, ());
        }
        // Two consumers: one acks everything it got, the other nothing.
        for id in (1..10_000u64).step_by(2) {
            r.remove(id);
            let (slots, _) = r.slots();
            assert!(slots <= 2 * r.len() + 1, "{slots} slots for {}", r.len());
        }
        assert_eq!(r.len(), 5_000);
    }

    #[test]
    fn a_drained_flood_gives_its_capacity_back() {
        let mut r = IdRing::default();
        for id in 0..20_000u64 {
            r.insert(id, ());
        }
        for id in (0..20_000u64).rev() {
            r.remove(id);
        }
        assert!(r.is_empty() && r.slots().1 < 2 * KEEP_CAPACITY);
    }

    proptest! {
        /// Against a map: any sequence of inserts (of ids not held) and
        /// removes finds the same entries, and the ring stays bounded.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..200), 1..400)) {
            let mut r = IdRing::default();
            let mut model = BTreeMap::new();
            let mut next = 100u64;
            for (insert, n) in ops {
                if insert {
                    // Mostly the next id, sometimes an old one not held.
                    let id = if n % 4 == 0 { n } else { next += 1 + n % 3; next };
                    if model.contains_key(&id) {
                        continue;
                    }
                    r.insert(id, id);
                    model.insert(id, id);
                } else {
                    let id = if n % 2 == 0 { model.keys().next().copied().unwrap_or(n) } else { n + 100 };
                    prop_assert_eq!(r.remove(id), model.remove(&id));
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.min_id(), model.keys().next().copied());
                let (slots, _) = r.slots();
                prop_assert!(slots <= (2 * r.live).max(COMPACT_FROM) + 1);
            }
            let mut all: Vec<u64> = r.values().copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, model.keys().copied().collect::<Vec<_>>());
        }
    }
}
