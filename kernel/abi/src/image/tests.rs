#![allow(clippy::unwrap_used)]

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::build::{encode, PdSpec};
use super::*;

fn region(name: &str, size: u64) -> RegionDesc {
    RegionDesc {
        name: crate::name(name).unwrap(),
        size,
        phys_addr: RegionDesc::ALLOCATE,
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

fn two_pd_image() -> Vec<u8> {
    let mut a = pd("client", 1);
    a.desc.caps[3] = CapDesc {
        flags: CapDesc::NOTIFY | CapDesc::PPC,
        notify_pd: 1,
        notify_bit: 5,
        ppc_pd: 1,
        ppc_badge: 5,
        ..CapDesc::default()
    };
    let mut b = pd("server", 2);
    b.desc.caps[5] = CapDesc {
        flags: CapDesc::NOTIFY,
        notify_pd: 0,
        notify_bit: 3,
        ..CapDesc::default()
    };
    b.desc.caps[9] = CapDesc {
        flags: CapDesc::IRQ,
        irq: 4,
        ..CapDesc::default()
    };
    encode(&[region("ring", 0x4000)], &[a, b])
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
    let bytes = encode(&[region("ring", 0x4000)], &[spec]);
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
            |s| {
                s.desc.caps[0] = CapDesc {
                    flags: CapDesc::NOTIFY,
                    notify_pd: 1,
                    ..CapDesc::default()
                }
            },
            ImageError::BadReference("notification capability"),
        ),
        (
            "call badge out of range",
            |s| {
                s.desc.caps[0] = CapDesc {
                    flags: CapDesc::PPC,
                    ppc_badge: 62,
                    ..CapDesc::default()
                }
            },
            ImageError::BadReference("call capability"),
        ),
        (
            "irq past the PIC",
            |s| {
                s.desc.caps[0] = CapDesc {
                    flags: CapDesc::IRQ,
                    irq: 16,
                    ..CapDesc::default()
                }
            },
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
    bad[8] = 2;
    assert_eq!(
        SystemImage::parse(&bad).unwrap_err(),
        ImageError::BadVersion(2)
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
        let mut bytes = two_pd_image();
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if let Ok(image) = SystemImage::parse(&bytes) {
            for i in 0..image.pd_count() {
                let pd = image.pd(i).unwrap();
                for s in pd.segments {
                    prop_assert!(s.file_off + s.file_size <= pd.elf.len() as u64);
                }
            }
        }
    }
}
