use alloc::vec::Vec;
use std::println;

use proptest::prelude::*;

use super::layout::*;
use super::payload::HEADER_LEN;
use super::testing::SyntheticBzImage;
use super::*;

const MIB: u64 = 1 << 20;

fn put(f: &mut [u8], at: usize, bytes: &[u8]) {
    f[at..at + bytes.len()].copy_from_slice(bytes);
}

fn input(ram_size: u64, initrd_len: u64, cmdline: &[u8]) -> PlanInput<'_> {
    PlanInput {
        ram_size,
        initrd_len,
        cmdline,
        acpi: None,
    }
}

#[test]
fn synthetic_image_parses() {
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let h = bz.header();
    assert_eq!(h.version, 0x020F);
    assert_eq!(h.setup_sects, 3);
    assert_eq!(h.header_end, 0x26C);
    assert_eq!(bz.kernel().len(), 0x1_0000);
    assert_eq!(bz.kernel(), &f[4 * 512..]);
    assert_eq!(bz.raw_header(), &f[0x1F1..0x26C]);
    assert_eq!(bz.load_address(), 0x100_0000);
    assert_eq!(bz.reserved_range(), (0x100_0000, 0x140_0000));
}

#[test]
fn zero_setup_sects_means_four() {
    let s = SyntheticBzImage {
        setup_sects: 0,
        ..Default::default()
    };
    let f = s.build();
    let bz = BzImage::parse(&f).unwrap();
    assert_eq!(bz.header().setup_sects, 4);
    assert_eq!(bz.kernel(), &f[5 * 512..]);
}

#[test]
fn trailer_after_syssize_is_not_loaded() {
    let s = SyntheticBzImage {
        trailer_len: 700,
        ..Default::default()
    };
    let f = s.build();
    let bz = BzImage::parse(&f).unwrap();
    assert_eq!(bz.kernel().len(), 0x1_0000);
}

#[test]
fn non_relocatable_loads_at_one_mib_and_reserves_the_run_area() {
    let s = SyntheticBzImage {
        relocatable: false,
        ..Default::default()
    };
    let f = s.build();
    let bz = BzImage::parse(&f).unwrap();
    assert_eq!(bz.load_address(), 0x10_0000);
    assert_eq!(bz.reserved_range(), (0x10_0000, 0x140_0000));
    let p = plan(&bz, &input(64 * MIB, 0, b"")).unwrap();
    assert_eq!(p.vcpu.rip, 0x10_0200);
}

type Mutation = fn(&mut Vec<u8>);

#[test]
fn malformed_headers_are_refused() {
    let cases: &[(&str, Mutation, BootError)] = &[
        (
            "short file",
            |f| f.truncate(0x200),
            BootError::Truncated {
                needed: 0x268,
                len: 0x200,
            },
        ),
        (
            "boot flag",
            |f| put(f, 0x1FE, &[0, 0]),
            BootError::BadBootFlag(0),
        ),
        ("magic", |f| put(f, 0x202, b"HdrT"), BootError::BadMagic),
        (
            "protocol 2.11",
            |f| put(f, 0x206, &[0x0B, 2]),
            BootError::ProtocolTooOld(0x020B),
        ),
        (
            "no short jump",
            |f| f[0x200] = 0xE9,
            BootError::BadJump(0xE9),
        ),
        (
            "header too short",
            |f| f[0x201] = 0x50,
            BootError::BadHeaderLength { end: 0x252 },
        ),
        (
            "header too long",
            |f| f[0x201] = 0x90,
            BootError::BadHeaderLength { end: 0x292 },
        ),
        ("zImage", |f| f[0x211] = 0, BootError::NotLoadedHigh),
        (
            "no 64-bit entry",
            |f| put(f, 0x236, &[0x7E, 0]),
            BootError::No64BitEntry,
        ),
        (
            "syssize 0",
            |f| put(f, 0x1F4, &[0; 4]),
            BootError::BadKernelSize {
                syssize_bytes: 0,
                available: 0x1_0000,
            },
        ),
        (
            "syssize past the file",
            |f| put(f, 0x1F4, &0x1001u32.to_le_bytes()),
            BootError::BadKernelSize {
                syssize_bytes: 0x1_0010,
                available: 0x1_0000,
            },
        ),
        (
            "setup past the file",
            |f| f[0x1F1] = 0xFF,
            BootError::BadKernelSize {
                syssize_bytes: 0x1_0000,
                available: 0,
            },
        ),
        (
            "syssize overflow",
            |f| put(f, 0x1F4, &u32::MAX.to_le_bytes()),
            BootError::BadKernelSize {
                syssize_bytes: 0xF_FFFF_FFF0,
                available: 0x1_0000,
            },
        ),
        (
            "alignment 0",
            |f| put(f, 0x230, &[0; 4]),
            BootError::BadKernelAlignment(0),
        ),
        (
            "alignment 3",
            |f| put(f, 0x230, &[3, 0, 0, 0]),
            BootError::BadKernelAlignment(3),
        ),
        (
            "pref misaligned",
            |f| put(f, 0x258, &0x100_1000u64.to_le_bytes()),
            BootError::BadPrefAddress(0x100_1000),
        ),
        (
            "pref below 1 MiB",
            |f| {
                put(f, 0x230, &0x1000u32.to_le_bytes());
                put(f, 0x258, &0x8000u64.to_le_bytes());
            },
            BootError::BadPrefAddress(0x8000),
        ),
        (
            "init_size region past 4 GiB",
            |f| put(f, 0x258, &0xFFE0_0000u64.to_le_bytes()),
            BootError::BadPrefAddress(0xFFE0_0000),
        ),
        (
            "pref overflows",
            |f| put(f, 0x258, &0xFFFF_FFFF_FFE0_0000u64.to_le_bytes()),
            BootError::BadPrefAddress(0xFFFF_FFFF_FFE0_0000),
        ),
        (
            "init_size below the image",
            |f| put(f, 0x260, &0x8000u32.to_le_bytes()),
            BootError::InitSizeTooSmall {
                init_size: 0x8000,
                kernel_len: 0x1_0000,
            },
        ),
    ];
    for (name, mutate, want) in cases {
        let mut f = SyntheticBzImage::default().build();
        mutate(&mut f);
        assert_eq!(BzImage::parse(&f).err(), Some(*want), "{name}");
    }
}

#[test]
fn empty_and_tiny_files_are_truncated() {
    for len in [0usize, 1, 0x1F1, 0x267] {
        let f = alloc::vec![0u8; len];
        assert!(
            matches!(BzImage::parse(&f), Err(BootError::Truncated { .. })),
            "{len}"
        );
    }
}

fn assert_plan_invariants(p: &BootPlan, bz: &BzImage<'_>, ram_size: u64, initrd: &[u8]) {
    let mut spans: Vec<(u64, u64)> = p.writes.iter().map(|w| (w.gpa, w.end())).collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "writes overlap: {pair:?}");
    }
    for w in &p.writes {
        let in_ram = w.end() <= LOW_RAM_END || (w.gpa >= KERNEL_LEGACY_GPA && w.end() <= ram_size);
        let in_acpi = w.gpa >= ACPI_WINDOW_START && w.end() <= ACPI_WINDOW_END;
        assert!(
            in_ram || in_acpi,
            "write outside RAM: {:#x}+{:#x}",
            w.gpa,
            w.len
        );
        assert!(w.data(bz.kernel(), initrd).is_some());
    }
    if !initrd.is_empty() {
        assert_eq!(p.initrd_gpa % PAGE_SIZE, 0);
        assert!(p.initrd_gpa >= p.kernel_reserved.1);
        let last = p.initrd_gpa + initrd.len() as u64 - 1;
        assert!(last <= u64::from(bz.header().initrd_addr_max));
        assert!(last < ram_size);
    }
    assert!(p.kernel_reserved.1 <= ram_size);
}

#[test]
fn plan_fills_boot_params() {
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let acpi_bytes = [0x5Au8; 0x100];
    let acpi = AcpiBlob {
        gpa: 0xE_0000,
        bytes: &acpi_bytes,
        rsdp_gpa: 0xE_0000,
        nvs: None,
    };
    let initrd = alloc::vec![7u8; 0x1234];
    let cmdline = b"console=ttyS0 root=/dev/sda1";
    let ram = 256 * MIB;
    let inp = PlanInput {
        ram_size: ram,
        initrd_len: initrd.len() as u64,
        cmdline,
        acpi: Some(acpi),
    };
    let p = plan(&bz, &inp).unwrap();
    assert_plan_invariants(&p, &bz, ram, &initrd);

    let zp = &p.zero_page;
    let bytes = zp.as_bytes();
    // The setup header is the file's, except the fields the loader sets.
    let mut want_hdr = f[0x1F1..0x26C].to_vec();
    for (at, len) in [(0x210, 1), (0x218, 8), (0x228, 4)] {
        want_hdr[at - 0x1F1..at - 0x1F1 + len].copy_from_slice(&bytes[at..at + len]);
    }
    assert_eq!(&bytes[0x1F1..0x26C], &want_hdr[..], "setup header copied");
    assert!(
        bytes[0x26C..0x290].iter().all(|&b| b == 0),
        "nothing past the header end"
    );
    assert_eq!(bytes[0x1EF], 0, "sentinel");
    assert_eq!(zp.type_of_loader(), 0xFF);
    assert_eq!(zp.cmd_line_ptr(), CMDLINE_GPA);
    // The initrd sits at the top of RAM (below initrd_addr_max), page-aligned.
    assert_eq!(zp.ramdisk(), (ram - 0x2000, 0x1234));
    assert_eq!(p.initrd_gpa, ram - 0x2000);
    assert_eq!(zp.acpi_rsdp_addr(), 0xE_0000);
    let e820: Vec<_> = zp.e820().collect();
    assert_eq!(
        e820,
        [
            (0, 0x9_FC00, 1),
            (0x9_FC00, 0x4_0400, 2),
            (0xE_0000, 0x2_0000, 3),
            (0x10_0000, ram - 0x10_0000, 1),
            (0xFEC0_0000, 0x1000, 2),
            (0xFEE0_0000, 0x1000, 2),
        ]
    );

    let w = |gpa: u64| p.writes.iter().find(|w| w.gpa == gpa).unwrap();
    assert_eq!(w(BOOT_PARAMS_GPA).data(&[], &[]).unwrap(), &bytes[..]);
    let mut want_cmdline = cmdline.to_vec();
    want_cmdline.push(0);
    assert_eq!(w(CMDLINE_GPA).data(&[], &[]).unwrap(), &want_cmdline[..]);
    assert_eq!(w(0x100_0000).source, WriteSource::Kernel);
    assert_eq!(w(ram - 0x2000).source, WriteSource::Initrd);
    assert_eq!(w(0xE_0000).data(&[], &[]).unwrap(), &acpi_bytes);
    // The wrong initrd slice is refused rather than written short.
    assert!(w(ram - 0x2000).data(bz.kernel(), &initrd[1..]).is_none());
}

#[test]
fn file_setup_data_is_not_passed_on() {
    let mut f = SyntheticBzImage::default().build();
    put(&mut f, 0x250, &0x1234_5678u64.to_le_bytes());
    let bz = BzImage::parse(&f).unwrap();
    let p = plan(&bz, &input(64 * MIB, 0, b"")).unwrap();
    assert_eq!(p.zero_page.u64_at(0x250), Some(0));
}

#[test]
fn initrd_respects_initrd_addr_max() {
    let s = SyntheticBzImage {
        initrd_addr_max: 0x37FF_FFFF,
        ..Default::default()
    };
    let f = s.build();
    let bz = BzImage::parse(&f).unwrap();
    let p = plan(&bz, &input(0xC000_0000, 0x10_0001, b"")).unwrap();
    assert_eq!(p.initrd_gpa, 0x37EF_F000);
    let s = SyntheticBzImage {
        initrd_addr_max: 0x140_0FFF,
        ..Default::default()
    };
    let f = s.build();
    let bz = BzImage::parse(&f).unwrap();
    assert_eq!(
        plan(&bz, &input(64 * MIB, 0x1000, b"")).unwrap().initrd_gpa,
        0x140_0000
    );
    assert_eq!(
        plan(&bz, &input(64 * MIB, 0x1001, b"")).err(),
        Some(BootError::InitrdDoesNotFit { len: 0x1001 })
    );
}

#[test]
fn bad_plan_inputs_are_refused() {
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let long = alloc::vec![b'a'; 0x800];
    let acpi = |gpa, len, rsdp_gpa| -> AcpiBlob<'static> {
        static B: [u8; 0x1000] = [0; 0x1000];
        AcpiBlob {
            gpa,
            bytes: &B[..len],
            rsdp_gpa,
            nvs: None,
        }
    };
    // ACPI tables outside the window, or an RSDP misaligned or running past them.
    let bad_acpi = |gpa: u64, len: usize, rsdp_gpa: u64| {
        (
            PlanInput {
                acpi: Some(acpi(gpa, len, rsdp_gpa)),
                ..input(64 * MIB, 0, b"")
            },
            BootError::BadAcpiPlacement {
                gpa,
                len: len as u64,
            },
        )
    };
    let bad_nvs = |gpa: u64, len: u64| {
        (
            PlanInput {
                acpi: Some(AcpiBlob {
                    nvs: Some((gpa, len)),
                    ..acpi(0xE_0000, 0x100, 0xE_0000)
                }),
                ..input(64 * MIB, 0, b"")
            },
            BootError::BadNvsPlacement { gpa, len },
        )
    };
    let cases: &[(PlanInput<'_>, BootError)] = &[
        (
            input(64 * MIB + 1, 0, b""),
            BootError::BadRamSize(64 * MIB + 1),
        ),
        (input(MIB, 0, b""), BootError::BadRamSize(MIB)),
        (
            input(0xC000_1000, 0, b""),
            BootError::BadRamSize(0xC000_1000),
        ),
        (
            input(20 * MIB, 0, b""),
            BootError::KernelDoesNotFit {
                start: 16 * MIB,
                end: 20 * MIB,
                ram_size: 20 * MIB,
            },
        )
            .0
            .ram_size
            .checked_sub(MIB)
            .map(|r| {
                (
                    input(r, 0, b""),
                    BootError::KernelDoesNotFit {
                        start: 16 * MIB,
                        end: 20 * MIB,
                        ram_size: r,
                    },
                )
            })
            .unwrap(),
        (
            input(64 * MIB, 0, &long),
            BootError::CmdlineTooLong {
                len: 0x800,
                max: 0x7FF,
            },
        ),
        (input(64 * MIB, 0, b"a\0b"), BootError::CmdlineHasNul),
        (
            input(64 * MIB, 60 * MIB, b""),
            BootError::InitrdDoesNotFit { len: 60 * MIB },
        ),
        (
            input(64 * MIB, u64::MAX, b""),
            BootError::InitrdDoesNotFit { len: u64::MAX },
        ),
        bad_acpi(0xD_F000, 0x100, 0xD_F000),
        bad_acpi(0xF_F800, 0x1000, 0xF_F800),
        bad_acpi(0xE_0000, 0x100, 0xE_0008),
        bad_acpi(0xE_0000, 0x100, 0xE_00F0),
        // NVS that is not page-aligned between the IOAPIC and LAPIC pages.
        bad_nvs(0xFED4_6000, 0),
        bad_nvs(0xFED4_6800, 0x1000),
        bad_nvs(0xFED4_6000, 0x800),
        bad_nvs(0xFEC0_0000, 0x1000),
        bad_nvs(0xFEDF_F000, 0x2000),
        bad_nvs(0x800_0000, 0x1000),
        bad_nvs(!0xFFF, 0x1000),
    ];
    for (i, (inp, want)) in cases.iter().enumerate() {
        assert_eq!(plan(&bz, inp).err(), Some(*want), "case {i}");
    }
    // Exactly enough RAM for the kernel's reservation works.
    assert!(plan(&bz, &input(20 * MIB, 0, b"")).is_ok());
    assert!(plan(&bz, &input(64 * MIB, 0, &long[..0x7FF])).is_ok());
}

#[test]
fn vcpu_state_is_long_mode_with_flat_segments() {
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let v = plan(&bz, &input(64 * MIB, 0, b"")).unwrap().vcpu;
    assert_eq!(v.rip, 0x100_0200);
    assert_eq!(v.rsi, BOOT_PARAMS_GPA);
    assert_eq!(v.rflags, 2);
    assert_eq!(v.cr0, 0x8000_0031);
    assert_eq!(v.cr3, PML4_GPA);
    assert_eq!(v.cr4, 0x20);
    assert_eq!(v.efer, 0xD00);
    assert_eq!(
        v.cs,
        Segment {
            selector: 0x10,
            attrib: 0xA9B,
            limit: 0xFFFF_FFFF,
            base: 0
        }
    );
    let data = Segment {
        selector: 0x18,
        attrib: 0xC93,
        limit: 0xFFFF_FFFF,
        base: 0,
    };
    for s in [v.ds, v.es, v.ss, v.fs, v.gs] {
        assert_eq!(s, data);
    }
    assert_eq!(
        v.gdtr,
        TableRegister {
            base: GDT_GPA,
            limit: 31
        }
    );
    assert_eq!(v.tr.attrib, 0x8B);
}

#[test]
fn gdt_and_page_tables_in_guest_memory() {
    let f = SyntheticBzImage::default().build();
    let bz = BzImage::parse(&f).unwrap();
    let p = plan(&bz, &input(64 * MIB, 0, b"")).unwrap();
    let w = |gpa: u64| {
        p.writes
            .iter()
            .find(|w| w.gpa == gpa)
            .unwrap()
            .data(&[], &[])
            .unwrap()
    };
    let q = |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    let gdt = w(GDT_GPA);
    assert_eq!(gdt.len(), 32);
    assert_eq!(q(gdt, 2), 0x00AF_9B00_0000_FFFF);
    assert_eq!(q(gdt, 3), 0x00CF_9300_0000_FFFF);

    // Walk the tables for a few addresses: each maps to itself.
    let pt = w(PML4_GPA);
    let read = |gpa: u64, i: u64| q(&pt[(gpa - PML4_GPA) as usize..], i as usize);
    for va in [
        0u64,
        0x100_0200,
        0x3FFF_FFFF,
        0x4000_0000,
        0xFEC0_0000,
        0xFFFF_FFFF,
    ] {
        let pml4e = read(PML4_GPA, (va >> 39) & 511);
        assert_eq!(pml4e & 3, 3);
        let pdpte = read(pml4e & !0xFFF, (va >> 30) & 511);
        assert_eq!(pdpte & 3, 3);
        let pde = read(pdpte & !0xFFF, (va >> 21) & 511);
        assert_eq!(pde & 0x83, 0x83, "2 MiB page");
        assert_eq!((pde & !0x1F_FFFF) | (va & 0x1F_FFFF), va);
    }
}

/// Debian kernels another helper fetches; a missing file skips with a line.
#[test]
fn real_bzimages_parse_and_plan() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/guests");
    let mut found = 0;
    let mut paths: Vec<_> = ["6.1", "6.12", "7"]
        .iter()
        .map(|v| std::format!("{root}/{v}/vmlinuz"))
        .collect();
    // Another image to try, e.g. one unpacked by hand.
    paths.extend(std::env::var("VMM_TEST_BZIMAGE"));
    for path in paths {
        let Ok(f) = std::fs::read(&path) else {
            println!("skipped: no bzImage at {path}");
            continue;
        };
        found += 1;
        let bz = BzImage::parse(&f).unwrap_or_else(|e| panic!("{path}: {e}"));
        let h = bz.header();
        assert!(h.version >= 0x020C && h.relocatable, "{path}: {h:?}");
        let initrd = alloc::vec![0u8; 16 << 20];
        let ram = 512 * MIB;
        let p = plan(&bz, &input(ram, initrd.len() as u64, b"console=ttyS0")).unwrap();
        assert_plan_invariants(&p, &bz, ram, &initrd);
        assert_eq!(p.vcpu.rip, h.pref_address + 0x200);
        println!(
            "{path}: protocol {:#x}, init_size {:#x}",
            h.version, h.init_size
        );
    }
    if found == 0 {
        println!("skipped: no real bzImage under {root}");
    }
}

fn payload<'a>(kernel: &'a [u8], initrd: &'a [u8], cmdline: &'a [u8]) -> GuestPayload<'a> {
    GuestPayload {
        flags: PayloadFlags::CONFIDENTIAL_VMBUS,
        kernel,
        initrd,
        cmdline,
    }
}

#[test]
fn payload_round_trips() {
    let kernel = SyntheticBzImage::default().build();
    let initrd = [9u8; 5000];
    let p = payload(&kernel, &initrd, b"console=ttyS0");
    let region = p.encode(Some(0x10_0000)).unwrap();
    assert_eq!(region.len(), 0x10_0000);
    let back = GuestPayload::parse(&region).unwrap();
    assert_eq!(back, p);
    assert!(back.flags.confidential_vmbus());
    // Parts land on page boundaries.
    let off = |at: usize| u64::from_le_bytes(region[at..at + 8].try_into().unwrap());
    assert_eq!(off(0x10) % 0x1000, 0);
    assert_eq!(off(0x20) % 0x1000, 0);
    let plain = GuestPayload {
        flags: PayloadFlags::empty(),
        ..payload(&kernel, &[], b"")
    };
    let back = plain.encode(None).unwrap();
    assert_eq!(GuestPayload::parse(&back).unwrap(), plain);
    assert!(!plain.flags.confidential_vmbus());
}

#[test]
fn payload_encode_refuses_too_small_region() {
    let kernel = [1u8; 0x3000];
    let p = payload(&kernel, &[], b"x");
    assert_eq!(
        p.encode(Some(0x2000)),
        Err(PayloadError::TooLarge {
            needed: 0x4000,
            size: 0x2000
        })
    );
    assert_eq!(
        payload(&[], &[], b"").encode(None),
        Err(PayloadError::EmptyKernel)
    );
}

#[test]
fn malformed_payloads_are_refused() {
    let kernel = [1u8; 0x100];
    let good = payload(&kernel, &[2u8; 0x10], b"c")
        .encode(Some(0x3000))
        .unwrap();
    type M = fn(&mut Vec<u8>);
    let cases: &[(&str, M, PayloadError)] = &[
        (
            "short",
            |r| r.truncate(HEADER_LEN - 1),
            PayloadError::Truncated,
        ),
        ("magic", |r| r[0] = b'X', PayloadError::BadMagic),
        (
            "version",
            |r| put(r, 8, &2u32.to_le_bytes()),
            PayloadError::UnsupportedVersion(2),
        ),
        (
            "flags",
            |r| put(r, 12, &3u32.to_le_bytes()),
            PayloadError::UnknownFlags(3),
        ),
        (
            "empty kernel",
            |r| put(r, 0x18, &0u64.to_le_bytes()),
            PayloadError::EmptyKernel,
        ),
        (
            "kernel over header",
            |r| put(r, 0x10, &0x20u64.to_le_bytes()),
            PayloadError::BadRange {
                part: "kernel",
                offset: 0x20,
                len: 0x100,
            },
        ),
        (
            "initrd past end",
            |r| put(r, 0x28, &0x2000u64.to_le_bytes()),
            PayloadError::BadRange {
                part: "initrd",
                offset: 0x2000,
                len: 0x2000,
            },
        ),
        (
            "cmdline offset overflow",
            |r| put(r, 0x30, &u64::MAX.to_le_bytes()),
            PayloadError::BadRange {
                part: "cmdline",
                offset: u64::MAX,
                len: 1,
            },
        ),
        (
            "cmdline len overflow",
            |r| put(r, 0x38, &u64::MAX.to_le_bytes()),
            PayloadError::BadRange {
                part: "cmdline",
                offset: 0x40,
                len: u64::MAX,
            },
        ),
    ];
    for (name, mutate, want) in cases {
        let mut r = good.clone();
        mutate(&mut r);
        assert_eq!(GuestPayload::parse(&r), Err(*want), "{name}");
    }
}

fn exercise(data: &[u8], ram_mib: u64, initrd_len: u64) {
    if let Ok(bz) = BzImage::parse(data) {
        let ram = (ram_mib % 3072 + 2) * MIB;
        let initrd = alloc::vec![0u8; (initrd_len % (4 * MIB)) as usize];
        if let Ok(p) = plan(&bz, &input(ram, initrd.len() as u64, b"quiet")) {
            assert_plan_invariants(&p, &bz, ram, &initrd);
        }
    }
    if let Ok(p) = GuestPayload::parse(data) {
        assert!(!p.kernel.is_empty());
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..0x1400)) {
        exercise(&data, 64, 0);
    }

    /// A valid header with random bytes written over its fields: the parser and
    /// the planner either refuse or produce a plan that keeps the invariants.
    #[test]
    fn mutated_headers_never_panic(
        pokes in proptest::collection::vec((0x1F1usize..0x270, any::<u8>()), 1..12),
        ram_mib in any::<u64>(),
        initrd_len in any::<u64>(),
    ) {
        let mut f = SyntheticBzImage { kernel_len: 0x800, ..Default::default() }.build();
        for (at, v) in pokes {
            f[at] = v;
        }
        exercise(&f, ram_mib, initrd_len);
    }

    #[test]
    fn payload_headers_never_panic(
        header in proptest::collection::vec(any::<u8>(), HEADER_LEN..HEADER_LEN + 1),
        len in 0usize..0x3000,
    ) {
        let mut r = alloc::vec![0u8; len.max(HEADER_LEN)];
        r[..HEADER_LEN].copy_from_slice(&header);
        r[..8].copy_from_slice(b"PVGUEST1");
        if let Ok(p) = GuestPayload::parse(&r) {
            for part in [p.kernel, p.initrd, p.cmdline] {
                let start = part.as_ptr() as usize - r.as_ptr() as usize;
                prop_assert!(part.is_empty() || start >= HEADER_LEN);
            }
        }
    }
}

/// The fuzz seeds are what their names say, so the fuzzer starts from plans that
/// succeed (and one that fails late, in initrd placement).
#[test]
fn fuzz_seeds_reach_the_planner() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/vmm_bzimage");
    let ram = 66 * MIB;
    let initrd_len = 15 * 0x1001;
    for name in [
        "relocatable",
        "non_relocatable",
        "setup_sects_zero",
        "low_initrd_max",
    ] {
        let f = std::fs::read(std::format!("{dir}/{name}")).unwrap();
        let bz = BzImage::parse(&f[4..]).unwrap();
        let r = plan(&bz, &input(ram, initrd_len, b""));
        if name == "low_initrd_max" {
            assert_eq!(
                r.err(),
                Some(BootError::InitrdDoesNotFit { len: initrd_len })
            );
        } else {
            r.unwrap();
        }
    }
    for name in ["payload_confidential", "payload_plain"] {
        let f = std::fs::read(std::format!("{dir}/{name}")).unwrap();
        let p = GuestPayload::parse(&f[4..]).unwrap();
        assert_eq!(p.flags.confidential_vmbus(), name.ends_with("confidential"));
        let bz = BzImage::parse(p.kernel).unwrap();
        plan(&bz, &input(ram, p.initrd.len() as u64, p.cmdline)).unwrap();
    }
}
