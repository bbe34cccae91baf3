//! The data the storage scenario writes: random extents whose every block is a
//! pure function of the seed, so a host test can say what the disk must hold.

use alloc::vec;
use alloc::vec::Vec;

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One random write of the pattern.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub lba: u64,
    pub blocks: u32,
}

/// A sequence of random writes over a disk and what each block holds after them.
/// Block `lba` as written by write `i` is a function of (seed, i, lba) alone, so
/// anyone with the seed can say what the disk must hold.
#[derive(Clone, Debug)]
pub struct Pattern {
    seed: u64,
    pub writes: Vec<Write>,
    /// Per block: 1 + the index of the last write covering it, 0 if none did.
    owner: Vec<u32>,
}

impl Pattern {
    pub fn new(seed: u64, disk_blocks: u64, count: u32, max_blocks: u32) -> Self {
        let mut state = seed;
        let mut next = || {
            state = splitmix(state);
            state
        };
        let mut owner = vec![0u32; disk_blocks as usize];
        let mut writes = Vec::with_capacity(count as usize);
        for i in 0..count {
            let blocks = 1 + (next() % u64::from(max_blocks)).min(disk_blocks - 1) as u32;
            let lba = next() % (disk_blocks - u64::from(blocks) + 1);
            for o in &mut owner[lba as usize..][..blocks as usize] {
                *o = i + 1;
            }
            writes.push(Write { lba, blocks });
        }
        Self {
            seed,
            writes,
            owner,
        }
    }

    /// The bytes write `index` puts into block `lba`.
    pub fn fill_block(&self, index: u32, lba: u64, out: &mut [u8]) {
        let base = splitmix(self.seed ^ (u64::from(index) << 40) ^ lba);
        for (k, chunk) in out.chunks_mut(8).enumerate() {
            let w = splitmix(base.wrapping_add(k as u64)).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    /// What block `lba` holds after every write (zeros where none wrote).
    pub fn expected_block(&self, lba: u64, out: &mut [u8]) {
        match self.owner.get(lba as usize).copied().unwrap_or(0) {
            0 => out.fill(0),
            o => self.fill_block(o - 1, lba, out),
        }
    }

    /// Blocks some write covered.
    pub fn written_blocks(&self) -> u64 {
        self.owner.iter().filter(|&&o| o != 0).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_a_function_of_the_seed_and_tracks_the_last_writer() {
        let a = Pattern::new(7, 1000, 50, 64);
        let b = Pattern::new(7, 1000, 50, 64);
        assert_eq!(a.writes, b.writes);
        assert_ne!(a.writes, Pattern::new(8, 1000, 50, 64).writes);
        let mut x = [0u8; 512];
        let mut y = [0u8; 512];
        for lba in 0..1000 {
            a.expected_block(lba, &mut x);
            // Replay: the last write covering the block decides.
            let last = a
                .writes
                .iter()
                .enumerate()
                .rfind(|(_, w)| (w.lba..w.lba + u64::from(w.blocks)).contains(&lba));
            match last {
                Some((i, _)) => a.fill_block(i as u32, lba, &mut y),
                None => y.fill(0),
            }
            assert_eq!(x, y, "block {lba}");
        }
        assert!(a
            .writes
            .iter()
            .all(|w| w.lba + u64::from(w.blocks) <= 1000 && w.blocks >= 1));
    }
}
