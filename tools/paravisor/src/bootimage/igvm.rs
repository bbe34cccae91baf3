//! The IGVM form of a boot image, and its launch measurement.
//!
//! Every loadable page of the boot ELF (kernel and system image) becomes an IGVM
//! `PageData` directive at its physical address (zero pages for bss), plus the
//! PVH entry state (32-bit flat protected mode at the kernel's entry point) as the
//! BSP's native VP context, for the NATIVE platform.
//!
//! The measurement is the AMD SEV-SNP launch digest those pages would produce: a
//! SHA-384 chain over one PAGE_INFO block per page (SNP ABI spec, "PAGE_INFO"),
//! starting from zero. It identifies exactly the bytes a confidential launch would
//! attest. It does not cover a VMSA: the kernel does not yet run under SNP.

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmPlatformHeader, IgvmRevision};
use igvm_defs::{
    IgvmNativeVpContextX64, IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType,
    IGVM_NATIVE_PLATFORM_VERSION, IGVM_VHS_SUPPORTED_PLATFORM,
};
use sha2::{Digest, Sha384};

use super::elf;

const PAGE: u64 = 4096;
const COMPAT: u32 = 1;

/// One page to load: its physical address and bytes (`None`: a zero page).
pub type Page = (u64, Option<Vec<u8>>);

/// The pages of every PT_LOAD in `boot`, in program-header order.
pub fn pages(boot: &[u8]) -> Result<Vec<Page>, String> {
    let e = elf::parse(boot)?;
    let mut out = Vec::new();
    for p in e.loads() {
        let base = p.paddr & !(PAGE - 1);
        let end = (p.paddr + p.memsz).next_multiple_of(PAGE);
        let file = boot
            .get(p.offset as usize..(p.offset + p.filesz) as usize)
            .ok_or("segment outside the file")?;
        let mut pa = base;
        while pa < end {
            let mut page = vec![0u8; PAGE as usize];
            let mut any = false;
            for (i, byte) in page.iter_mut().enumerate() {
                let at = pa + i as u64;
                if at >= p.paddr && at < p.paddr + p.filesz {
                    *byte = file[(at - p.paddr) as usize];
                    any = true;
                }
            }
            out.push((pa, any.then_some(page)));
            pa += PAGE;
        }
    }
    Ok(out)
}

/// SNP PAGE_INFO page types.
const PAGE_TYPE_NORMAL: u8 = 1;
const PAGE_TYPE_ZERO: u8 = 3;

/// The SEV-SNP launch digest of loading `pages` in order (SHA-384, 48 bytes).
pub fn snp_launch_digest(pages: &[Page]) -> [u8; 48] {
    let mut digest = [0u8; 48];
    for (gpa, data) in pages {
        let mut info = [0u8; 0x70];
        info[..48].copy_from_slice(&digest);
        let page_type = match data {
            Some(bytes) => {
                info[48..96].copy_from_slice(&Sha384::digest(bytes));
                PAGE_TYPE_NORMAL
            }
            None => PAGE_TYPE_ZERO,
        };
        info[0x60..0x62].copy_from_slice(&0x70u16.to_le_bytes());
        info[0x62] = page_type;
        // 0x63 IMI_PAGE = 0; 0x64..0x67 VMPL3/2/1 permissions = 0 at launch.
        info[0x68..0x70].copy_from_slice(&gpa.to_le_bytes());
        digest.copy_from_slice(&Sha384::digest(info));
    }
    digest
}

/// The IGVM file for `boot`, and its launch digest.
pub fn build(boot: &[u8]) -> Result<(Vec<u8>, [u8; 48]), String> {
    let e = elf::parse(boot)?;
    let pages = pages(boot)?;
    let digest = snp_launch_digest(&pages);
    let mut directives: Vec<IgvmDirectiveHeader> = pages
        .into_iter()
        .map(|(gpa, data)| IgvmDirectiveHeader::PageData {
            gpa,
            compatibility_mask: COMPAT,
            flags: IgvmPageDataFlags::new(),
            data_type: IgvmPageDataType::NORMAL,
            data: data.unwrap_or_default(),
        })
        .collect();
    // PVH's entry state: 32-bit flat protected mode, paging off, at the entry point.
    let context = IgvmNativeVpContextX64 {
        rip: e.header.entry,
        rflags: 0x2,
        code_selector: 0x10,
        code_attributes: 0xc09b, // present, 32-bit, execute/read, accessed, 4 KiB granular
        code_base: 0,
        code_limit: 0xffff_ffff,
        data_selector: 0x18,
        data_attributes: 0xc093, // present, 32-bit, read/write, accessed, 4 KiB granular
        data_base: 0,
        data_limit: 0xffff_ffff,
        cr0: 0x11, // PE, ET
        ..IgvmNativeVpContextX64::new_zeroed_for_igvm()
    };
    directives.push(IgvmDirectiveHeader::X64NativeVpContext {
        compatibility_mask: COMPAT,
        vp_index: 0,
        context: Box::new(context),
    });
    let platform = IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: COMPAT,
        highest_vtl: 0,
        platform_type: IgvmPlatformType::NATIVE,
        platform_version: IGVM_NATIVE_PLATFORM_VERSION,
        shared_gpa_boundary: 0,
    });
    let file = IgvmFile::new(IgvmRevision::V1, vec![platform], vec![], directives)
        .map_err(|e| format!("IGVM: {e}"))?;
    let mut out = Vec::new();
    file.serialize(&mut out).map_err(|e| format!("IGVM: {e}"))?;
    Ok((out, digest))
}

/// Zeroed registers, for struct-update syntax.
trait Zeroed {
    fn new_zeroed_for_igvm() -> Self;
}

impl Zeroed for IgvmNativeVpContextX64 {
    fn new_zeroed_for_igvm() -> Self {
        <Self as zerocopy::FromZeros>::new_zeroed()
    }
}
