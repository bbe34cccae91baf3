//! Read access to guest-physical memory, as the decoder needs it.

/// A guest-physical range the VMM cannot read: not RAM it has mapped (MMIO, a
/// hole, or past the end). The page walker and fetcher report it rather than guess,
/// since a guest that keeps page tables or code there is broken or hostile.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemError {
    pub gpa: u64,
}

/// Guest RAM as the VMM has it mapped.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes starting at `gpa`, or fails without a partial copy
    /// being meaningful.
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError>;
}

/// One contiguous RAM range starting at guest-physical `base`, backed by a slice
/// (the VMM's view of a guest RAM region, and the tests' fake).
#[derive(Copy, Clone, Debug)]
pub struct FlatMemory<'a> {
    pub base: u64,
    pub bytes: &'a [u8],
}

impl GuestMemory for FlatMemory<'_> {
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let src = gpa
            .checked_sub(self.base)
            .and_then(|off| usize::try_from(off).ok())
            .and_then(|off| Some((off, off.checked_add(buf.len())?)))
            .and_then(|(start, end)| self.bytes.get(start..end))
            .ok_or(MemError { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_memory_bounds() {
        let bytes = [1u8, 2, 3, 4];
        let m = FlatMemory {
            base: 0x1000,
            bytes: &bytes,
        };
        let mut b = [0u8; 2];
        assert_eq!(m.read_gpa(0x1002, &mut b), Ok(()));
        assert_eq!(b, [3, 4]);
        assert_eq!(m.read_gpa(0x1003, &mut b), Err(MemError { gpa: 0x1003 }));
        assert_eq!(m.read_gpa(0xfff, &mut b), Err(MemError { gpa: 0xfff }));
        assert_eq!(
            m.read_gpa(u64::MAX, &mut b),
            Err(MemError { gpa: u64::MAX })
        );
        assert_eq!(m.read_gpa(0x1004, &mut []), Ok(()));
    }
}
