//! Identifier newtypes that travel in channel messages.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Debug and Display of a `u32` id, both shown as `$show`.
macro_rules! show_id {
    ($name:ident, $show:literal) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $show, self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

/// A channel's relative id (`child_relid`): the guest's name for an offer and the
/// bit it signals in the event flags.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Relid(pub u32);
show_id!(Relid, "relid {}");

/// A GPADL handle, chosen by the guest.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GpadlId(pub u32);
show_id!(GpadlId, "gpadl {:#x}");

/// A GUID in its Windows in-memory layout (little-endian first three fields), which is
/// how `guid_t` travels in offers.
#[repr(C)]
#[derive(
    Copy,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<Guid>() == 16);

impl Guid {
    pub const ZERO: Self = Self {
        data1: 0,
        data2: 0,
        data3: 0,
        data4: [0; 8],
    };

    /// Builds a GUID from its textual field values, e.g. `ba6163d9-04a1-4d29-b605-72e2ffb1dc7f`
    /// is `from_fields(0xba6163d9, 0x04a1, 0x4d29, [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f])`.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Self {
            data1,
            data2,
            data3,
            data4,
        }
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Interface ids of the synthetic devices the paravisor offers (include/linux/hyperv.h).
pub mod interface {
    use super::Guid;

    /// hv_storvsc (SCSI).
    pub const STORAGE: Guid = Guid::from_fields(
        0xba6163d9,
        0x04a1,
        0x4d29,
        [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f],
    );
    /// hv_netvsc.
    pub const NETWORK: Guid = Guid::from_fields(
        0xf8615163,
        0xdf3e,
        0x46c5,
        [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn guid_formats_and_lays_out_like_windows() {
        let text = std::format!("{}", interface::STORAGE);
        assert_eq!(text, "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
        assert_eq!(
            &interface::STORAGE.as_bytes()[..4],
            &[0xd9, 0x63, 0x61, 0xba]
        );
    }
}
