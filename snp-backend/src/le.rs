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
