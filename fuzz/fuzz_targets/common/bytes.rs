//! Reading a fuzz input front to back. Past its end every read gives zeros (a
//! short input is still a whole case), so a reader never fails.
// Each target includes this file and uses only the widths it needs.
#![allow(dead_code)]

pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// Up to `n` bytes, fewer when the input ends first.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// The next `N` bytes, little-endian, zero-padded past the end.
    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let got = self.take(N);
        b[..got.len()].copy_from_slice(got);
        b
    }

    pub fn u8(&mut self) -> u8 {
        self.le::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The little-endian u64 at `at`, zero-padded past the end.
pub fn word(data: &[u8], at: usize) -> u64 {
    Bytes(data.get(at..).unwrap_or_default()).u64()
}
