//! Randomness for the random-I/O tests and the benchmark: proptest's generator
//! (a dev-dependency already) rather than one of our own, seeded so that a
//! failing run repeats.

use proptest::prelude::{Rng as _, RngExt as _};
use proptest::test_runner::{RngAlgorithm, TestRng};

pub struct Rng(TestRng);

impl Rng {
    /// The same sequence for the same `seed`.
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Self(TestRng::from_seed(RngAlgorithm::XorShift, &bytes))
    }

    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}
