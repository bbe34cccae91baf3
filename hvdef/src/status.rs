//! `HV_STATUS`: the 16-bit result of a hypercall (bits 0..16 of RAX).

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A hypercall status. Open: a value we have no name for is still carried through.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct HvStatus(pub u16);

impl HvStatus {
    pub const SUCCESS: Self = Self(0x0000);
    pub const INVALID_HYPERCALL_CODE: Self = Self(0x0002);
    pub const INVALID_HYPERCALL_INPUT: Self = Self(0x0003);
    pub const INVALID_ALIGNMENT: Self = Self(0x0004);
    pub const INVALID_PARAMETER: Self = Self(0x0005);
    pub const ACCESS_DENIED: Self = Self(0x0006);
    pub const INVALID_PARTITION_STATE: Self = Self(0x0007);
    pub const OPERATION_DENIED: Self = Self(0x0008);
    pub const INSUFFICIENT_MEMORY: Self = Self(0x000B);
    pub const INVALID_PARTITION_ID: Self = Self(0x000D);
    pub const INVALID_VP_INDEX: Self = Self(0x000E);
    pub const INVALID_PORT_ID: Self = Self(0x0011);
    pub const INVALID_CONNECTION_ID: Self = Self(0x0012);
    pub const INSUFFICIENT_BUFFERS: Self = Self(0x0013);
    pub const INVALID_VP_STATE: Self = Self(0x0015);
    pub const INVALID_SYNIC_STATE: Self = Self(0x0018);
    pub const INVALID_VTL_STATE: Self = Self(0x0051);
    pub const VTL_ALREADY_ENABLED: Self = Self(0x0086);
    pub const UNKNOWN_REGISTER_NAME: Self = Self(0x0087);

    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    /// `Ok(())` for success, else the status as an error, for `?` chains.
    pub const fn result(self) -> Result<(), HvStatus> {
        if self.is_success() {
            Ok(())
        } else {
            Err(self)
        }
    }

    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SUCCESS => "SUCCESS",
            Self::INVALID_HYPERCALL_CODE => "INVALID_HYPERCALL_CODE",
            Self::INVALID_HYPERCALL_INPUT => "INVALID_HYPERCALL_INPUT",
            Self::INVALID_ALIGNMENT => "INVALID_ALIGNMENT",
            Self::INVALID_PARAMETER => "INVALID_PARAMETER",
            Self::ACCESS_DENIED => "ACCESS_DENIED",
            Self::INVALID_PARTITION_STATE => "INVALID_PARTITION_STATE",
            Self::OPERATION_DENIED => "OPERATION_DENIED",
            Self::INSUFFICIENT_MEMORY => "INSUFFICIENT_MEMORY",
            Self::INVALID_PARTITION_ID => "INVALID_PARTITION_ID",
            Self::INVALID_VP_INDEX => "INVALID_VP_INDEX",
            Self::INVALID_PORT_ID => "INVALID_PORT_ID",
            Self::INVALID_CONNECTION_ID => "INVALID_CONNECTION_ID",
            Self::INSUFFICIENT_BUFFERS => "INSUFFICIENT_BUFFERS",
            Self::INVALID_VP_STATE => "INVALID_VP_STATE",
            Self::INVALID_SYNIC_STATE => "INVALID_SYNIC_STATE",
            Self::INVALID_VTL_STATE => "INVALID_VTL_STATE",
            Self::VTL_ALREADY_ENABLED => "VTL_ALREADY_ENABLED",
            Self::UNKNOWN_REGISTER_NAME => "UNKNOWN_REGISTER_NAME",
            _ => return None,
        })
    }
}

impl fmt::Debug for HvStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "HV_STATUS_{name}"),
            None => write!(f, "HV_STATUS({:#06x})", self.0),
        }
    }
}

impl fmt::Display for HvStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn values_match_the_tlfs_table() {
        // The numbers guests compare against (Linux hvgdk_mini.h, TLFS appendix).
        assert_eq!(HvStatus::INVALID_HYPERCALL_CODE.0, 2);
        assert_eq!(HvStatus::INVALID_HYPERCALL_INPUT.0, 3);
        assert_eq!(HvStatus::INVALID_ALIGNMENT.0, 4);
        assert_eq!(HvStatus::INVALID_PARAMETER.0, 5);
        assert_eq!(HvStatus::ACCESS_DENIED.0, 6);
        assert_eq!(HvStatus::INSUFFICIENT_MEMORY.0, 0xB);
        assert_eq!(HvStatus::INVALID_PORT_ID.0, 0x11);
        assert_eq!(HvStatus::INVALID_CONNECTION_ID.0, 0x12);
        assert_eq!(HvStatus::INSUFFICIENT_BUFFERS.0, 0x13);
    }

    #[test]
    fn unknown_statuses_still_print() {
        assert_eq!(format!("{:?}", HvStatus(0x7777)), "HV_STATUS(0x7777)");
        assert_eq!(
            format!("{}", HvStatus::ACCESS_DENIED),
            "HV_STATUS_ACCESS_DENIED"
        );
        assert_eq!(
            HvStatus::ACCESS_DENIED.result(),
            Err(HvStatus::ACCESS_DENIED)
        );
        assert_eq!(HvStatus::SUCCESS.result(), Ok(()));
    }
}
