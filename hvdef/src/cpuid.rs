//! Hypervisor CPUID leaves and the bits a Linux guest's Hyper-V detection reads.

pub const LEAF_VENDOR_AND_MAX: u32 = 0x4000_0000;
pub const LEAF_INTERFACE: u32 = 0x4000_0001;
pub const LEAF_VERSION: u32 = 0x4000_0002;
pub const LEAF_FEATURES: u32 = 0x4000_0003;
pub const LEAF_ENLIGHTENMENTS: u32 = 0x4000_0004;
pub const LEAF_IMPLEMENTATION_LIMITS: u32 = 0x4000_0005;
pub const LEAF_HARDWARE_FEATURES: u32 = 0x4000_0006;
pub const LEAF_ISOLATION_CONFIG: u32 = 0x4000_000C;
/// Linux refuses a hypervisor whose max leaf is below this.
pub const LEAF_MIN_MAX: u32 = 0x4000_0005;

/// The virtualization-stack leaves (VS#1).
pub const LEAF_VS_VENDOR_AND_MAX: u32 = 0x4000_0080;
pub const LEAF_VS_INTERFACE: u32 = 0x4000_0081;
pub const LEAF_VS_PROPERTIES: u32 = 0x4000_0082;

/// The range of leaves the hypervisor (here: hvcall-pd) owns.
pub const HYPERVISOR_LEAVES: core::ops::RangeInclusive<u32> = 0x4000_0000..=0x4000_00FF;

/// Three little-endian register words spelling a 12-byte vendor signature.
pub const fn signature(s: &[u8; 12]) -> [u32; 3] {
    [
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    ]
}

pub const HV_VENDOR: [u32; 3] = signature(b"Microsoft Hv");
pub const VS_VENDOR: [u32; 3] = signature(b"Microsoft VS");
/// "Hv#1" in 0x40000001 EAX.
pub const HV_INTERFACE_SIGNATURE: u32 = u32::from_le_bytes(*b"Hv#1");
/// "VS#1" in 0x40000081 EAX.
pub const VS_INTERFACE_SIGNATURE: u32 = u32::from_le_bytes(*b"VS#1");

/// Partition privilege bits: EAX (low) and EBX (high) of 0x40000003.
pub mod privilege {
    pub const ACCESS_VP_RUNTIME: u32 = 1 << 0;
    pub const ACCESS_PARTITION_REFERENCE_COUNTER: u32 = 1 << 1;
    pub const ACCESS_SYNIC_MSRS: u32 = 1 << 2;
    pub const ACCESS_SYNTHETIC_TIMER_MSRS: u32 = 1 << 3;
    pub const ACCESS_HYPERCALL_MSRS: u32 = 1 << 5;
    pub const ACCESS_VP_INDEX: u32 = 1 << 6;

    pub const HIGH_CREATE_PARTITIONS: u32 = 1 << 0;
    pub const HIGH_POST_MESSAGES: u32 = 1 << 4;
    pub const HIGH_SIGNAL_EVENTS: u32 = 1 << 5;
    /// Marks the root partition; a guest must never see it.
    pub const HIGH_CPU_MANAGEMENT: u32 = 1 << 12;
    pub const HIGH_ACCESS_VSM: u32 = 1 << 16;
    pub const HIGH_ACCESS_VP_REGISTERS: u32 = 1 << 17;
    /// The partition is isolated (SNP/TDX); Linux then reads 0x4000000C.
    pub const HIGH_ISOLATION: u32 = 1 << 22;
}

/// Implementation recommendations: EAX of 0x40000004.
pub mod recommendation {
    pub const RELAXED_TIMING: u32 = 1 << 5;
    /// Guests should not use auto-EOI SINTs (they defeat APIC virtualization).
    pub const DEPRECATE_AUTO_EOI: u32 = 1 << 9;
}

/// `HvPartitionIsolationType` in 0x4000000C EBX bits 0-3.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct IsolationType(pub u8);

impl IsolationType {
    pub const NONE: Self = Self(0);
    pub const VBS: Self = Self(1);
    pub const SNP: Self = Self(2);
    pub const TDX: Self = Self(3);
}

/// 0x4000000C EAX: bit 0 = a paravisor is present.
pub const ISOLATION_EAX_PARAVISOR_PRESENT: u32 = 1;

/// 0x4000000C EBX: isolation type, and where the shared (host-visible) GPA range
/// starts as a bit number (`vTOM = 1 << bits` on SNP, the shared bit on TDX).
pub const fn isolation_ebx(kind: IsolationType, shared_gpa_boundary_bits: Option<u8>) -> u32 {
    let boundary = match shared_gpa_boundary_bits {
        Some(bits) => 1 << 5 | ((bits as u32 & 0x3F) << 6),
        None => 0,
    };
    (kind.0 as u32 & 0xF) | boundary
}

/// 0x40000082 EAX bits.
pub mod vs_properties {
    pub const IS_PORTABLE: u32 = 1 << 0;
    pub const DEBUG_DEVICE_PRESENT: u32 = 1 << 1;
    pub const EXTENDED_IOAPIC_RTE: u32 = 1 << 2;
    /// The paravisor offers Confidential VMBus (VMBus 6.0, encrypted rings).
    pub const CONFIDENTIAL_VMBUS_AVAILABLE: u32 = 1 << 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_spell_what_linux_compares() {
        let mut bytes = [0u8; 12];
        for (i, w) in HV_VENDOR.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&bytes, b"Microsoft Hv");
        assert_eq!(HV_INTERFACE_SIGNATURE, 0x3123_7648);
    }

    #[test]
    fn isolation_ebx_layout() {
        // Linux: HV_ISOLATION_TYPE GENMASK(3,0), HV_SHARED_GPA_BOUNDARY_ACTIVE BIT(5),
        // HV_SHARED_GPA_BOUNDARY_BITS GENMASK(11,6).
        assert_eq!(
            isolation_ebx(IsolationType::SNP, Some(46)),
            2 | 1 << 5 | 46 << 6
        );
        assert_eq!(isolation_ebx(IsolationType::TDX, None), 3);
    }
}
