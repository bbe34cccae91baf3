//! The svm backend: exit decode from the APM's encodings, the same conformance
//! flows the SNP and TDX backends pass, and the promises it keeps on its own.

use std::vec;
use std::vec::Vec;

use super::*;
use crate::conformance::{self, pages, Harness, HostView, PAGES, RAM, STANDARD};
use crate::{ExitKind, PartitionKind};

/// A VMRUN that returns scripted exits, and a host that records the pages a
/// hypercall names and answers 0.
#[derive(Debug, Default)]
struct Machine {
    next: Vec<Result<SvmExit, u64>>,
    touched: Vec<u64>,
    calls: u64,
    visible: Vec<u64>,
}

/// Writes a scripted exit into the state words as the kernel would.
impl SvmCpu for Machine {
    type Error = u64;

    fn vmrun(&mut self, _: VpIndex, w: &mut StateWords, _: Entry) -> Result<Entered, u64> {
        let e = self.next.pop().unwrap_or(Err(1))?;
        w.load_exit(&e.to_words());
        Ok(Entered::Exit)
    }

    fn now(&self) -> u64 {
        0
    }
}

impl SvmHost for Machine {
    fn host_call(&mut self, call: &HostCall) -> Result<HostReply, IsolationError> {
        self.calls += 1;
        match *call {
            HostCall::HvHypercall(h) => {
                let b = 1u64 << crate::gpa::SVM_VTOM_BIT;
                let gfns = h.buffers().map(|g| (g.0 & !b) >> 12);
                self.touched.extend(gfns);
                Ok(HostReply::Hypercall { result: 0 })
            }
            HostCall::Terminate { .. } => Ok(HostReply::Done),
        }
    }
}

type Backend = SvmBackend<'static, Machine, PAGES>;

impl HostView for Machine {
    fn host_exits(&self) -> u64 {
        self.calls
    }
    fn host_touched(&self) -> &[u64] {
        &self.touched
    }
    fn host_can_read(&self, gfn: u64) -> bool {
        self.visible.contains(&gfn)
    }
}

impl Harness for Backend {
    type View = Machine;
    /// The host may read what the backend promised visible.
    fn view(&mut self) -> &Machine {
        let visible = (0..PAGES as u64)
            .filter(|g| self.page(Gpa(g << 12)).is_some_and(|p| p.host_visible))
            .collect();
        self.cpu.visible = visible;
        &self.cpu
    }
}

fn partition() -> Partition<'static> {
    Partition::new(PartitionKind::Svm, &RAM).unwrap()
}

fn boot() -> Backend {
    let mut b = Backend::new(Machine::default(), partition()).unwrap();
    b.accept_private(pages(0..PAGES as u64)).unwrap();
    b.set_visibility(pages(STANDARD.shared), GpaClass::Shared)
        .unwrap();
    b
}

#[test]
fn conformance_flows() {
    conformance::accepting_twice_and_shared_addresses_are_refused(&mut boot(), 3);
    conformance::hypercalls_reach_the_host_only_with_host_visible_buffers(&mut boot(), &STANDARD);
    conformance::visibility_round_trips_in_either_alias(&mut boot(), 30..33);
    conformance::guest_access_is_set_only_through_private_addresses(&mut boot(), 3);
}

#[test]
fn exits_decode_as_the_apm_encodes_them() {
    let e = |code, info1, info2, rax, rcx, rdx| SvmExit {
        code,
        info1,
        info2,
        rax,
        rcx,
        rdx,
    };
    let cases = [
        (
            e(0x72, 0, 0, 0x4000_0003, 7, 0),
            VcpuExit::Cpuid {
                leaf: 0x4000_0003,
                subleaf: 7,
            },
        ),
        (
            e(0x7c, 0, 0, 0, 0x4000_0080, 0),
            VcpuExit::Msr {
                index: 0x4000_0080,
                access: MsrAccess::Read,
            },
        ),
        (
            e(0x7c, 1, 0, 0xffff_ffff_0000_0001, 0x830, 2),
            VcpuExit::Msr {
                index: 0x830,
                access: MsrAccess::Write(0x2_0000_0001),
            },
        ),
        // OUT dx, al to 0x3f8; IN eax from 0xcf8; REP OUTSB; an invalid size.
        (
            e(0x7b, 0x3f8 << 16 | 0x10, 0x1002, 0, 0, 0),
            io(0x3f8, 1, true, false, false, 0x1002),
        ),
        (
            e(0x7b, 0xcf8 << 16 | 0x41, 0x2001, 0, 0, 0),
            io(0xcf8, 4, false, false, false, 0x2001),
        ),
        (
            e(0x7b, 0x3f8 << 16 | 0x1c, 0x3002, 0, 0, 0),
            io(0x3f8, 1, true, true, true, 0x3002),
        ),
        (
            e(0x7b, 0x70 << 16 | 0x30, 0, 0, 0, 0),
            VcpuExit::Other { code: 0x7b },
        ),
        (
            e(0x400, 0x6, 0xfee0_0000, 0, 0, 0),
            fault(0xfee0_0000, true, false),
        ),
        (e(0x400, 0x4, 0x1000, 0, 0, 0), fault(0x1000, false, false)),
        (e(0x400, 0x14, 0x1000, 0, 0, 0), fault(0x1000, false, true)),
        // An MSR exit that is neither read nor write.
        (e(0x7c, 2, 0, 0, 0x830, 0), VcpuExit::Other { code: 0x7c }),
        // #PF pushes an error code, #UD does not.
        (
            e(0x4e, 0x2, 0, 0, 0, 0),
            VcpuExit::Exception {
                vector: 14,
                error_code: Some(2),
            },
        ),
        (
            e(0x46, 0x2, 0, 0, 0, 0),
            VcpuExit::Exception {
                vector: 6,
                error_code: None,
            },
        ),
        (e(0x64, 0, 0, 0, 0, 0), VcpuExit::InterruptWindow),
        (e(0x60, 0, 0, 0, 0, 0), VcpuExit::HostInterrupt),
        (e(0x61, 0, 0, 0, 0, 0), VcpuExit::HostInterrupt),
        (e(0x1_0000, 0, 0, 0, 0, 0), VcpuExit::Deadline),
        (e(0x1_0001, 0, 0, 0, 0, 0), VcpuExit::Notified),
        (e(0x1_0002, 0, 0, 0, 0, 0), VcpuExit::InvalidState),
        // SMI, INIT and XSETBV have no handler class.
        (e(0x62, 0, 0, 0, 0, 0), VcpuExit::Other { code: 0x62 }),
        (e(0x8d, 0, 0, 0, 0, 0), VcpuExit::Other { code: 0x8d }),
        (e(0x78, 0, 0, 0, 0, 0), VcpuExit::Halt),
        (e(0x81, 0, 0, 0, 0, 0), VcpuExit::Hypercall),
        (e(0x7f, 0, 0, 0, 0, 0), VcpuExit::Shutdown),
        (
            e(u64::MAX, u64::MAX, u64::MAX, 0, 0, 0),
            VcpuExit::InvalidState,
        ),
        (e(0x9999, 0, 0, 0, 0, 0), VcpuExit::Other { code: 0x9999 }),
    ];
    for (exit, want) in cases {
        assert_eq!(decode_exit(&exit), want, "{exit:x?}");
    }
}

fn io(port: u16, size: u8, write: bool, string: bool, rep: bool, next: u64) -> VcpuExit {
    VcpuExit::Io(IoExit {
        port,
        size,
        write,
        string,
        rep,
        next_rip: Some(next),
    })
}

fn fault(gpa: u64, write: bool, fetch: bool) -> VcpuExit {
    VcpuExit::MemoryFault {
        gpa: Gpa(gpa),
        write,
        fetch,
    }
}

/// The state words the kernel returns are what the decoder reads, and a
/// notification that came first is reported as one.
#[test]
fn run_reads_the_exit_from_the_state_words() {
    struct Notify;
    impl SvmCpu for Notify {
        type Error = u64;
        fn vmrun(&mut self, _: VpIndex, _: &mut StateWords, e: Entry) -> Result<Entered, u64> {
            assert_eq!((e.flags(), e.deadline_word()), (flags::HALTED, 9));
            Ok(Entered::Notified(ChannelSet::from_bits(1)))
        }
        fn now(&self) -> u64 {
            0
        }
    }
    let halted = Entry {
        halted: true,
        deadline: Some(9),
    };
    let mut w = StateWords::new();
    assert_eq!(
        run(&mut Notify, VpIndex(0), &mut w, halted),
        Ok(VcpuExit::Notified)
    );
    let mut m = Machine {
        next: vec![Ok(SvmExit {
            code: code::CPUID,
            rax: 1,
            ..SvmExit::default()
        })],
        ..Machine::default()
    };
    let exit = run(&mut m, VpIndex(0), &mut w, Entry::default());
    assert_eq!(
        exit,
        Ok(VcpuExit::Cpuid {
            leaf: 1,
            subleaf: 0
        })
    );
    assert_eq!(SvmExit::from_words(&w).rax, 1);
}

#[test]
fn run_vcpu_decodes_and_reports_a_refused_entry() {
    let mut b = boot();
    b.cpu().next = vec![
        Err(22),
        Ok(SvmExit {
            code: code::HLT,
            ..SvmExit::default()
        }),
    ];
    assert_eq!(b.run_vcpu(VpIndex(0)), Ok(VcpuExit::Halt));
    assert_eq!(b.run_vcpu(VpIndex(0)), Err(IsolationError::Hardware(22)));
}

#[test]
fn guest_grants_need_accepted_private_memory_and_sharing_revokes_them() {
    let mut b = Backend::new(Machine::default(), partition()).unwrap();
    assert!(
        b.set_guest_access(pages(5..6), GuestAccess::RW).is_err(),
        "not accepted"
    );
    b.accept_private(pages(0..8)).unwrap();
    b.set_guest_access(pages(5..7), GuestAccess::RW).unwrap();
    assert_eq!(b.page(Gpa(0x5000)).unwrap().guest, GuestAccess::RW);
    conformance::guest_access_is_set_only_through_private_addresses(&mut b, 5);
    b.set_visibility(pages(5..6), GpaClass::Shared).unwrap();
    assert_eq!(b.page(Gpa(0x5000)).unwrap().guest, GuestAccess::NONE);
    assert_eq!(b.page(Gpa(0x6000)).unwrap().guest, GuestAccess::RW);
}

/// A buffer of the shared class that the guest never made visible is refused.
#[test]
fn a_host_call_needs_pages_made_visible_not_just_the_shared_alias() {
    let mut b = boot();
    let never_shared = Gpa(1 << 36 | 40 << 12);
    let call = HostCall::HvHypercall(Hypercall {
        control: 0x5c,
        input: Some(never_shared),
        output: None,
    });
    assert!(matches!(
        b.call_host(call),
        Err(IsolationError::WrongClass { .. })
    ));
    assert_eq!(b.cpu().calls, 0);
}

#[test]
fn only_svm_partitions_within_the_tracked_pages() {
    let snp = Partition::new(PartitionKind::Snp { vtom_bit: 36 }, &RAM).unwrap();
    assert!(SvmBackend::<'_, Machine, PAGES>::new(Machine::default(), snp).is_err());
    assert!(SvmBackend::<'_, Machine, 8>::new(Machine::default(), partition()).is_err());
}

/// Counting by `kind as usize` relies on ALL being in declaration order.
#[test]
fn exit_kinds_index_their_own_list() {
    for (i, k) in ExitKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i, "{}", k.name());
    }
}

/// Every exit field travels in its own state word and comes back unchanged.
#[test]
fn exit_fields_round_trip_through_the_state_words() {
    let e = SvmExit {
        code: 1,
        info1: 2,
        info2: 3,
        rax: 4,
        rcx: 5,
        rdx: 6,
    };
    let mut w = StateWords::default();
    w.load_exit(&e.to_words());
    assert_eq!(SvmExit::from_words(&w), e);
}
