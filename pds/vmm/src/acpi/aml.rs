//! The few AML encodings the DSDT needs (ACPI 6.5 chapter 20), hand-encoded.
//! rust-vmm's `acpi_tables` 0.2 (no_std with alloc, zerocopy 0.8) would build, but
//! it brings a full AML object model and some twenty table builders into the VMM
//! for a DSDT body of about sixty bytes. The tests hold these bytes against
//! `iasl`: its disassembly recompiles to exactly them.

use alloc::vec::Vec;

const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const NAME_OP: u8 = 0x08;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
const STRING_PREFIX: u8 = 0x0D;
const QWORD_PREFIX: u8 = 0x0E;
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const EXT_OP_PREFIX: u8 = 0x5B;
const DEVICE_OP: u8 = 0x82;

/// A PkgLength for `content` bytes that follow it: the encoded value counts
/// itself too. One byte holds up to 63; longer lengths put the low nibble in the
/// lead byte and the rest in up to three more bytes (at most 2^28 - 1 in all).
pub(crate) fn pkg_length(content: usize) -> Vec<u8> {
    if content + 1 < 0x40 {
        return alloc::vec![(content + 1) as u8];
    }
    let (extra, total) = if content + 2 < 1 << 12 {
        (1, content + 2)
    } else if content + 3 < 1 << 20 {
        (2, content + 3)
    } else {
        (3, content + 4)
    };
    let mut out = alloc::vec![((extra as u8) << 6) | (total & 0xF) as u8];
    for i in 0..extra {
        out.push((total >> (4 + 8 * i)) as u8);
    }
    out
}

fn with_pkg_length(op: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = op.to_vec();
    out.extend(pkg_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// `Name(name, value)`; `name` is an encoded NameString.
pub(crate) fn name(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = alloc::vec![NAME_OP];
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

/// `Scope(name) { body }`.
pub(crate) fn scope(name: &[u8], body: &[u8]) -> Vec<u8> {
    let mut content = name.to_vec();
    content.extend_from_slice(body);
    with_pkg_length(&[SCOPE_OP], &content)
}

/// `Device(seg) { body }`.
pub(crate) fn device(seg: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut content = seg.to_vec();
    content.extend_from_slice(body);
    with_pkg_length(&[EXT_OP_PREFIX, DEVICE_OP], &content)
}

/// The shortest integer encoding of `v`.
pub(crate) fn integer(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    match v {
        0 => out.push(ZERO_OP),
        1 => out.push(ONE_OP),
        2..=0xFF => out.extend([BYTE_PREFIX, v as u8]),
        0x100..=0xFFFF => {
            out.push(WORD_PREFIX);
            out.extend((v as u16).to_le_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(DWORD_PREFIX);
            out.extend((v as u32).to_le_bytes());
        }
        _ => {
            out.push(QWORD_PREFIX);
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// A string constant; `s` must be ASCII without NUL (ours are literals).
pub(crate) fn string(s: &str) -> Vec<u8> {
    let mut out = alloc::vec![STRING_PREFIX];
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    out
}

/// `Buffer() { bytes }` with its size stated.
pub(crate) fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut content = integer(bytes.len() as u64);
    content.extend_from_slice(bytes);
    with_pkg_length(&[BUFFER_OP], &content)
}

/// `Package() { elements }` (at most 255 elements).
pub(crate) fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut content = alloc::vec![elements.len() as u8];
    for e in elements {
        content.extend_from_slice(e);
    }
    with_pkg_length(&[PACKAGE_OP], &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_length_encodings() {
        assert_eq!(pkg_length(0), [1]);
        assert_eq!(pkg_length(62), [63]);
        // 63 content bytes + 2 length bytes = 65 = 0x41.
        assert_eq!(pkg_length(63), [0x41, 0x04]);
        assert_eq!(pkg_length(0xFFD), [0x4F, 0xFF]);
        assert_eq!(pkg_length(0xFFE), [0x81, 0x00, 0x01]);
        assert_eq!(pkg_length(0xF_FFFC), [0x8F, 0xFF, 0xFF]);
        assert_eq!(pkg_length(0xF_FFFD), [0xC1, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn integer_encodings() {
        assert_eq!(integer(0), [0x00]);
        assert_eq!(integer(1), [0x01]);
        assert_eq!(integer(5), [0x0A, 5]);
        assert_eq!(integer(0x1234), [0x0B, 0x34, 0x12]);
        assert_eq!(integer(0x1_0000), [0x0C, 0, 0, 1, 0]);
        assert_eq!(integer(1 << 32), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn small_objects() {
        assert_eq!(string("AB"), [0x0D, b'A', b'B', 0]);
        assert_eq!(buffer(&[0x79, 0]), [0x11, 0x05, 0x0A, 0x02, 0x79, 0x00]);
        assert_eq!(
            package(&[integer(5), integer(0)]),
            [0x12, 0x05, 0x02, 0x0A, 0x05, 0x00]
        );
        assert_eq!(
            name(b"_UID", &integer(0)),
            [0x08, b'_', b'U', b'I', b'D', 0x00]
        );
        assert_eq!(
            device(b"DEVX", &[]),
            [0x5B, 0x82, 0x05, b'D', b'E', b'V', b'X']
        );
        assert_eq!(scope(b"_SB_", &[]), [0x10, 0x05, b'_', b'S', b'B', b'_']);
    }
}
