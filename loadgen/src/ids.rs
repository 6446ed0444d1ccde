//! Message ids carried in bodies (bytes 8..16, after the timestamp): how
//! an id is built from a producer and its sequence number, the `x-delay`
//! a message id gets in the delayed scenario (a hash, so the consumer
//! recomputes it from the id), and `Seen`, the bounded set of ids a
//! consumer has received (loss and duplicate detection). Pure: no I/O.

/// Bits of an id that carry the producer's sequence number.
pub const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Largest sequence number `Seen` tracks (a 128 MiB bitset per producer at
/// most, and only if a producer really sent that many).
pub const MAX_SEEN_SEQ: u64 = 1 << 30;
/// Most distinct delays one spread may hold (the publisher pre-encodes a
/// header per delay).
pub const MAX_DELAY_VALUES: u64 = 100_001;

/// The id of producer `producer`'s message number `seq` (0-based).
#[inline]
pub fn make_id(producer: usize, seq: u64) -> u64 {
    ((producer as u64) << SEQ_BITS) | (seq & SEQ_MASK)
}

/// (producer, sequence number) of an id.
#[inline]
pub fn split_id(id: u64) -> (u64, u64) {
    (id >> SEQ_BITS, id & SEQ_MASK)
}

/// The id in a body's first frame (`None` if shorter than 16 bytes).
#[inline]
pub fn body_id(first_body_frame: &[u8]) -> Option<u64> {
    let b: [u8; 8] = first_body_frame.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// The delays of the delayed scenario: each message gets one in
/// `min_ms..=max_ms`, spread evenly by a hash of its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelaySpread {
    pub min_ms: u32,
    pub max_ms: u32,
}

impl DelaySpread {
    /// How many distinct delays the spread has.
    pub fn values(&self) -> u64 {
        u64::from(self.max_ms.saturating_sub(self.min_ms)) + 1
    }

    /// The `x-delay` of message `id`, in milliseconds.
    #[inline]
    pub fn delay_ms(&self, id: u64) -> u32 {
        self.min_ms + (splitmix64(id) % self.values()) as u32
    }
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a u64.
#[inline]
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ids received so far: one bitset per producer, grown as sequence
/// numbers arrive (bounded by `MAX_SEEN_SEQ`).
#[derive(Debug, Default)]
pub struct Seen {
    bits: Vec<Vec<u64>>,
    /// Distinct ids received.
    pub unique: u64,
    /// Ids received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Ids no producer of this run can have sent.
    pub foreign: u64,
}

impl Seen {
    pub fn new(producers: usize) -> Seen {
        Seen {
            bits: vec![Vec::new(); producers],
            ..Seen::default()
        }
    }

    pub fn insert(&mut self, id: u64) {
        let (p, seq) = split_id(id);
        let Some(bits) = self.bits.get_mut(p as usize) else {
            self.foreign += 1;
            return;
        };
        if seq >= MAX_SEEN_SEQ {
            self.foreign += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        if bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
        } else {
            bits[word] |= 1 << bit;
            self.unique += 1;
        }
    }

    /// Messages sent (`sent[p]` by producer p, numbered from 0) that were
    /// never received.
    pub fn missing(&self, sent: &[u64]) -> u64 {
        sent.iter()
            .enumerate()
            .map(|(p, &n)| {
                let bits = self.bits.get(p).map_or(&[][..], |b| &b[..]);
                let got: u64 = (0..n)
                    .filter(|&seq| {
                        bits.get((seq / 64) as usize)
                            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
                    })
                    .count() as u64;
                n - got
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = make_id(7, 123_456);
        assert_eq!(split_id(id), (7, 123_456));
        let mut body = vec![0u8; 16];
        body[8..16].copy_from_slice(&id.to_be_bytes());
        assert_eq!(body_id(&body), Some(id));
        assert_eq!(body_id(&body[..15]), None);
    }

    #[test]
    fn delays_stay_in_range_and_spread() {
        let d = DelaySpread {
            min_ms: 100,
            max_ms: 199,
        };
        assert_eq!(d.values(), 100);
        let mut hist = [0u32; 100];
        for seq in 0..100_000 {
            let ms = d.delay_ms(make_id(0, seq));
            assert!((100..=199).contains(&ms));
            hist[(ms - 100) as usize] += 1;
        }
        // Roughly uniform: every bucket within ±30% of 1000.
        assert!(hist.iter().all(|&n| (700..=1300).contains(&n)), "{hist:?}");
        let fixed = DelaySpread {
            min_ms: 5,
            max_ms: 5,
        };
        assert_eq!(fixed.delay_ms(42), 5);
    }

    #[test]
    fn seen_counts_unique_duplicates_foreign_and_missing() {
        let mut s = Seen::new(2);
        for seq in [0, 1, 2, 5, 200] {
            s.insert(make_id(0, seq));
        }
        s.insert(make_id(0, 2));
        s.insert(make_id(1, 0));
        s.insert(make_id(2, 0)); // no producer 2
        s.insert(make_id(1, MAX_SEEN_SEQ)); // past the bound
        assert_eq!((s.unique, s.duplicates, s.foreign), (6, 1, 2));
        // Producer 0 sent 6 (3 and 4 missing), producer 1 sent 2 (1 missing).
        assert_eq!(s.missing(&[6, 2]), 3);
        assert_eq!(s.missing(&[]), 0);
    }
}
