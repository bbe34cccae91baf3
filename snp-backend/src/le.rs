//! Little-endian fields of the 4 KiB pages the guest, paravisor and host share
//! (GHCB, VMSA): bounded reads and writes, so an offset past the page reads 0 and
//! writes nothing instead of panicking.

pub(crate) fn u64_at(page: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = off.checked_add(8).and_then(|end| page.get(off..end)) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

pub(crate) fn set_u64(page: &mut [u8], off: usize, v: u64) {
    if let Some(s) = off.checked_add(8).and_then(|end| page.get_mut(off..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// The shared pages' size: the partition's page.
pub const PAGE_SIZE: usize = isolation::PAGE_SIZE as usize;

/// Declares a 4 KiB page type (zeroed by default) whose fields are read and
/// written through the bounded [`u64_at`] and [`set_u64`].
macro_rules! le_page {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(pub [u8; $crate::le::PAGE_SIZE]);

        impl Default for $name {
            fn default() -> Self {
                Self([0; $crate::le::PAGE_SIZE])
            }
        }

        impl $name {
            pub fn u64_at(&self, off: usize) -> u64 {
                $crate::le::u64_at(&self.0, off)
            }

            pub fn set_u64(&mut self, off: usize, v: u64) {
                $crate::le::set_u64(&mut self.0, off, v)
            }
        }
    };
}
pub(crate) use le_page;
