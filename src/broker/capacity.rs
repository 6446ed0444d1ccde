//! The shrink rule of collections that grow with a flood and would keep
//! that room after it (a queue's ready list and unacked set, a channel's
//! delivery tags): when, and to what, one gives capacity back.

/// A collection keeps room for this many entries however far it drains:
/// below it, shrinking would save little.
pub const KEEP_CAPACITY: usize = 1024;

/// Once a collection whose capacity is at least twice `KEEP_CAPACITY`
/// holds fewer than a quarter of it, it shrinks to half, and again while
/// that holds (a multiple ack can take most of it at once): a flood's
/// capacity goes back as the collection drains, and a shrunk collection is
/// still less than half full, so the next growth is at least as many
/// entries away as the copy cost (amortised O(1), no thrashing around one
/// length). Half of a hash map's capacity is half its buckets, so a shrink
/// always frees something. The new capacity, or None to keep it; two
/// compares when nothing shrinks.
pub fn shrunk_capacity(len: usize, capacity: usize) -> Option<usize> {
    let sparse = |capacity: usize| capacity >= 2 * KEEP_CAPACITY && len < capacity / 4;
    if !sparse(capacity) {
        return None;
    }
    let mut to = capacity / 2;
    while sparse(to) {
        to /= 2;
    }
    Some(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shrink_rule_halves_below_a_quarter_and_keeps_a_floor() {
        assert_eq!(shrunk_capacity(0, KEEP_CAPACITY), None, "the floor stays");
        assert_eq!(shrunk_capacity(0, 2 * KEEP_CAPACITY - 1), None);
        assert_eq!(shrunk_capacity(1024, 4096), None, "a quarter or more stays");
        assert_eq!(shrunk_capacity(1023, 4096), Some(2048));
        assert_eq!(shrunk_capacity(0, 2 * KEEP_CAPACITY), Some(KEEP_CAPACITY));
        // Many taken at once: halved until it is not sparse.
        assert_eq!(shrunk_capacity(0, 1 << 20), Some(KEEP_CAPACITY));
        assert_eq!(shrunk_capacity(1000, 1 << 20), Some(2048));
        // After a shrink the collection is not sparse again until it has
        // lost another half of what it holds, and has room to grow.
        for (len, capacity) in [(1023, 4096), (1000, 1 << 20), (5000, 1 << 16)] {
            let to = shrunk_capacity(len, capacity).unwrap();
            assert!(len >= to / 4 && len < to / 2 && shrunk_capacity(len, to).is_none());
        }
    }
}
