//! The BSP's initial register state: the PVH entry state (32-bit flat protected
//! mode, paging off, at the kernel's entry point), as a native VP context and as
//! an SNP VMSA.

use igvm::snp_defs::{SevFeatures, SevSelector, SevVmsa};
use igvm_defs::IgvmNativeVpContextX64;
use zerocopy::FromZeros;

/// Flat 4 GiB code and data segments. The native context takes the descriptor's
/// attribute word (bits 8..16 of its second dword, then 20..24); the VMSA the
/// compressed 12-bit SVM form.
const CODE_SELECTOR: u16 = 0x10;
const DATA_SELECTOR: u16 = 0x18;
const CODE_ATTR: u16 = 0xc09b; // present, 32-bit, execute/read, accessed, 4 KiB granular
const DATA_ATTR: u16 = 0xc093; // present, 32-bit, read/write, accessed, 4 KiB granular
const CR0: u64 = 0x11; // PE, ET
const RFLAGS: u64 = 0x2;

pub fn native(entry: u64) -> IgvmNativeVpContextX64 {
    IgvmNativeVpContextX64 {
        rip: entry,
        rflags: RFLAGS,
        code_selector: CODE_SELECTOR,
        code_attributes: CODE_ATTR,
        code_base: 0,
        code_limit: 0xffff_ffff,
        data_selector: DATA_SELECTOR,
        data_attributes: DATA_ATTR,
        data_base: 0,
        data_limit: 0xffff_ffff,
        cr0: CR0,
        ..IgvmNativeVpContextX64::new_zeroed()
    }
}

/// The descriptor attribute word in the VMSA's packed form (APM vol. 2 §15.5.1,
/// "segment attributes": descriptor bits 8..16 then 20..24).
const fn svm_attr(attr: u16) -> u16 {
    (attr & 0xff) | ((attr >> 4) & 0xf00)
}

fn flat(selector: u16, attr: u16) -> SevSelector {
    SevSelector {
        selector,
        attrib: svm_attr(attr),
        limit: 0xffff_ffff,
        base: 0,
    }
}

/// The BSP's VMSA at VMPL0, refused by the same check the backend applies to the
/// guest VMSAs it builds (SNP active, vTOM at the partition boundary, EFER.SVME).
pub fn snp_bsp(entry: u64, vtom_bit: u8) -> Result<SevVmsa, String> {
    let mut v = SevVmsa::new_zeroed();
    v.cs = flat(CODE_SELECTOR, CODE_ATTR);
    for seg in [&mut v.ds, &mut v.es, &mut v.ss, &mut v.fs, &mut v.gs] {
        *seg = flat(DATA_SELECTOR, DATA_ATTR);
    }
    v.rip = entry;
    v.rflags = RFLAGS;
    v.cr0 = CR0;
    v.efer = snp_backend::vmsa::EFER_SVME;
    v.xcr0 = 1;
    v.pat = 0x0007_0406_0007_0406;
    v.dr6 = 0xffff_0ff0;
    v.dr7 = 0x400;
    v.vmpl = 0;
    v.sev_features = SevFeatures::new().with_snp(true).with_vtom(true);
    v.virtual_tom = 1u64 << vtom_bit;
    let mut page = snp_backend::vmsa::Vmsa::default();
    let bytes = zerocopy::IntoBytes::as_bytes(&v);
    let n = bytes.len().min(page.0.len());
    page.0[..n].copy_from_slice(&bytes[..n]);
    snp_backend::vmsa::check_guest_vmsa(&page, 0, 1u64 << vtom_bit)
        .map_err(|e| format!("the BSP's VMSA is refused: {e:?}"))?;
    Ok(v)
}
