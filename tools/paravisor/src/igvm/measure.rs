//! The launch measurement of an IGVM file, recomputed from its directives in file
//! order: what a loader following the IGVM format would make the platform measure.
//!
//! - SEV-SNP: each `PageData` is one SNP_LAUNCH_UPDATE (a NORMAL page, a ZERO page
//!   when it carries no data, UNMEASURED when flagged so, SECRETS or CPUID for
//!   those data types) and the BSP's VMSA (`SnpVpContext`) is a VMSA page at its
//!   GPA; see `snp_backend::measure` for the PAGE_INFO chain.
//! - TDX: each `PageData` is one TDH.MEM.PAGE.ADD (a page without data adds zeros)
//!   followed, unless flagged unmeasured, by sixteen TDH.MR.EXTENDs; see
//!   `tdx_backend::measure`. The BSP starts in the architectural reset state, so
//!   there is no VP-context directive; SNP-only page types are refused.
//! - native: nothing is measured.
//!
//! The file is host-controlled input when `verify` reads it: every directive this
//! code does not know how a platform measures is refused, never skipped, so a
//! directive cannot slip unmeasured state past the printed digest. Also compiled
//! into the `igvm_measure` fuzz target (which is why it needs nothing from the
//! rest of the CLI).

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmPlatformHeader};
use igvm_defs::{IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType, PAGE_SIZE_4K};
use snp_backend::measure::{LaunchDigest, LaunchPage};
use tdx_backend::measure::Mrtd;

/// The platform an IGVM file is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Native,
    Snp,
    Tdx,
}

impl Platform {
    pub const NAMES: [&'static str; 3] = ["native", "snp", "tdx"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "native" => Some(Platform::Native),
            "snp" => Some(Platform::Snp),
            "tdx" => Some(Platform::Tdx),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Native => "native",
            Platform::Snp => "snp",
            Platform::Tdx => "tdx",
        }
    }

    pub fn igvm_type(self) -> IgvmPlatformType {
        match self {
            Platform::Native => IgvmPlatformType::NATIVE,
            Platform::Snp => IgvmPlatformType::SEV_SNP,
            Platform::Tdx => IgvmPlatformType::TDX,
        }
    }
}

/// SHA-384, the size of both platforms' measurement.
pub type Digest = [u8; 48];

/// The one line `build` and `verify` print for a measured platform.
pub fn digest_line(platform: Platform, digest: &Digest) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("launch digest ({}): {hex}", platform.name())
}

const PAGE: usize = PAGE_SIZE_4K as usize;

/// A directive's page: data of exactly one page, or none (zero-filled).
fn page_of(gpa: u64, data: &[u8]) -> Result<Option<[u8; PAGE]>, String> {
    if !gpa.is_multiple_of(PAGE_SIZE_4K) {
        return Err(format!("page at {gpa:#x} is not 4 KiB aligned"));
    }
    match data.len() {
        0 => Ok(None),
        PAGE => {
            let mut p = [0u8; PAGE];
            p.copy_from_slice(data);
            Ok(Some(p))
        }
        n => Err(format!("page at {gpa:#x} has {n} bytes of data")),
    }
}

/// 2 MiB and host-visible ("shared") page data are not part of what this tool
/// writes or measures; refused rather than guessed about.
fn supported_flags(gpa: u64, flags: &IgvmPageDataFlags) -> Result<(), String> {
    if flags.is_2mb_page() || flags.shared() || flags.reserved() != 0 {
        return Err(format!("page at {gpa:#x}: flags {flags:?} not supported"));
    }
    Ok(())
}

fn unsupported(platform: Platform, d: &IgvmDirectiveHeader) -> String {
    let what = format!("{d:?}");
    let name = what.split([' ', '(', '{']).next().unwrap_or("?");
    format!(
        "{name} directive: not part of what this tool measures for {}",
        platform.name()
    )
}

/// The measurement of `directives` on `platform` (`None` for native).
pub fn measure(
    platform: Platform,
    directives: &[IgvmDirectiveHeader],
) -> Result<Option<Digest>, String> {
    match platform {
        Platform::Native => Ok(None),
        Platform::Snp => snp(directives).map(Some),
        Platform::Tdx => tdx(directives).map(Some),
    }
}

/// A `PageData` directive with its flags checked and its data read.
struct PageData {
    gpa: u64,
    data_type: IgvmPageDataType,
    unmeasured: bool,
    /// `None`: no data, the page is zeros.
    bytes: Option<[u8; PAGE]>,
}

/// `d` as a page-data directive both platforms can measure, or `None` for a
/// directive of another kind.
fn page_data(d: &IgvmDirectiveHeader) -> Result<Option<PageData>, String> {
    let IgvmDirectiveHeader::PageData {
        gpa,
        flags,
        data_type,
        data,
        ..
    } = d
    else {
        return Ok(None);
    };
    supported_flags(*gpa, flags)?;
    Ok(Some(PageData {
        gpa: *gpa,
        data_type: *data_type,
        unmeasured: flags.unmeasured(),
        bytes: page_of(*gpa, data)?,
    }))
}

fn snp(directives: &[IgvmDirectiveHeader]) -> Result<Digest, String> {
    let mut ld = LaunchDigest::new();
    for d in directives {
        if let Some(p) = page_data(d)? {
            let launch = match (p.data_type, &p.bytes) {
                (IgvmPageDataType::NORMAL, _) if p.unmeasured => LaunchPage::Unmeasured,
                (IgvmPageDataType::NORMAL, Some(b)) => LaunchPage::Normal(b),
                (IgvmPageDataType::NORMAL, None) => LaunchPage::Zero,
                (IgvmPageDataType::SECRETS, _) => LaunchPage::Secrets,
                (IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF, _) => LaunchPage::Cpuid,
                (t, _) => return Err(format!("page at {:#x}: data type {t:?} unknown", p.gpa)),
            };
            ld.update(p.gpa, &launch);
        } else if let IgvmDirectiveHeader::SnpVpContext { gpa, vmsa, .. } = d {
            let mut page = [0u8; PAGE];
            let bytes = zerocopy::IntoBytes::as_bytes(vmsa.as_ref());
            let n = bytes.len().min(PAGE);
            page[..n].copy_from_slice(&bytes[..n]);
            if !gpa.is_multiple_of(PAGE_SIZE_4K) {
                return Err(format!("VMSA at {gpa:#x} is not 4 KiB aligned"));
            }
            ld.update(*gpa, &LaunchPage::Vmsa(&page));
        } else {
            return Err(unsupported(Platform::Snp, d));
        }
    }
    Ok(ld.value())
}

fn tdx(directives: &[IgvmDirectiveHeader]) -> Result<Digest, String> {
    let mut mrtd = Mrtd::new();
    for d in directives {
        match page_data(d)? {
            Some(p) if p.data_type == IgvmPageDataType::NORMAL => {
                mrtd.add_page(p.gpa, &p.bytes.unwrap_or([0; PAGE]), !p.unmeasured);
            }
            _ => return Err(unsupported(Platform::Tdx, d)),
        }
    }
    Ok(mrtd.value())
}

/// What `verify` learns from an IGVM file: its one platform and the measurement.
#[derive(Debug, PartialEq, Eq)]
pub struct Measured {
    pub platform: Platform,
    pub digest: Option<Digest>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Our own bounded walk of the variable headers before the igvm crate parses
/// them: igvm 0.4 computes `file_offset - data_start` and `start + size` without
/// checks and panics (debug) or wraps (release) on a file offset before the data
/// section or a size past the end, which the igvm_measure fuzz target found. Every
/// header that names file data (parameter area, page data, VP context: file offset
/// at byte 12 of each) must name bytes inside the data section.
fn check_file_offsets(bytes: &[u8]) -> Result<(), String> {
    const PARAMETER_AREA: u32 = 0x301;
    const PAGE_DATA: u32 = 0x302;
    const VP_CONTEXT: u32 = 0x304;
    let bad = |what: &str| Err(format!("not IGVM: {what}"));
    let (Some(var_off), Some(var_size)) = (u32_at(bytes, 8), u32_at(bytes, 12)) else {
        return bad("no fixed header");
    };
    let (var_off, var_size) = (var_off as usize, var_size as usize);
    let Some(data_start) = var_off.checked_add(var_size).filter(|e| *e <= bytes.len()) else {
        return bad("the variable headers run past the end of the file");
    };
    let mut at = var_off;
    while let (Some(typ), Some(len)) = (u32_at(bytes, at), u32_at(bytes, at + 4)) {
        let body = at + 8;
        let Some(next) = body.checked_add((len as usize).next_multiple_of(8)) else {
            break;
        };
        if next > data_start {
            break;
        }
        let size = match typ {
            PARAMETER_AREA => u64_at(bytes, body),
            PAGE_DATA | VP_CONTEXT => Some(PAGE_SIZE_4K),
            _ => None,
        };
        if let (Some(size), Some(offset), true) = (size, u32_at(bytes, body + 12), len >= 16) {
            let offset = offset as usize;
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| offset.checked_add(s));
            let inside = offset >= data_start && end.is_some_and(|e| e <= bytes.len());
            if offset != 0 && !inside {
                return bad(&format!(
                    "header {typ:#x} at {at:#x} names file data at {offset:#x} outside the data section"
                ));
            }
        }
        at = next;
    }
    Ok(())
}

/// Parses `bytes` as an IGVM file for exactly one platform and recomputes its
/// launch measurement.
pub fn measure_file(bytes: &[u8]) -> Result<Measured, String> {
    check_file_offsets(bytes)?;
    let file = IgvmFile::new_from_binary(bytes, None).map_err(|e| format!("not IGVM: {e}"))?;
    let [IgvmPlatformHeader::SupportedPlatform(header)] = file.platforms() else {
        return Err(format!(
            "{} platform headers; this tool writes and checks files for one",
            file.platforms().len()
        ));
    };
    let platform = [Platform::Native, Platform::Snp, Platform::Tdx]
        .into_iter()
        .find(|p| p.igvm_type() == header.platform_type)
        .ok_or_else(|| {
            format!(
                "platform {:?} is not native, snp or tdx",
                header.platform_type
            )
        })?;
    if !file.initializations().is_empty() {
        return Err("initialization headers are not part of what this tool measures".into());
    }
    let digest = measure(platform, file.directives())?;
    Ok(Measured { platform, digest })
}
