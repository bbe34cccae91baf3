use alloc::vec::Vec;
use std::println;

use proptest::prelude::*;

use super::*;
use crate::boot::layout::ACPI_WINDOW_START;
use crate::devices::tpm_crb::TpmDevice;

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The table at `gpa` inside `t`, by its header's length.
fn table_at(t: &AcpiTables, gpa: u64) -> &[u8] {
    let at = (gpa - t.base_gpa) as usize;
    let len = u32_at(&t.bytes, at + 4) as usize;
    &t.bytes[at..at + len]
}

/// Follows the pointers from the RSDP as an OS does, checking every checksum.
fn walk(t: &AcpiTables) -> Vec<([u8; 4], Vec<u8>)> {
    let rsdp = t.rsdp();
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!(sum(&rsdp[..20]), 0, "RSDP v1 checksum");
    assert_eq!(sum(rsdp), 0, "RSDP extended checksum");
    assert_eq!(rsdp[15], 2, "revision");
    assert_eq!(u32_at(rsdp, 16), 0, "no RSDT");
    assert_eq!(u32_at(rsdp, 20), 36);
    let xsdt = table_at(t, u64_at(rsdp, 24));
    assert_eq!(&xsdt[..4], b"XSDT");
    let mut out = alloc::vec![(*b"XSDT", xsdt.to_vec())];
    for i in 0..(xsdt.len() - 36) / 8 {
        let tbl = table_at(t, u64_at(xsdt, 36 + 8 * i));
        out.push((tbl[..4].try_into().unwrap(), tbl.to_vec()));
        if &tbl[..4] == b"FACP" {
            assert_eq!(u32_at(tbl, 40), 0, "32-bit DSDT unused");
            let dsdt = table_at(t, u64_at(tbl, 140));
            out.push((*b"DSDT", dsdt.to_vec()));
        }
    }
    for (sig, tbl) in &out {
        assert_eq!(
            sum(tbl),
            0,
            "{} checksum",
            core::str::from_utf8(sig).unwrap()
        );
        assert_eq!(&tbl[10..16], b"PVISOR");
    }
    out
}

fn find<'a>(tables: &'a [([u8; 4], Vec<u8>)], sig: &[u8; 4]) -> &'a [u8] {
    &tables.iter().find(|(s, _)| s == sig).unwrap().1
}

#[test]
fn tables_link_and_checksum() {
    let t = AcpiTables::build(ACPI_WINDOW_START, 4).unwrap();
    assert_eq!(t.rsdp_gpa, ACPI_WINDOW_START);
    let tables = walk(&t);
    let sigs: Vec<_> = tables.iter().map(|(s, _)| *s).collect();
    assert_eq!(sigs, [*b"XSDT", *b"FACP", *b"DSDT", *b"APIC"]);
    for (sig, tbl) in &tables {
        assert_eq!(t.table(sig).unwrap(), &tbl[..]);
    }
}

#[test]
fn fadt_is_hardware_reduced_with_sleep_registers() {
    let t = AcpiTables::build(ACPI_WINDOW_START, 1).unwrap();
    let f = t.table(b"FACP").unwrap();
    assert_eq!(f.len(), 276);
    assert_eq!(f[8], 6, "revision");
    assert_eq!(f[131], 5, "minor revision");
    let flags = u32_at(f, 112);
    assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
    assert_eq!(u32_at(f, 109) & 0xFFFF & (1 << 1), 0, "no 8042");
    assert_eq!(u32_at(f, 46) & 0xFFFF, 0, "no SCI");
    // Sleep control / status: SystemIO, 8 bits, byte access, at the VMM's ports.
    assert_eq!(&f[244..248], &[1, 8, 0, 1]);
    assert_eq!(u64_at(f, 248), u64::from(SLEEP_CONTROL_PORT));
    assert_eq!(&f[256..260], &[1, 8, 0, 1]);
    assert_eq!(u64_at(f, 260), u64::from(SLEEP_STATUS_PORT));
    // Every PM1/GPE/PM timer block is absent.
    assert!(f[56..88].iter().all(|&b| b == 0));
    assert!(f[148..244].iter().all(|&b| b == 0));
}

/// MADT subtables as (type, bytes).
fn madt_entries(m: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut at = 44;
    let mut out = Vec::new();
    while at < m.len() {
        let len = usize::from(m[at + 1]);
        assert!(len >= 2 && at + len <= m.len());
        out.push((m[at], m[at..at + len].to_vec()));
        at += len;
    }
    out
}

#[test]
fn madt_lists_x2apics_ioapic_and_overrides() {
    let t = AcpiTables::build(ACPI_WINDOW_START, 3).unwrap();
    let m = t.table(b"APIC").unwrap();
    assert_eq!(u32_at(m, 36), 0xFEE0_0000);
    assert_eq!(u32_at(m, 40), 0, "no PCAT_COMPAT");
    let e = madt_entries(m);
    let x2: Vec<_> = e.iter().filter(|(k, _)| *k == 9).collect();
    assert_eq!(x2.len(), 3);
    for (i, (_, b)) in x2.iter().enumerate() {
        assert_eq!(b.len(), 16);
        assert_eq!(u32_at(b, 4), i as u32, "x2APIC id");
        assert_eq!(u32_at(b, 8), 1, "enabled");
        assert_eq!(u32_at(b, 12), i as u32, "UID");
    }
    let io: Vec<_> = e.iter().filter(|(k, _)| *k == 1).collect();
    assert_eq!(io.len(), 1);
    assert_eq!(io[0].1, [1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0]);
    let iso: Vec<_> = e
        .iter()
        .filter(|(k, _)| *k == 2)
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(
        iso,
        [
            [2, 10, 0, 0, 2, 0, 0, 0, 0, 0],
            [2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0]
        ]
    );
    assert_eq!(e.len(), 3 + 1 + 2);
}

#[test]
fn dsdt_aml_is_the_expected_bytes() {
    let t = AcpiTables::build(ACPI_WINDOW_START, 1).unwrap();
    let d = t.table(b"DSDT").unwrap();
    assert_eq!(d[8], 2, "revision 2: 64-bit integers");
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x10, 0x48, 0x08, b'_', b'S', b'B', b'_',            // Scope (\_SB), 136 bytes
        0x5B, 0x82, 0x25, b'V', b'M', b'B', b'S',            //   Device (VMBS), 37 bytes
        0x08, b'_', b'H', b'I', b'D',                        //     Name (_HID,
        0x0D, b'V', b'M', b'B', b'U', b'S', 0,               //       "VMBUS")
        0x08, b'_', b'U', b'I', b'D', 0x00,                  //     Name (_UID, Zero)
        0x08, b'_', b'C', b'R', b'S',                        //     Name (_CRS,
        0x11, 0x08, 0x0A, 0x05,                              //       Buffer (5) {
        0x22, 0x20, 0x00, 0x79, 0x00,                        //       IRQNoFlags {5}, end })
        0x5B, 0x82, 0x2B, b'C', b'O', b'M', b'1',            //   Device (COM1), 43 bytes
        0x08, b'_', b'H', b'I', b'D',                        //     Name (_HID,
        0x0C, 0x41, 0xD0, 0x05, 0x01,                        //       EisaId ("PNP0501"))
        0x08, b'_', b'U', b'I', b'D', 0x01,                  //     Name (_UID, One)
        0x08, b'_', b'C', b'R', b'S',                        //     Name (_CRS,
        0x11, 0x10, 0x0A, 0x0D,                              //       Buffer (13) {
        0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08,      //       IO (Decode16, 0x3F8, 0x3F8, 1, 8)
        0x22, 0x10, 0x00, 0x79, 0x00,                        //       IRQNoFlags {4}, end })
        0x5B, 0x82, 0x2C, b'C', b'O', b'M', b'2',            //   Device (COM2), 44 bytes
        0x08, b'_', b'H', b'I', b'D',                        //     Name (_HID,
        0x0C, 0x41, 0xD0, 0x05, 0x01,                        //       EisaId ("PNP0501"))
        0x08, b'_', b'U', b'I', b'D', 0x0A, 0x02,            //     Name (_UID, 2)
        0x08, b'_', b'C', b'R', b'S',                        //     Name (_CRS,
        0x11, 0x10, 0x0A, 0x0D,                              //       Buffer (13) {
        0x47, 0x01, 0xF8, 0x02, 0xF8, 0x02, 0x01, 0x08,      //       IO (Decode16, 0x2F8, 0x2F8, 1, 8)
        0x22, 0x08, 0x00, 0x79, 0x00,                        //       IRQNoFlags {3}, end })
        0x08, b'_', b'S', b'5', b'_',                        // Name (\_S5,
        0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00, //   Package (4) {5, 5, 0, 0})
    ];
    assert_eq!(&d[36..], want);
}

#[test]
fn sleep_control_values() {
    assert_eq!(S5_SLEEP_CONTROL, 0x34);
    assert_eq!(sleep_request(S5_SLEEP_CONTROL), Some(S5_SLEEP_TYPE));
    assert_eq!(sleep_request(0x14), None, "SLP_EN clear");
    assert_eq!(sleep_request(0x20), Some(0));
    assert_eq!(sleep_request(0xFF), Some(7));
}

#[test]
fn bad_inputs_are_refused() {
    assert_eq!(AcpiTables::build(0xE_0000, 0), Err(AcpiError::NoVcpus));
    assert_eq!(
        AcpiTables::build(0xE_0000, 256),
        Err(AcpiError::TooManyVcpus(256))
    );
    assert_eq!(
        AcpiTables::build(0xE_0008, 1),
        Err(AcpiError::BaseUnaligned(0xE_0008))
    );
    let top = u64::MAX - 15;
    assert_eq!(
        AcpiTables::build(top, 1),
        Err(AcpiError::AddressOverflow(top))
    );
    assert!(AcpiTables::build(0xE_0000, 255).is_ok());
}

/// The boot plan of a synthetic kernel in 64 MiB with tables `t`.
fn planned(t: &AcpiTables) -> crate::boot::BootPlan {
    use crate::boot::testing::SyntheticBzImage;
    use crate::boot::{plan, BzImage, PlanInput};
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let input = PlanInput {
        ram_size: 64 << 20,
        initrd_len: 0,
        cmdline: b"",
        acpi: Some(t.blob()),
    };
    plan(&bz, &input).unwrap()
}

#[test]
fn boot_plan_accepts_the_tables() {
    let t = AcpiTables::build(ACPI_WINDOW_START, MAX_VCPUS).unwrap();
    assert!(t.bytes.len() < 0x2_0000, "fits the ACPI window");
    let p = planned(&t);
    assert_eq!(p.zero_page.acpi_rsdp_addr(), ACPI_WINDOW_START);
    let w = p
        .writes
        .iter()
        .find(|w| w.gpa == ACPI_WINDOW_START)
        .unwrap();
    assert_eq!(w.data(&[], &[]).unwrap(), &t.bytes[..]);
}

proptest! {
    #[test]
    fn any_vcpu_count_and_base_links_and_checksums(vcpus in 1u32..=MAX_VCPUS, base in 0u64..(1 << 40)) {
        let t = AcpiTables::build(base & !15, vcpus).unwrap();
        let tables = walk(&t);
        let x2 = madt_entries(find(&tables, b"APIC")).iter().filter(|(k, _)| *k == 9).count();
        prop_assert_eq!(x2, vcpus as usize);
    }
}

/// A scratch directory for iasl, or `None` (with a line) where acpica-tools is
/// not installed.
fn iasl_dir(tag: &str) -> Option<std::path::PathBuf> {
    if std::process::Command::new("iasl")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("skipped: iasl not found (install acpica-tools)");
        return None;
    }
    let dir = std::env::temp_dir().join(std::format!("vmm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// `iasl -d` of table `name`: its disassembly, after checking that iasl succeeded
/// and that neither it nor the disassembly names a problem.
fn iasl_disassemble(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::string::String {
    let path = dir.join(std::format!("{name}.dat"));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("iasl")
        .arg("-d")
        .arg(&path)
        .current_dir(dir)
        .output()
        .unwrap();
    let log = std::format!(
        "{}{}",
        std::string::String::from_utf8_lossy(&out.stdout),
        std::string::String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "iasl -d {name} failed:\n{log}");
    let dsl = std::fs::read_to_string(dir.join(std::format!("{name}.dsl"))).unwrap();
    for bad in [
        "Incorrect checksum",
        "Invalid",
        "Error",
        "Warning",
        "Unknown",
    ] {
        assert!(!log.contains(bad), "iasl on {name} says {bad}:\n{log}");
        assert!(!dsl.contains(bad), "{name}.dsl says {bad}:\n{dsl}");
    }
    dsl
}

/// The ACPICA disassembler as an oracle: each table must disassemble without
/// errors or checksum complaints, and say what we meant. Skipped (with a line)
/// where acpica-tools is not installed.
#[test]
fn iasl_disassembles_every_table() {
    use std::process::Command;
    let Some(dir) = iasl_dir("acpi") else {
        return;
    };
    let t = AcpiTables::build(ACPI_WINDOW_START, 2).unwrap();
    // This iasl cannot read an RSDP from a binary file; `walk` checks it instead.
    let mut files = Vec::new();
    for sig in [b"XSDT", b"FACP", b"APIC", b"DSDT"] {
        files.push((
            core::str::from_utf8(sig).unwrap(),
            t.table(sig).unwrap().to_vec(),
        ));
    }
    let expect: &[(&str, &[&str])] = &[
        ("XSDT", &["ACPI Table Address   0 : 00000000000E0070"]),
        (
            "FACP",
            &[
                "Hardware Reduced (V5) : 1",
                "Sleep Control Register",
                "0000000000000404",
            ],
        ),
        (
            "APIC",
            &[
                "Processor Local x2APIC",
                "I/O APIC",
                "Interrupt Source Override",
            ],
        ),
        (
            "DSDT",
            &[
                "Device (VMBS)",
                "\"VMBUS\"",
                "_S5_",
                "IRQNoFlags ()",
                "Device (COM1)",
                "EisaId (\"PNP0501\")",
                "0x03F8",
                "Device (COM2)",
                "0x02F8",
            ],
        ),
    ];
    for (name, bytes) in &files {
        let dsl = iasl_disassemble(&dir, name, bytes);
        for want in expect.iter().find(|(n, _)| n == name).unwrap().1 {
            assert!(dsl.contains(want), "{name}.dsl lacks {want:?}:\n{dsl}");
        }
    }

    // Recompiling the disassembly gives back our AML byte for byte. `-f`: iasl's
    // compiler wants a 7- or 8-character _HID, but "VMBUS" is what Hyper-V's own
    // DSDT says and what hv_vmbus matches.
    let out = Command::new("iasl")
        .args(["-f", "-p", "recompiled", "DSDT.dsl"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let aml = std::fs::read(dir.join("recompiled.aml"))
        .unwrap_or_else(|e| panic!("iasl did not recompile DSDT.dsl ({e}): {out:?}"));
    assert_eq!(
        &aml[36..],
        &t.table(b"DSDT").unwrap()[36..],
        "AML differs from iasl's"
    );

    // The oracle can fail: a table with a wrong checksum is reported.
    let mut bad = t.table(b"APIC").unwrap().to_vec();
    bad[9] ^= 1;
    std::fs::write(dir.join("bad.dat"), &bad).unwrap();
    let out = Command::new("iasl")
        .args(["-d", "bad.dat"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let dsl = std::fs::read_to_string(dir.join("bad.dsl")).unwrap();
    assert!(dsl.contains("Incorrect checksum"), "{dsl}");
    let _ = std::fs::remove_dir_all(&dir);
}

const TPM: TpmDevice = TpmDevice {
    log: Some((0xfed4_6000, 0x4000)),
};

#[test]
fn a_tpm_adds_tpm2_and_msft0101_and_nothing_else_changes() {
    let plain = AcpiTables::build(ACPI_WINDOW_START, 1).unwrap();
    let t = AcpiTables::build_for(ACPI_WINDOW_START, 1, Some(&TPM)).unwrap();
    let tables = walk(&t);
    let sigs: Vec<_> = tables.iter().map(|(s, _)| *s).collect();
    assert_eq!(sigs, [*b"XSDT", *b"FACP", *b"DSDT", *b"APIC", *b"TPM2"]);
    let tpm2 = find(&tables, b"TPM2");
    assert_eq!(tpm2.len(), 76);
    assert_eq!(tpm2[8], 4, "revision 4: with the log area fields");
    assert_eq!(
        u64_at(tpm2, 40),
        0xfed4_0040,
        "control area after the locality registers"
    );
    assert_eq!(u32_at(tpm2, 48), 7, "start method: CRB");
    assert!(tpm2[52..64].iter().all(|&b| b == 0));
    assert_eq!(u32_at(tpm2, 64), 0x4000, "LAML");
    assert_eq!(u64_at(tpm2, 68), 0xfed4_6000, "LASA");
    let dsdt = find(&tables, b"DSDT");
    let hid = dsdt.windows(8).position(|w| w == b"MSFT0101");
    assert!(hid.is_some(), "MSFT0101 in the DSDT");
    // _CRS: Memory32Fixed, read-write, the locality pages and the buffer page.
    let crs = [
        0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xd4, 0xfe, 0x00, 0x60, 0x00, 0x00,
    ];
    assert!(dsdt.windows(crs.len()).any(|w| w == crs));
    // Without a TPM, neither appears.
    assert!(plain.table(b"TPM2").is_none());
    assert!(!plain
        .table(b"DSDT")
        .unwrap()
        .windows(8)
        .any(|w| w == b"MSFT0101"));
    // No log: LASA and LAML stay zero, as Linux then skips the log.
    let nolog =
        AcpiTables::build_for(ACPI_WINDOW_START, 1, Some(&TpmDevice { log: None })).unwrap();
    assert!(nolog.table(b"TPM2").unwrap()[64..76]
        .iter()
        .all(|&b| b == 0));
}

/// The log the TPM2 table points at is in the guest's e820 as ACPI NVS (never
/// RAM; mapped private by a memory-encrypting guest), between the IOAPIC and
/// LAPIC pages; without a log there is no NVS range.
#[test]
fn the_tpm_log_is_acpi_nvs_in_the_memory_map() {
    let e820 = |tpm: &TpmDevice| {
        let t = AcpiTables::build_for(ACPI_WINDOW_START, 1, Some(tpm)).unwrap();
        let p = planned(&t);
        let lasa = (
            u64_at(t.table(b"TPM2").unwrap(), 68),
            u64::from(u32_at(t.table(b"TPM2").unwrap(), 64)),
        );
        (p.zero_page.e820().collect::<Vec<_>>(), lasa)
    };
    let (map, (lasa, laml)) = e820(&TPM);
    assert_eq!(
        map[map.len() - 3..],
        [
            (0xFEC0_0000, 0x1000, 2),
            (lasa, laml, 4),
            (0xFEE0_0000, 0x1000, 2)
        ]
    );
    assert_eq!((lasa, laml), (0xfed4_6000, 0x4000));
    let (map, _) = e820(&TpmDevice { log: None });
    assert!(map.iter().all(|&(_, _, kind)| kind != 4), "{map:x?}");
}

/// iasl decodes the TPM2 table and the TPM device as we meant them.
#[test]
fn iasl_reads_the_tpm_tables() {
    let Some(dir) = iasl_dir("acpi-tpm") else {
        return;
    };
    let t = AcpiTables::build_for(ACPI_WINDOW_START, 1, Some(&TPM)).unwrap();
    for (sig, want) in [
        (
            b"TPM2",
            &[
                "Start Method : 07",
                "Control Address : 00000000FED40040",
                "Minimum Log Length : 00004000",
                "Log Address : 00000000FED46000",
            ][..],
        ),
        (
            b"DSDT",
            &[
                "Device (TPM0)",
                "\"MSFT0101\"",
                "Memory32Fixed (ReadWrite,",
                "0xFED40000",
                "0x00006000",
            ][..],
        ),
    ] {
        let name = core::str::from_utf8(sig).unwrap();
        let dsl = iasl_disassemble(&dir, name, t.table(sig).unwrap());
        // iasl pads field names with dots and spaces: compare without them.
        let squeeze = |s: &str| s.replace(['.', ' '], "");
        let flat = squeeze(&dsl);
        for w in want {
            assert!(flat.contains(&squeeze(w)), "{name}.dsl lacks {w:?}:\n{dsl}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
