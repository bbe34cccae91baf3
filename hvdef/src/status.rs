//! `HV_STATUS`: the 16-bit result of a hypercall (bits 0..16 of RAX).

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A hypercall status. Open: a value we have no name for is still carried through.
#[repr(transparent)]
#[derive(
    Copy, Clone, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct HvStatus(pub u16);

crate::named_values! {
    HvStatus debug("HV_STATUS_{}", "HV_STATUS({:#06x})") {
        SUCCESS = 0x0000,
        INVALID_HYPERCALL_CODE = 0x0002,
        INVALID_HYPERCALL_INPUT = 0x0003,
        INVALID_ALIGNMENT = 0x0004,
        INVALID_PARAMETER = 0x0005,
        ACCESS_DENIED = 0x0006,
        INVALID_PARTITION_STATE = 0x0007,
        OPERATION_DENIED = 0x0008,
        INSUFFICIENT_MEMORY = 0x000B,
        INVALID_PARTITION_ID = 0x000D,
        INVALID_VP_INDEX = 0x000E,
        INVALID_PORT_ID = 0x0011,
        INVALID_CONNECTION_ID = 0x0012,
        INSUFFICIENT_BUFFERS = 0x0013,
        INVALID_VP_STATE = 0x0015,
        INVALID_SYNIC_STATE = 0x0018,
        INVALID_VTL_STATE = 0x0051,
        VTL_ALREADY_ENABLED = 0x0086,
        UNKNOWN_REGISTER_NAME = 0x0087,
    }
}

impl HvStatus {
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
