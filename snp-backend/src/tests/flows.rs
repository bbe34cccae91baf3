//! The paravisor's flows on the model machine, honest and lying hosts.

use isolation::{
    Gpa, GpaClass, GuestAccess, HostCall, IoExit, Isolation, IsolationError, MsrAccess, PageRange,
    Partition, PartitionKind, RamRange, VcpuExit, VpIndex,
};

use isolation::conformance::{self, pages, Harness, HostView, PAGES, RAM, STANDARD};

use crate::backend::{exit, SnpBackend};
use crate::model::{GuestExit, Lies, SnpModel};
use crate::rmp::{npf, AccessKind, Fault};
use crate::vmsa::Vmsa;

const VTOM_BIT: u8 = 36;
const B: u64 = 1 << VTOM_BIT;
const GHCB_GFN: u64 = 63;
const VMSA_GFN: u64 = 1;
/// Pages shared with the host for hypercall buffers.
const SHARED: core::ops::Range<u64> = STANDARD.shared;

type Model = SnpModel<PAGES>;

fn partition() -> Partition<'static> {
    Partition::new(PartitionKind::Snp { vtom_bit: VTOM_BIT }, &RAM).unwrap()
}

fn model(lies: Lies) -> Model {
    let mut m = Model::new(VTOM_BIT);
    m.lies = lies;
    m
}

fn backend(lies: Lies) -> SnpBackend<'static, Model> {
    SnpBackend::new(model(lies), partition(), Gpa(B | GHCB_GFN << 12)).unwrap()
}

/// Boot: accept RAM, build and register the guest VMSA, share the buffer pages.
fn boot(lies: Lies) -> SnpBackend<'static, Model> {
    let mut b = backend(Lies::default());
    b.accept_private(pages(0..GHCB_GFN)).unwrap();
    b.create_guest_vcpu(Gpa(VMSA_GFN << 12), 0, &Vmsa::for_vtom_guest(2, VTOM_BIT))
        .unwrap();
    b.set_visibility(pages(SHARED), GpaClass::Shared).unwrap();
    b.cpu().lies = lies;
    b
}

#[test]
fn registration_negotiates_version_2_and_checks_the_answer() {
    backend(Lies::default());
    let cases = [
        (
            Lies {
                old_protocol: true,
                ..Lies::default()
            },
            IsolationError::HostRefused(1),
        ),
        (
            Lies {
                register_other: true,
                ..Lies::default()
            },
            IsolationError::HostRefused(GHCB_GFN + 1 + (B >> 12)),
        ),
        (
            Lies {
                msr_wrong_response: true,
                ..Lies::default()
            },
            IsolationError::HostViolation,
        ),
    ];
    for (lies, err) in cases {
        let r = SnpBackend::new(model(lies), partition(), Gpa(B | GHCB_GFN << 12));
        assert_eq!(r.err(), Some(err), "{lies:?}");
    }
    // A private GHCB would expose nothing to the host and is refused up front.
    let r = SnpBackend::new(model(Lies::default()), partition(), Gpa(GHCB_GFN << 12));
    assert!(matches!(r.err(), Some(IsolationError::WrongClass { .. })));
}

#[test]
fn the_ghcb_page_is_shared_through_the_msr_protocol_before_registration() {
    let mut b = backend(Lies::default());
    let e = *b.cpu().rmp.entry(GHCB_GFN << 12).unwrap();
    assert!(!e.assigned && !e.validated);
    assert_eq!(b.cpu().registered_gfn, Some((B >> 12) + GHCB_GFN));
    // A host that skips the RMPUPDATE is caught when registration finds the page
    // still private (the model host refuses to register a private page).
    let lies = Lies {
        msr_psc_skip: true,
        ..Lies::default()
    };
    let r = SnpBackend::new(model(lies), partition(), Gpa(B | GHCB_GFN << 12));
    assert!(matches!(r.err(), Some(IsolationError::HostRefused(_))));
}

impl HostView for Model {
    fn host_exits(&self) -> u64 {
        u64::from(self.vmgexits)
    }
    fn host_touched(&self) -> &[u64] {
        SnpModel::host_touched(self)
    }
    /// Hypervisor-owned in the RMP: not the guest's, so not encrypted with its key.
    fn host_can_read(&self, gfn: u64) -> bool {
        self.rmp.entry(gfn << 12).is_some_and(|e| !e.assigned)
    }
}

impl Harness for SnpBackend<'static, Model> {
    type View = Model;
    fn view(&mut self) -> &Model {
        self.cpu()
    }
}

#[test]
fn boot_validates_ram_and_accepting_twice_is_reported() {
    let mut b = boot(Lies::default());
    let rmp = &b.cpu().rmp;
    for gfn in (0..GHCB_GFN).filter(|g| !SHARED.contains(g)) {
        let e = rmp.entry(gfn << 12).unwrap();
        assert!(e.assigned && e.validated, "gfn {gfn}");
    }
    assert!(rmp.entry(VMSA_GFN << 12).unwrap().vmsa);
    conformance::accepting_twice_and_shared_addresses_are_refused(&mut b, 2);
}

#[test]
fn a_bad_guest_vmsa_is_never_made_a_vmsa_page() {
    let mut b = backend(Lies::default());
    b.accept_private(pages(0..4)).unwrap();
    let mut v = Vmsa::for_vtom_guest(2, VTOM_BIT);
    v.set_vmpl(0);
    assert!(b.create_guest_vcpu(Gpa(0x2000), 0, &v).is_err());
    assert!(!b.cpu().rmp.entry(0x2000).unwrap().vmsa);
    assert!(b.run_vcpu(VpIndex(0)).is_err(), "no vCPU was created");
}

#[test]
fn guest_exits_arrive_decoded() {
    let mut b = boot(Lies::default());
    let cases = [
        (
            GuestExit {
                code: exit::CPUID,
                rax: 0x4000_0000,
                rcx: 1,
                ..GuestExit::default()
            },
            VcpuExit::Cpuid {
                leaf: 0x4000_0000,
                subleaf: 1,
            },
        ),
        (
            GuestExit {
                code: exit::MSR,
                rcx: 0x4000_0070,
                ..GuestExit::default()
            },
            VcpuExit::Msr {
                index: 0x4000_0070,
                access: MsrAccess::Read,
            },
        ),
        (
            GuestExit {
                code: exit::IOIO,
                info1: 0x3f8 << 16 | 1 << 4 | 1,
                info2: 0x1002,
                ..GuestExit::default()
            },
            VcpuExit::Io(IoExit {
                port: 0x3f8,
                size: 1,
                write: false,
                string: false,
                rep: false,
                next_rip: Some(0x1002),
            }),
        ),
        (
            GuestExit {
                code: exit::NPF,
                info1: npf::WRITE,
                info2: B | 0x5000,
                ..GuestExit::default()
            },
            VcpuExit::MemoryFault {
                gpa: Gpa(B | 0x5000),
                write: true,
                fetch: false,
            },
        ),
        (
            GuestExit {
                code: exit::HLT,
                ..GuestExit::default()
            },
            VcpuExit::Halt,
        ),
        (
            GuestExit {
                code: exit::VMMCALL,
                ..GuestExit::default()
            },
            VcpuExit::Hypercall,
        ),
        (
            GuestExit {
                code: exit::IOIO,
                info1: 3 << 4,
                ..GuestExit::default()
            },
            VcpuExit::Other { code: exit::IOIO },
        ),
    ];
    for (x, want) in cases {
        b.cpu().next_exit = x;
        assert_eq!(b.run_vcpu(VpIndex(0)), Ok(want));
    }
    assert!(b.run_vcpu(VpIndex(1)).is_err());
}

#[test]
fn guest_access_to_paravisor_memory_follows_rmpadjust() {
    let mut b = boot(Lies::default());
    let page = 0x3000;
    let guest =
        |b: &mut SnpBackend<'static, Model>, kind| b.cpu().rmp.check_access(2, page, true, kind);
    assert!(matches!(
        guest(&mut b, AccessKind::Read),
        Err(Fault::Npf { error_code }) if error_code & npf::VMPL != 0
    ));
    b.set_guest_access(pages(3..4), GuestAccess::RW).unwrap();
    assert_eq!(guest(&mut b, AccessKind::Write), Ok(()));
    assert!(guest(&mut b, AccessKind::ExecSuper).is_err());
    b.set_guest_access(pages(3..4), GuestAccess::NONE).unwrap();
    assert!(guest(&mut b, AccessKind::Read).is_err());
    conformance::guest_access_is_set_only_through_private_addresses(&mut b, 3);
}

#[test]
fn visibility_round_trip_through_the_host() {
    let mut b = boot(Lies::default());
    conformance::visibility_round_trips_in_either_alias(&mut b, 30..33);
    // Back to private means validated again, not just assigned.
    for gfn in 30..33 {
        assert!(b.cpu().rmp.entry(gfn << 12).unwrap().validated);
    }
}

#[test]
fn more_pages_than_one_descriptor_holds_take_several_exits() {
    const BIG: usize = 600;
    static BIG_RAM: [RamRange; 1] = [RamRange {
        start: 0,
        end: BIG as u64 * 4096,
    }];
    let m = SnpModel::<BIG>::new(VTOM_BIT);
    let p = Partition::new(PartitionKind::Snp { vtom_bit: VTOM_BIT }, &BIG_RAM).unwrap();
    let mut b = SnpBackend::new(m, p, Gpa(B | (BIG as u64 - 1) << 12)).unwrap();
    let r = PageRange::new(Gpa(0), 520).unwrap();
    b.accept_private(r).unwrap();
    let before = b.cpu().vmgexits;
    b.set_visibility(r, GpaClass::Shared).unwrap();
    assert_eq!(b.cpu().vmgexits - before, 3, "253 + 253 + 14 entries");
    assert!((0..520).all(|g| !b.cpu().rmp.entry(g << 12).unwrap().assigned));
}

#[test]
fn validation_is_rescinded_before_the_host_gets_the_page() {
    let mut b = boot(Lies {
        psc_error: 0x55,
        ..Lies::default()
    });
    assert_eq!(
        b.set_visibility(pages(40..41), GpaClass::Shared),
        Err(IsolationError::HostRefused(0x55))
    );
    let e = *b.cpu().rmp.entry(40 << 12).unwrap();
    assert!(
        e.assigned && !e.validated,
        "rescinded before asking the host"
    );
}

#[test]
fn host_lies_about_page_state_changes_are_caught() {
    let lie_cases = [
        Lies {
            psc_skip_rmpupdate: true,
            ..Lies::default()
        },
        Lies {
            psc_stall: true,
            ..Lies::default()
        },
        Lies {
            psc_rewrite_entry: true,
            ..Lies::default()
        },
    ];
    for lies in lie_cases {
        let mut b = boot(lies);
        let before = b.cpu().vmgexits;
        assert_eq!(
            b.set_visibility(pages(SHARED), GpaClass::Private),
            Err(IsolationError::HostViolation),
            "{lies:?}"
        );
        // A host that makes no progress is dropped at once, not retried.
        assert_eq!(b.cpu().vmgexits - before, 1, "{lies:?}");
        // No page ends up validated while the host still owns it.
        for gfn in 0..PAGES as u64 {
            let e = *b.cpu().rmp.entry(gfn << 12).unwrap();
            assert!(e.assigned || !e.validated, "gfn {gfn}");
        }
    }
}

#[test]
fn a_page_stolen_by_the_host_is_detected_not_used() {
    let mut b = boot(Lies {
        steal_gfn: Some(5),
        ..Lies::default()
    });
    // Any exit gives the host the chance; the next use of page 5 must notice.
    b.cpu().next_exit = GuestExit {
        code: exit::HLT,
        ..GuestExit::default()
    };
    b.run_vcpu(VpIndex(0)).unwrap();
    assert_eq!(
        b.set_guest_access(pages(5..6), GuestAccess::RW),
        Err(IsolationError::HostViolation)
    );
    assert_eq!(
        b.accept_private(pages(5..6)),
        Err(IsolationError::HostViolation)
    );
}

#[test]
fn hypercalls_reach_the_host_only_with_host_visible_buffers() {
    let mut b = boot(Lies::default());
    conformance::hypercalls_reach_the_host_only_with_host_visible_buffers(&mut b, &STANDARD);
    // The GHCB's hypercall layout carried the control word and output GPA.
    let out = B | (SHARED.start + 1) << 12;
    assert_eq!(b.cpu().last_hypercall, Some((1 << 32 | 0x14, out)));
}

#[test]
fn a_bad_hypercall_result_is_a_violation() {
    let lies = Lies {
        hv_bad_result: true,
        ..Lies::default()
    };
    conformance::a_lying_hypercall_answer_is_a_violation(&mut boot(lies));
}

#[test]
fn termination_uses_the_msr_protocol() {
    let mut b = boot(Lies::default());
    assert!(b.call_host(HostCall::Terminate { reason: 7 }).is_err());
    assert_eq!(b.cpu().terminated, Some((0, 7)));
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Share(u64, u64),
    Unshare(u64, u64),
    Accept(u64, u64),
    Grant(u64, bool),
}

fn ops() -> impl proptest::strategy::Strategy<Value = std::vec::Vec<(Op, u8)>> {
    use proptest::prelude::*;
    let gfn = 2u64..GHCB_GFN - 4;
    let op = prop_oneof![
        (gfn.clone(), 1u64..4).prop_map(|(g, n)| Op::Share(g, n)),
        (gfn.clone(), 1u64..4).prop_map(|(g, n)| Op::Unshare(g, n)),
        (gfn.clone(), 1u64..4).prop_map(|(g, n)| Op::Accept(g, n)),
        (gfn, any::<bool>()).prop_map(|(g, w)| Op::Grant(g, w)),
    ];
    proptest::collection::vec((op, 0u8..8), 1..24)
}

proptest::proptest! {
    /// Whatever the paravisor asks, in any order, and whichever single lie the host
    /// tells on each step: no page is ever validated while the host owns it, every
    /// success leaves the RMP in the state asked for, and a page made shared is no
    /// longer reachable by the guest through its private alias.
    #[test]
    fn rmp_stays_consistent_under_any_sequence(seq in ops()) {
        let mut b = boot(Lies::default());
        for (op, lie) in seq {
            b.cpu().lies = match lie {
                1 => Lies { psc_skip_rmpupdate: true, ..Lies::default() },
                2 => Lies { psc_stall: true, ..Lies::default() },
                3 => Lies { psc_error: 9, ..Lies::default() },
                _ => Lies::default(),
            };
            match op {
                Op::Share(g, n) => {
                    if b.set_visibility(pages(g..g + n), GpaClass::Shared).is_ok() {
                        for p in g..g + n {
                            let e = *b.cpu().rmp.entry(p << 12).unwrap();
                            // A host that skips the RMPUPDATE only hurts itself (its
                            // accesses fault); the paravisor's part, rescinding, is done.
                            proptest::prop_assert!(!e.validated);
                            proptest::prop_assert!(!e.assigned || lie == 1);
                            // Nothing reaches the old private alias any more.
                            let guest = b.cpu().rmp.check_access(2, p << 12, true, AccessKind::Read);
                            proptest::prop_assert!(guest.is_err());
                        }
                    }
                }
                Op::Unshare(g, n) => {
                    if b.set_visibility(pages(g..g + n), GpaClass::Private).is_ok() {
                        for p in g..g + n {
                            let e = *b.cpu().rmp.entry(p << 12).unwrap();
                            proptest::prop_assert!(e.assigned && e.validated);
                        }
                    }
                }
                Op::Accept(g, n) => {
                    let _ = b.accept_private(pages(g..g + n));
                }
                Op::Grant(g, w) => {
                    let access = if w { GuestAccess::RW } else { GuestAccess::NONE };
                    let _ = b.set_guest_access(pages(g..g + 1), access);
                }
            }
            for gfn in 0..PAGES as u64 {
                let e = *b.cpu().rmp.entry(gfn << 12).unwrap();
                proptest::prop_assert!(e.assigned || !e.validated, "gfn {}", gfn);
            }
        }
    }
}
