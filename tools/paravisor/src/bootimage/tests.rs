//! Build, append, extract and verify on synthetic ELFs, and the errors a user meets.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kernel_abi::image::{perms, CapDesc, SystemImage};
use kernel_abi::info::InfoPage;
use sha2::{Digest, Sha256};

use super::elf::{PF_R, PF_W, PF_X};
use super::{bootelf, compile};
use crate::image::{hex, ImageInfo};
use crate::manifest::schema::{self, Manifest, SourceFile};
use crate::region_data::RegionData;

// The CLI tests' ELF writer, independent of `super::elf`'s structs.
#[path = "../../tests/common/elf.rs"]
mod test_elf;
use test_elf::elf;

fn program(tag: u8) -> Vec<u8> {
    elf(
        0x40_0000,
        &[
            (
                0x40_0000,
                0x40_0000,
                PF_R | PF_X,
                &[0x90, tag, 0x0f, 0x0b],
                0x1000,
            ),
            (0x40_1000, 0x40_1000, PF_R | PF_W, &[1, 2, 3], 0x3000),
        ],
    )
}

// The descriptions below are put together from these pieces (macros, so `concat!`
// makes each one constant).

/// Two PDs (one with a child) joined by a channel, and an irq: a capability of
/// every kind the kernel hands out.
macro_rules! client_server {
    () => {
        r#"<protection_domain name="client" priority="100">
        <program_image path="client" />
        <map mr="ring" vaddr="0x20000000" perms="rw" setvar_vaddr="ring" />
        <setvar symbol="ring_paddr" region_paddr="ring" />
        <protection_domain name="kid" priority="90" id="4">
            <program_image path="kid" />
        </protection_domain>
    </protection_domain>
    <protection_domain name="server" priority="200" passive="true" budget="500" period="1000">
        <program_image path="server" />
        <map mr="ring" vaddr="0x30000000" perms="r" cached="false" />
        <irq irq="5" id="9" />
    </protection_domain>
    <channel>
        <end pd="client" id="2" pp="true" notify="true" />
        <end pd="server" id="7" notify="false" />
    </channel>
"#
    };
}

/// A VMM whose guest has two vCPUs and maps "ram" and "rom".
macro_rules! vmm_and_guest {
    () => {
        r#"<protection_domain name="vmm" priority="50">
        <program_image path="vmm" />
        <map mr="ram" vaddr="0x30000000" perms="rw" />
        <virtual_machine name="linux" priority="40" budget="500" period="1000">
            <vcpu id="3" setvar_id="boot_vcpu" />
            <vcpu id="5" />
            <map mr="ram" vaddr="0x0" perms="rwx" />
            <map mr="rom" vaddr="0xfff000" perms="rx" />
            <ioport addr="0x2f8" size="8" />
        </virtual_machine>
    </protection_domain>
"#
    };
}

/// The regions a guest system needs.
macro_rules! guest_regions {
    () => {
        r#"<memory_region name="ring" size="0x4000" />
    <memory_region name="ram" size="0x3000" />
    <memory_region name="rom" size="0x1000" />
"#
    };
}

const SYSTEM: &str = concat!(
    "<system>\n    <memory_region name=\"ring\" size=\"0x4000\" />\n    ",
    client_server!(),
    "</system>\n"
);

fn system(text: &str) -> sdf::System {
    sdf::parse_and_check(text, Path::new("system.xml")).unwrap()
}

fn programs(sys: &sdf::System) -> compile::Programs {
    (0..sys.all_pds().len()).map(|i| program(i as u8)).collect()
}

#[test]
fn a_system_compiles_to_the_capabilities_and_info_it_describes() {
    let sys = system(SYSTEM);
    let bytes = compile::compile(&sys, &programs(&sys), &[]).unwrap();
    let image = SystemImage::parse(&bytes).unwrap();
    assert_eq!(image.pd_count(), 3);
    let (client, kid, server) = (
        image.pd(0).unwrap(),
        image.pd(1).unwrap(),
        image.pd(2).unwrap(),
    );
    assert_eq!(kid.desc.parent, 0);
    assert_eq!(kid.desc.child_id, 4);
    assert_eq!(server.desc.passive, 1);
    let cap = client.desc.caps[2];
    assert_eq!(cap.flags, CapDesc::NOTIFY | CapDesc::PPC);
    assert_eq!(
        (cap.notify_pd, cap.notify_bit, cap.ppc_pd, cap.ppc_badge),
        (2, 7, 2, 7)
    );
    // The server may neither notify nor call back; it holds only its irq.
    assert_eq!(server.desc.caps[7].flags, 0);
    assert_eq!(server.desc.caps[9].flags, CapDesc::IRQ);
    assert_eq!(server.desc.caps[9].irq, 5);
    assert_eq!(server.maps[0].cached, 0);
    assert_eq!(client.segments.len(), 2);
    assert_eq!(client.elf, program(0).as_slice());
    let info = InfoPage::parse(client.info_page).unwrap();
    assert_eq!(info.region("ring").unwrap().vaddr, 0x2000_0000);
    assert_eq!(info.variable("ring"), Some(0x2000_0000));
    assert_eq!(
        info.variable("ring_paddr"),
        Some(0),
        "the kernel patches it in"
    );
    assert_eq!(client.patches.len(), 1);
    assert_eq!(info.header.pp_mask, 1 << 2);
    // Same inputs, same bytes.
    assert_eq!(bytes, compile::compile(&sys, &programs(&sys), &[]).unwrap());
}

fn compile_err(text: &str, progs: Option<compile::Programs>) -> String {
    let sys = system(text);
    let progs = progs.unwrap_or_else(|| programs(&sys));
    compile::compile(&sys, &progs, &[]).unwrap_err()
}

fn one_pd(inner: &str) -> String {
    format!(
        r#"<system><memory_region name="m" size="0x1000" />
        <protection_domain name="p" priority="1"><program_image path="p" />{inner}</protection_domain></system>"#
    )
}

#[test]
fn what_the_kernel_cannot_do_is_refused_with_the_pd_named() {
    let e = compile_err(&one_pd(r#"<irq irq="33" id="1" />"#), None);
    assert!(e.contains("PD p: irq 33 is not supported"), "{e}");
    let e = compile_err(&one_pd(r#"<irq irq="0" id="1" />"#), None);
    assert!(e.contains("line 0 is the kernel's timer"), "{e}");
    let e = compile_err(
        &one_pd(r#"<map mr="m" vaddr="0x401000" perms="r" />"#),
        None,
    );
    assert!(e.contains("overlaps program segment"), "{e}");
    let e = compile_err(
        &one_pd(r#"<map mr="m" vaddr="0x7f0000000000" perms="r" />"#),
        None,
    );
    assert!(
        e.contains("outside the PD's part of the address space"),
        "{e}"
    );
    let e = compile_err(&one_pd(""), Some(vec![b"not an elf".to_vec()]));
    assert!(
        e.contains("PD p: program image: shorter than an ELF header"),
        "{e}"
    );
    let no_exec = elf(0x40_0000, &[(0x40_0000, 0x40_0000, PF_R, &[0], 0x1000)]);
    let e = compile_err(&one_pd(""), Some(vec![no_exec]));
    assert!(
        e.contains("entry point 0x400000 is not in an executable segment"),
        "{e}"
    );
    let zero_page = elf(0x10, &[(0, 0, PF_R | PF_X, &[0], 0x1000)]);
    let e = compile_err(&one_pd(""), Some(vec![zero_page]));
    assert!(e.contains("outside the PD's part"), "{e}");
}

fn kernel() -> Vec<u8> {
    elf(
        0x10_0000,
        &[
            (0x10_0000, 0x10_0000, PF_R | PF_X, &[0xf4; 16], 0x1000),
            (
                0xffff_ffff_8010_1000,
                0x10_1000,
                PF_R | PF_W,
                &[7; 8],
                0x2800,
            ),
        ],
    )
}

#[test]
fn the_system_image_lands_on_the_first_page_after_the_kernel() {
    let boot = bootelf::append(&kernel(), b"PVSYSIMG-and-the-rest").unwrap();
    let parts = bootelf::extract(&boot).unwrap();
    assert_eq!(parts.image_paddr, 0x10_4000);
    assert_eq!(parts.system_image, b"PVSYSIMG-and-the-rest");
    assert_eq!(parts.kernel_segments, [&[0xf4; 16][..], &[7; 8][..]]);
    // The kernel's own bytes are untouched at their offsets.
    let k = kernel();
    assert_eq!(&boot[64..k.len()], &k[64..]);
}

#[test]
fn extract_refuses_what_build_did_not_make() {
    assert!(bootelf::extract(&kernel())
        .unwrap_err()
        .contains("no system image"));
    assert!(bootelf::extract(b"garbage").is_err());
    let far = elf(
        0,
        &[
            (0x10_0000, 0x10_0000, PF_R, &[1], 0x1000),
            (0x90_0000, 0x90_0000, PF_R, b"PVSYSIMG", 8),
        ],
    );
    assert!(bootelf::extract(&far)
        .unwrap_err()
        .contains("not right after the kernel"));
}

/// Verify finds `count` differences between `boot` and `m`, naming each of `wants`.
fn assert_differences(boot: &[u8], m: &Manifest, count: usize, wants: &[&str]) {
    let diffs = crate::verify::differences(boot, m).unwrap();
    let all = diffs.join("\n");
    for want in wants {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(diffs.len(), count, "{all}");
}

fn manifest_for(sys: &sdf::System, progs: &compile::Programs, data: &[RegionData]) -> Manifest {
    let images: Vec<ImageInfo> = progs
        .iter()
        .enumerate()
        .map(|(i, p)| ImageInfo {
            resolved: PathBuf::from(format!("pd{i}")),
            sha256: hex(&Sha256::digest(p)),
            size: p.len() as u64,
        })
        .collect();
    let source = SourceFile {
        path: "system.xml".into(),
        sha256: String::new(),
    };
    schema::build(sys, source, &images, data)
}

#[test]
fn verify_accepts_the_built_image_and_names_every_difference() {
    let sys = system(SYSTEM);
    let progs = programs(&sys);
    let boot = bootelf::append(&kernel(), &compile::compile(&sys, &progs, &[]).unwrap()).unwrap();
    let good = manifest_for(&sys, &progs, &[]);
    assert_eq!(
        crate::verify::differences(&boot, &good).unwrap(),
        Vec::<String>::new()
    );

    let mut m = good.clone();
    m.protection_domains[0].program_image.sha256 = "00".repeat(32);
    m.protection_domains[2].priority = 201;
    m.protection_domains[2].regions[0].perms = "rw".into();
    m.protection_domains[0].channels[0].can_call = false;
    m.protection_domains[1].parent = None;
    m.protection_domains[2].irqs.clear();
    assert_differences(
        &boot,
        &m,
        6,
        &[
            "PD client: program image is",
            "PD server: priority",
            "PD server: mappings",
            "PD client: capability at channel id 2",
            "PD kid: parent Some(\"client\")",
            "PD server: capability at channel id 9",
        ],
    );

    let mut m = good;
    m.protection_domains.pop();
    assert!(crate::verify::differences(&boot, &m).unwrap()[0].contains("the image holds PDs"));
}

/// A small boot image (the kernel above and the SYSTEM's image), for the IGVM tests.
pub(crate) fn boot_image() -> Vec<u8> {
    let sys = system(SYSTEM);
    bootelf::append(
        &kernel(),
        &compile::compile(&sys, &programs(&sys), &[]).unwrap(),
    )
    .unwrap()
}

#[test]
fn the_igvm_form_has_a_page_per_loaded_page_and_covers_every_byte_and_address() {
    use crate::igvm::{self, Platform};
    let boot = boot_image();
    let built = igvm::build(&boot, Platform::Snp).unwrap();
    let parsed = ::igvm::IgvmFile::new_from_binary(&built.file, None).unwrap();
    let pages = igvm::pages(&boot).unwrap();
    // One directive per page plus secrets, CPUID and the VMSA.
    assert_eq!(parsed.directives().len(), pages.len() + 3);
    // The kernel's second segment has 0x800 bytes of file and 0x2800 of memory: the
    // last two of its three pages are zero pages.
    assert_eq!(pages.iter().filter(|(_, d)| d.is_none()).count(), 2);

    let digest = |pages: Vec<igvm::Page>| {
        let d = igvm::directives_for(0x10_0000, pages, Platform::Snp).unwrap();
        igvm::measure::measure(Platform::Snp, &d).unwrap()
    };
    assert_eq!(digest(pages.clone()), built.digest);
    let mut flipped = pages.clone();
    if let Some((_, Some(bytes))) = flipped.last_mut() {
        bytes[17] ^= 1;
    }
    assert_ne!(digest(flipped), built.digest);
    let mut moved = pages.clone();
    moved[0].0 += 0x1000;
    assert_ne!(digest(moved), built.digest);
    let mut explicit_zero = pages.clone();
    for p in explicit_zero.iter_mut().filter(|(_, d)| d.is_none()) {
        p.1 = Some(vec![0; 4096]);
    }
    assert_ne!(
        digest(explicit_zero),
        built.digest,
        "zero pages are typed, not hashed"
    );
}

/// A guest system: a PD besides the VMM.
const GUEST: &str = concat!(
    "<system>\n    ",
    guest_regions!(),
    r#"    <protection_domain name="hv" priority="100">
        <program_image path="hv" />
        <map mr="ring" vaddr="0x20000000" perms="rw" />
    </protection_domain>
    "#,
    vmm_and_guest!(),
    "</system>\n"
);

fn guest_data(bytes: &[u8]) -> Vec<RegionData> {
    vec![RegionData {
        region: "ram".into(),
        path: PathBuf::from("bzImage"),
        bytes: bytes.to_vec(),
        sha256: hex(&Sha256::digest(bytes)),
        measured: false,
    }]
}

#[test]
fn a_guest_compiles_to_its_vmm_index_vcpus_maps_and_initial_data() {
    let sys = system(GUEST);
    let bytes = compile::compile(&sys, &programs(&sys), &guest_data(b"kernel")).unwrap();
    let image = SystemImage::parse(&bytes).unwrap();
    assert!(image.vm_of(0).is_none());
    let vm = image.vm_of(1).unwrap();
    assert_eq!(kernel_abi::name_str(&vm.desc.name), Some("linux"));
    assert_eq!(
        (vm.desc.priority, vm.desc.budget_us, vm.desc.period_us),
        (40, 500, 1000)
    );
    assert_eq!(vm.vcpu_ids(), &[3, 5]);
    assert_eq!((vm.desc.io_base, vm.desc.io_count), (0x2f8, 8));
    let maps: Vec<_> = vm.maps.iter().map(|m| (m.gpa, m.region, m.perms)).collect();
    assert_eq!(
        maps,
        vec![
            (0, 1, perms::R | perms::W | perms::X),
            (0xfff000, 2, perms::R | perms::X)
        ]
    );
    assert_eq!(image.region_data(1), b"kernel");
    assert_eq!(image.region_data(0), b"");
    let info = InfoPage::parse(image.pd(1).unwrap().info_page).unwrap();
    assert_eq!(info.variable("boot_vcpu"), Some(3));
}

#[test]
fn a_guest_port_grant_outside_the_kernels_list_is_refused() {
    // (grant, what the error says)
    let table = [
        (
            r#"addr="0x3f8" size="8""#,
            "ports 0x3f8+8 are not a range a VM may be granted",
        ),
        (r#"addr="0x2f8" size="4""#, "ports 0x2f8+4 are not a range"),
        (r#"addr="0xcf8" size="8""#, "ports 0xcf8+8 are not a range"),
    ];
    for (grant, want) in table {
        let sys = system(&GUEST.replace(r#"addr="0x2f8" size="8""#, grant));
        let e = compile::compile(&sys, &programs(&sys), &guest_data(b"k")).unwrap_err();
        assert!(e.contains(want), "{grant}: {e}");
    }
}

#[test]
fn region_data_the_kernel_cannot_load_is_refused() {
    let sys = system(GUEST);
    let e = compile::compile(&sys, &programs(&sys), &guest_data(&[0; 0x3001])).unwrap_err();
    assert!(
        e.contains("region data for ram: 12289 bytes do not fit"),
        "{e}"
    );
    let mut data = guest_data(b"x");
    data[0].region = "nope".into();
    let e = compile::compile(&sys, &programs(&sys), &data).unwrap_err();
    assert_eq!(e, "region data for nope: no such memory region");
}

#[test]
fn verify_names_every_guest_and_region_difference() {
    let sys = system(GUEST);
    let progs = programs(&sys);
    let data = guest_data(b"kernel");
    let boot = bootelf::append(&kernel(), &compile::compile(&sys, &progs, &data).unwrap()).unwrap();
    let good = manifest_for(&sys, &progs, &data);
    assert_eq!(
        crate::verify::differences(&boot, &good).unwrap(),
        Vec::<String>::new()
    );

    let mut m = good.clone();
    m.virtual_machines[0].vmm = "hv".into();
    m.virtual_machines[0].priority = 41;
    m.virtual_machines[0].vcpu_ids = vec![3];
    m.virtual_machines[0].maps[1].gpa = 0xffe000;
    m.virtual_machines[0].io_ports.clear();
    m.regions[1].initial_data = None;
    m.regions[2].size = 0x2000;
    // The region data's difference names both its hash and the manifest's none.
    assert_differences(
        &boot,
        &m,
        7,
        &[
            "VM linux: VMM Some(\"vmm\"), manifest says \"hv\"",
            "VM linux: priority 40, budget 500 us, period 1000 us; manifest says 41, 500 us, 1000 us",
            "VM linux: I/O ports [(2f8, 8)], manifest says []",
            "VM linux: vCPU ids [3, 5], manifest says [3]",
            "VM linux: guest maps (region, gpa, size, perms)",
            "region ram: initial data sha256 ",
            "manifest says none (all zero)",
            "region rom: size 0x1000 at None, manifest says 0x2000 at None",
        ],
    );

    let mut m = good.clone();
    m.virtual_machines.clear();
    assert_eq!(
        crate::verify::differences(&boot, &m).unwrap(),
        vec!["the image holds VMs [\"linux\"], the manifest []".to_string()]
    );
    let mut m = good;
    m.regions.swap(0, 1);
    assert!(crate::verify::differences(&boot, &m).unwrap()[0]
        .starts_with("the image holds regions [\"ring\", \"ram\", \"rom\"]"));
}

#[test]
fn the_launch_measurement_covers_region_data() {
    use crate::igvm::{build, Platform};
    let sys = system(GUEST);
    let progs = programs(&sys);
    let digest = |data: &[u8], platform| {
        let image = compile::compile(&sys, &progs, &guest_data(data)).unwrap();
        build(&bootelf::append(&kernel(), &image).unwrap(), platform)
            .unwrap()
            .digest
    };
    for platform in [Platform::Snp, Platform::Tdx] {
        assert_eq!(digest(b"kernel", platform), digest(b"kernel", platform));
        assert_ne!(digest(b"kernel", platform), digest(b"kernem", platform));
    }
}

/// vCPU ids are Microkit's child ids in the checker; the image must hold them all.
#[test]
fn the_checker_and_the_image_agree_on_vcpu_ids() {
    use kernel_abi::image;
    assert_eq!(sdf::limits::MAX_VCPU_ID, u64::from(image::MAX_VCPU_ID));
}

/// Both the channels/irqs/children system and a guest with region data, so every
/// kind of structure the kernel loads is in one image.
const EVERYTHING: &str = concat!(
    "<system>\n    ",
    guest_regions!(),
    "    ",
    client_server!(),
    "    ",
    vmm_and_guest!(),
    "</system>\n"
);

/// The image, and its manifest with the per-part hashes `build --manifest` writes.
fn everything() -> (Vec<u8>, Manifest) {
    let sys = system(EVERYTHING);
    let progs = programs(&sys);
    let data = guest_data(&[0x5a; 0x1234]);
    let image = compile::compile(&sys, &progs, &data).unwrap();
    let boot = bootelf::append(&kernel(), &image).unwrap();
    let mut m = manifest_for(&sys, &progs, &[]);
    m.regions[1].initial_data = Some(schema::InitialData {
        path: "bzImage".into(),
        sha256: data[0].sha256.clone(),
        len: 0x1234,
    });
    m.boot_image = Some(schema::boot_image(&boot).unwrap());
    (boot, m)
}

#[test]
fn the_parts_cover_every_byte_once() {
    let (boot, m) = everything();
    let parts = super::layout::layout(&boot).unwrap();
    let mut at = 0;
    for p in &parts {
        assert_eq!(p.range.start, at, "gap or overlap before {}", p.name);
        assert!(!p.range.is_empty(), "{}", p.name);
        at = p.range.end;
    }
    assert_eq!(at, boot.len());
    assert_eq!(m.boot_image.as_ref().unwrap().parts.len(), parts.len());
    let names = parts
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "kernel ELF header",
        "kernel segment 0 (r-x at paddr 0x100000)",
        "kernel segment 1 (rw- at paddr 0x101000)",
        "program header of the system image segment",
        "system image header",
        "region ram descriptor",
        "region ram initial data",
        "PD client descriptor",
        "PD client segment table entry 1",
        "PD client program segment 0 (r-x at 0x400000)",
        "PD client program segment 1 (rw- at 0x401000)",
        "PD client map 0 (region ring)",
        "PD client info page patch table",
        "PD client info page",
        "PD server map 0 (region ring)",
        "PD kid descriptor",
        "VM linux descriptor",
        "VM linux guest map 1 (region rom)",
    ] {
        assert!(names.contains(want), "no part {want:?} in:\n{names}");
    }
    assert_eq!(
        crate::verify::check(&boot, &m, Some(&boot)),
        Vec::<String>::new()
    );
}

/// Flips bytes all over a built image (every 97th byte of every part, and each
/// part's first and last byte): verify must refuse each, naming the part, against
/// the manifest alone and against a rebuild (which also names the field).
#[test]
fn every_changed_byte_is_refused_and_named() {
    let (boot, m) = everything();
    let parts = super::layout::layout(&boot).unwrap();
    let mut no_hashes = m.clone();
    no_hashes.boot_image = None;
    let mut tried = 0;
    for p in &parts {
        let mut positions: Vec<usize> = p.range.clone().step_by(97).collect();
        positions.push(p.range.end - 1);
        for at in positions {
            let mut t = boot.clone();
            t[at] ^= 0xa5;
            let by_hash = crate::verify::check(&t, &m, None).join("\n");
            assert!(
                by_hash.contains(&format!("{} (file offset", p.name)),
                "byte {at:#x} of {}: {by_hash}",
                p.name
            );
            let by_rebuild = crate::verify::check(&t, &no_hashes, Some(&boot)).join("\n");
            assert!(
                by_rebuild.contains(&format!("{} differs from the rebuild", p.describe(at))),
                "byte {at:#x} of {}: {by_rebuild}",
                p.name
            );
            tried += 1;
        }
    }
    eprintln!("{tried} changed bytes refused, in {} parts", parts.len());
    assert!(tried > 400, "only {tried} positions");
    // Cut short or extended, the file is refused too.
    let short = crate::verify::check(&boot[..boot.len() - 1], &m, None).join("\n");
    assert!(short.contains("is missing"), "{short}");
    let mut long = boot.clone();
    long.push(0);
    let long = crate::verify::check(&long, &m, Some(&boot)).join("\n");
    assert!(long.contains("bytes, the manifest says"), "{long}");
    assert!(long.contains("bytes, the rebuild"), "{long}");
}

fn field_at(boot: &[u8], part: &str, field: &str) -> usize {
    let parts = super::layout::layout(boot).unwrap();
    let p = parts.iter().find(|p| p.name == part).unwrap();
    p.range
        .clone()
        .find(|&at| p.describe(at).ends_with(&format!("field {field}")))
        .unwrap()
}

/// The attacks a review tried: each is caught and described.
#[test]
fn the_reviewed_attacks_are_named() {
    let (boot, m) = everything();
    let mut no_hashes = m.clone();
    no_hashes.boot_image = None;
    let both = |t: &[u8]| {
        (
            crate::verify::check(t, &m, None).join("\n"),
            crate::verify::check(t, &no_hashes, Some(&boot)).join("\n"),
        )
    };
    let client = |field: &str| field_at(&boot, "PD client descriptor", field);
    let parts = super::layout::layout(&boot).unwrap();
    let kernel_text = parts
        .iter()
        .find(|p| p.name.starts_with("kernel segment 0"))
        .unwrap()
        .range
        .start;
    let rwx = perms::R | perms::W | perms::X;
    // (where, the bytes written there, what verify says against the manifest's
    // hashes, what it says against a rebuild)
    let attacks: [(usize, Vec<u8>, &[&str], String); 5] = [
        // The server's map re-pointed at the guest's RAM.
        (
            field_at(&boot, "PD server map 0 (region ring)", "region"),
            1u32.to_le_bytes().to_vec(),
            &[
                "PD server map 0 (region ring) (file offset",
                "PD server: mappings",
            ],
            "PD server map 0 (region ring), field region differs".into(),
        ),
        // A moved entry point.
        (
            client("entry"),
            0x40_0002u64.to_le_bytes().to_vec(),
            &["PD client descriptor (file offset"],
            "PD client descriptor, field entry differs".into(),
        ),
        // A 16x stack.
        (
            client("stack_size"),
            0x10_000u64.to_le_bytes().to_vec(),
            &["PD client descriptor (file offset"],
            "PD client descriptor, field stack_size differs".into(),
        ),
        // A data segment made RWX.
        (
            field_at(&boot, "PD client segment table entry 1", "perms"),
            rwx.to_le_bytes().to_vec(),
            &["PD client: segment at 0x401000 is writable and executable"],
            "PD client segment table entry 1, field perms differs".into(),
        ),
        // Patched kernel text.
        (
            kernel_text + 3,
            vec![0xcc],
            &["kernel segment 0 (r-x at paddr 0x100000) (file offset"],
            "kernel segment 0 (r-x at paddr 0x100000) differs".into(),
        ),
    ];
    for (at, bytes, by_hash, by_rebuild) in attacks {
        let mut t = boot.clone();
        t[at..at + bytes.len()].copy_from_slice(&bytes);
        let (h, r) = both(&t);
        for want in by_hash {
            assert!(h.contains(want), "{want:?} not in {h}");
        }
        assert!(r.contains(&by_rebuild), "{by_rebuild:?} not in {r}");
    }

    // Without hashes or a rebuild nothing binds the bytes: refused.
    let unbound = crate::verify::check(&boot, &no_hashes, None).join("\n");
    assert!(
        unbound.contains("nothing binds the image's bytes"),
        "{unbound}"
    );
}

#[test]
fn writable_and_executable_segments_are_refused() {
    let sys = system(&one_pd(""));
    let rwx = elf(
        0x40_0000,
        &[(0x40_0000, 0x40_0000, PF_R | PF_W | PF_X, &[0x90], 0x1000)],
    );
    let err = compile::compile(&sys, &vec![rwx], &[]).unwrap_err();
    assert!(
        err.contains("program segment 0x400000 is writable and executable"),
        "{err}"
    );
}

/// Hostile images (bytes overwritten in runs, cut anywhere, extended) never panic
/// verify and are always refused.
#[test]
fn mangled_images_are_refused_without_panicking() {
    let (boot, m) = everything();
    let mut no_hashes = m.clone();
    no_hashes.boot_image = None;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..300 {
        let mut t = boot.clone();
        match round % 3 {
            0 => {
                let at = next(t.len());
                let len = 1 + next(64);
                for b in t.iter_mut().skip(at).take(len) {
                    *b = next(256) as u8;
                }
            }
            1 => t.truncate(next(t.len())),
            _ => t.extend((0..1 + next(4096)).map(|_| next(256) as u8)),
        }
        if t == boot {
            continue;
        }
        assert!(
            !crate::verify::check(&t, &m, None).is_empty(),
            "round {round}"
        );
        assert!(
            !crate::verify::check(&t, &no_hashes, Some(&boot)).is_empty(),
            "round {round}"
        );
    }
}

mod pci;
