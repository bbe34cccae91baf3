//! The common system description table header and the checksum rule every ACPI
//! table follows: all its bytes sum to zero.

use alloc::vec::Vec;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

pub(crate) const OEM_ID: [u8; 6] = *b"PVISOR";
pub(crate) const OEM_TABLE_ID: [u8; 8] = *b"PVISORVM";
pub(crate) const OEM_REVISION: u32 = 1;
pub(crate) const CREATOR_ID: [u8; 4] = *b"PVMM";
pub(crate) const CREATOR_REVISION: u32 = 1;

/// The 36-byte header every SDT starts with.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct SdtHeader {
    pub signature: [u8; 4],
    pub length: U32,
    pub revision: u8,
    pub checksum: u8,
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
    pub oem_revision: U32,
    pub creator_id: [u8; 4],
    pub creator_revision: U32,
}

pub(crate) const HEADER_LEN: usize = 36;
const _: () = assert!(core::mem::size_of::<SdtHeader>() == HEADER_LEN);
pub(crate) const CHECKSUM_OFFSET: usize = 9;

/// A generic address structure (ACPI 6.5 5.2.3.2).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct Gas {
    pub space_id: u8,
    pub bit_width: u8,
    pub bit_offset: u8,
    pub access_size: u8,
    pub address: U64,
}

const _: () = assert!(core::mem::size_of::<Gas>() == 12);

impl Gas {
    const SYSTEM_IO: u8 = 1;
    const ACCESS_BYTE: u8 = 1;

    /// One byte at I/O port `port`.
    pub fn io_byte(port: u16) -> Self {
        Self {
            space_id: Self::SYSTEM_IO,
            bit_width: 8,
            bit_offset: 0,
            access_size: Self::ACCESS_BYTE,
            address: U64::new(u64::from(port)),
        }
    }
}

/// The byte that makes `bytes` (with this byte counted as 0) sum to zero.
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

/// `header ++ body` with the length and checksum filled in.
pub(crate) fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let header = SdtHeader {
        signature: *signature,
        length: U32::new((HEADER_LEN + body.len()) as u32),
        revision,
        checksum: 0,
        oem_id: OEM_ID,
        oem_table_id: OEM_TABLE_ID,
        oem_revision: U32::new(OEM_REVISION),
        creator_id: CREATOR_ID,
        creator_revision: U32::new(CREATOR_REVISION),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out[CHECKSUM_OFFSET] = checksum(&out);
    out
}
