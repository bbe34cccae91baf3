//! Whole-file vectors (computed independently with Python's hashlib from the
//! SNP ABI PAGE_INFO table, Linux's `sev_es_save_area` offsets and the TDX
//! PAGE.ADD/MR.EXTEND blocks), the file round trip, and refusals of directives
//! whose measurement this tool does not know.

use igvm::IgvmDirectiveHeader;
use igvm_defs::{IgvmPageDataFlags, IgvmPageDataType};

use super::measure::{measure, measure_file, Measured};
use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn counting_page() -> Vec<u8> {
    (0..4096).map(|i| i as u8).collect()
}

const ENTRY: u64 = 0x10_0000;

fn digest(platform: Platform, image: Vec<Page>) -> String {
    let d = directives_for(ENTRY, image, platform).unwrap();
    hex(&measure(platform, &d).unwrap().unwrap())
}

/// One NORMAL page at 1 MiB, the secrets and CPUID pages, the BSP's VMSA.
#[test]
fn snp_vector_one_page_and_the_vmsa() {
    assert_eq!(
        digest(Platform::Snp, vec![(ENTRY, Some(counting_page()))]),
        "0b7e6b387561a685f811daee0f2ee503509bcb07d7a738e7c6d07383dad497e6\
         8203c56c3197b14d5f6de382f69ded0f"
    );
}

/// One page at 1 MiB, a zero page after it, the reset page (all measured).
#[test]
fn tdx_vector_one_page_a_zero_page_and_the_reset_page() {
    assert_eq!(
        digest(
            Platform::Tdx,
            vec![(ENTRY, Some(counting_page())), (ENTRY + 0x1000, None)]
        ),
        "90598ccf18692fc2b64be4824e7a31eec0c04a3c6fa2dea898843857d680b063\
         f82b29edb8ad680f8cbe7d9fa604b620"
    );
}

/// The VMSA fields at Linux `struct sev_es_save_area` offsets (the layout the
/// snp-backend's checks use), so the igvm crate's struct and ours agree.
#[test]
fn the_bsp_vmsa_is_laid_out_as_the_apm_save_area() {
    let v = vp::snp_bsp(ENTRY, layout::VTOM_BIT).unwrap();
    let b = zerocopy::IntoBytes::as_bytes(&v);
    let q = |off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
    let cases = [
        (0xd0, 1 << 12),                // EFER.SVME
        (0x158, 0x11),                  // CR0
        (0x170, 2),                     // RFLAGS
        (0x178, ENTRY),                 // RIP
        (0x268, 0x0007_0406_0007_0406), // PAT
        (0x3b0, 3),                     // SEV_FEATURES: SNP active, vTOM
        (0x3c8, 1 << 36),               // VIRTUAL_TOM
        (0x3e8, 1),                     // XCR0
    ];
    for (off, want) in cases {
        assert_eq!(q(off), want, "VMSA offset {off:#x}");
    }
    assert_eq!(b[0xca], 0, "VMPL0");
    // CS: selector, packed attributes, limit at 0x10.
    assert_eq!(
        &b[0x10..0x18],
        &[0x10, 0, 0x9b, 0x0c, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(&b[0x30..0x34], &[0x18, 0, 0x93, 0x0c]);
}

fn boot() -> Vec<u8> {
    crate::bootimage::tests::boot_image()
}

/// build writes a file whose recomputed digest is the one build printed; a
/// changed byte in it changes (or breaks) the measurement.
#[test]
fn built_files_measure_back_to_the_built_digest() {
    let boot = boot();
    for platform in [Platform::Native, Platform::Snp, Platform::Tdx] {
        let built = build(&boot, platform).unwrap();
        assert_eq!(build(&boot, platform).unwrap(), built, "deterministic");
        assert_eq!(
            measure_file(&built.file).unwrap(),
            Measured {
                platform,
                digest: built.digest
            }
        );
        assert_eq!(built.digest.is_some(), platform != Platform::Native);
    }
    let snp = build(&boot, Platform::Snp).unwrap();
    let tdx = build(&boot, Platform::Tdx).unwrap();
    assert_ne!(snp.digest, tdx.digest);
    // The last page's data is near the end of the file (before the platform
    // pages' data): flip a byte of the kernel image's data section.
    let mut changed = tdx.file.clone();
    let at = changed.len() - 3 * 4096 / 2;
    changed[at] ^= 1;
    match measure_file(&changed) {
        Ok(m) => assert_ne!(m.digest, tdx.digest),
        Err(e) => assert!(e.starts_with("not IGVM"), "{e}"),
    }
}

/// Every image page is typed: pages with file bytes are NORMAL with data, bss
/// pages carry none (zero pages), and the platform pages have their types.
#[test]
fn snp_pages_are_typed() {
    let d = directives(&boot(), Platform::Snp).unwrap();
    let types: Vec<(u64, IgvmPageDataType, bool)> = d
        .iter()
        .filter_map(|x| match x {
            IgvmDirectiveHeader::PageData {
                gpa,
                data_type,
                data,
                ..
            } => Some((*gpa, *data_type, data.is_empty())),
            _ => None,
        })
        .collect();
    assert!(types.contains(&(layout::SNP_SECRETS_GPA, IgvmPageDataType::SECRETS, true)));
    assert!(types.contains(&(layout::SNP_CPUID_GPA, IgvmPageDataType::CPUID_DATA, false)));
    assert!(types.iter().any(|t| t.1 == IgvmPageDataType::NORMAL && t.2));
    assert!(types
        .iter()
        .any(|t| t.1 == IgvmPageDataType::NORMAL && !t.2));
    assert!(matches!(
        d.last(),
        Some(IgvmDirectiveHeader::SnpVpContext {
            gpa: layout::SNP_VMSA_GPA,
            vp_index: 0,
            ..
        })
    ));
}

fn page(gpa: u64, flags: IgvmPageDataFlags, t: IgvmPageDataType, n: usize) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: 1,
        flags,
        data_type: t,
        data: vec![0; n],
    }
}

/// Directives whose measurement is not defined here are refused, not skipped.
#[test]
fn unknown_measurements_are_refused() {
    let plain = IgvmPageDataFlags::new();
    let cases: Vec<(Platform, IgvmDirectiveHeader, &str)> = vec![
        (
            Platform::Snp,
            page(
                0x1000,
                plain.with_is_2mb_page(true),
                IgvmPageDataType::NORMAL,
                0,
            ),
            "flags",
        ),
        (
            Platform::Tdx,
            page(0x1000, plain.with_shared(true), IgvmPageDataType::NORMAL, 0),
            "flags",
        ),
        (
            Platform::Tdx,
            page(0x1000, plain, IgvmPageDataType::SECRETS, 0),
            "PageData directive",
        ),
        (
            Platform::Snp,
            page(0x1000, plain, IgvmPageDataType(9), 0),
            "data type",
        ),
        (
            Platform::Snp,
            page(0x1001, plain, IgvmPageDataType::NORMAL, 0),
            "aligned",
        ),
        (
            Platform::Tdx,
            page(0x1000, plain, IgvmPageDataType::NORMAL, 17),
            "17 bytes",
        ),
        (
            Platform::Tdx,
            IgvmDirectiveHeader::SnpVpContext {
                gpa: 0,
                compatibility_mask: 1,
                vp_index: 0,
                vmsa: Box::new(vp::snp_bsp(0, 36).unwrap()),
            },
            "SnpVpContext directive",
        ),
        (
            Platform::Snp,
            IgvmDirectiveHeader::RequiredMemory {
                gpa: 0,
                compatibility_mask: 1,
                number_of_bytes: 4096,
                vtl2_protectable: false,
            },
            "RequiredMemory directive",
        ),
    ];
    for (platform, d, why) in cases {
        let e = measure(platform, &[d]).unwrap_err();
        assert!(e.contains(why), "{platform:?}: {e}");
    }
}

/// Unmeasured pages are measured by type (SNP) or PAGE.ADD only (TDX): their
/// contents do not count, their address does.
#[test]
fn unmeasured_pages_count_by_address_only() {
    let flags = IgvmPageDataFlags::new().with_unmeasured(true);
    for platform in [Platform::Snp, Platform::Tdx] {
        let run = |gpa: u64, fill: u8| {
            let mut d = page(gpa, flags, IgvmPageDataType::NORMAL, 4096);
            if let IgvmDirectiveHeader::PageData { data, .. } = &mut d {
                data.fill(fill);
            }
            measure(platform, &[d]).unwrap()
        };
        assert_eq!(run(0x1000, 1), run(0x1000, 2), "{platform:?}");
        assert_ne!(run(0x1000, 1), run(0x2000, 1), "{platform:?}");
    }
}

#[test]
fn garbage_is_not_an_igvm_file() {
    for bytes in [&b""[..], b"IGVM", &[0u8; 64]] {
        assert!(measure_file(bytes).is_err());
    }
}

#[test]
fn the_digest_line_is_the_documented_format() {
    let line = digest_line(Platform::Tdx, &[0xab; 48]);
    assert_eq!(line, format!("launch digest (tdx): {}", "ab".repeat(48)));
}

/// A page-data header whose file offset points before the data section or past
/// the end (what made igvm 0.4 subtract with overflow) is refused by our own walk.
#[test]
fn file_offsets_outside_the_data_section_are_refused() {
    let file = build(&boot(), Platform::Tdx).unwrap().file;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = u32_at(&file, 8) as usize;
    while u32_at(&file, at) != 0x302 {
        at += 8 + (u32_at(&file, at + 4) as usize).next_multiple_of(8);
    }
    for offset in [1u32, 0x20, u32::MAX - 10, file.len() as u32 - 100] {
        let mut bad = file.clone();
        bad[at + 8 + 12..at + 8 + 16].copy_from_slice(&offset.to_le_bytes());
        let e = measure_file(&bad).unwrap_err();
        assert!(e.contains("outside the data section"), "{offset:#x}: {e}");
    }
}
