//! A static x86_64 ELF writer for tests, written byte by byte and independent of
//! the builder's own `Ehdr`/`Phdr`, so the parser is checked against a second
//! reading of the format. Used by the unit tests (src/bootimage/tests.rs) and the
//! CLI tests alike.

/// A static x86_64 executable with one PT_LOAD per (vaddr, paddr, flags, bytes,
/// memsz), each segment's bytes at its own page-aligned file offset.
pub fn elf(entry: u64, loads: &[(u64, u64, u32, &[u8], u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // x86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, loads.len() as u16, 0, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut off = (64 + 56 * loads.len() as u64).next_multiple_of(0x1000);
    let mut data = Vec::new();
    for &(vaddr, paddr, flags, bytes, memsz) in loads {
        for v in [1u32, flags] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [off, vaddr, paddr, bytes.len() as u64, memsz, 0x1000] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        data.push((off, bytes.to_vec()));
        off = (off + bytes.len() as u64).next_multiple_of(0x1000);
    }
    for (at, bytes) in data {
        out.resize(at as usize, 0);
        out.extend_from_slice(&bytes);
    }
    out
}
