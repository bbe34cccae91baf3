//! Hyper-V synthetic MSR numbers and the hypercall-page MSR layout.

use crate::HV_PAGE_SHIFT;

pub const HV_X64_MSR_GUEST_OS_ID: u32 = 0x4000_0000;
pub const HV_X64_MSR_HYPERCALL: u32 = 0x4000_0001;
pub const HV_X64_MSR_VP_INDEX: u32 = 0x4000_0002;
pub const HV_X64_MSR_SCONTROL: u32 = 0x4000_0080;
pub const HV_X64_MSR_SVERSION: u32 = 0x4000_0081;
pub const HV_X64_MSR_SIEFP: u32 = 0x4000_0082;
pub const HV_X64_MSR_SIMP: u32 = 0x4000_0083;
pub const HV_X64_MSR_EOM: u32 = 0x4000_0084;
pub const HV_X64_MSR_SINT0: u32 = 0x4000_0090;
pub const HV_X64_MSR_SINT15: u32 = 0x4000_009F;

/// The SINT index an MSR number names, if it is one of SINT0..=SINT15.
pub const fn sint_index(msr: u32) -> Option<u8> {
    if msr >= HV_X64_MSR_SINT0 && msr <= HV_X64_MSR_SINT15 {
        Some((msr - HV_X64_MSR_SINT0) as u8)
    } else {
        None
    }
}

/// Whether an MSR belongs to the SynIC (and so to synic-pd).
pub const fn is_synic_msr(msr: u32) -> bool {
    matches!(
        msr,
        HV_X64_MSR_SCONTROL
            | HV_X64_MSR_SVERSION
            | HV_X64_MSR_SIEFP
            | HV_X64_MSR_SIMP
            | HV_X64_MSR_EOM
    ) || sint_index(msr).is_some()
}

/// HV_X64_MSR_HYPERCALL: bit 0 enables the hypercall page, bit 1 locks the MSR, bits
/// 12-63 are the page's GPA page number.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct HypercallMsr(pub u64);

impl HypercallMsr {
    const ENABLE: u64 = 1;
    const LOCKED: u64 = 2;
    /// Bits 2-11 (RsvdP).
    pub const RESERVED_MASK: u64 = 0xFFC;

    pub const fn enabled(self) -> bool {
        self.0 & Self::ENABLE != 0
    }

    pub const fn locked(self) -> bool {
        self.0 & Self::LOCKED != 0
    }

    pub const fn gpn(self) -> u64 {
        self.0 >> HV_PAGE_SHIFT
    }

    pub const fn gpa(self) -> u64 {
        self.gpn() << HV_PAGE_SHIFT
    }

    pub const fn new(enabled: bool, locked: bool, gpn: u64) -> Self {
        Self(
            gpn << HV_PAGE_SHIFT
                | if enabled { Self::ENABLE } else { 0 }
                | if locked { Self::LOCKED } else { 0 },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synic_msr_classification() {
        assert_eq!(sint_index(0x4000_0092), Some(2));
        assert_eq!(sint_index(0x4000_00A0), None);
        assert!(is_synic_msr(HV_X64_MSR_EOM));
        assert!(is_synic_msr(HV_X64_MSR_SINT15));
        assert!(!is_synic_msr(HV_X64_MSR_HYPERCALL));
        assert!(!is_synic_msr(0x4000_0085));
    }

    #[test]
    fn hypercall_msr_layout() {
        let m = HypercallMsr::new(true, false, 0xABC);
        assert_eq!(m.0, 0x00AB_C001);
        assert_eq!(m.gpa(), 0x00AB_C000);
        assert!(m.enabled() && !m.locked());
        assert!(HypercallMsr(3).locked());
    }
}
