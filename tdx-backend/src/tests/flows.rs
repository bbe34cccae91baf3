//! The paravisor's flows on the model TDX module and host.

use isolation::{
    Gpa, GpaClass, GuestAccess, HostCall, HostReply, Hypercall, Isolation, IsolationError,
    PageRange, Partition, PartitionKind, VcpuExit, VpIndex,
};

use isolation::conformance::{self, pages, Harness, HostView, PAGES, RAM, STANDARD};

use crate::backend::TdxBackend;
use crate::cpu::Regs;
use crate::cpu::TdxCpu;
use crate::exit::{reason, L2Gprs};
use crate::model::{attr, Lies, PageState, TdxModel};
use crate::status::{leaf, Status};

const SHARED_BIT: u8 = 47;
const S: u64 = 1 << SHARED_BIT;
const SHARED: core::ops::Range<u64> = STANDARD.shared;

type Model = TdxModel<PAGES>;

fn backend() -> TdxBackend<'static, Model> {
    let p = Partition::new(
        PartitionKind::Tdx {
            shared_bit: SHARED_BIT,
        },
        &RAM,
    )
    .unwrap();
    TdxBackend::new(Model::new(SHARED_BIT), p).unwrap()
}

fn boot(lies: Lies) -> TdxBackend<'static, Model> {
    let mut b = backend();
    b.accept_private(pages(0..PAGES as u64)).unwrap();
    b.set_visibility(pages(SHARED), GpaClass::Shared).unwrap();
    b.cpu().lies = lies;
    b
}

/// One TDCALL made straight to the model module: the status it completes with.
fn module_call(m: &mut Model, mut r: Regs) -> Status {
    m.tdcall(&mut r);
    Status(r.rax)
}

fn accept_raw(m: &mut Model, rcx: u64) -> Status {
    let r = Regs {
        rax: leaf::MEM_PAGE_ACCEPT,
        rcx,
        ..Regs::default()
    };
    module_call(m, r)
}

#[test]
fn accept_rules_of_the_module() {
    let mut m = Model::new(SHARED_BIT);
    assert_eq!(accept_raw(&mut m, 0x3000), Status::SUCCESS);
    assert_eq!(accept_raw(&mut m, 0x3000), Status::PAGE_ALREADY_ACCEPTED);
    for (rcx, want, why) in [
        (0x20_0000 | 1, Status::EPT_WALK_FAILED, "outside RAM"),
        (0x4000 | 1, Status::PAGE_SIZE_MISMATCH, "2M on a 4K mapping"),
        (0x4000 | 3, Status::OPERAND_INVALID, "level 3"),
        (0x4000 | 8, Status::OPERAND_INVALID, "reserved bits"),
        (S | 0x4000, Status::OPERAND_INVALID, "shared GPA"),
    ] {
        assert_eq!(accept_raw(&mut m, rcx), want, "{why}");
    }
    m.pages[5].state = PageState::Absent;
    assert_eq!(
        accept_raw(&mut m, 0x5000),
        Status::EPT_WALK_FAILED,
        "only pending pages"
    );
}

impl HostView for Model {
    fn host_exits(&self) -> u64 {
        u64::from(self.vmcalls)
    }
    fn host_touched(&self) -> &[u64] {
        TdxModel::host_touched(self)
    }
    fn host_can_read(&self, gfn: u64) -> bool {
        TdxModel::host_can_read(self, gfn)
    }
}

impl Harness for TdxBackend<'static, Model> {
    type View = Model;
    fn view(&mut self) -> &Model {
        self.cpu()
    }
}

#[test]
fn accepting_twice_is_reported_not_ignored() {
    let mut b = boot(Lies::default());
    conformance::accepting_twice_and_shared_addresses_are_refused(&mut b, 3);
}

#[test]
fn visibility_round_trips_in_either_alias() {
    let mut b = boot(Lies::default());
    conformance::visibility_round_trips_in_either_alias(&mut b, 30..33);
}

#[test]
fn map_gpa_converts_both_ways() {
    let mut b = boot(Lies::default());
    for g in SHARED {
        let p = *b.cpu().page(g).unwrap();
        assert!(p.shared_mapped && p.state == PageState::Absent);
    }
    b.set_visibility(
        PageRange::new(Gpa(S | SHARED.start << 12), 2).unwrap(),
        GpaClass::Private,
    )
    .unwrap();
    for g in SHARED {
        let p = *b.cpu().page(g).unwrap();
        assert!(!p.shared_mapped && p.state == PageState::Accepted);
    }
}

#[test]
fn map_gpa_retry_is_followed() {
    let mut b = boot(Lies {
        map_one_at_a_time: true,
        ..Lies::default()
    });
    let before = b.cpu().vmcalls;
    b.set_visibility(pages(30..34), GpaClass::Shared).unwrap();
    assert_eq!(b.cpu().vmcalls - before, 4);
    assert!((30..34).all(|g| b.cpu().host_can_read(g)));
}

#[test]
fn host_lies_about_map_gpa_are_caught() {
    let mut b = boot(Lies {
        map_bad_retry: true,
        ..Lies::default()
    });
    assert_eq!(
        b.set_visibility(pages(30..31), GpaClass::Shared),
        Err(IsolationError::HostViolation)
    );
    // Claims to have made the page private again but never added it back.
    let mut b = boot(Lies {
        map_skip: true,
        ..Lies::default()
    });
    assert_eq!(
        b.set_visibility(pages(SHARED), GpaClass::Private),
        Err(IsolationError::HostViolation)
    );
    // Claims to have made an accepted page private: it is not pending, so ACCEPT
    // says already accepted, which after a conversion is a lie.
    assert_eq!(
        b.set_visibility(pages(5..6), GpaClass::Private),
        Err(IsolationError::HostViolation)
    );
}

#[test]
fn l2_attributes_follow_attr_wr() {
    let mut b = boot(Lies::default());
    assert_eq!(b.cpu().page(3).unwrap().l2, 0);
    b.set_guest_access(pages(3..4), GuestAccess::RW).unwrap();
    assert_eq!(b.cpu().page(3).unwrap().l2, attr::R | attr::W);
    b.set_guest_access(pages(3..4), GuestAccess::NONE).unwrap();
    assert_eq!(b.cpu().page(3).unwrap().l2, 0);
    let write_only = GuestAccess {
        read: false,
        write: true,
        execute: false,
    };
    assert_eq!(
        b.set_guest_access(pages(3..4), write_only),
        Err(IsolationError::Hardware(Status::OPERAND_INVALID.0))
    );
    conformance::guest_access_is_set_only_through_private_addresses(&mut b, 3);
}

#[test]
fn attr_wr_module_rules() {
    let mut m = Model::new(SHARED_BIT);
    let wr = |m: &mut Model, rcx: u64, rdx: u64, r8: u64| {
        let r = Regs {
            rax: leaf::MEM_PAGE_ATTR_WR,
            rcx,
            rdx,
            r8,
            ..Regs::default()
        };
        module_call(m, r)
    };
    let r = u64::from(attr::R) << 16;
    assert_eq!(
        wr(&mut m, 0x3000, r, r),
        Status::EPT_ENTRY_STATE_INCORRECT,
        "pending"
    );
    m.pages[3].state = PageState::Accepted;
    assert_eq!(wr(&mut m, 0x3000, r, r), Status::SUCCESS);
    for (why, rcx, rdx, r8) in [
        ("L1 attributes", 0x3000, 0, 1),
        ("VM 2 absent", 0x3000, 0, 1 << 32),
        ("reserved bit", 0x3000, 0, 1 << 24),
        ("unaligned", 0x3001, r, r),
    ] {
        assert_eq!(wr(&mut m, rcx, rdx, r8), Status::OPERAND_INVALID, "{why}");
    }
    m.pages[4].state = PageState::Absent;
    assert_eq!(wr(&mut m, 0x4000, r, r), Status::EPT_WALK_FAILED);
}

#[test]
fn a_page_stolen_by_the_host_is_detected() {
    let mut b = boot(Lies {
        steal_gfn: Some(7),
        ..Lies::default()
    });
    let call = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: None,
        output: None,
    });
    b.call_host(call).unwrap();
    assert_eq!(
        b.set_guest_access(pages(7..8), GuestAccess::RW),
        Err(IsolationError::HostViolation)
    );
}

#[test]
fn l2_exits_arrive_decoded() {
    let mut b = boot(Lies::default());
    b.cpu().next_exit = (
        Regs {
            rax: reason::CPUID.into(),
            ..Regs::default()
        },
        L2Gprs {
            rax: 0x4000_0003,
            rcx: 0,
            rdx: 0,
        },
    );
    assert_eq!(
        b.run_vcpu(VpIndex(0)),
        Ok(VcpuExit::Cpuid {
            leaf: 0x4000_0003,
            subleaf: 0
        })
    );
    b.cpu().next_exit.0 = Regs {
        rax: reason::EPT_VIOLATION.into(),
        rcx: 2,
        r8: S | 0x5000,
        ..Regs::default()
    };
    assert_eq!(
        b.run_vcpu(VpIndex(0)),
        Ok(VcpuExit::MemoryFault {
            gpa: Gpa(S | 0x5000),
            write: true,
            fetch: false
        })
    );
    assert!(b.run_vcpu(VpIndex(1)).is_err());
}

#[test]
fn hypercalls_leave_only_with_host_visible_buffers() {
    let mut b = boot(Lies::default());
    conformance::hypercalls_reach_the_host_only_with_host_visible_buffers(&mut b, &STANDARD);
}

#[test]
fn bad_hypercall_status_and_termination() {
    let mut b = boot(Lies {
        hv_bad_status: true,
        ..Lies::default()
    });
    conformance::a_lying_hypercall_answer_is_a_violation(&mut b);
    assert_eq!(
        b.call_host(HostCall::Terminate { reason: 9 }),
        Ok(HostReply::Done)
    );
    assert_eq!(b.cpu().fatal, Some(9));
}

proptest::proptest! {
    /// Any sequence of conversions, accepts and grants with a host that may skip,
    /// crawl or lie about RETRY: a successful conversion to private leaves every
    /// page accepted and unmapped from the host, a successful conversion to shared
    /// leaves none accepted, and the L2 never holds rights on a page that is not
    /// accepted private memory.
    #[test]
    fn page_states_stay_consistent(seq in proptest::collection::vec((0u8..4, 2u64..PAGES as u64 - 4, 1u64..4, 0u8..6), 1..24)) {
        let mut b = boot(Lies::default());
        for (op, g, n, lie) in seq {
            b.cpu().lies = match lie {
                1 => Lies { map_skip: true, ..Lies::default() },
                2 => Lies { map_one_at_a_time: true, ..Lies::default() },
                3 => Lies { map_bad_retry: true, ..Lies::default() },
                _ => Lies::default(),
            };
            let r = pages(g..g + n);
            match op {
                0 => {
                    if b.set_visibility(r, GpaClass::Shared).is_ok() && lie != 1 {
                        for p in g..g + n {
                            let pg = *b.cpu().page(p).unwrap();
                            proptest::prop_assert!(pg.state != PageState::Accepted && pg.shared_mapped);
                        }
                    }
                }
                1 => {
                    if b.set_visibility(r, GpaClass::Private).is_ok() {
                        for p in g..g + n {
                            let pg = *b.cpu().page(p).unwrap();
                            proptest::prop_assert!(pg.state == PageState::Accepted && !pg.shared_mapped);
                        }
                    }
                }
                2 => {
                    let _ = b.accept_private(r);
                }
                _ => {
                    let _ = b.set_guest_access(r, GuestAccess::RW);
                }
            }
            for p in 0..PAGES as u64 {
                let pg = *b.cpu().page(p).unwrap();
                if pg.l2 != 0 {
                    proptest::prop_assert!(pg.state == PageState::Accepted, "gfn {}", p);
                }
            }
        }
    }
}
