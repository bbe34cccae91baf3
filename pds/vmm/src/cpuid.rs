//! The CPUID the guest sees. Hypervisor leaves (0x400000xx) come from hvcall-pd and
//! are adjusted for how this VM is presented; every other leaf is the real CPU's
//! answer with what the VMM does not emulate taken away (an MSR the guest would
//! then write is a #GP, a feature it would then use is missing), and what the VMM
//! adds (x2APIC, TSC deadline, the hypervisor bit) put in.

use hvdef::cpuid::vs_properties::CONFIDENTIAL_VMBUS_AVAILABLE;
use hvdef::cpuid::{
    privilege, recommendation, HYPERVISOR_LEAVES, LEAF_ENLIGHTENMENTS, LEAF_FEATURES,
    LEAF_ISOLATION_CONFIG, LEAF_VS_PROPERTIES,
};

/// How the VM is presented to its guest (a per-VM setting: guests without the
/// Confidential VMBus client must see plain Hyper-V).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Presentation {
    /// Plain Hyper-V: no isolation, no paravisor, VMBus over the hypervisor's SynIC.
    Plain,
    /// A paravisor with a vTOM boundary and Confidential VMBus on its own SynIC.
    Confidential,
}

/// 0x40000003 EAX: the frequency MSRs (0x40000022/23) may be read.
pub const ACCESS_FREQUENCY_MSRS: u32 = 1 << 11;
/// 0x40000003 EAX: the guest may make the TSC invariant (MSR 0x40000118); then it
/// trusts the TSC as its clock instead of marking it unstable.
pub const ACCESS_TSC_INVARIANT: u32 = 1 << 15;
/// 0x40000003 EDX: the frequency MSRs are available.
pub const FEATURE_FREQUENCY_MSRS_AVAILABLE: u32 = 1 << 8;

mod bit {
    // Leaf 1 ECX.
    pub const MONITOR: u32 = 1 << 3;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const EST: u32 = 1 << 7;
    pub const TM2: u32 = 1 << 8;
    pub const SDBG: u32 = 1 << 11;
    pub const PDCM: u32 = 1 << 15;
    pub const DCA: u32 = 1 << 18;
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const OSXSAVE: u32 = 1 << 27;
    pub const HYPERVISOR: u32 = 1 << 31;
    // Leaf 1 EDX.
    pub const MCE: u32 = 1 << 7;
    pub const MTRR: u32 = 1 << 12;
    pub const MCA: u32 = 1 << 14;
    pub const DS: u32 = 1 << 21;
    pub const ACPI: u32 = 1 << 22;
    pub const HTT: u32 = 1 << 28;
    pub const TM: u32 = 1 << 29;
    pub const PBE: u32 = 1 << 31;
    // Leaf 7 EBX / ECX / EDX.
    pub const TSC_ADJUST: u32 = 1 << 1;
    pub const PKU: u32 = 1 << 3;
    pub const WAITPKG: u32 = 1 << 5;
    pub const LA57: u32 = 1 << 16;
    /// RDPID reads IA32_TSC_AUX, which is not emulated.
    pub const RDPID: u32 = 1 << 22;
    pub const SPEC_CTRL_EDX: u32 = (1 << 26) | (1 << 27) | (1 << 29) | (1 << 31);
    // 0x80000001 ECX / EDX.
    pub const SVM: u32 = 1 << 2;
    pub const OSVW: u32 = 1 << 9;
    pub const IBS: u32 = 1 << 10;
    pub const SKINIT: u32 = 1 << 12;
    pub const WDT: u32 = 1 << 13;
    pub const TOPOEXT: u32 = 1 << 22;
    pub const PERFCTR_CORE: u32 = 1 << 23;
    pub const PERFCTR_NB: u32 = 1 << 24;
    pub const PERFCTR_LLC: u32 = 1 << 28;
    pub const MWAITX: u32 = 1 << 29;
    pub const RDTSCP: u32 = 1 << 27;
    // 0x80000008 EBX: IBPB, IBRS, STIBP, SSBD and friends (all need MSRs).
    pub const SPEC_CTRL_AMD: u32 = 0x0f0f_f000;
    // CR4.
    pub const CR4_OSXSAVE: u64 = 1 << 18;
    // Leaf 0xD subleaf 1 EAX.
    pub const XSAVEC: u32 = 1 << 1;
    pub const XSAVES: u32 = 1 << 3;
}

/// Bytes of a standard-format XSAVE area holding the components of `xcr0`: the
/// legacy area and header (576), or the end of the highest enabled component.
pub fn xsave_size(host: fn(u32, u32) -> [u32; 4], xcr0: u64) -> u32 {
    let mut size = 576u32;
    for component in 2..63u32 {
        if xcr0 & (1 << component) != 0 {
            let [len, offset, _, _] = host(0xd, component);
            size = size.max(offset.saturating_add(len));
        }
    }
    size
}

/// The answer for a non-hypervisor leaf, from the real CPU's answers (`host`), for
/// a guest with control register 4 `cr4` and extended control register `xcr0`.
pub fn native(
    leaf: u32,
    subleaf: u32,
    host: fn(u32, u32) -> [u32; 4],
    cr4: u64,
    xcr0: u64,
) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = host(leaf, subleaf);
    match leaf {
        // The XSAVE area's size follows the *guest's* XCR0, not the VMM's. XSAVES
        // and XSAVEC are hidden: they need IA32_XSS, which is not emulated.
        0xd if subleaf == 0 => b = xsave_size(host, xcr0),
        0xd if subleaf == 1 => {
            a &= !(bit::XSAVEC | bit::XSAVES);
            b = 0;
        }
        1 => {
            // APIC id 0, one logical processor per package.
            b &= 0x0000_ffff;
            b |= 1 << 16;
            c &= !(bit::MONITOR
                | bit::VMX
                | bit::SMX
                | bit::EST
                | bit::TM2
                | bit::SDBG
                | bit::PDCM
                | bit::DCA
                | bit::OSXSAVE);
            c |= bit::X2APIC | bit::TSC_DEADLINE | bit::HYPERVISOR;
            if cr4 & bit::CR4_OSXSAVE != 0 {
                c |= bit::OSXSAVE;
            }
            d &= !(bit::MCE
                | bit::MTRR
                | bit::MCA
                | bit::DS
                | bit::ACPI
                | bit::HTT
                | bit::TM
                | bit::PBE);
        }
        // Monitor/mwait, thermal and power, perfmon, cache QoS, processor trace:
        // nothing of it is emulated.
        5 | 6 | 0xa | 0xf | 0x10 | 0x14 => return [0; 4],
        7 => {
            if subleaf == 0 {
                b &= !bit::TSC_ADJUST;
                c &= !(bit::PKU | bit::WAITPKG | bit::LA57 | bit::RDPID);
                d &= !bit::SPEC_CTRL_EDX;
            } else {
                return [0; 4];
            }
        }
        // One thread, one core: x2APIC id 0 at both levels.
        0xb | 0x1f => {
            return match subleaf {
                0 => [0, 1, 0x100, 0],
                1 => [0, 1, 0x200 | 1, 0],
                _ => [0, 0, subleaf, 0],
            }
        }
        0x8000_0001 => {
            c &= !(bit::SVM
                | bit::OSVW
                | bit::IBS
                | bit::SKINIT
                | bit::WDT
                | bit::TOPOEXT
                | bit::PERFCTR_CORE
                | bit::PERFCTR_NB
                | bit::PERFCTR_LLC
                | bit::MWAITX);
            d &= !bit::RDTSCP;
        }
        0x8000_0008 => {
            b &= !bit::SPEC_CTRL_AMD;
            // One core.
            c &= !0xff;
        }
        // SVM, SEV, extended APIC topology, performance leaves: not offered.
        0x8000_000a | 0x8000_001e | 0x8000_001f | 0x8000_0022 => return [0; 4],
        _ => {}
    }
    a = if leaf == 0xd || leaf == 0 || leaf >= 0x8000_0000 || a != 0 {
        a
    } else {
        0
    };
    [a, b, c, d]
}

/// Adjusts hvcall-pd's answer for hypervisor leaf `leaf` to this VM's
/// presentation, adding what the VMM itself serves (the frequency MSRs).
pub fn hypervisor(leaf: u32, answer: [u32; 4], presentation: Presentation) -> [u32; 4] {
    let [mut a, mut b, c, mut d] = answer;
    match leaf {
        LEAF_FEATURES => {
            a |= ACCESS_FREQUENCY_MSRS | ACCESS_TSC_INVARIANT;
            d |= FEATURE_FREQUENCY_MSRS_AVAILABLE;
            if presentation == Presentation::Plain {
                b &= !(privilege::HIGH_ISOLATION | privilege::HIGH_ACCESS_VSM);
            }
        }
        // This VMM's local APIC implements AutoEOI (`Lapic::request_auto_eoi`), so the
        // guest may use it for SynIC interrupts: Linux then writes no EOI for VMBus
        // interrupts, one MSR exit fewer each (it EOIs only when told AutoEOI is
        // deprecated, which hardware APIC virtualization needs and this VMM has not).
        LEAF_ENLIGHTENMENTS => a &= !recommendation::DEPRECATE_AUTO_EOI,
        LEAF_ISOLATION_CONFIG if presentation == Presentation::Plain => return [0; 4],
        LEAF_VS_PROPERTIES if presentation == Presentation::Plain => {
            a &= !CONFIDENTIAL_VMBUS_AVAILABLE;
        }
        _ => {}
    }
    [a, b, c, d]
}

/// Whether hvcall-pd owns `leaf`.
pub fn is_hypervisor_leaf(leaf: u32) -> bool {
    HYPERVISOR_LEAVES.contains(&leaf)
}

/// Executes CPUID on the real CPU (ring 3 may: CPUID never faults on AMD).
#[cfg(target_arch = "x86_64")]
pub fn host(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_one_offers_x2apic_and_deadline_and_hides_vmx_mtrr_and_mca() {
        fn host(_: u32, _: u32) -> [u32; 4] {
            [0x800f12, 0xff08_0800, bit::VMX | bit::MONITOR, u32::MAX]
        }
        let [_, b, c, d] = native(1, 0, host, 0, 1);
        assert_eq!(b >> 24, 0, "APIC id");
        assert_ne!(c & bit::X2APIC, 0);
        assert_ne!(c & bit::TSC_DEADLINE, 0);
        assert_ne!(c & bit::HYPERVISOR, 0);
        assert_eq!(c & (bit::VMX | bit::MONITOR | bit::OSXSAVE), 0);
        assert_eq!(d & (bit::MTRR | bit::MCA | bit::MCE), 0);
        let [_, _, c, _] = native(1, 0, |_, _| [0; 4], bit::CR4_OSXSAVE, 1);
        assert_ne!(c & bit::OSXSAVE, 0, "OSXSAVE follows the guest's CR4");
    }

    #[test]
    fn svm_and_sev_are_never_offered() {
        let all = |_, _| [u32::MAX; 4];
        assert_eq!(native(0x8000_0001, 0, all, 0, 1)[2] & bit::SVM, 0);
        assert_eq!(native(0x8000_000a, 0, all, 0, 1), [0; 4]);
        assert_eq!(native(0x8000_001f, 0, all, 0, 1), [0; 4]);
    }

    /// A host with AVX (component 2: 256 bytes at 576) and AVX-512 state
    /// (components 5..=7, ending at 2688).
    fn xsave_host(leaf: u32, sub: u32) -> [u32; 4] {
        match (leaf, sub) {
            (0xd, 0) => [0xe7, 2696, 2696, 0],
            (0xd, 1) => [0xf, 2440, 0, 0],
            (0xd, 2) => [256, 576, 0, 0],
            (0xd, 5) => [64, 1088, 0, 0],
            (0xd, 6) => [512, 1152, 0, 0],
            (0xd, 7) => [1024, 1664, 0, 0],
            _ => [0; 4],
        }
    }

    #[test]
    fn xsave_size_follows_the_guests_xcr0() {
        assert_eq!(native(0xd, 0, xsave_host, 0, 0x3)[1], 576);
        assert_eq!(native(0xd, 0, xsave_host, 0, 0x7)[1], 832);
        assert_eq!(native(0xd, 0, xsave_host, 0, 0xe7)[1], 2688);
        assert_eq!(
            native(0xd, 0, xsave_host, 0, 0x7)[2],
            2696,
            "ECX: all supported"
        );
        let sub1 = native(0xd, 1, xsave_host, 0, 0x7);
        assert_eq!(sub1[0] & (bit::XSAVEC | bit::XSAVES), 0);
        assert_eq!(sub1[1], 0);
    }

    #[test]
    fn plain_presentation_hides_isolation_and_confidential_vmbus() {
        let hv = [
            0x2f,
            privilege::HIGH_ISOLATION | privilege::HIGH_POST_MESSAGES,
            0,
            0,
        ];
        let plain = hypervisor(LEAF_FEATURES, hv, Presentation::Plain);
        assert_eq!(plain[1] & privilege::HIGH_ISOLATION, 0);
        assert_ne!(plain[1] & privilege::HIGH_POST_MESSAGES, 0);
        assert_ne!(plain[0] & ACCESS_FREQUENCY_MSRS, 0);
        let conf = hypervisor(LEAF_FEATURES, hv, Presentation::Confidential);
        assert_ne!(conf[1] & privilege::HIGH_ISOLATION, 0);
        assert_eq!(
            hypervisor(LEAF_ISOLATION_CONFIG, [1, 2, 0, 0], Presentation::Plain),
            [0; 4]
        );
        let snp_vtom = [1, 2 | (1 << 5) | (36 << 6), 0, 0];
        assert_eq!(
            hypervisor(LEAF_ISOLATION_CONFIG, snp_vtom, Presentation::Confidential),
            snp_vtom,
            "the paravisor's isolation (SNP with a vTOM) as hvcall-pd reports it"
        );
        let vs = [CONFIDENTIAL_VMBUS_AVAILABLE, 0, 0, 0];
        assert_eq!(
            hypervisor(LEAF_VS_PROPERTIES, vs, Presentation::Plain)[0],
            0
        );
        assert_eq!(
            hypervisor(LEAF_VS_PROPERTIES, vs, Presentation::Confidential),
            vs
        );
    }
    #[test]
    fn auto_eoi_is_not_deprecated_to_the_guest() {
        let hints = recommendation::DEPRECATE_AUTO_EOI | recommendation::RELAXED_TIMING;
        for p in [Presentation::Plain, Presentation::Confidential] {
            let [a, b, ..] = hypervisor(LEAF_ENLIGHTENMENTS, [hints, u32::MAX, 0, 0], p);
            assert_eq!(a, recommendation::RELAXED_TIMING, "{p:?}");
            assert_eq!(b, u32::MAX);
        }
    }
}
