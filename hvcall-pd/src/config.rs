//! What kind of partition hvcall-pd presents to the guest.

use hvdef::cpuid::IsolationType;
use hvdef::Vtl;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Config {
    pub vp_count: u32,
    /// SNP, TDX or none; decides the hypercall instruction and CPUID 0x4000000C.
    pub isolation: IsolationType,
    /// Where host-visible GPAs start (vTOM on SNP, the shared bit on TDX).
    pub shared_gpa_boundary: Option<u64>,
    /// Advertise Confidential VMBus in CPUID 0x40000082.
    pub confidential_vmbus: bool,
    /// The highest VTL the guest may enable; VTL0 means no VSM for the guest.
    pub max_guest_vtl: Vtl,
}

impl Config {
    pub fn isolated(&self) -> bool {
        self.isolation != IsolationType::NONE
    }

    /// The instruction the hypercall page uses: VMMCALL on AMD SEV-SNP, VMCALL
    /// otherwise (Intel, TDX partitioning's L2).
    pub fn hypercall_instruction(&self) -> [u8; 3] {
        if self.isolation == IsolationType::SNP {
            [0x0F, 0x01, 0xD9]
        } else {
            [0x0F, 0x01, 0xC1]
        }
    }

    /// The shared-GPA boundary as a bit number, when it is a power of two.
    pub fn shared_gpa_boundary_bits(&self) -> Option<u8> {
        self.shared_gpa_boundary
            .filter(|b| b.is_power_of_two())
            .map(|b| b.trailing_zeros() as u8)
    }
}
