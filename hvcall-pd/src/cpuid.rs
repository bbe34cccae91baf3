//! The hypervisor CPUID leaves, computed from the partition configuration.
//!
//! What a Linux guest checks (arch/x86/kernel/cpu/mshyperv.c): the max leaf in
//! 0x40000005..=0x4000FFFF with "Microsoft Hv", HYPERCALL and VP_INDEX privileges in
//! 0x40000003 EAX; it then reads the isolation configuration when the ISOLATION
//! privilege is set, and the Confidential VMBus bit from 0x40000082.

use hvdef::cpuid::*;

use crate::config::Config;

/// The answer for `leaf` (subleaves are not used by these leaves), or `None` for a
/// leaf outside the hypervisor range, which the vCPU PD answers itself.
pub fn cpuid(cfg: &Config, leaf: u32, _subleaf: u32) -> Option<[u32; 4]> {
    if !HYPERVISOR_LEAVES.contains(&leaf) {
        return None;
    }
    Some(match leaf {
        LEAF_VENDOR_AND_MAX => [
            LEAF_ISOLATION_CONFIG,
            HV_VENDOR[0],
            HV_VENDOR[1],
            HV_VENDOR[2],
        ],
        LEAF_INTERFACE => [HV_INTERFACE_SIGNATURE, 0, 0, 0],
        // Build, major.minor, service pack, branch: a plausible Hyper-V 10.0.
        LEAF_VERSION => [26100, 10 << 16, 0, 0],
        LEAF_FEATURES => {
            let eax = privilege::ACCESS_SYNIC_MSRS
                | privilege::ACCESS_HYPERCALL_MSRS
                | privilege::ACCESS_VP_INDEX;
            let mut ebx = privilege::HIGH_POST_MESSAGES
                | privilege::HIGH_SIGNAL_EVENTS
                | privilege::HIGH_ACCESS_VP_REGISTERS;
            if cfg.max_guest_vtl.get() > 0 {
                ebx |= privilege::HIGH_ACCESS_VSM;
            }
            if cfg.isolated() {
                ebx |= privilege::HIGH_ISOLATION;
            }
            // EDX: no XMM fast hypercalls, no fast output; this gateway takes fast
            // input in RDX:R8 only.
            [eax, ebx, 0, 0]
        }
        LEAF_ENLIGHTENMENTS => [
            recommendation::DEPRECATE_AUTO_EOI | recommendation::RELAXED_TIMING,
            // Never notify on long spin waits.
            u32::MAX,
            0,
            0,
        ],
        LEAF_IMPLEMENTATION_LIMITS => [cfg.vp_count, cfg.vp_count, 0, 0],
        LEAF_HARDWARE_FEATURES => [0, 0, 0, 0],
        LEAF_ISOLATION_CONFIG if cfg.isolated() => [
            ISOLATION_EAX_PARAVISOR_PRESENT,
            isolation_ebx(cfg.isolation, cfg.shared_gpa_boundary_bits()),
            0,
            0,
        ],
        LEAF_VS_VENDOR_AND_MAX => [LEAF_VS_PROPERTIES, VS_VENDOR[0], VS_VENDOR[1], VS_VENDOR[2]],
        LEAF_VS_INTERFACE => [VS_INTERFACE_SIGNATURE, 0, 0, 0],
        LEAF_VS_PROPERTIES => {
            let mut eax = 0;
            if cfg.confidential_vmbus {
                eax |= vs_properties::CONFIDENTIAL_VMBUS_AVAILABLE;
            }
            [eax, 0, 0, 0]
        }
        _ => [0; 4],
    })
}
