//! The hypervisor-side GHCB decoder: each request shape, and the registers it
//! must not take unless the valid bitmap marks them.

use std::vec;
use std::vec::Vec;

use crate::ghcb_host::{HostRequest, RequestError, EXIT_MSR};
use crate::ghcb_page::{hv, off, usage, Ghcb};

/// A standard-layout page with `fields` set (and marked valid).
fn standard(fields: &[(usize, u64)]) -> Ghcb {
    let mut g = Ghcb::default();
    g.set_footer(2, usage::STANDARD);
    for &(at, v) in fields {
        g.set_field(at, v);
    }
    g
}

#[test]
fn requests_decode_by_usage_and_valid_fields() {
    let msr = |extra: &[(usize, u64)]| {
        let mut f = vec![(off::SW_EXIT_CODE, EXIT_MSR), (off::RCX, 0x4000_0080)];
        f.extend_from_slice(extra);
        standard(&f)
    };
    let mut hypercall = Ghcb::default();
    hypercall.set_footer(2, usage::HYPERV_HYPERCALL);
    hypercall.set_u64(hv::CONTROL_OR_RESULT, 0x5c);
    hypercall.set_u64(hv::OUTPUT_GPA, 0x3000);
    let mut odd = Ghcb::default();
    odd.set_footer(2, 7);
    let mut rax_unmarked = msr(&[(off::SW_EXIT_INFO_1, 1), (off::RDX, 2)]);
    rax_unmarked.set_u64(off::RAX, 5);
    let mut no_rcx = standard(&[(off::SW_EXIT_CODE, EXIT_MSR), (off::SW_EXIT_INFO_1, 0)]);
    no_rcx.set_u64(off::RCX, 0x4000_0080);
    let cases: Vec<(Ghcb, Result<HostRequest, RequestError>)> = vec![
        (
            hypercall,
            Ok(HostRequest::HvHypercall {
                control: 0x5c,
                output_gpa: 0x3000,
            }),
        ),
        (odd, Ok(HostRequest::OtherUsage(7))),
        (
            msr(&[(off::SW_EXIT_INFO_1, 0)]),
            Ok(HostRequest::Msr {
                index: 0x4000_0080,
                write: None,
            }),
        ),
        (
            msr(&[
                (off::SW_EXIT_INFO_1, 1),
                (off::RAX, 0xffff_ffff_0000_0001),
                (off::RDX, 2),
            ]),
            Ok(HostRequest::Msr {
                index: 0x4000_0080,
                write: Some(0x2_0000_0001),
            }),
        ),
        (rax_unmarked, Err(RequestError::MsrRegisters)),
        (no_rcx, Err(RequestError::MsrRegisters)),
        (
            standard(&[(off::SW_EXIT_CODE, 0x8000_0010), (off::SW_EXIT_INFO_2, 9)]),
            Ok(HostRequest::Exit {
                code: Some(0x8000_0010),
                info1: None,
                info2: Some(9),
            }),
        ),
    ];
    for (i, (page, want)) in cases.into_iter().enumerate() {
        assert_eq!(HostRequest::decode(&page), want, "case {i}");
    }
}

/// An exit code the guest wrote but did not mark valid is not an MSR exit.
#[test]
fn an_unmarked_exit_code_is_no_exit_code() {
    let mut g = standard(&[(off::RCX, 1)]);
    g.set_u64(off::SW_EXIT_CODE, EXIT_MSR);
    assert_eq!(
        HostRequest::decode(&g),
        Ok(HostRequest::Exit {
            code: None,
            info1: None,
            info2: None
        })
    );
}
