//! A seeded random generator for tests with random timing; the seed is printed so a run can be replayed.

use super::*;

/// A small xorshift64* generator; the seed comes from `WARREN_TEST_SEED`
/// or the clock and is printed so a failing run can be replayed.
pub struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    pub fn seeded() -> Rng {
        let seed = std::env::var("WARREN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                let t = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1);
                t ^ (u64::from(std::process::id()) << 32)
            });
        eprintln!("test seed: {seed} (set WARREN_TEST_SEED to replay)");
        Rng {
            state: seed.max(1),
            seed,
        }
    }

    /// The seed this generator started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo < hi);
        lo + self.next() % (hi - lo)
    }
}
