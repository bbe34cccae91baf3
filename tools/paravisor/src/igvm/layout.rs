//! Where the platform pages go and what they hold.
//!
//! GPAs are below 1 MiB, in the conventional-memory hole the PVH loader never
//! fills (the kernel is linked at 1 MiB and up), except the SNP VMSA, which is put
//! where KVM launches VMSAs (the top page below 2^48), outside guest RAM so the
//! guest can never map its own save area. [`check_disjoint`] refuses an image
//! that would overlap them.

use isolation::gpa::SVM_VTOM_BIT;

use super::{Page, Platform};

/// The partition boundary written into the SNP VMSA and platform header: the same
/// 2^36 the svm VMM presents, so the guest sees one vTOM on every platform.
pub const VTOM_BIT: u8 = SVM_VTOM_BIT;
/// TDX shared-GPA bit with GPAW 48.
pub const TDX_SHARED_BIT: u8 = 47;

pub const SNP_SECRETS_GPA: u64 = 0x9_e000;
pub const SNP_CPUID_GPA: u64 = 0x9_f000;
pub const SNP_VMSA_GPA: u64 = 0xffff_ffff_f000;
/// The page holding the TD's reset vector 0xFFFF_FFF0.
pub const TDX_RESET_PAGE_GPA: u64 = 0xffff_f000;

/// The CPUID leaves (function, subfunction, XCR0 in) the SNP CPUID page lists.
/// Outputs are zero: the loader fills them from the host and the firmware checks
/// them against the CPU (SNP ABI spec, "CPUID Reporting"); the page is measured
/// by type and GPA only.
const SNP_CPUID_LEAVES: [(u32, u32, u64); 9] = [
    (0x0, 0, 0),
    (0x1, 0, 0),
    (0x7, 0, 0),
    (0xb, 0, 0),
    (0xd, 0, 1),
    (0xd, 1, 1),
    (0x8000_0000, 0, 0),
    (0x8000_0001, 0, 0),
    (0x8000_001f, 0, 0),
];

/// The SNP CPUID page (Linux `struct snp_cpuid_table`): count, 12 reserved bytes,
/// then 48-byte entries {eax_in, ecx_in, xcr0_in, xss_in, eax, ebx, ecx, edx,
/// reserved}.
pub fn snp_cpuid_page() -> Vec<u8> {
    let mut page = vec![0u8; 4096];
    page[..4].copy_from_slice(&(SNP_CPUID_LEAVES.len() as u32).to_le_bytes());
    for (i, (function, sub, xcr0)) in SNP_CPUID_LEAVES.iter().enumerate() {
        let at = 16 + i * 48;
        page[at..at + 4].copy_from_slice(&function.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&sub.to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&xcr0.to_le_bytes());
    }
    page
}

/// The TD reset page: `mov eax, entry; jmp eax` at the reset vector, the rest
/// `hlt`. The BSP is already in 32-bit flat protected mode there, which is what
/// the kernel's 32-bit entry expects.
pub fn tdx_reset_page(entry: u64) -> Result<Vec<u8>, String> {
    let entry = u32::try_from(entry)
        .map_err(|_| format!("entry point {entry:#x} is not reachable from 32-bit mode"))?;
    let mut page = vec![0xf4u8; 4096];
    let at = 0xff0;
    page[at] = 0xb8;
    page[at + 1..at + 5].copy_from_slice(&entry.to_le_bytes());
    page[at + 5..at + 7].copy_from_slice(&[0xff, 0xe0]);
    Ok(page)
}

/// The platform pages `platform` adds.
pub fn platform_pages(platform: Platform) -> &'static [u64] {
    match platform {
        Platform::Native => &[],
        Platform::Snp => &[SNP_SECRETS_GPA, SNP_CPUID_GPA, SNP_VMSA_GPA],
        Platform::Tdx => &[TDX_RESET_PAGE_GPA],
    }
}

/// Refuses an image with a page where `platform` puts one of its own.
pub fn check_disjoint(platform: Platform, image: &[Page]) -> Result<(), String> {
    for gpa in platform_pages(platform) {
        if image.iter().any(|(at, _)| at == gpa) {
            return Err(format!(
                "the image has a page at {gpa:#x}, where the {} platform page goes",
                platform.name()
            ));
        }
    }
    Ok(())
}
