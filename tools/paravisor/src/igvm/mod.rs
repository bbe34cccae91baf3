//! The IGVM form of a boot image for one platform, and its launch measurement.
//!
//! Every loadable page of the boot ELF (kernel and system image) becomes a
//! `PageData` directive at its physical address (bss pages carry no data: zero
//! pages), in program-header order. Then per platform:
//! - native: the PVH entry state (32-bit flat protected mode at the kernel's entry)
//!   as the BSP's native VP context. Nothing is measured.
//! - snp: the SNP secrets page and CPUID page ([`layout`]), then the BSP's VMSA at
//!   VMPL0 (the paravisor's own VMPL; the guest runs at VMPL2) in the same 32-bit
//!   entry state, with SNP active and the partition's vTOM.
//! - tdx: a reset page whose reset vector jumps to the kernel's 32-bit entry (a TD's
//!   BSP starts at 0xFFFF_FFF0 in 32-bit flat protected mode; TDX has no VP context
//!   to load).
//!
//! The measurement ([`measure`]) is computed from the very directives written, in
//! order, by the same code `verify` runs on the file it reads back.
//!
//! Checked only against the specs and models: no SNP or TDX machine has launched
//! these files. The kernel does not yet run as an SNP or TDX guest (it does not
//! PVALIDATE/accept its memory or use the GHCB for its own exits), so the files
//! pin down the measurement such a launch would attest, not a bootable guest.

pub mod layout;
pub mod measure;
mod vp;

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmPlatformHeader, IgvmRevision};
use igvm_defs::{
    IgvmPageDataFlags, IgvmPageDataType, IGVM_NATIVE_PLATFORM_VERSION,
    IGVM_SEV_SNP_PLATFORM_VERSION, IGVM_TDX_PLATFORM_VERSION, IGVM_VHS_SUPPORTED_PLATFORM,
};

pub use measure::{digest_line, Digest, Platform};

use crate::bootimage::elf;
use crate::failure::Failure;

const PAGE: u64 = 4096;
const COMPAT: u32 = 1;

/// One page to load: its physical address and bytes (`None`: a zero page).
pub type Page = (u64, Option<Vec<u8>>);

/// The pages of every PT_LOAD in `boot`, in program-header order.
pub fn pages(boot: &[u8]) -> Result<Vec<Page>, String> {
    let e = elf::parse(boot)?;
    let mut out = Vec::new();
    for p in e.loads() {
        let end = p
            .paddr
            .checked_add(p.memsz)
            .map(|e| e.next_multiple_of(PAGE))
            .ok_or("segment wraps the address space")?;
        let file = usize::try_from(p.offset)
            .ok()
            .zip(usize::try_from(p.offset.saturating_add(p.filesz)).ok())
            .and_then(|(a, b)| boot.get(a..b))
            .ok_or("segment outside the file")?;
        let mut pa = p.paddr & !(PAGE - 1);
        while pa < end {
            // The part of this page the segment's file bytes cover.
            let lo = pa.max(p.paddr);
            let hi = (pa + PAGE).min(p.paddr.saturating_add(p.filesz));
            let data = (lo < hi).then(|| {
                let mut page = vec![0u8; PAGE as usize];
                let src = &file[(lo - p.paddr) as usize..(hi - p.paddr) as usize];
                page[(lo - pa) as usize..(hi - pa) as usize].copy_from_slice(src);
                page
            });
            out.push((pa, data));
            pa += PAGE;
        }
    }
    Ok(out)
}

/// An IGVM file and the launch digest its platform measures (`None`: native).
#[derive(Debug, PartialEq, Eq)]
pub struct Built {
    pub file: Vec<u8>,
    pub digest: Option<Digest>,
}

fn page_data(gpa: u64, data_type: IgvmPageDataType, data: Vec<u8>) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: COMPAT,
        flags: IgvmPageDataFlags::new(),
        data_type,
        data,
    }
}

/// The directives for `boot` on `platform`, in the order they are measured.
pub fn directives(boot: &[u8], platform: Platform) -> Result<Vec<IgvmDirectiveHeader>, String> {
    directives_for(elf::parse(boot)?.header.entry, pages(boot)?, platform)
}

/// The directives for image pages `image` entered at `entry`.
pub fn directives_for(
    entry: u64,
    image: Vec<Page>,
    platform: Platform,
) -> Result<Vec<IgvmDirectiveHeader>, String> {
    layout::check_disjoint(platform, &image)?;
    let mut out: Vec<IgvmDirectiveHeader> = image
        .into_iter()
        .map(|(gpa, data)| page_data(gpa, IgvmPageDataType::NORMAL, data.unwrap_or_default()))
        .collect();
    match platform {
        Platform::Native => out.push(IgvmDirectiveHeader::X64NativeVpContext {
            compatibility_mask: COMPAT,
            vp_index: 0,
            context: Box::new(vp::native(entry)),
        }),
        Platform::Snp => {
            out.push(page_data(
                layout::SNP_SECRETS_GPA,
                IgvmPageDataType::SECRETS,
                vec![],
            ));
            out.push(page_data(
                layout::SNP_CPUID_GPA,
                IgvmPageDataType::CPUID_DATA,
                layout::snp_cpuid_page(),
            ));
            out.push(IgvmDirectiveHeader::SnpVpContext {
                gpa: layout::SNP_VMSA_GPA,
                compatibility_mask: COMPAT,
                vp_index: 0,
                vmsa: Box::new(vp::snp_bsp(entry, layout::VTOM_BIT)?),
            });
        }
        Platform::Tdx => out.push(page_data(
            layout::TDX_RESET_PAGE_GPA,
            IgvmPageDataType::NORMAL,
            layout::tdx_reset_page(entry)?,
        )),
    }
    Ok(out)
}

/// The IGVM file for `boot` on `platform`, and its launch digest.
pub fn build(boot: &[u8], platform: Platform) -> Result<Built, String> {
    let directives = directives(boot, platform)?;
    let digest = measure::measure(platform, &directives)?;
    let (version, shared_gpa_boundary, highest_vtl) = match platform {
        Platform::Native => (IGVM_NATIVE_PLATFORM_VERSION, 0, 0),
        // The paravisor is the most privileged level (VMPL0 / the TD's L1), which
        // IGVM calls VTL2; the guest below it is not in the file.
        Platform::Snp => (IGVM_SEV_SNP_PLATFORM_VERSION, 1 << layout::VTOM_BIT, 2),
        Platform::Tdx => (IGVM_TDX_PLATFORM_VERSION, 1 << layout::TDX_SHARED_BIT, 2),
    };
    let header = IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: COMPAT,
        highest_vtl,
        platform_type: platform.igvm_type(),
        platform_version: version,
        shared_gpa_boundary,
    });
    let file = IgvmFile::new(IgvmRevision::V1, vec![header], vec![], directives)
        .map_err(|e| format!("IGVM: {e}"))?;
    let mut out = Vec::new();
    file.serialize(&mut out).map_err(|e| format!("IGVM: {e}"))?;
    Ok(Built { file: out, digest })
}

/// `build --igvm PATH --platform NAME`: writes the file, prints its size and
/// (SNP, TDX) its launch digest line.
pub fn write(boot: &[u8], platform: &str, path: &std::path::Path) -> Result<(), Failure> {
    let platform = Platform::from_name(platform)
        .ok_or_else(|| Failure::msg(format!("unknown platform {platform}")))?;
    let built = build(boot, platform).map_err(Failure::Message)?;
    crate::build::write_file(path, &built.file)?;
    println!(
        "built {}: {} bytes, IGVM for the {} platform",
        path.display(),
        built.file.len(),
        platform.name()
    );
    if let Some(d) = &built.digest {
        println!("{}", digest_line(platform, d));
    }
    Ok(())
}

/// `verify --igvm PATH`: the file must be exactly the IGVM form of `boot` for the
/// platform its header names; returns what to print, or why not.
pub fn check(boot: &[u8], path: &std::path::Path) -> Result<Vec<String>, String> {
    let given = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let measured = measure::measure_file(&given).map_err(|e| format!("{}: {e}", path.display()))?;
    let derived = build(boot, measured.platform)
        .map_err(|e| format!("{}: the image has no IGVM form: {e}", path.display()))?;
    if derived.file != given {
        return Err(format!(
            "{} is not the {} IGVM form of the image",
            path.display(),
            measured.platform.name()
        ));
    }
    let mut lines = vec![format!(
        "{} is the image's IGVM form for the {} platform",
        path.display(),
        measured.platform.name()
    )];
    lines.extend(measured.digest.map(|d| digest_line(measured.platform, &d)));
    Ok(lines)
}

#[cfg(test)]
mod tests;
