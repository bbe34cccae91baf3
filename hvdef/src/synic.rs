//! SynIC register layouts (the values behind the SCONTROL, SVERSION, SIEFP, SIMP, EOM
//! and SINTx MSRs).

use crate::HV_PAGE_SHIFT;

/// SVERSION always reads 1; writing it is a #GP.
pub const SYNIC_VERSION: u64 = 1;

/// SINTx: how a synthetic interrupt source is delivered.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct SintRegister(pub u64);

impl SintRegister {
    const VECTOR_MASK: u64 = 0xFF;
    const MASKED: u64 = 1 << 16;
    const AUTO_EOI: u64 = 1 << 17;
    const POLLING: u64 = 1 << 18;
    /// Bits 8-15 and 19-63. (VTL2 software also knows bit 19 "as intercept" and bit
    /// 20 "proxy"; a guest SynIC has neither, so they are reserved here.)
    pub const RESERVED_MASK: u64 =
        !(Self::VECTOR_MASK | Self::MASKED | Self::AUTO_EOI | Self::POLLING);
    /// Vectors below 16 are exceptions, not interrupts.
    pub const MIN_VECTOR: u8 = 16;
    /// Every SINT starts masked with vector 0.
    pub const AT_RESET: Self = Self(Self::MASKED);

    pub const fn vector(self) -> u8 {
        (self.0 & Self::VECTOR_MASK) as u8
    }

    pub const fn masked(self) -> bool {
        self.0 & Self::MASKED != 0
    }

    pub const fn auto_eoi(self) -> bool {
        self.0 & Self::AUTO_EOI != 0
    }

    /// Polling SINTs receive messages and flags but never raise an interrupt.
    pub const fn polling(self) -> bool {
        self.0 & Self::POLLING != 0
    }

    pub const fn new(vector: u8) -> Self {
        Self(vector as u64)
    }

    pub const fn with_masked(self, on: bool) -> Self {
        Self((self.0 & !Self::MASKED) | if on { Self::MASKED } else { 0 })
    }

    pub const fn with_auto_eoi(self, on: bool) -> Self {
        Self((self.0 & !Self::AUTO_EOI) | if on { Self::AUTO_EOI } else { 0 })
    }

    pub const fn with_polling(self, on: bool) -> Self {
        Self((self.0 & !Self::POLLING) | if on { Self::POLLING } else { 0 })
    }

    /// Whether a guest may write this value: no reserved bits, and an unmasked SINT
    /// names a real interrupt vector. (A masked SINT may keep vector 0, which is what
    /// guests write when they park one.)
    pub const fn is_valid_write(self) -> bool {
        self.0 & Self::RESERVED_MASK == 0 && (self.masked() || self.vector() >= Self::MIN_VECTOR)
    }
}

/// SCONTROL: bit 0 enables the whole SynIC of a VP.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct ScontrolRegister(pub u64);

impl ScontrolRegister {
    const ENABLE: u64 = 1;
    pub const RESERVED_MASK: u64 = !Self::ENABLE;
    pub const AT_RESET: Self = Self(0);

    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    pub const fn new(enabled: bool) -> Self {
        Self(if enabled { Self::ENABLE } else { 0 })
    }
}

/// SIMP / SIEFP: bit 0 enables the overlay page, bits 12-63 are its GPA page number.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct SimpSiefpRegister(pub u64);

impl SimpSiefpRegister {
    const ENABLE: u64 = 1;
    /// Bits 1-11 (RsvdP in the TLFS; this SynIC keeps them zero and refuses others).
    pub const RESERVED_MASK: u64 = 0xFFE;
    pub const AT_RESET: Self = Self(0);

    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    pub const fn base_gpn(self) -> u64 {
        self.0 >> HV_PAGE_SHIFT
    }

    pub const fn base_gpa(self) -> u64 {
        self.0 & !((1 << HV_PAGE_SHIFT) - 1)
    }

    pub const fn new(enabled: bool, gpn: u64) -> Self {
        Self(gpn << HV_PAGE_SHIFT | if enabled { Self::ENABLE } else { 0 })
    }
}

/// The MSR writes, in order, with which a guest enables a SynIC the way Linux's
/// hv_synic_enable_regs does: the message page, the event-flags page, one SINT
/// unmasked at `vector`, then SCONTROL.
pub const fn enable_writes(simp_gpa: u64, siefp_gpa: u64, sint: u8, vector: u8) -> [(u32, u64); 4] {
    use crate::msr::{HV_X64_MSR_SCONTROL, HV_X64_MSR_SIEFP, HV_X64_MSR_SIMP, HV_X64_MSR_SINT0};
    [
        (
            HV_X64_MSR_SIMP,
            SimpSiefpRegister::new(true, simp_gpa >> HV_PAGE_SHIFT).0,
        ),
        (
            HV_X64_MSR_SIEFP,
            SimpSiefpRegister::new(true, siefp_gpa >> HV_PAGE_SHIFT).0,
        ),
        (HV_X64_MSR_SINT0 + sint as u32, SintRegister::new(vector).0),
        (HV_X64_MSR_SCONTROL, ScontrolRegister::new(true).0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_writes_follow_linux_order() {
        let [simp, siefp, sint, scontrol] = enable_writes(0x8000, 0x9000, 2, 0x30);
        assert_eq!(simp, (crate::msr::HV_X64_MSR_SIMP, 0x8001));
        assert_eq!(siefp, (crate::msr::HV_X64_MSR_SIEFP, 0x9001));
        assert_eq!(sint, (crate::msr::HV_X64_MSR_SINT0 + 2, 0x30));
        assert_eq!(scontrol, (crate::msr::HV_X64_MSR_SCONTROL, 1));
    }

    #[test]
    fn sint_layout_matches_linux_hv_synic_sint() {
        // vector:8, reserved1:8, masked:1, auto_eoi:1, polling:1
        let s = SintRegister::new(0x42)
            .with_masked(false)
            .with_auto_eoi(true)
            .with_polling(true);
        assert_eq!(s.0, 0x42 | 1 << 17 | 1 << 18);
        assert!(s.is_valid_write());
        assert!(SintRegister::AT_RESET.masked());
        assert_eq!(SintRegister::AT_RESET.0, 0x10000);
    }

    #[test]
    fn sint_write_validity() {
        assert!(
            SintRegister::AT_RESET.is_valid_write(),
            "masked vector 0 is fine"
        );
        assert!(
            !SintRegister::new(15).is_valid_write(),
            "unmasked exception vector"
        );
        assert!(SintRegister::new(16).is_valid_write());
        assert!(!SintRegister(0x30 | 1 << 8).is_valid_write());
        assert!(!SintRegister(0x30 | 1 << 19).is_valid_write());
        assert!(!SintRegister(0x30 | 1 << 63).is_valid_write());
    }

    #[test]
    fn page_register_layout() {
        let r = SimpSiefpRegister::new(true, 0x1234);
        assert_eq!(r.0, 0x0123_4001);
        assert_eq!(r.base_gpa(), 0x0123_4000);
        assert_eq!(r.base_gpn(), 0x1234);
        assert!(r.enabled());
        assert_eq!(
            SimpSiefpRegister(0x0123_4002).0 & SimpSiefpRegister::RESERVED_MASK,
            2
        );
        assert!(ScontrolRegister::new(true).enabled());
        assert_eq!(ScontrolRegister(2).0 & ScontrolRegister::RESERVED_MASK, 2);
    }
}
