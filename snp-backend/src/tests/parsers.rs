use proptest::prelude::*;

use crate::ghcb_msr::{expect_response, info, MsrError, MsrRequest, MsrResponse, PscOp};
use crate::ghcb_page::{hv, off, read_hv_result, usage, Ghcb, HvGhcbError};
use crate::psc::{self, Psc, PscEntry, PscError, MAX_ENTRIES};
use crate::rmp::PageSize;
use crate::vmsa::{check_guest_vmsa, feature, off as voff, Vmsa, VmsaError, EFER_SVME};

#[test]
fn msr_request_encodings_match_the_spec() {
    assert_eq!(MsrRequest::SevInfo.encode(), Some(0x002));
    assert_eq!(
        MsrRequest::RegisterGhcb { gfn: 0x12345 }.encode(),
        Some(0x1234_5012)
    );
    assert_eq!(
        MsrRequest::PageState {
            gfn: 0xabcde,
            op: PscOp::Shared
        }
        .encode(),
        Some(2 << 52 | 0xabcde << 12 | 0x014)
    );
    assert_eq!(
        MsrRequest::Terminate { set: 1, reason: 3 }.encode(),
        Some(0x3_1100)
    );
    assert_eq!(MsrRequest::Terminate { set: 16, reason: 0 }.encode(), None);
    assert_eq!(
        MsrRequest::PageState {
            gfn: 1 << 40,
            op: PscOp::Private
        }
        .encode(),
        None
    );
    assert_eq!(
        MsrResponse::SevInfo {
            max: 2,
            min: 1,
            cbit: 51
        }
        .encode(),
        0x0002_0001_3300_0001
    );
}

#[test]
fn msr_decode_refuses_reserved_bits_and_unknown_codes() {
    for v in [
        0x003,
        0x002 | 1 << 12,
        0x014 | 3 << 52,
        0x014 | 1 << 56,
        0x100 | 1 << 24,
        0xfff,
    ] {
        assert_eq!(MsrRequest::decode(v), Err(MsrError::Malformed(v)), "{v:#x}");
    }
    for v in [0x015 | 1 << 12, 0x001 | 1 << 12, 0x0ff, 0x002] {
        assert!(MsrResponse::decode(v).is_err(), "{v:#x}");
    }
}

#[test]
fn a_response_to_another_request_is_refused() {
    let req = MsrRequest::RegisterGhcb { gfn: 5 };
    let lie = MsrResponse::PageState { error: 0 }.encode();
    assert!(matches!(
        expect_response(req, lie),
        Err(MsrError::WrongResponse { .. })
    ));
    assert_eq!(
        expect_response(req, info::REGISTER_GHCB_RESP | 5 << 12),
        Ok(MsrResponse::RegisterGhcb { gfn: 5 })
    );
}

fn requests() -> impl Strategy<Value = MsrRequest> {
    prop_oneof![
        Just(MsrRequest::SevInfo),
        Just(MsrRequest::HvFeatures),
        (any::<u32>(), 0u8..4)
            .prop_map(|(function, register)| MsrRequest::Cpuid { function, register }),
        (0u64..1 << 52).prop_map(|gfn| MsrRequest::RegisterGhcb { gfn }),
        (
            0u64..1 << 40,
            prop_oneof![Just(PscOp::Private), Just(PscOp::Shared)]
        )
            .prop_map(|(gfn, op)| MsrRequest::PageState { gfn, op }),
        any::<u8>().prop_map(|vmpl| MsrRequest::RunVmpl { vmpl }),
        (0u8..16, any::<u8>()).prop_map(|(set, reason)| MsrRequest::Terminate { set, reason }),
    ]
}

proptest! {
    #[test]
    fn msr_requests_round_trip(req in requests()) {
        let v = req.encode().unwrap();
        prop_assert_eq!(MsrRequest::decode(v), Ok(req));
    }

    #[test]
    fn msr_decoders_accept_any_u64(v in any::<u64>()) {
        if let Ok(r) = MsrRequest::decode(v) {
            prop_assert_eq!(r.encode(), Some(v));
        }
        if let Ok(r) = MsrResponse::decode(v) {
            prop_assert_eq!(r.encode(), v);
        }
    }

    #[test]
    fn psc_descriptors_round_trip(gfns in proptest::collection::vec(0u64..1 << 40, 1..MAX_ENTRIES)) {
        let entries: std::vec::Vec<PscEntry> = gfns
            .iter()
            .map(|&gfn| PscEntry { gfn, op: PscOp::Shared, size: PageSize::Size4K, cur_page: 0 })
            .collect();
        let mut buf = [0u8; 0x7f0];
        let len = psc::write(&mut buf, &entries).unwrap();
        let d = Psc::parse(&buf[..len]).unwrap();
        prop_assert_eq!(usize::from(d.end_entry) + 1, entries.len());
        for (i, e) in entries.iter().enumerate() {
            prop_assert_eq!(d.entry(i as u16).unwrap(), *e);
        }
    }

    #[test]
    fn psc_parse_accepts_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(d) = Psc::parse(&bytes) {
            for i in 0..=d.end_entry {
                let _ = d.entry(i);
            }
            prop_assert!(d.entry(d.end_entry + 1).is_err());
        }
    }
}

fn header(cur: u16, end: u16, reserved: u32) -> [u8; 8] {
    (u64::from(cur) | u64::from(end) << 16 | u64::from(reserved) << 32).to_le_bytes()
}

#[test]
fn psc_header_rules() {
    let mut buf = [0u8; 0x7f0];
    buf[..8].copy_from_slice(&header(0, MAX_ENTRIES as u16, 0));
    assert!(matches!(Psc::parse(&buf), Err(PscError::BadHeader { .. })));
    buf[..8].copy_from_slice(&header(0, 0, 1));
    assert!(matches!(Psc::parse(&buf), Err(PscError::BadHeader { .. })));
    buf[..8].copy_from_slice(&header(3, 1, 0));
    assert!(matches!(Psc::parse(&buf), Err(PscError::BadHeader { .. })));
    buf[..8].copy_from_slice(&header(2, 1, 0));
    assert!(Psc::parse(&buf).unwrap().complete());
    buf[..8].copy_from_slice(&header(0, 3, 0));
    assert_eq!(
        Psc::parse(&buf[..8 + 3 * 8]).err(),
        Some(PscError::Truncated)
    );
    assert_eq!(Psc::parse(&buf[..7]).err(), Some(PscError::Truncated));
}

#[test]
fn psc_entry_rules() {
    let e = |v: u64| PscEntry::decode(v);
    assert!(e(1 << 52 | 5 << 12).is_ok());
    assert!(e(3 << 52).is_err(), "psmash is not an op we accept");
    assert!(e(0).is_err(), "op 0");
    assert!(e(1 << 52 | 1 << 57).is_err(), "reserved");
    assert!(e(1 << 52 | 7).is_err(), "4K entry with progress");
    assert!(
        e(1 << 52 | 1 << 56 | 5 << 12).is_err(),
        "2M entry not 2M aligned"
    );
    assert!(e(1 << 52 | 1 << 56 | 513).is_err(), "2M progress past 512");
    assert!(e(1 << 52 | 1 << 56 | 512 | 512 << 12).is_ok());
}

#[test]
fn ghcb_fields_count_only_when_valid() {
    let mut g = Ghcb::default();
    g.set_u64(off::SW_EXIT_INFO_2, 7);
    assert_eq!(g.field(off::SW_EXIT_INFO_2), None);
    g.set_field(off::SW_EXIT_INFO_2, 7);
    assert_eq!(g.field(off::SW_EXIT_INFO_2), Some(7));
    assert_eq!(g.field(off::SW_EXIT_INFO_1), None);
    g.clear_save_area();
    assert_eq!(g.field(off::SW_EXIT_INFO_2), None);
    g.set_footer(2, usage::HYPERV_HYPERCALL);
    assert_eq!((g.protocol_version(), g.usage()), (2, 1));
    assert_eq!(&g.0[0xffa..], &[2, 0, 1, 0, 0, 0]);
}

#[test]
fn hypercall_results_are_checked() {
    let mut g = Ghcb::default();
    g.set_footer(2, usage::HYPERV_HYPERCALL);
    let control = 3u64 << 32 | 0x14;
    g.set_u64(hv::CONTROL_OR_RESULT, 2 << 32);
    assert_eq!(read_hv_result(&g, control).unwrap().reps_done, 2);
    g.set_u64(hv::CONTROL_OR_RESULT, 4 << 32);
    assert!(matches!(
        read_hv_result(&g, control),
        Err(HvGhcbError::BadResult(_))
    ));
    g.set_u64(hv::CONTROL_OR_RESULT, 1 << 16);
    assert!(matches!(
        read_hv_result(&g, control),
        Err(HvGhcbError::BadResult(_))
    ));
    g.set_u64(hv::CONTROL_OR_RESULT, 0);
    g.set_footer(2, usage::STANDARD);
    assert_eq!(read_hv_result(&g, control), Err(HvGhcbError::FooterChanged));
}

#[test]
fn vmsa_checks() {
    const B: u64 = 1 << 36;
    let good = Vmsa::for_vtom_guest(2, 36);
    assert_eq!(check_guest_vmsa(&good, 2, B), Ok(()));
    assert_eq!(check_guest_vmsa(&good, 1, B), Err(VmsaError::Vmpl(2)));
    let mut v = good.clone();
    v.set_vmpl(4);
    assert_eq!(check_guest_vmsa(&v, 4, B), Err(VmsaError::Vmpl(4)));
    let f = good.u64_at(voff::SEV_FEATURES);
    let with = |features: u64| {
        let mut v = good.clone();
        v.set_u64(voff::SEV_FEATURES, features);
        check_guest_vmsa(&v, 2, B)
    };
    assert_eq!(with(f | 1 << 40), Err(VmsaError::ReservedFeatures(1 << 40)));
    assert_eq!(with(f & !feature::SNP_ACTIVE), Err(VmsaError::NotSnp));
    assert_eq!(with(f & !feature::VTOM), Err(VmsaError::Vtom(B)));
    assert_eq!(
        with(f | feature::ALTERNATE_INJECTION),
        Err(VmsaError::InjectionModes)
    );
    let mut v = good.clone();
    v.set_u64(voff::VIRTUAL_TOM, B << 1);
    assert_eq!(check_guest_vmsa(&v, 2, B), Err(VmsaError::Vtom(B << 1)));
    let mut v = good.clone();
    v.set_u64(voff::EFER, 0);
    assert_eq!(check_guest_vmsa(&v, 2, B), Err(VmsaError::Efer(0)));
    assert_eq!(good.u64_at(voff::EFER), EFER_SVME);
}
