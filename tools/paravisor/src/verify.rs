//! `paravisor verify IMAGE --manifest MANIFEST [--system system.xml --kernel K]`:
//! binds every byte of the image, then explains it.
//!
//! Binding: the manifest's `boot_image` records the hash of every named part of the
//! built file (kernel headers and segments, every descriptor, table entry, info
//! page, program segment and region's data, padding included), and with `--system`
//! and `--kernel` (and the build's `--region-data`) the image is rebuilt and
//! compared byte for byte. Either way any changed, added or removed byte fails, and
//! the message names the part it is in (and, against a rebuild, the field). With
//! neither, verify refuses: nothing would bind the bytes.
//!
//! Explaining: it re-derives from the image itself what the manifest claims (every
//! PD's program image hash, priority, parent, maps with rights, capabilities and
//! irqs, every region with its initial contents' hash, every guest with its VMM,
//! vCPUs and guest-physical maps, the measured boot list and what it produces)
//! and refuses writable+executable PD segments.

use std::path::PathBuf;

use kernel_abi::image::{perms, CapDesc, RegionDesc, SystemImage, NO_PARENT};
use sha2::{Digest, Sha256};

use crate::bootimage::bootelf;
use crate::failure::Failure;
use crate::image::hex;
use crate::inputs::Inputs;
use crate::manifest::schema::Manifest;

mod bytes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The boot image written by `paravisor build`.
    pub image: PathBuf,
    /// The audit manifest to check it against.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Rebuild from this system description and require identical bytes.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub system: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Also require this IGVM file to be exactly the IGVM form of the image.
    #[arg(long, value_name = "FILE")]
    pub igvm: Option<PathBuf>,
    /// The program images and region data the image was built with, for the rebuild.
    #[command(flatten)]
    pub inputs: Inputs,
}

fn perms_str(p: u32) -> String {
    [(perms::R, 'r'), (perms::W, 'w'), (perms::X, 'x')]
        .iter()
        .filter(|(b, _)| p & b != 0)
        .map(|(_, c)| c)
        .collect()
}

/// Everything that makes `boot` not the image the manifest (and the rebuild, if
/// any) describes, one line each; empty when it is exactly that image.
pub fn check(boot: &[u8], manifest: &Manifest, rebuilt: Option<&[u8]>) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(entry) = &manifest.boot_image {
        diffs.extend(bytes::hash_differences(boot, entry));
        if let Some(r) = rebuilt {
            if hex(&Sha256::digest(r)) != entry.sha256 {
                diffs
                    .push("the manifest's boot_image hash is not that of the rebuilt image".into());
            }
        }
    }
    if let Some(r) = rebuilt {
        diffs.extend(bytes::byte_differences(boot, r));
    }
    if manifest.boot_image.is_none() && rebuilt.is_none() {
        diffs.push("nothing binds the image's bytes: the manifest has no boot_image (write it with `build --manifest` or `manifest --kernel`) and no --system/--kernel were given to rebuild from".into());
    }
    match differences(boot, manifest) {
        Ok(d) => diffs.extend(d),
        Err(e) => diffs.push(format!("the image does not parse: {e}")),
    }
    diffs
}

/// Every difference between image and manifest, one line each.
pub fn differences(boot: &[u8], manifest: &Manifest) -> Result<Vec<String>, String> {
    let parts = bootelf::extract(boot)?;
    let image = SystemImage::parse(parts.system_image).map_err(|e| format!("system image: {e}"))?;
    let mut diffs = region_differences(&image, manifest);
    diffs.extend(vm_differences(&image, manifest));
    diffs.extend(measured_differences(&image, manifest));
    let mut diff = |pd: &str, what: String| diffs.push(format!("PD {pd}: {what}"));
    let names: Vec<String> = (0..image.pd_count())
        .filter_map(|i| image.pd(i))
        .map(|p| name_of(&p.desc.name))
        .collect();
    let want = manifest.protection_domains.iter().map(|p| p.name.as_str());
    if let Some(d) = names_differ("PDs", &names, want) {
        diffs.push(d);
        return Ok(diffs);
    }
    for (i, m) in manifest.protection_domains.iter().enumerate() {
        let Some(pd) = image.pd(i) else { continue };
        let d = pd.desc;
        let n = m.name.as_str();
        for s in pd.segments {
            if s.perms & (perms::W | perms::X) == perms::W | perms::X {
                diff(
                    n,
                    format!("segment at {:#x} is writable and executable (W^X)", s.vaddr),
                );
            }
        }
        let sha = hex(&Sha256::digest(pd.elf));
        if sha != m.program_image.sha256 || pd.elf.len() as u64 != m.program_image.size {
            diff(
                n,
                format!(
                    "program image is {} ({} bytes), manifest says {} ({} bytes)",
                    sha,
                    pd.elf.len(),
                    m.program_image.sha256,
                    m.program_image.size
                ),
            );
        }
        if d.priority != m.priority
            || (d.passive != 0) != m.passive
            || d.budget_us != m.budget_us
            || d.period_us != m.period_us
        {
            diff(n, "priority, passive, budget or period differ".into());
        }
        let grants = crate::bootimage::compile::debug_grants(m.debug_console, m.debug_halt);
        if d.debug != grants {
            diff(
                n,
                format!(
                    "debug grants are {:#x} in the image, {grants:#x} in the manifest",
                    d.debug
                ),
            );
        }
        let parent = (d.parent != NO_PARENT)
            .then(|| names.get(usize::from(d.parent)).cloned())
            .flatten();
        if parent != m.parent || (parent.is_some() && Some(d.child_id) != m.child_id) {
            diff(
                n,
                format!(
                    "parent {parent:?} (id {}), manifest says {:?} (id {:?})",
                    d.child_id, m.parent, m.child_id
                ),
            );
        }
        let got: Vec<(u64, u64, String, bool)> = pd
            .maps
            .iter()
            .map(|mp| {
                let size = image
                    .regions()
                    .get(mp.region as usize)
                    .map_or(0, |r| r.size);
                (mp.vaddr, size, perms_str(mp.perms), mp.cached != 0)
            })
            .collect();
        let expected: Vec<(u64, u64, String, bool)> = m
            .regions
            .iter()
            .map(|r| {
                (
                    r.vaddr,
                    r.size.next_multiple_of(4096),
                    r.perms.clone(),
                    r.cached,
                )
            })
            .collect();
        if got != expected {
            diff(n, format!("mappings {got:x?}, manifest says {expected:x?}"));
        }
        let mut caps = [CapDesc::default(); kernel_abi::image::CHANNELS];
        for ch in &m.channels {
            let peer = names
                .iter()
                .position(|x| *x == ch.peer)
                .unwrap_or(usize::MAX) as u8;
            if let Some(slot) = caps.get_mut(usize::from(ch.id)) {
                if ch.can_notify {
                    slot.flags |= CapDesc::NOTIFY;
                    slot.notify_pd = peer;
                    slot.notify_bit = ch.peer_id;
                }
                if ch.can_call {
                    slot.flags |= CapDesc::PPC;
                    slot.ppc_pd = peer;
                    slot.ppc_badge = ch.peer_id;
                }
            }
        }
        for irq in &m.irqs {
            if let Some(slot) = caps.get_mut(usize::from(irq.id)) {
                slot.flags |= CapDesc::IRQ;
                slot.irq = u8::try_from(irq.irq).unwrap_or(u8::MAX);
            }
        }
        for (id, (got, want)) in d.caps.iter().zip(caps.iter()).enumerate() {
            if got != want {
                diff(
                    n,
                    format!(
                        "capability at channel id {id} is {got:?}, the manifest implies {want:?}"
                    ),
                );
            }
        }
    }
    Ok(diffs)
}

fn name_of(n: &kernel_abi::Name) -> String {
    kernel_abi::name_str(n).unwrap_or("?").to_string()
}

/// The image's list of names (of PDs, regions or VMs: `what`) against the
/// manifest's, as the one difference to report when they are not the same list.
fn names_differ<'m>(
    what: &str,
    names: &[String],
    manifest: impl Iterator<Item = &'m str>,
) -> Option<String> {
    let want: Vec<&str> = manifest.collect();
    (names != want).then(|| format!("the image holds {what} {names:?}, the manifest {want:?}"))
}

/// Regions: names, sizes, placement and initial contents.
fn region_differences(image: &SystemImage<'_>, manifest: &Manifest) -> Vec<String> {
    let names: Vec<String> = image.regions().iter().map(|r| name_of(&r.name)).collect();
    let want = manifest.regions.iter().map(|r| r.name.as_str());
    if let Some(d) = names_differ("regions", &names, want) {
        return vec![d];
    }
    let mut diffs = Vec::new();
    for (i, (r, m)) in image.regions().iter().zip(&manifest.regions).enumerate() {
        let phys = (r.phys_addr != RegionDesc::ALLOCATE).then_some(r.phys_addr);
        if r.size != m.size.next_multiple_of(4096) || phys != m.phys_addr {
            diffs.push(format!(
                "region {}: size {:#x} at {phys:#x?}, manifest says {:#x} at {:#x?}",
                m.name, r.size, m.size, m.phys_addr
            ));
        }
        let bytes = image.region_data(i);
        let got = (!bytes.is_empty()).then(|| (hex(&Sha256::digest(bytes)), bytes.len() as u64));
        let expected = m.initial_data.as_ref().map(|d| (d.sha256.clone(), d.len));
        if got != expected {
            let show = |d: &Option<(String, u64)>| match d {
                Some((sha, len)) => format!("sha256 {sha} ({len} bytes)"),
                None => "none (all zero)".into(),
            };
            diffs.push(format!(
                "region {}: initial data {}, manifest says {}",
                m.name,
                show(&got),
                show(&expected)
            ));
        }
    }
    diffs
}

/// Measured boot: the list in the image's region names the image's PDs and
/// program images, and gives the PCR and event log the manifest states.
fn measured_differences(image: &SystemImage<'_>, manifest: &Manifest) -> Vec<String> {
    let Some(mb) = &manifest.measured_boot else {
        return Vec::new();
    };
    let Some(index) = image
        .regions()
        .iter()
        .position(|r| name_of(&r.name) == mb.region)
    else {
        return vec![format!(
            "measured boot: the image has no region {}",
            mb.region
        )];
    };
    let pds: Vec<(String, String)> = (0..image.pd_count())
        .filter_map(|i| image.pd(i))
        .map(|p| (name_of(&p.desc.name), hex(&Sha256::digest(p.elf))))
        .collect();
    crate::measured::differences(mb, image.region_data(index), &pds)
}

/// Guests: VMM, scheduling, vCPU ids and what each sees at which guest-physical address.
fn vm_differences(image: &SystemImage<'_>, manifest: &Manifest) -> Vec<String> {
    let vms: Vec<_> = image.vms().collect();
    let names: Vec<String> = vms.iter().map(|v| name_of(&v.desc.name)).collect();
    let want = manifest.virtual_machines.iter().map(|v| v.name.as_str());
    if let Some(d) = names_differ("VMs", &names, want) {
        return vec![d];
    }
    let pd_name = |i: u8| image.pd(usize::from(i)).map(|p| name_of(&p.desc.name));
    let region = |i: u32| image.regions().get(i as usize);
    let mut diffs = Vec::new();
    for (vm, m) in vms.iter().zip(&manifest.virtual_machines) {
        let mut diff = |what: String| diffs.push(format!("VM {}: {what}", m.name));
        let d = vm.desc;
        let vmm = pd_name(d.owner_pd);
        if vmm.as_deref() != Some(m.vmm.as_str()) {
            diff(format!("VMM {vmm:?}, manifest says {:?}", m.vmm));
        }
        if d.priority != m.priority || d.budget_us != m.budget_us || d.period_us != m.period_us {
            diff(format!(
                "priority {}, budget {} us, period {} us; manifest says {}, {} us, {} us",
                d.priority, d.budget_us, d.period_us, m.priority, m.budget_us, m.period_us
            ));
        }
        let ports: Vec<(u16, u16)> = match d.io_count {
            0 => Vec::new(),
            n => vec![(d.io_base, u16::from(n))],
        };
        let listed: Vec<(u16, u16)> = m.io_ports.iter().map(|p| (p.base, p.count)).collect();
        if ports != listed {
            diff(format!("I/O ports {ports:x?}, manifest says {listed:x?}"));
        }
        if vm.vcpu_ids() != m.vcpu_ids.as_slice() {
            diff(format!(
                "vCPU ids {:?}, manifest says {:?}",
                vm.vcpu_ids(),
                m.vcpu_ids
            ));
        }
        let got: Vec<(String, u64, u64, String)> = vm
            .maps
            .iter()
            .map(|mp| {
                let r = region(mp.region);
                (
                    r.map_or("?".into(), |r| name_of(&r.name)),
                    mp.gpa,
                    r.map_or(0, |r| r.size),
                    perms_str(mp.perms),
                )
            })
            .collect();
        let expected: Vec<(String, u64, u64, String)> = m
            .maps
            .iter()
            .map(|mp| {
                (
                    mp.region.clone(),
                    mp.gpa,
                    mp.size.next_multiple_of(4096),
                    mp.perms.clone(),
                )
            })
            .collect();
        if got != expected {
            diff(format!(
                "guest maps (region, gpa, size, perms) {got:x?}, manifest says {expected:x?}"
            ));
        }
    }
    diffs
}

pub fn run(args: Args) -> Result<(), Failure> {
    let boot = std::fs::read(&args.image)
        .map_err(|e| Failure::msg(format!("cannot read {}: {e}", args.image.display())))?;
    let text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| Failure::msg(format!("cannot read {}: {e}", args.manifest.display())))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Failure::msg(format!("{}: not a manifest: {e}", args.manifest.display())))?;
    if manifest.schema_version != crate::manifest::schema::SCHEMA_VERSION {
        return Err(Failure::msg(format!(
            "manifest schema version {} is not supported",
            manifest.schema_version
        )));
    }
    let rebuilt = match (&args.system, &args.kernel) {
        (Some(system), Some(kernel)) => {
            Some(crate::build::build_bytes(system, kernel, &args.inputs)?)
        }
        _ => None,
    };
    let mut diffs = check(&boot, &manifest, rebuilt.as_deref());
    if let Some(path) = &args.igvm {
        match crate::igvm::check(&boot, path) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => diffs.push(e),
        }
    }
    if diffs.is_empty() {
        let parts = bootelf::extract(&boot).map_err(Failure::Message)?;
        let mut kernel_hash = Sha256::new();
        for s in &parts.kernel_segments {
            kernel_hash.update(s);
        }
        println!(
            "verified {}: every byte is bound ({}), and {} PDs, {} VMs and {} regions match the manifest; system image at {:#x}, kernel segments sha256 {}",
            args.image.display(),
            match (&manifest.boot_image, &rebuilt) {
                (Some(_), Some(_)) => "the manifest's hashes and the rebuild agree",
                (Some(_), None) => "the manifest's hashes",
                _ => "the rebuild",
            },
            manifest.protection_domains.len(),
            manifest.virtual_machines.len(),
            manifest.regions.len(),
            parts.image_paddr,
            hex(&kernel_hash.finalize())
        );
        Ok(())
    } else {
        Err(Failure::msg(format!(
            "{} does not match the manifest:\n  {}",
            args.image.display(),
            diffs.join("\n  ")
        )))
    }
}
