//! The RSDP (ACPI 2.0+ form) and the XSDT it points to.

use alloc::vec::Vec;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::sdt::{checksum, table, OEM_ID};

pub(crate) const RSDP_LEN: usize = 36;
/// The ACPI 1.0 checksum covers the first 20 bytes; the extended one all 36.
pub(crate) const RSDP_V1_LEN: usize = 20;
const REVISION: u8 = 2;
const XSDT_REVISION: u8 = 1;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Rsdp {
    pub signature: [u8; 8],
    pub checksum: u8,
    pub oem_id: [u8; 6],
    pub revision: u8,
    pub rsdt_address: U32,
    pub length: U32,
    pub xsdt_address: U64,
    pub extended_checksum: u8,
    pub reserved: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<Rsdp>() == RSDP_LEN);

/// No RSDT (address 0): every OS that reads revision 2 uses the XSDT.
pub(crate) fn rsdp(xsdt_gpa: u64) -> Vec<u8> {
    let mut r = Rsdp {
        signature: *b"RSD PTR ",
        checksum: 0,
        oem_id: OEM_ID,
        revision: REVISION,
        rsdt_address: U32::new(0),
        length: U32::new(RSDP_LEN as u32),
        xsdt_address: U64::new(xsdt_gpa),
        extended_checksum: 0,
        reserved: [0; 3],
    };
    r.checksum = checksum(&r.as_bytes()[..RSDP_V1_LEN]);
    r.extended_checksum = checksum(r.as_bytes());
    r.as_bytes().to_vec()
}

pub(crate) fn xsdt(entries: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    table(b"XSDT", XSDT_REVISION, &body)
}
