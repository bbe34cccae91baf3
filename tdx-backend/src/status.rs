//! TDCALL leaf numbers and TDX-module completion status codes.
//!
//! A status is RAX after TDCALL: bits 63:32 the code (bit 63 = error, bit 62 =
//! non-recoverable, bits 47:40 class), bits 31:0 operand details. Warnings such as
//! PAGE_ALREADY_ACCEPTED have bit 63 clear: callers must compare the code, not only
//! test for zero.

/// TDCALL leaves (RAX).
pub mod leaf {
    pub const VP_VMCALL: u64 = 0;
    pub const VP_INFO: u64 = 1;
    pub const MR_RTMR_EXTEND: u64 = 2;
    pub const VP_VEINFO_GET: u64 = 3;
    pub const MR_REPORT: u64 = 4;
    pub const VP_CPUIDVE_SET: u64 = 5;
    pub const MEM_PAGE_ACCEPT: u64 = 6;
    pub const VM_RD: u64 = 7;
    pub const VM_WR: u64 = 8;
    pub const VP_RD: u64 = 9;
    pub const VP_WR: u64 = 10;
    pub const MEM_PAGE_ATTR_RD: u64 = 23;
    pub const MEM_PAGE_ATTR_WR: u64 = 24;
    pub const VP_ENTER: u64 = 25;
    pub const VP_INVEPT: u64 = 26;
    pub const VP_INVVPID: u64 = 27;
}

/// A TDX-module completion status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u64);

impl Status {
    pub const SUCCESS: Status = Status(0);
    pub const OPERAND_INVALID: Status = Status(0xc000_0100_0000_0000);
    pub const OPERAND_BUSY: Status = Status(0x8000_0200_0000_0000);
    pub const EPT_WALK_FAILED: Status = Status(0xc000_0b00_0000_0000);
    pub const PAGE_ALREADY_ACCEPTED: Status = Status(0x0000_0b0a_0000_0000);
    pub const PAGE_SIZE_MISMATCH: Status = Status(0xc000_0b0b_0000_0000);
    pub const EPT_ENTRY_STATE_INCORRECT: Status = Status(0xc000_0b0d_0000_0000);

    /// Bits 63:32, the part that identifies the condition.
    pub const fn code(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub const fn is_error(self) -> bool {
        self.0 >> 63 != 0
    }

    /// Same condition, ignoring operand details.
    pub const fn is(self, other: Status) -> bool {
        self.code() == other.code()
    }
}
