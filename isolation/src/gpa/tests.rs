use proptest::prelude::*;

use super::*;
use crate::backend::{check_host_call, HostCall, Hypercall, IsolationError};
use crate::gpa::{GpaError, PageRange, RamRange};

const RAM: [RamRange; 2] = [
    RamRange {
        start: 0,
        end: 0x8000_0000,
    },
    RamRange {
        start: 0x1_0000_0000,
        end: 0x1_4000_0000,
    },
];

fn kinds() -> impl Strategy<Value = PartitionKind> {
    prop_oneof![
        Just(PartitionKind::Svm),
        (33u8..=62).prop_map(|vtom_bit| PartitionKind::Snp { vtom_bit }),
        prop_oneof![Just(47u8), Just(51u8)]
            .prop_map(|shared_bit| PartitionKind::Tdx { shared_bit }),
    ]
}

#[test]
fn svm_presents_the_vmm_vtom() {
    let p = Partition::new(PartitionKind::Svm, &RAM).unwrap();
    assert_eq!(p.boundary(), 1 << 36);
    assert_eq!(p.classify(Gpa(0x1000)), Ok(GpaClass::Private));
    assert_eq!(p.classify(Gpa((1 << 36) | 0x1000)), Ok(GpaClass::Shared));
}

#[test]
fn tdx_shared_bit_47() {
    let p = Partition::new(PartitionKind::Tdx { shared_bit: 47 }, &RAM).unwrap();
    assert_eq!(p.classify(Gpa(1 << 47)), Ok(GpaClass::Shared));
    assert_eq!(
        p.classify(Gpa(1 << 48)),
        Err(GpaError::OutOfRange(Gpa(1 << 48)))
    );
}

#[test]
fn hole_between_ram_ranges_is_refused_in_both_aliases() {
    let p = Partition::new(PartitionKind::Snp { vtom_bit: 40 }, &RAM).unwrap();
    for gpa in [0x8000_0000, (1 << 40) | 0x8000_0000, 0x1_4000_0000] {
        assert_eq!(p.classify(Gpa(gpa)), Err(GpaError::OutOfRange(Gpa(gpa))));
    }
}

#[test]
fn bad_partitions_are_refused() {
    let overlap = [
        RamRange {
            start: 0,
            end: 0x2000,
        },
        RamRange {
            start: 0x1000,
            end: 0x3000,
        },
    ];
    let above = [RamRange {
        start: 0,
        end: (1 << 36) + 0x1000,
    }];
    let unaligned = [RamRange {
        start: 0,
        end: 0x1234,
    }];
    let empty = [RamRange {
        start: 0x1000,
        end: 0x1000,
    }];
    for ram in [&overlap[..], &above, &unaligned, &empty] {
        assert_eq!(
            Partition::new(PartitionKind::Svm, ram).err(),
            Some(GpaError::BadPartition)
        );
    }
    for bit in [0u8, 11, 63, 255] {
        assert!(Partition::new(PartitionKind::Snp { vtom_bit: bit }, &RAM).is_err());
    }
}

#[test]
fn page_range_rules() {
    assert_eq!(
        PageRange::new(Gpa(0x1001), 1),
        Err(GpaError::Unaligned(Gpa(0x1001)))
    );
    assert_eq!(PageRange::new(Gpa(0x1000), 0), Err(GpaError::Empty));
    assert!(PageRange::new(Gpa(0xffff_ffff_ffff_f000), 2).is_err());
}

#[test]
fn range_is_walks_adjacent_ranges_and_refuses_holes() {
    let adj = [
        RamRange {
            start: 0,
            end: 0x4000,
        },
        RamRange {
            start: 0x4000,
            end: 0x8000,
        },
    ];
    let p = Partition::new(PartitionKind::Svm, &adj).unwrap();
    let across = PageRange::new(Gpa(0x2000), 4).unwrap();
    assert_eq!(p.range_is(across, GpaClass::Private), Ok(true));
    assert_eq!(p.range_is(across, GpaClass::Shared), Ok(false));
    let holey = Partition::new(PartitionKind::Svm, &RAM).unwrap();
    let r = PageRange::new(Gpa(0x7fff_f000), 0x8000_0000 / 4096 + 2).unwrap();
    assert!(holey.range_is(r, GpaClass::Private).is_err());
}

#[test]
fn host_calls_only_carry_shared_buffers() {
    let p = Partition::new(PartitionKind::Svm, &RAM).unwrap();
    let shared = Gpa((1 << 36) | 0x5000);
    let private = Gpa(0x5000);
    let ok = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: Some(shared),
        output: None,
    });
    assert_eq!(check_host_call(&p, &ok), Ok(()));
    let leak = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: Some(shared),
        output: Some(private),
    });
    assert_eq!(
        check_host_call(&p, &leak),
        Err(IsolationError::WrongClass {
            gpa: private,
            expected: GpaClass::Shared
        })
    );
    let wild = HostCall::HvHypercall(Hypercall {
        control: 0,
        input: Some(Gpa(u64::MAX)),
        output: None,
    });
    assert!(matches!(
        check_host_call(&p, &wild),
        Err(IsolationError::Gpa(_))
    ));
}

proptest! {
    /// Every GPA has exactly one class or is refused; it is classified Shared
    /// exactly when the boundary bit is set and its private twin is RAM.
    #[test]
    fn every_gpa_has_exactly_one_class(kind in kinds(), gpa in any::<u64>(), low in 0u64..0x1_4000_0000) {
        let p = Partition::new(kind, &RAM).unwrap();
        let b = p.boundary();
        for g in [gpa, low, low | b, gpa & ((b << 1) - 1)] {
            let private = g & !b;
            let in_ram = RAM.iter().any(|r| r.start <= private && private < r.end);
            match p.classify(Gpa(g)) {
                Ok(GpaClass::Private) => prop_assert!(g & b == 0 && g < b && in_ram),
                Ok(GpaClass::Shared) => prop_assert!(g & b != 0 && g < b << 1 && in_ram),
                Err(GpaError::OutOfRange(e)) => {
                    prop_assert_eq!(e, Gpa(g));
                    prop_assert!(g >= b << 1 || !in_ram);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    /// The shared alias of a private page is its twin at +2^B and back again.
    #[test]
    fn alias_of_private_is_shared_twin(kind in kinds(), page in 0u64..(0x1_4000_0000 / 4096)) {
        let p = Partition::new(kind, &RAM).unwrap();
        let g = Gpa(page * PAGE_SIZE);
        prop_assume!(p.classify(g).is_ok());
        let shared = p.alias(g, GpaClass::Shared).unwrap();
        prop_assert_eq!(shared.0, g.0 + p.boundary());
        prop_assert_eq!(p.classify(shared), Ok(GpaClass::Shared));
        prop_assert_eq!(p.alias(shared, GpaClass::Private), Ok(g));
        prop_assert_eq!(p.alias(g, GpaClass::Private), Ok(g));
    }

    /// The boundary-only rule hvcall-pd uses agrees with `classify` on every RAM
    /// address, refuses a wrapping range, and sees everything without isolation.
    #[test]
    fn host_visible_agrees_with_classify(kind in kinds(), gpa in any::<u64>(), len in 0u64..0x10000) {
        let p = Partition::new(kind, &RAM).unwrap();
        let b = p.boundary();
        let g = gpa & ((b << 1) - 1);
        if let Ok(class) = p.classify(Gpa(g)) {
            prop_assert_eq!(host_visible(Some(b), g, 0), class == GpaClass::Shared, "{:#x}", g);
        }
        prop_assert_eq!(host_visible(Some(b), gpa, len), gpa.checked_add(len).is_some() && gpa >= b);
        prop_assert_eq!(host_visible(None, gpa, len), gpa.checked_add(len).is_some());
    }

    /// Nothing at or above 2^(B+1) is classified, whatever the low bits.
    #[test]
    fn out_of_range_is_refused(kind in kinds(), gpa in any::<u64>()) {
        let p = Partition::new(kind, &RAM).unwrap();
        let g = gpa | (p.boundary() << 1);
        prop_assert_eq!(p.classify(Gpa(g)), Err(GpaError::OutOfRange(Gpa(g))));
        prop_assert!(p.alias(Gpa(g), GpaClass::Private).is_err());
    }
}
