//! VMSA checks: the paravisor builds the VMPL2 guest's VMSA and must hand the CPU
//! one that runs the guest in the isolation the partition promises (APM vol. 2
//! §15.35.9 SEV_FEATURES, §15.36.7 VMPL; layout as Linux `sev_es_save_area`).

/// Offsets in the 4 KiB VMSA.
pub mod off {
    pub const VMPL: usize = 0xca;
    pub const CPL: usize = 0xcb;
    pub const EFER: usize = 0xd0;
    pub const RAX: usize = 0x1f8;
    pub const RCX: usize = 0x308;
    pub const RDX: usize = 0x310;
    pub const RBX: usize = 0x318;
    pub const GUEST_EXIT_INFO_1: usize = 0x390;
    pub const GUEST_EXIT_INFO_2: usize = 0x398;
    pub const SEV_FEATURES: usize = 0x3b0;
    pub const GUEST_EXIT_CODE: usize = 0x3c0;
    pub const VIRTUAL_TOM: usize = 0x3c8;
}

/// SEV_FEATURES bits.
pub mod feature {
    pub const SNP_ACTIVE: u64 = 1 << 0;
    pub const VTOM: u64 = 1 << 1;
    pub const REFLECT_VC: u64 = 1 << 2;
    pub const RESTRICTED_INJECTION: u64 = 1 << 3;
    pub const ALTERNATE_INJECTION: u64 = 1 << 4;
    pub const DEBUG_SWAP: u64 = 1 << 5;
    pub const PREVENT_HOST_IBS: u64 = 1 << 6;
    pub const BTB_ISOLATION: u64 = 1 << 7;
    pub const VMPL_SSS: u64 = 1 << 8;
    pub const SECURE_TSC: u64 = 1 << 9;
    /// Bits this backend knows; anything else is reserved here and refused, so
    /// a VMSA never enables a feature the paravisor did not reason about.
    pub const KNOWN: u64 = (1 << 10) - 1;
}

/// EFER.SVME: must be set in an SEV-ES/SNP VMSA or VMRUN fails.
pub use kernel_abi::vcpu::EFER_SVME;

crate::le::le_page! {
    /// A VMSA page image.
    Vmsa
}

impl Vmsa {
    pub fn vmpl(&self) -> u8 {
        self.0[off::VMPL]
    }

    pub fn set_vmpl(&mut self, vmpl: u8) {
        self.0[off::VMPL] = vmpl;
    }

    /// The initial state of the vTOM guest at `vmpl` with boundary `2^vtom_bit`.
    pub fn for_vtom_guest(vmpl: u8, vtom_bit: u8) -> Self {
        let mut v = Self::default();
        v.set_vmpl(vmpl);
        v.set_u64(off::EFER, EFER_SVME);
        v.set_u64(
            off::SEV_FEATURES,
            feature::SNP_ACTIVE | feature::VTOM | feature::RESTRICTED_INJECTION,
        );
        v.set_u64(
            off::VIRTUAL_TOM,
            1u64.checked_shl(u32::from(vtom_bit)).unwrap_or(0),
        );
        v
    }
}

/// Why a VMSA was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmsaError {
    /// VMPL field not the one the VMSA is meant for (or above 3).
    Vmpl(u8),
    /// SNPActive clear.
    NotSnp,
    /// Unknown (reserved here) SEV_FEATURES bits set.
    ReservedFeatures(u64),
    /// vTOM feature clear, or VIRTUAL_TOM not the partition's boundary.
    Vtom(u64),
    /// Restricted and alternate injection are exclusive.
    InjectionModes,
    /// EFER.SVME clear.
    Efer(u64),
}

/// Checks a guest VMSA before RMPADJUST makes it a VMSA page.
pub fn check_guest_vmsa(v: &Vmsa, expected_vmpl: u8, boundary: u64) -> Result<(), VmsaError> {
    let vmpl = v.vmpl();
    if vmpl > 3 || vmpl != expected_vmpl {
        return Err(VmsaError::Vmpl(vmpl));
    }
    let f = v.u64_at(off::SEV_FEATURES);
    if f & !feature::KNOWN != 0 {
        return Err(VmsaError::ReservedFeatures(f & !feature::KNOWN));
    }
    if f & feature::SNP_ACTIVE == 0 {
        return Err(VmsaError::NotSnp);
    }
    let both = feature::RESTRICTED_INJECTION | feature::ALTERNATE_INJECTION;
    if f & both == both {
        return Err(VmsaError::InjectionModes);
    }
    let vtom = v.u64_at(off::VIRTUAL_TOM);
    if f & feature::VTOM == 0 || vtom != boundary {
        return Err(VmsaError::Vtom(vtom));
    }
    let efer = v.u64_at(off::EFER);
    if efer & EFER_SVME == 0 {
        return Err(VmsaError::Efer(efer));
    }
    Ok(())
}
