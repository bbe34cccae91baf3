//! The entry the queue tests move: a sequence number and check bytes derived from
//! it, so a lost, duplicated, reordered or torn entry fails the comparison. 12 bytes,
//! so entries straddle 8-byte words and exercise the unaligned copy paths.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Item {
    pub seq: u32,
    pub check: [u8; 8],
}

pub fn item(seq: u32) -> Item {
    Item {
        seq,
        check: (u64::from(seq).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
    }
}
