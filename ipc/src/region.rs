//! Typed views over memory that system.xml granted to this PD.
//!
//! A region is shared with other PDs (or the guest, or the host) that may write it at
//! any moment, so every access is an atomic access: bytes are copied out with
//! relaxed atomic loads (or a copy with the same semantics, see `copy`) and only then
//! interpreted ("copy, then validate"). A read can
//! observe a torn value, never undefined behaviour. Plain references into a region
//! are never handed out, except to atomics.
#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

mod copy;

/// Access rights of a mapping, as system.xml's `perms` attribute spells them.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    pub const NONE: Self = Self {
        read: false,
        write: false,
        execute: false,
    };
    pub const R: Self = Self {
        read: true,
        ..Self::NONE
    };
    pub const RW: Self = Self {
        write: true,
        ..Self::R
    };
    pub const RX: Self = Self {
        execute: true,
        ..Self::R
    };

    /// Whether `self` grants at least everything `needed` asks for.
    pub fn covers(self, needed: Perms) -> bool {
        (self.read || !needed.read)
            && (self.write || !needed.write)
            && (self.execute || !needed.execute)
    }

    /// The rights in another encoding (mmap's PROT_*, a page-table or RMP
    /// attribute, the image's region flags): `r`, `w` and `x` or'ed together for
    /// each right granted, `T::default()` for none.
    pub fn bits<T: core::ops::BitOr<Output = T> + Default>(self, r: T, w: T, x: T) -> T {
        [(self.read, r), (self.write, w), (self.execute, x)]
            .into_iter()
            .filter(|&(granted, _)| granted)
            .fold(T::default(), |acc, (_, bit)| acc | bit)
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [(self.read, 'r'), (self.write, 'w'), (self.execute, 'x')] {
            if on {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Perms(\"{self}\")")
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// `offset..offset+len` does not lie inside the region.
    #[error("access {offset:#x}+{len:#x} outside a region of {region_len:#x} bytes")]
    OutOfBounds {
        offset: usize,
        len: usize,
        region_len: usize,
    },
    /// An atomic access at an offset that is not naturally aligned.
    #[error("offset {offset:#x} is not {align}-byte aligned")]
    Misaligned { offset: usize, align: usize },
    /// A write through a mapping granted without `w`.
    #[error("write to a region mapped read-only")]
    ReadOnly,
}

/// A window onto granted memory. Cheap to copy; `'a` ties it to whatever owns the
/// mapping (`'static` for regions the runtime mapped for the PD's lifetime).
#[derive(Copy, Clone)]
pub struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    perms: Perms,
    _memory: PhantomData<&'a [AtomicU8]>,
}

// SAFETY: a Region only ever touches its memory through atomic operations, so sharing
// or sending it between threads cannot cause a data race.
unsafe impl Send for Region<'_> {}
// SAFETY: as above.
unsafe impl Sync for Region<'_> {}

impl fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("base", &self.base)
            .field("len", &format_args!("{:#x}", self.len))
            .field("perms", &self.perms)
            .finish()
    }
}

impl<'a> Region<'a> {
    /// Wraps memory a runtime mapped for this PD.
    ///
    /// # Safety
    /// `base..base+len` must stay mapped, readable (and writable if `perms.write`) for
    /// `'a`, must be 8-byte aligned, and must only be accessed by others atomically or
    /// from other address spaces.
    pub unsafe fn from_raw_parts(base: NonNull<u8>, len: usize, perms: Perms) -> Self {
        Self {
            base,
            len,
            perms,
            _memory: PhantomData,
        }
    }

    /// A region over memory this process owns, for tests and in-process harnesses.
    pub fn from_atomics(words: &'a [AtomicU64], perms: Perms) -> Self {
        let base = NonNull::from(words).cast::<u8>();
        Self {
            base,
            len: core::mem::size_of_val(words),
            perms,
            _memory: PhantomData,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn perms(&self) -> Perms {
        self.perms
    }

    /// The address the region starts at in this PD's address space (for logs and for
    /// translating offsets a peer names; never dereferenced outside this module).
    pub fn base_address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// A pointer to `offset..offset+len` for the OS to fill or drain (pread/pwrite
    /// into guest pages, DMA), checked against the bounds and, when `write`, the
    /// write permission. The OS copies outside the Rust memory model, as a peer PD
    /// would; the pointer must never become a Rust reference or be dereferenced by
    /// Rust code.
    pub fn io_ptr(
        &self,
        offset: usize,
        len: usize,
        write: bool,
    ) -> Result<NonNull<u8>, RegionError> {
        if write {
            self.check_write(offset, len)?;
        } else {
            self.check(offset, len)?;
        }
        // SAFETY: check() proved offset+len <= self.len, so the result stays inside
        // the mapping and is non-null. Nothing is dereferenced here.
        Ok(unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) })
    }

    /// Same memory with fewer rights, e.g. to hand a read-only view to a parser.
    pub fn restrict(&self, perms: Perms) -> Region<'a> {
        let perms = Perms {
            read: self.perms.read && perms.read,
            write: self.perms.write && perms.write,
            execute: self.perms.execute && perms.execute,
        };
        Region { perms, ..*self }
    }

    /// A sub-window `offset..offset+len`.
    pub fn subregion(&self, offset: usize, len: usize) -> Result<Region<'a>, RegionError> {
        self.check(offset, len)?;
        // SAFETY: check() proved offset+len <= self.len, so the pointer stays inside
        // the mapping and is non-null.
        let base = unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) };
        Ok(Region { base, len, ..*self })
    }

    #[inline]
    fn check(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(RegionError::OutOfBounds {
                offset,
                len,
                region_len: self.len,
            }),
        }
    }

    #[inline]
    fn check_write(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        if !self.perms.write {
            return Err(RegionError::ReadOnly);
        }
        self.check(offset, len)
    }

    /// Copies `buf.len()` bytes out of the region at `offset`.
    #[inline]
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.check(offset, buf.len())?;
        // SAFETY: bounds checked above; the region is readable by construction.
        unsafe { copy::from_shared(self.base.as_ptr().add(offset), buf) };
        Ok(())
    }

    /// Copies `data` into the region at `offset`.
    #[inline]
    pub fn write_bytes(&self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        self.check_write(offset, data.len())?;
        // SAFETY: bounds and write permission checked above.
        unsafe { copy::to_shared(data, self.base.as_ptr().add(offset)) };
        Ok(())
    }

    /// Fills `offset..offset+len` with `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), RegionError> {
        self.check_write(offset, len)?;
        for i in 0..len {
            // SAFETY: i < len and the range was bounds-checked; writable.
            unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(offset + i)) }
                .store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads a plain-data value. Any byte pattern is a valid `T`, so a value the peer
    /// is rewriting concurrently is merely stale or torn, and the caller validates it.
    #[inline]
    pub fn read<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, RegionError> {
        let mut value = T::new_zeroed();
        self.read_bytes(offset, value.as_mut_bytes())?;
        Ok(value)
    }

    #[inline]
    pub fn write<T: IntoBytes + Immutable>(
        &self,
        offset: usize,
        value: &T,
    ) -> Result<(), RegionError> {
        self.write_bytes(offset, value.as_bytes())
    }

    /// The shared 32-bit word at `offset`, for index/flag protocols with the peer.
    #[inline]
    pub fn atomic_u32(&self, offset: usize) -> Result<&'a AtomicU32, RegionError> {
        self.atomic_ref::<AtomicU32>(offset)
    }
    /// Asks the CPU to fetch the cache line holding `offset` for writing. A line
    /// the peer last read changes hands while the caller does other work (a VSP's
    /// disk read) instead of when the write comes. A hint only: nothing is
    /// accessed, so it can neither fault nor race; out of bounds it does nothing.
    #[inline]
    pub fn prefetch_for_write(&self, offset: usize) {
        if offset >= self.len {
            return;
        }
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: PREFETCHW is a hint; it makes no architectural access and
        // cannot fault, whatever the address (a CPU without it runs a NOP).
        unsafe {
            core::arch::asm!(
                "prefetchw [{0}]",
                in(reg) self.base.as_ptr().wrapping_add(offset),
                options(nostack, preserves_flags, readonly)
            );
        }
    }

    #[inline]
    pub fn atomic_u64(&self, offset: usize) -> Result<&'a AtomicU64, RegionError> {
        self.atomic_ref::<AtomicU64>(offset)
    }

    #[inline]
    fn atomic_ref<A>(&self, offset: usize) -> Result<&'a A, RegionError> {
        let size = core::mem::size_of::<A>();
        self.check(offset, size)?;
        let addr = self.base.as_ptr() as usize + offset;
        if !addr.is_multiple_of(size) {
            return Err(RegionError::Misaligned {
                offset,
                align: size,
            });
        }
        // SAFETY: in bounds and aligned; the memory lives for 'a and all other access
        // to it is atomic (Region's construction contract), so a shared reference to
        // an atomic is sound. A read-only mapping still yields a reference: storing
        // through it faults in the MMU, which is the isolation working as intended.
        Ok(unsafe { &*(addr as *const A) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn perms_spell_as_system_xml_does() {
        for (perms, spelled) in [
            (Perms::NONE, ""),
            (Perms::R, "r"),
            (Perms::RW, "rw"),
            (Perms::RX, "rx"),
        ] {
            assert_eq!(perms.to_string(), spelled);
        }
        assert!(Perms::RW.covers(Perms::R) && !Perms::R.covers(Perms::RW));
        assert!(!Perms::RW.covers(Perms::RX));
    }

    #[test]
    fn bits_or_together_one_value_per_right_granted() {
        for n in 0u8..8 {
            let perms = Perms {
                read: n & 1 != 0,
                write: n & 2 != 0,
                execute: n & 4 != 0,
            };
            assert_eq!(perms.bits(1u8, 2, 4), n, "{perms}");
            // Overlapping values show it is an or, not a sum.
            let expect = if n == 0 { 0 } else { 0x10 | n };
            assert_eq!(perms.bits(0x11u8, 0x12, 0x14), expect, "{perms}");
        }
    }

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn unaligned_round_trip_preserves_bytes() {
        let mem = words(8);
        let r = Region::from_atomics(&mem, Perms::RW);
        let data: Vec<u8> = (0..37u8).collect();
        r.write_bytes(3, &data).unwrap();
        let mut out = [0u8; 37];
        r.read_bytes(3, &mut out).unwrap();
        assert_eq!(&out[..], &data[..]);
        assert_eq!(r.read::<u8>(2).unwrap(), 0);
    }

    #[test]
    fn out_of_bounds_and_overflowing_offsets_are_refused() {
        let mem = words(2);
        let r = Region::from_atomics(&mem, Perms::RW);
        assert!(matches!(
            r.read::<u64>(9),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.read_bytes(usize::MAX, &mut [0; 2]),
            Err(RegionError::OutOfBounds { .. })
        ));
        assert!(r.subregion(8, 9).is_err());
        assert!(r.subregion(8, 8).is_ok());
        // A hint past the end is dropped, not issued at a wild address.
        for at in [0, 15, 16, usize::MAX] {
            r.prefetch_for_write(at);
        }
        assert_eq!(r.read::<u64>(8), Ok(0));
    }

    #[test]
    fn read_only_regions_refuse_writes() {
        let mem = words(2);
        let r = Region::from_atomics(&mem, Perms::RW).restrict(Perms::R);
        assert_eq!(r.write(0, &1u32), Err(RegionError::ReadOnly));
        assert_eq!(r.fill(0, 1, 0), Err(RegionError::ReadOnly));
    }

    #[test]
    fn io_pointers_are_bounds_and_permission_checked() {
        let mem = words(2);
        let r = Region::from_atomics(&mem, Perms::RW);
        let p = r.io_ptr(8, 8, true).unwrap();
        assert_eq!(p.as_ptr() as usize, r.base_address() + 8);
        assert!(r.io_ptr(9, 8, false).is_err());
        assert!(r.io_ptr(usize::MAX, 2, false).is_err());
        let ro = r.restrict(Perms::R);
        assert!(ro.io_ptr(0, 16, false).is_ok());
        assert_eq!(ro.io_ptr(0, 16, true), Err(RegionError::ReadOnly));
    }

    #[test]
    fn atomics_must_be_aligned() {
        let mem = words(2);
        let r = Region::from_atomics(&mem, Perms::RW);
        assert!(r.atomic_u32(4).is_ok());
        assert_eq!(
            r.atomic_u32(2).unwrap_err(),
            RegionError::Misaligned {
                offset: 2,
                align: 4
            }
        );
        assert!(r.atomic_u64(12).is_err());
    }
}
