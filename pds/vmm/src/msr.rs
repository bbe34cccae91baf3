//! Who answers which MSR. The kernel intercepts every MSR the VMCB does not swap
//! itself, so each RDMSR/WRMSR of the guest lands here and goes to exactly one
//! owner; anything nobody owns is a #GP, as on a CPU without that MSR (Linux's
//! `rdmsr_safe` callers expect exactly that).

use crate::devices::lapic::msr as apic;

/// The owner of an MSR.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// IA32_APIC_BASE, the x2APIC range and IA32_TSC_DEADLINE: the local APIC model.
    Lapic,
    /// HV_X64_MSR_TSC_FREQUENCY / HV_X64_MSR_APIC_FREQUENCY and
    /// HV_X64_MSR_TSC_INVARIANT_CONTROL: the VMM's clock.
    Frequency,
    /// SCONTROL .. SINT15 (and the synthetic timers, which synic-pd refuses).
    Synic,
    /// Every other synthetic MSR: guest OS id, hypercall page, VP index, ...
    Hvcall,
    /// A register the kernel loads from the state words (EFER, PAT).
    StateWord(usize),
    /// The time-stamp counter, read as the guest's RDTSC would.
    Tsc,
    /// MSR_AMD64_SEV_ES_GHCB, when the VM is presented as SEV-SNP.
    Ghcb,
    /// Nobody: #GP.
    None,
}

pub const IA32_TSC: u32 = 0x10;
pub const IA32_PAT: u32 = 0x277;
pub const EFER: u32 = 0xc000_0080;
pub const HV_TSC_FREQUENCY: u32 = 0x4000_0022;
pub const HV_APIC_FREQUENCY: u32 = 0x4000_0023;
pub const HV_TSC_INVARIANT_CONTROL: u32 = 0x4000_0118;
pub const HV_SYNIC_FIRST: u32 = 0x4000_0080;
pub const HV_SYNIC_LAST: u32 = 0x4000_00bf;
pub const HV_FIRST: u32 = 0x4000_0000;
pub const HV_LAST: u32 = 0x4000_ffff;

pub use kernel_abi::vcpu::EFER_SVME;
/// EFER bits a guest may set: SCE, LME, LMA, NXE.
pub const EFER_GUEST_BITS: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

pub fn owner(msr: u32) -> Owner {
    match msr {
        apic::APIC_BASE | apic::TSC_DEADLINE | apic::X2APIC_FIRST..=apic::X2APIC_LAST => {
            Owner::Lapic
        }
        HV_TSC_FREQUENCY | HV_APIC_FREQUENCY | HV_TSC_INVARIANT_CONTROL => Owner::Frequency,
        HV_SYNIC_FIRST..=HV_SYNIC_LAST => Owner::Synic,
        HV_FIRST..=HV_LAST => Owner::Hvcall,
        EFER => Owner::StateWord(kernel_abi::vcpu::Word::EFER),
        IA32_PAT => Owner::StateWord(kernel_abi::vcpu::Word::PAT),
        IA32_TSC => Owner::Tsc,
        crate::ghcb::MSR_GHCB => Owner::Ghcb,
        _ => Owner::None,
    }
}

/// Whether `value` is a PAT every entry of which is a valid memory type
/// (0, 1, 4, 5, 6, 7); anything else is a #GP.
pub fn valid_pat(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|&t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_msr_has_one_owner() {
        let table = [
            (0x1b, Owner::Lapic),
            (0x80b, Owner::Lapic),
            (0x6e0, Owner::Lapic),
            (0x4000_0000, Owner::Hvcall),
            (0x4000_0001, Owner::Hvcall),
            (0x4000_0022, Owner::Frequency),
            (0x4000_0118, Owner::Frequency),
            (0x4000_0080, Owner::Synic),
            (0x4000_0092, Owner::Synic),
            (0x4000_00b0, Owner::Synic),
            (0xc000_0080, Owner::StateWord(kernel_abi::vcpu::Word::EFER)),
            (0x277, Owner::StateWord(kernel_abi::vcpu::Word::PAT)),
            (0x10, Owner::Tsc),
            (0xc001_0130, Owner::Ghcb),
            (0x48, Owner::None),
            (0xc001_0114, Owner::None),
            (0x3a, Owner::None),
        ];
        for (msr, want) in table {
            assert_eq!(owner(msr), want, "msr {msr:#x}");
        }
    }

    #[test]
    fn pat_types_are_checked_per_entry() {
        assert!(valid_pat(0x0007_0406_0007_0406));
        assert!(!valid_pat(0x0007_0406_0007_0402));
        assert!(!valid_pat(0x0800_0000_0000_0000));
    }
}
