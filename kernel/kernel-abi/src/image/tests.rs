#![allow(clippy::unwrap_used)]

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::build::{encode, PdSpec, RegionSpec, VmSpec};
use super::*;

fn region(name: &str, size: u64) -> RegionSpec {
    RegionSpec {
        desc: RegionDesc::new(crate::name(name).unwrap(), size, None),
        data: Vec::new(),
    }
}

fn pd(name: &str, priority: u8) -> PdSpec {
    let mut desc = PdDesc::empty();
    desc.name = crate::name(name).unwrap();
    desc.priority = priority;
    desc.entry = 0x40_1000;
    desc.stack_size = 0x4000;
    PdSpec {
        desc,
        segments: vec![SegmentDesc {
            vaddr: 0x40_1000,
            file_off: 0,
            file_size: 4,
            mem_size: 0x2000,
            perms: perms::R | perms::X,
            _reserved: 0,
        }],
        maps: vec![MapDesc {
            vaddr: 0x2000_0000,
            region: 0,
            perms: perms::R | perms::W,
            cached: 1,
            _reserved: 0,
        }],
        patches: vec![PatchDesc {
            offset: 0x100,
            region: 0,
        }],
        info_page: vec![7; 16],
        elf: vec![0x90, 0x90, 0x0f, 0x0b],
    }
}

/// A notification and/or call capability (`flags`) to PD `pd`, seen there as
/// channel `id`.
fn cap(flags: u8, pd: u8, id: u8) -> CapDesc {
    let mut c = CapDesc {
        flags,
        ..CapDesc::default()
    };
    if flags & CapDesc::NOTIFY != 0 {
        (c.notify_pd, c.notify_bit) = (pd, id);
    }
    if flags & CapDesc::PPC != 0 {
        (c.ppc_pd, c.ppc_badge) = (pd, id);
    }
    c
}

fn irq_cap(irq: u8) -> CapDesc {
    CapDesc {
        flags: CapDesc::IRQ,
        irq,
        ..CapDesc::default()
    }
}

fn two_pd_image() -> Vec<u8> {
    let mut a = pd("client", 1);
    a.desc.caps[3] = cap(CapDesc::NOTIFY | CapDesc::PPC, 1, 5);
    let mut b = pd("server", 2);
    b.desc.caps[5] = cap(CapDesc::NOTIFY, 0, 3);
    b.desc.caps[9] = irq_cap(4);
    encode(&[region("ring", 0x4000)], &[a, b], &[])
}

#[test]
fn an_encoded_image_parses_back_to_what_was_encoded() {
    let bytes = two_pd_image();
    let image = SystemImage::parse(&bytes).unwrap();
    assert_eq!(image.pd_count(), 2);
    assert_eq!(image.len() % 4096, 0);
    let server = image.pd(1).unwrap();
    assert_eq!(crate::name_str(&server.desc.name), Some("server"));
    assert_eq!(server.elf, &[0x90, 0x90, 0x0f, 0x0b]);
    assert_eq!(server.info_page.len(), 4096);
    assert_eq!(&server.info_page[..2], &[7, 7]);
    assert_eq!(server.desc.caps[9].irq, 4);
    assert_eq!(server.maps[0].vaddr, 0x2000_0000);
    assert_eq!(image.pd(0).unwrap().desc.caps[3].ppc_badge, 5);
    assert!(image.pd(2).is_none());
}

#[test]
fn encoding_is_deterministic() {
    assert_eq!(two_pd_image(), two_pd_image());
}

fn with_pd(f: impl FnOnce(&mut PdSpec)) -> Result<(), ImageError> {
    let mut spec = pd("one", 1);
    f(&mut spec);
    let bytes = encode(&[region("ring", 0x4000)], &[spec], &[]);
    SystemImage::parse(&bytes).map(|_| ())
}

#[test]
fn each_kind_of_bad_reference_or_address_is_refused() {
    type Case = (&'static str, fn(&mut PdSpec), ImageError);
    let cases: &[Case] = &[
        (
            "map to a missing region",
            |s| s.maps[0].region = 1,
            ImageError::BadReference("map"),
        ),
        (
            "map in the reserved area",
            |s| s.maps[0].vaddr = crate::layout::RESERVED_BASE,
            ImageError::BadAddress("map"),
        ),
        (
            "unaligned map",
            |s| s.maps[0].vaddr = 0x2000_0008,
            ImageError::BadAddress("map"),
        ),
        (
            "segment at page 0",
            |s| s.segments[0].vaddr = 0x10,
            ImageError::BadAddress("segment"),
        ),
        (
            "file larger than memory",
            |s| s.segments[0].file_size = 0x3000,
            ImageError::BadAddress("segment"),
        ),
        (
            "segment bytes past the ELF",
            |s| s.segments[0].file_off = 2,
            ImageError::OutOfBounds("segment bytes"),
        ),
        (
            "notify to a missing PD",
            |s| s.desc.caps[0] = cap(CapDesc::NOTIFY, 1, 0),
            ImageError::BadReference("notification capability"),
        ),
        (
            "call badge out of range",
            |s| s.desc.caps[0] = cap(CapDesc::PPC, 0, 62),
            ImageError::BadReference("call capability"),
        ),
        (
            "irq past the PIC",
            |s| s.desc.caps[0] = irq_cap(16),
            ImageError::BadReference("irq capability"),
        ),
        (
            "missing parent",
            |s| s.desc.parent = 3,
            ImageError::BadReference("parent"),
        ),
        (
            "own parent",
            |s| s.desc.parent = 0,
            ImageError::BadReference("parent"),
        ),
        (
            "a debug grant the kernel does not know",
            |s| s.desc.debug = 4,
            ImageError::BadReference("debug grant"),
        ),
        (
            "zero stack",
            |s| s.desc.stack_size = 0,
            ImageError::BadAddress("stack size"),
        ),
        (
            "huge stack",
            |s| s.desc.stack_size = 1 << 40,
            ImageError::BadAddress("stack size"),
        ),
        (
            "entry in the reserved area",
            |s| s.desc.entry = crate::layout::STACK_TOP,
            ImageError::BadAddress("entry point"),
        ),
        (
            "patch past the page",
            |s| s.patches[0].offset = 4096,
            ImageError::OutOfBounds("patch"),
        ),
        (
            "misaligned patch",
            |s| s.patches[0].offset = 4,
            ImageError::OutOfBounds("patch"),
        ),
        (
            "patch of a missing region",
            |s| s.patches[0].region = 9,
            ImageError::BadReference("patch"),
        ),
    ];
    for (what, mutate, expected) in cases {
        assert_eq!(with_pd(mutate), Err(*expected), "{what}");
    }
}

#[test]
fn headers_that_lie_are_refused() {
    let good = two_pd_image();
    assert_eq!(
        SystemImage::parse(&good[..10]).unwrap_err(),
        ImageError::TooShort
    );
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(SystemImage::parse(&bad).unwrap_err(), ImageError::BadMagic);
    let mut bad = good.clone();
    bad[8] = 1;
    assert_eq!(
        SystemImage::parse(&bad).unwrap_err(),
        ImageError::BadVersion(1)
    );
    // Claims more bytes than there are.
    assert_eq!(
        SystemImage::parse(&good[..good.len() - 1]).unwrap_err(),
        ImageError::TooShort
    );
    let mut bad = good.clone();
    bad[12] = 63 + 1; // pd_count
    assert_eq!(
        SystemImage::parse(&bad).unwrap_err(),
        ImageError::TooMany("protection domains")
    );
    let mut bad = good.clone();
    bad[12] = 40; // pd_count within limits, but the table runs off the end
    assert!(SystemImage::parse(&bad).is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SystemImage::parse(&bytes);
    }

    #[test]
    fn mutated_images_never_panic_and_parts_stay_in_bounds(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)
    ) {
        let mut bytes = if flips.len() % 2 == 0 { two_pd_image() } else { vm_image(b"kernel", |_, _| {}) };
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Ok(image) = SystemImage::parse(&bytes) {
            for (i, r) in image.regions().iter().enumerate() {
                prop_assert!(image.region_data(i).len() as u64 <= r.size);
            }
            for vm in image.vms() {
                prop_assert!(usize::from(vm.desc.owner_pd) < image.pd_count());
                for m in vm.maps {
                    prop_assert!((m.region as usize) < image.regions().len());
                }
            }
            for i in 0..image.pd_count() {
                let pd = image.pd(i).unwrap();
                for s in pd.segments {
                    prop_assert!(s.file_off + s.file_size <= pd.elf.len() as u64);
                }
            }
        }
    }
}

fn guest_vm(owner: u8, maps: Vec<VmMapDesc>) -> VmSpec {
    let mut desc = VmDesc::empty();
    desc.name = crate::name("guest").unwrap();
    desc.owner_pd = owner;
    desc.vcpu_count = 1;
    desc.vcpu_ids[0] = 0;
    desc.priority = 1;
    desc.budget_us = 1000;
    desc.period_us = 1000;
    VmSpec { desc, maps }
}

fn vm_map(gpa: u64, region: u32) -> VmMapDesc {
    VmMapDesc {
        gpa,
        region,
        perms: perms::R | perms::W | perms::X,
    }
}

/// A VMM PD "vmm" owning VM "guest" with RAM at GPA 0 (8 KiB, initial contents
/// `data`) and the ring at GPA 1 MiB.
fn vm_image(data: &[u8], mutate: impl FnOnce(&mut [RegionSpec], &mut VmSpec)) -> Vec<u8> {
    let mut regions = [region("ring", 0x4000), region("ram", 0x2000)];
    regions[1].data = data.to_vec();
    let mut vm = guest_vm(1, vec![vm_map(0, 1), vm_map(0x10_0000, 0)]);
    mutate(&mut regions, &mut vm);
    encode(&regions, &[pd("other", 1), pd("vmm", 2)], &[vm])
}

#[test]
fn vms_and_region_data_parse_back_to_what_was_encoded() {
    let bytes = vm_image(b"kernel", |_, _| {});
    let image = SystemImage::parse(&bytes).unwrap();
    assert_eq!(image.vm_count(), 1);
    let vm = image.vms().next().unwrap();
    assert_eq!(crate::name_str(&vm.desc.name), Some("guest"));
    assert_eq!(vm.vcpu_ids(), &[0]);
    assert_eq!(vm.maps, &[vm_map(0, 1), vm_map(0x10_0000, 0)]);
    assert!(image.vm_of(0).is_none());
    assert_eq!(image.vm_of(1).unwrap().desc.owner_pd, 1);
    assert_eq!(image.region_data(0), b"");
    assert_eq!(image.region_data(1), b"kernel");
    assert_eq!(image.region_data(2), b"");
    let ram = &image.regions()[1];
    assert_eq!(ram.data_off % 4096, 0);
    assert_eq!(ram.data_len, 6);
    assert_eq!(image.len() % 4096, 0);
}

#[test]
fn every_allowed_port_range_is_granted_whole() {
    for (base, count) in GUEST_PORT_RANGES {
        let bytes = vm_image(b"", |_, vm| {
            (vm.desc.io_base, vm.desc.io_count) = (base, count)
        });
        let image = SystemImage::parse(&bytes).unwrap();
        let vm = image.vms().next().unwrap();
        assert_eq!((vm.desc.io_base, vm.desc.io_count), (base, count));
    }
}

#[test]
fn region_data_may_fill_the_whole_region() {
    let full = vec![0xa5; 0x2000];
    let bytes = vm_image(&full, |_, _| {});
    assert_eq!(
        SystemImage::parse(&bytes).unwrap().region_data(1),
        &full[..]
    );
}

#[test]
fn each_kind_of_bad_vm_or_region_data_is_refused() {
    type Case = (&'static str, fn(&mut [RegionSpec], &mut VmSpec), ImageError);
    let cases: &[Case] = &[
        (
            "owner past the PD table",
            |_, vm| vm.desc.owner_pd = 2,
            ImageError::BadReference("VM owner"),
        ),
        (
            "no vCPU",
            |_, vm| vm.desc.vcpu_count = 0,
            ImageError::BadReference("vCPU id"),
        ),
        (
            "too many vCPUs",
            |_, vm| vm.desc.vcpu_count = MAX_VCPUS as u8 + 1,
            ImageError::TooMany("vCPUs"),
        ),
        (
            "duplicate vCPU id",
            |_, vm| {
                vm.desc.vcpu_count = 2;
                vm.desc.vcpu_ids[1] = vm.desc.vcpu_ids[0];
            },
            ImageError::BadReference("vCPU id"),
        ),
        (
            "vCPU id past 61",
            |_, vm| vm.desc.vcpu_ids[0] = 62,
            ImageError::BadReference("vCPU id"),
        ),
        (
            "the kernel's console port",
            |_, vm| (vm.desc.io_base, vm.desc.io_count) = (0x3f8, 8),
            ImageError::BadAddress("VM I/O ports"),
        ),
        (
            "part of a serial port",
            |_, vm| (vm.desc.io_base, vm.desc.io_count) = (0x2f8, 4),
            ImageError::BadAddress("VM I/O ports"),
        ),
        (
            "the PCI configuration ports",
            |_, vm| (vm.desc.io_base, vm.desc.io_count) = (0xcf8, 8),
            ImageError::BadAddress("VM I/O ports"),
        ),
        (
            "map of a missing region",
            |_, vm| vm.maps[0].region = 2,
            ImageError::BadReference("VM map"),
        ),
        (
            "unaligned GPA",
            |_, vm| vm.maps[0].gpa = 0x800,
            ImageError::BadAddress("VM map"),
        ),
        (
            "GPA range past the nested page tables",
            |_, vm| vm.maps[0].gpa = GPA_LIMIT - 0x1000,
            ImageError::BadAddress("VM map"),
        ),
        (
            "GPA range that wraps",
            |_, vm| vm.maps[0].gpa = !0xfff,
            ImageError::BadAddress("VM map"),
        ),
        (
            "unknown perms bit",
            |_, vm| vm.maps[0].perms = 8,
            ImageError::BadAddress("VM map"),
        ),
        (
            "overlapping GPA ranges",
            |_, vm| vm.maps[1].gpa = 0x1000,
            ImageError::BadAddress("overlapping VM maps"),
        ),
        (
            "too many maps",
            |_, vm| vm.maps = vec![vm_map(0, 1); MAX_VM_MAPS + 1],
            ImageError::TooMany("VM maps"),
        ),
        (
            "data larger than its region",
            |r, _| r[1].data = vec![1; 0x2001],
            ImageError::BadAddress("region data"),
        ),
        (
            "data for device memory",
            |r, _| r[1].desc.phys_addr = 0xfee0_0000,
            ImageError::BadAddress("region data"),
        ),
    ];
    for (what, mutate, expected) in cases {
        let bytes = vm_image(b"kernel", mutate);
        assert_eq!(
            SystemImage::parse(&bytes).map(|_| ()),
            Err(*expected),
            "{what}"
        );
    }
}

#[test]
fn a_pd_owns_at_most_one_vm() {
    let bytes = encode(
        &[region("ram", 0x2000)],
        &[pd("vmm", 2)],
        &[guest_vm(0, vec![]), guest_vm(0, vec![])],
    );
    assert_eq!(
        SystemImage::parse(&bytes).unwrap_err(),
        ImageError::BadReference("VM owner")
    );
}

/// Patches a header or descriptor field in place, to forge what `encode` never writes.
fn poke_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn tables_and_data_that_lie_about_their_place_are_refused() {
    let good = vm_image(b"kernel", |_, _| {});
    let header = Header::read_from_prefix(&good).unwrap().0;
    let ram_desc = header.regions_off as usize + core::mem::size_of::<RegionDesc>();
    let data_off = ram_desc + core::mem::offset_of!(RegionDesc, data_off);
    let data_len = ram_desc + core::mem::offset_of!(RegionDesc, data_len);
    let vms_off = core::mem::offset_of!(Header, vms_off);
    let vm_count = core::mem::offset_of!(Header, vm_count);
    let vm_maps_off = header.vms_off as usize + core::mem::offset_of!(VmDesc, maps_off);
    type Case = (&'static str, usize, u64, ImageError);
    let len = good.len() as u64;
    let cases: &[Case] = &[
        (
            "data past the end",
            data_off,
            len - 2,
            ImageError::OutOfBounds("region data"),
        ),
        (
            "data offset that wraps",
            data_off,
            u64::MAX - 2,
            ImageError::OutOfBounds("region data"),
        ),
        (
            "length larger than the image",
            data_len,
            0x2000,
            ImageError::OutOfBounds("region data"),
        ),
        (
            "VM table past the end",
            vms_off,
            len,
            ImageError::OutOfBounds("VM table"),
        ),
        (
            "VM table misaligned",
            vms_off,
            header.vms_off + 4,
            ImageError::OutOfBounds("VM table"),
        ),
        (
            "map table past the end",
            vm_maps_off,
            len - 8,
            ImageError::OutOfBounds("VM map table"),
        ),
    ];
    for (what, at, value, expected) in cases {
        let mut bad = good.clone();
        poke_u64(&mut bad, *at, *value);
        assert_eq!(
            SystemImage::parse(&bad).map(|_| ()),
            Err(*expected),
            "{what}"
        );
    }
    let mut bad = good.clone();
    bad[vm_count..vm_count + 4].copy_from_slice(&(MAX_VMS as u32 + 1).to_le_bytes());
    assert_eq!(
        SystemImage::parse(&bad).unwrap_err(),
        ImageError::TooMany("virtual machines")
    );
    // Zero-filled regions carry no offset.
    let mut bad = good.clone();
    let ring_off = header.regions_off as usize + core::mem::offset_of!(RegionDesc, data_off);
    poke_u64(&mut bad, ring_off, 0x1000);
    assert_eq!(
        SystemImage::parse(&bad).unwrap_err(),
        ImageError::OutOfBounds("region data")
    );
}
