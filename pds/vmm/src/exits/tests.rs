//! Table tests of the exit handler against a fake guest RAM (identity-mapped long
//! mode) and fake peers that record every call and give scripted answers.

use hvdef::cpuid::{privilege, LEAF_FEATURES, LEAF_ISOLATION_CONFIG};

use super::*;
use crate::devices::lapic;
use crate::state::RFLAGS_IF;
use crate::testing::{self, Call, FakePeers, Mode, Ram, EFER_LMA, EFER_LME, EFER_NXE};
use ioapic::MMIO_BASE;
use isolation::ExitKind;
use kernel_abi::vcpu::{exit, pseudo_exit};

const RAM_SIZE: usize = 0x20_0000;
/// Where the code under test sits (identity mapped, like all of the first 2 MiB).
const CODE: u64 = 0x8000;
const NOW: u64 = 1_000;
const TSC_HZ: u64 = 2_000_000_000;
const APIC_HZ: u64 = 1_000_000_000;

/// Leaf 0 of an AMD CPU, and a marker answer for every other leaf.
fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    match leaf {
        0 => [0x16, 0x6874_7541, 0x444d_4163, 0x6974_6e65],
        _ => [leaf, subleaf, 0x1234, 0x5678],
    }
}

fn vmm(presentation: Presentation) -> Vmm {
    testing::vmm(presentation, TSC_HZ, APIC_HZ, host_cpuid)
}

/// A long-mode vCPU at CPL `cpl`, exited with `code` at [`CODE`].
fn long_mode_exit(code: u64, cpl: u16) -> VcpuState {
    let mut w = testing::vcpu_words(Mode::Long, cpl, CODE);
    w[Word::EXIT_CODE] = code;
    let mut st = VcpuState::new();
    st.load_exit(&w);
    st
}

fn exit_at(code: u64, ram: &Ram, bytes: &[u8]) -> VcpuState {
    ram.put(CODE, bytes);
    long_mode_exit(code, 0)
}

const GP: u64 = event::VALID | event::TYPE_EXCEPTION | event::ERROR_VALID | 13;
const UD: u64 = event::VALID | event::TYPE_EXCEPTION | 6;

/// The local APIC software-enabled (SVR bit 8), as Linux leaves it.
fn enable_lapic(v: &mut Vmm) {
    v.platform.lapic.write_msr(0x80f, 0x1ff, 0).unwrap();
}

// ---- CPUID ----

#[test]
fn hypervisor_leaves_go_to_hvcall_and_are_filtered_per_presentation() {
    let raw = [0x10, privilege::HIGH_ISOLATION | 1, 7, 0];
    for (presentation, isolation_kept) in [
        (Presentation::Plain, false),
        (Presentation::Confidential, true),
    ] {
        let ram = Ram::identity_mapped(RAM_SIZE);
        let mut v = vmm(presentation);
        let mut st = exit_at(exit::CPUID, &ram, &[0x0f, 0xa2]);
        st.set_gpr(0, 0xffff_ffff_0000_0000 | u64::from(LEAF_FEATURES));
        st.set_gpr(1, 0xffff_ffff_0000_0003);
        let mut p = FakePeers {
            cpuid: Some(raw),
            ..FakePeers::default()
        };
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
        assert_eq!(p.calls, [Call::HvCpuid(LEAF_FEATURES, 3)]);
        let want = cpuid::hypervisor(LEAF_FEATURES, raw, presentation);
        assert_eq!(st.gpr(0), u64::from(want[0]), "EAX, upper half cleared");
        assert_ne!(st.gpr(0) as u32 & cpuid::ACCESS_FREQUENCY_MSRS, 0);
        assert_eq!(st.gpr(3), u64::from(want[1]));
        assert_eq!(
            st.gpr(3) as u32 & privilege::HIGH_ISOLATION != 0,
            isolation_kept,
            "{presentation:?}"
        );
        assert_eq!(st.gpr(1), 7);
        assert_eq!(st.rip(), CODE + 2);
        assert_eq!(st.get(Word::EVENT_INJECT), 0);

        // The isolation leaf is hidden from a plain guest; no answer reads as zeros.
        let mut st = exit_at(exit::CPUID, &ram, &[0x0f, 0xa2]);
        st.set_gpr(0, u64::from(LEAF_ISOLATION_CONFIG));
        let mut p = FakePeers {
            cpuid: Some([1, 2, 3, 4]),
            ..FakePeers::default()
        };
        v.handle_exit(&mut st, &ram, &mut p, NOW);
        let got = [st.gpr(0), st.gpr(3), st.gpr(1), st.gpr(2)];
        match presentation {
            Presentation::Plain => assert_eq!(got, [0; 4]),
            Presentation::Confidential => assert_eq!(got, [1, 2, 3, 4]),
        }
        let mut st = exit_at(exit::CPUID, &ram, &[0x0f, 0xa2]);
        st.set_gpr(0, 0x4000_0001);
        let mut p = FakePeers::default();
        v.handle_exit(&mut st, &ram, &mut p, NOW);
        assert_eq!([st.gpr(0), st.gpr(3), st.gpr(1), st.gpr(2)], [0; 4]);
        assert_eq!(st.rip(), CODE + 2);
    }
}

/// CPUID leaf 0 (RBX 0xabcd) on a plain VM with no peers, the guest's code at
/// RIP being `code`: the VMM, the registers before the exit and the state after.
fn leaf0(code: &[u8]) -> (Vmm, [u64; 16], VcpuState, FakePeers) {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut st = exit_at(exit::CPUID, &ram, code);
    st.set_gpr(0, 0);
    st.set_gpr(3, 0xabcd);
    let before = st.gprs();
    let mut p = FakePeers::default();
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    (v, before, st, p)
}

#[test]
fn native_leaves_use_the_host_function_not_the_peers() {
    let (_, _, st, p) = leaf0(&[0x0f, 0xa2]);
    assert!(p.calls.is_empty());
    assert_eq!(
        [st.gpr(0), st.gpr(3), st.gpr(1), st.gpr(2)],
        [0x16, 0x6874_7541, 0x444d_4163, 0x6974_6e65]
    );
    assert_eq!(st.rip(), CODE + 2);
}

#[test]
fn cpuid_with_changed_code_leaves_rip_and_registers_alone() {
    let (v, before, st, _) = leaf0(&[0x90, 0x90]);
    assert_eq!(st.rip(), CODE);
    assert_eq!(st.gprs(), before);
    assert_eq!(st.get(Word::EVENT_INJECT), 0);
    assert_eq!(v.stats.code_changed, 1);
}

#[test]
fn cpuid_at_an_unmapped_rip_injects_the_page_fault() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut st = long_mode_exit(exit::CPUID, 0);
    // Past the one 2 MiB page the tables map.
    st.set_rip(0x40_0000);
    v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW);
    assert_eq!(st.rip(), 0x40_0000);
    assert_eq!(st.get(Word::CR2), 0x40_0000);
    let inject = st.get(Word::EVENT_INJECT);
    assert_eq!(
        inject & 0xfff,
        event::TYPE_EXCEPTION | 14 | event::ERROR_VALID
    );
    assert_ne!(inject & event::VALID, 0);
    // Not present, instruction fetch.
    assert_eq!(inject >> 32, 1 << 4);
}

// ---- MSRs ----

const RDMSR: [u8; 2] = [0x0f, 0x32];
const WRMSR: [u8; 2] = [0x0f, 0x30];

fn msr_exit(ram: &Ram, index: u32, write: Option<u64>) -> VcpuState {
    let mut st = exit_at(
        exit::MSR,
        ram,
        if write.is_some() { &WRMSR } else { &RDMSR },
    );
    st.set(Word::EXIT_INFO1, u64::from(write.is_some()));
    st.set_gpr(1, 0xdead_0000_0000_0000 | u64::from(index));
    if let Some(v) = write {
        // Upper halves of RAX/RDX are ignored by WRMSR.
        st.set_gpr(0, 0xffff_ffff_0000_0000 | (v & 0xffff_ffff));
        st.set_gpr(2, 0xffff_ffff_0000_0000 | (v >> 32));
    }
    st
}

/// Runs one MSR access; `Ok(value read)` or `Err(event injected)`.
fn msr_access(
    v: &mut Vmm,
    p: &mut FakePeers,
    index: u32,
    write: Option<u64>,
) -> (Result<u64, u64>, VcpuState) {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut st = msr_exit(&ram, index, write);
    assert_eq!(v.handle_exit(&mut st, &ram, p, NOW), Action::Run);
    let inject = st.get(Word::EVENT_INJECT);
    if inject != 0 {
        assert_eq!(st.rip(), CODE, "a faulting MSR access does not advance RIP");
        return (Err(inject), st);
    }
    assert_eq!(st.rip(), CODE + 2);
    let value = if write.is_some() {
        0
    } else {
        assert_eq!(st.gpr(0) >> 32, 0);
        assert_eq!(st.gpr(2) >> 32, 0);
        st.gpr(0) | (st.gpr(2) << 32)
    };
    (Ok(value), st)
}

#[test]
fn lapic_msrs_reach_the_local_apic_and_level_eois_the_ioapic() {
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let (base, _) = msr_access(&mut v, &mut p, lapic::msr::APIC_BASE, None);
    assert_eq!(base.unwrap() & 0xfffff000, 0xfee0_0000);
    assert_eq!(msr_access(&mut v, &mut p, 0x80f, Some(0x1ff)).0, Ok(0));
    assert_eq!(msr_access(&mut v, &mut p, 0x80f, None).0, Ok(0x1ff));
    // A reserved x2APIC register is a #GP.
    assert_eq!(msr_access(&mut v, &mut p, 0x801, None).0, Err(GP));

    v.deliver(0x51, true);
    let mut st = long_mode_exit(exit::VINTR, 0);
    st.set(Word::RFLAGS, RFLAGS_IF | 2);
    v.before_entry(&mut st, NOW);
    assert_eq!(st.get(Word::EVENT_INJECT), event::VALID | 0x51);
    assert_eq!(msr_access(&mut v, &mut p, 0x80b, Some(0)).0, Ok(0));
    assert_eq!(p.calls, [Call::IoapicEoi(0x51)]);
}

#[test]
fn synic_msrs_reach_the_instance_of_the_presentation() {
    for (presentation, instance) in [
        (Presentation::Plain, Instance::HYPERVISOR),
        (Presentation::Confidential, Instance::PARAVISOR),
    ] {
        let mut v = vmm(presentation);
        let mut p = FakePeers {
            synic: MsrOutcome::Done(0x1_0000_0002),
            ..FakePeers::default()
        };
        assert_eq!(
            msr_access(&mut v, &mut p, 0x4000_0083, None).0,
            Ok(0x1_0000_0002)
        );
        assert_eq!(
            msr_access(&mut v, &mut p, 0x4000_0090, Some(0x1234_5678_9abc_def0)).0,
            Ok(0)
        );
        assert_eq!(
            p.calls,
            [
                Call::Synic(instance, 0x4000_0083, None),
                Call::Synic(instance, 0x4000_0090, Some(0x1234_5678_9abc_def0)),
            ]
        );
        p.synic = MsrOutcome::NotMine;
        assert_eq!(msr_access(&mut v, &mut p, 0x4000_0084, None).0, Err(GP));
        p.synic = MsrOutcome::Gp;
        assert_eq!(msr_access(&mut v, &mut p, 0x4000_0084, None).0, Err(GP));
        p.synic = MsrOutcome::Failed;
        let ram = Ram::identity_mapped(RAM_SIZE);
        let mut st = msr_exit(&ram, 0x4000_0084, None);
        assert!(matches!(
            v.handle_exit(&mut st, &ram, &mut p, NOW),
            Action::Stop(Stop::Fatal { .. })
        ));
    }
}

#[test]
fn hypercall_msrs_go_to_hvcall() {
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers {
        hv_msr: MsrOutcome::Done(7),
        ..FakePeers::default()
    };
    assert_eq!(msr_access(&mut v, &mut p, 0x4000_0002, None).0, Ok(7));
    assert_eq!(
        msr_access(&mut v, &mut p, 0x4000_0000, Some(0x8100_0000_0000_0000)).0,
        Ok(0)
    );
    p.hv_msr = MsrOutcome::NotMine;
    assert_eq!(msr_access(&mut v, &mut p, 0x4000_0105, None).0, Err(GP));
    assert_eq!(
        p.calls,
        [
            Call::HvMsr(0x4000_0002, None),
            Call::HvMsr(0x4000_0000, Some(0x8100_0000_0000_0000)),
            Call::HvMsr(0x4000_0105, None),
        ]
    );
}

#[test]
fn efer_hides_svme_refuses_reserved_bits_and_keeps_lma() {
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let current = EFER_LME | EFER_LMA | EFER_NXE | msr::EFER_SVME;
    assert_eq!(
        msr_access(&mut v, &mut p, msr::EFER, None).0,
        Ok(current & !msr::EFER_SVME)
    );
    for reserved in [msr::EFER_SVME, 1 << 14, 1 << 1, 1 << 63] {
        let (r, st) = msr_access(&mut v, &mut p, msr::EFER, Some(EFER_LME | reserved));
        assert_eq!(r, Err(GP), "{reserved:#x}");
        assert_eq!(st.get(Word::EFER), current);
        assert_eq!(st.dirty() & (1 << Word::EFER), 0);
    }
    // Clearing LMA and setting SCE: LMA stays the CPU's, SVME stays set.
    let (r, st) = msr_access(&mut v, &mut p, msr::EFER, Some(EFER_LME | 1));
    assert_eq!(r, Ok(0));
    assert_eq!(st.get(Word::EFER), EFER_LME | 1 | EFER_LMA | msr::EFER_SVME);
    // A guest cannot set LMA itself (paging off, where LME may change).
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut st = msr_exit(&ram, msr::EFER, Some(EFER_LMA | EFER_LME));
    st.set(Word::EFER, msr::EFER_SVME);
    st.set(Word::CR0, decode::bits::CR0_PE);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.get(Word::EVENT_INJECT), 0);
    assert_eq!(st.get(Word::EFER), EFER_LME | msr::EFER_SVME);
    // With paging on, LME is fixed: clearing it in long mode is a #GP.
    let (r, st) = msr_access(&mut v, &mut p, msr::EFER, Some(EFER_NXE));
    assert_eq!(r, Err(GP));
    assert_eq!(st.get(Word::EFER), current);
}

#[test]
fn pat_writes_are_checked_per_entry() {
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    assert_eq!(
        msr_access(&mut v, &mut p, msr::IA32_PAT, None).0,
        Ok(0x0007_0406_0007_0406)
    );
    let (r, st) = msr_access(&mut v, &mut p, msr::IA32_PAT, Some(0x0106_0406_0007_0406));
    assert_eq!(r, Ok(0));
    assert_eq!(st.get(Word::PAT), 0x0106_0406_0007_0406);
    let (r, st) = msr_access(&mut v, &mut p, msr::IA32_PAT, Some(0x0007_0406_0007_0402));
    assert_eq!(r, Err(GP));
    assert_eq!(st.get(Word::PAT), 0x0007_0406_0007_0406);
}

/// MSR accesses one after another on one VM: (index, the value written or
/// `None` for a read, the result).
type MsrSteps<'a> = &'a [(u32, Option<u64>, Result<u64, u64>)];

#[test]
fn msrs_the_vmm_answers_itself() {
    let (plain, confidential) = (Presentation::Plain, Presentation::Confidential);
    let ctl = msr::HV_TSC_INVARIANT_CONTROL;
    let (tsc, g) = (msr::IA32_TSC, ghcb::MSR_GHCB);
    let cases: [(Presentation, MsrSteps<'_>); 4] = [
        // The frequencies are the VMM's clock; of the invariant-TSC control only
        // bit 0 is writable.
        (
            plain,
            &[
                (msr::HV_TSC_FREQUENCY, None, Ok(TSC_HZ)),
                (msr::HV_APIC_FREQUENCY, None, Ok(APIC_HZ)),
                (msr::HV_TSC_FREQUENCY, Some(1), Err(GP)),
                (ctl, None, Ok(0)),
                (ctl, Some(1), Ok(0)),
                (ctl, None, Ok(1)),
                (ctl, Some(2), Err(GP)),
                (ctl, None, Ok(1)),
            ],
        ),
        // The TSC reads now and refuses writes.
        (plain, &[(tsc, None, Ok(NOW)), (tsc, Some(5), Err(GP))]),
        // The GHCB MSR exists only for a confidential VM.
        (
            confidential,
            &[
                (g, None, Ok(ghcb::PAGE_GPA)),
                (g, Some(2), Ok(0)),
                (g, None, Ok(2)),
            ],
        ),
        (plain, &[(g, None, Err(GP)), (g, Some(0), Err(GP))]),
    ];
    for (presentation, steps) in cases {
        let mut v = vmm(presentation);
        let mut p = FakePeers::default();
        for &(index, write, want) in steps {
            let got = msr_access(&mut v, &mut p, index, write).0;
            assert_eq!(got, want, "{presentation:?} {index:#x} {write:x?}");
        }
        assert!(p.calls.is_empty());
    }
}

#[test]
fn unknown_msrs_are_a_gp_with_vector_13() {
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    for (index, write) in [(0x3a, None), (0xc001_0114, Some(1)), (0xffff_ffff, None)] {
        let (r, st) = msr_access(&mut v, &mut p, index, write);
        let inject = r.unwrap_err();
        assert_eq!(inject & 0xff, 13);
        assert_eq!(inject, GP);
        assert_eq!(st.gpr(0) as u32, if write.is_some() { 1 } else { 0 });
    }
    assert_eq!(v.stats.msr_gp, 3);
    assert!(p.calls.is_empty());
}

// ---- Port I/O ----

fn io_exit(port: u16, size: u8, is_in: bool, flags: u64) -> VcpuState {
    let mut st = long_mode_exit(exit::IOIO, 0);
    let sz = match size {
        1 => 1 << 4,
        2 => 1 << 5,
        _ => 1 << 6,
    };
    st.set(
        Word::EXIT_INFO1,
        (u64::from(port) << 16) | sz | u64::from(is_in) | flags,
    );
    // EXITINFO2 is the next RIP; the length is the CPU's word, not decoded.
    st.set(Word::EXIT_INFO2, CODE + 3);
    st
}

#[test]
fn in_merges_into_rax_as_the_cpu_does() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    // An unknown port reads all ones, whatever the size.
    for (size, want) in [
        (1, 0x1122_3344_5566_77ff),
        (2, 0x1122_3344_5566_ffff),
        (4, 0x0000_0000_ffff_ffff),
    ] {
        let mut v = vmm(Presentation::Plain);
        let mut st = io_exit(0x1230, size, true, 0);
        st.set_gpr(0, 0x1122_3344_5566_7788);
        let action = v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW);
        assert_eq!(action, Action::Run);
        assert_eq!(st.gpr(0), want, "size {size}");
        assert_eq!(st.rip(), CODE + 3);
    }
}

#[test]
fn out_writes_the_low_bytes_and_in_reads_them_back() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    // COM1's scratch register.
    let mut st = io_exit(0x3ff, 1, false, 0);
    st.set_gpr(0, 0xffff_ff5a);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.rip(), CODE + 3);
    let mut st = io_exit(0x3ff, 1, true, 0);
    st.set_gpr(0, 0xaaaa_aaaa_aaaa_aaaa);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.gpr(0), 0xaaaa_aaaa_aaaa_aa5a);
    // The PCI address register is a dword.
    let mut st = io_exit(0xcf8, 4, false, 0);
    st.set_gpr(0, 0xffff_ffff_8000_0810);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    let mut st = io_exit(0xcf8, 4, true, 0);
    st.set_gpr(0, u64::MAX);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.gpr(0), 0x8000_0810);
}

#[test]
fn out_to_the_sleep_control_register_powers_off() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut st = io_exit(crate::acpi::SLEEP_CONTROL_PORT, 1, false, 0);
    st.set_gpr(0, 0x34);
    assert_eq!(
        v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW),
        Action::Stop(Stop::PowerOff)
    );
}

const STR: u64 = 1 << 2;
const REP: u64 = 1 << 3;

#[test]
fn rep_outs_writes_each_element_and_updates_rcx_and_rsi() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    ram.put(0x9000, b"hi\n");
    let mut v = vmm(Presentation::Plain);
    let mut st = io_exit(0x3f8, 1, false, STR | REP);
    st.set_gpr(1, 3);
    st.set_gpr(6, 0x9000);
    assert_eq!(
        v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW),
        Action::Run
    );
    assert_eq!(st.gpr(1), 0);
    assert_eq!(st.gpr(6), 0x9003);
    assert_eq!(st.rip(), CODE + 3);
    assert_eq!(v.take_console(), b"hi\n");

    // Backwards (DF) with words; RCX untouched without REP.
    ram.put(0x9100, b"ab");
    let mut st = io_exit(0x3f8, 2, false, STR);
    st.set(Word::RFLAGS, 2 | (1 << 10));
    st.set_gpr(1, 77);
    st.set_gpr(6, 0x9100);
    v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW);
    assert_eq!(st.gpr(1), 77);
    assert_eq!(st.gpr(6), 0x90fe);
    assert_eq!(st.rip(), CODE + 3);
}

#[test]
fn outs_from_unmapped_memory_faults_without_advancing() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut st = io_exit(0x3f8, 1, false, STR | REP);
    st.set_gpr(1, 4);
    st.set_gpr(6, 0x1f_fffe);
    v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW);
    // Two bytes were written before the next page faulted.
    assert_eq!(st.gpr(1), 2);
    assert_eq!(st.gpr(6), 0x20_0000);
    assert_eq!(st.rip(), CODE);
    assert_eq!(st.get(Word::CR2), 0x20_0000);
    assert_eq!(st.get(Word::EVENT_INJECT) & 0xff, 14);
}

#[test]
fn ins_is_refused() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut st = io_exit(0x3f8, 1, true, STR);
    v.handle_exit(&mut st, &ram, &mut FakePeers::default(), NOW);
    assert_eq!(st.get(Word::EVENT_INJECT), UD);
    assert_eq!(st.rip(), CODE);
}

// ---- HLT ----

#[test]
fn hlt_halts_unless_an_interrupt_is_pending() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    enable_lapic(&mut v);
    let mut st = exit_at(exit::HLT, &ram, &[0xf4]);
    let mut p = FakePeers::default();
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Halt);
    assert_eq!(st.rip(), CODE + 1);
    v.deliver(0x40, false);
    let mut st = exit_at(exit::HLT, &ram, &[0xf4]);
    st.set(Word::RFLAGS, 2 | RFLAGS_IF);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(st.rip(), CODE + 1);
    // With interrupts masked the pending one does not wake it.
    let mut st = exit_at(exit::HLT, &ram, &[0xf4]);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Halt);
    assert_eq!(st.rip(), CODE + 1);
    // Not a HLT any more: run what is there.
    let mut st = exit_at(exit::HLT, &ram, &[0x90]);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(st.rip(), CODE);
    assert_eq!(st.get(Word::EVENT_INJECT), 0);
}

// ---- VMMCALL / VMGEXIT ----

const VMMCALL: [u8; 3] = [0x0f, 0x01, 0xd9];
const VMGEXIT: [u8; 4] = [0xf3, 0x0f, 0x01, 0xd9];

#[test]
fn vmmcall_returns_the_hypercall_result_in_rax() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    for presentation in [Presentation::Plain, Presentation::Confidential] {
        let mut v = vmm(presentation);
        let mut st = exit_at(exit::VMMCALL, &ram, &VMMCALL);
        st.set_gpr(1, 0x1_0002);
        st.set_gpr(2, 0x3000);
        st.set_gpr(8, 0x4000);
        let mut p = FakePeers {
            hypercall: Some(0x0001_0000_0000_0000),
            ..FakePeers::default()
        };
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
        assert_eq!(p.calls, [Call::Hypercall(0x1_0002, 0x3000, 0x4000)]);
        assert_eq!(st.gpr(0), 0x0001_0000_0000_0000);
        assert_eq!(st.rip(), CODE + 3);
        p.hypercall = None;
        let mut st = exit_at(exit::VMMCALL, &ram, &VMMCALL);
        assert!(matches!(
            v.handle_exit(&mut st, &ram, &mut p, NOW),
            Action::Stop(Stop::Fatal { .. })
        ));
    }
}

const GHCB: u64 = ghcb::PAGE_GPA;

fn vmgexit(v: &mut Vmm, ram: &Ram, p: &mut FakePeers) -> (Action, VcpuState) {
    ram.put(CODE, &VMGEXIT);
    let mut st = long_mode_exit(exit::VMMCALL, 0);
    let action = v.handle_exit(&mut st, ram, p, NOW);
    (action, st)
}

#[test]
fn vmgexit_hypercall_page_gets_the_result_at_0xff0() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    ram.put(GHCB + 0xffc, &1u32.to_le_bytes());
    ram.put(GHCB + 0xff0, &0x8_0003u64.to_le_bytes());
    ram.put(GHCB + 0xfe8, &0x5000u64.to_le_bytes());
    let mut v = vmm(Presentation::Confidential);
    let mut p = FakePeers {
        hypercall: Some(0x1234),
        ..FakePeers::default()
    };
    let (action, st) = vmgexit(&mut v, &ram, &mut p);
    assert_eq!(action, Action::Run);
    assert_eq!(p.calls, [Call::Hypercall(0x8_0003, GHCB, 0x5000)]);
    assert_eq!(ram.u64_at(GHCB + 0xff0), 0x1234);
    assert_eq!(st.rip(), CODE + 4);
    assert_eq!(v.stats.vmgexits, 1);
}

/// A default-usage GHCB asking for an MSR access.
fn ghcb_msr_request(ram: &Ram, index: u32, write: Option<u64>, valid: &[usize]) {
    ram.put(GHCB + 0xffc, &0u32.to_le_bytes());
    ram.put(GHCB + 0x390, &0x7cu64.to_le_bytes());
    ram.put(GHCB + 0x398, &u64::from(write.is_some()).to_le_bytes());
    ram.put(GHCB + 0x308, &u64::from(index).to_le_bytes());
    let v = write.unwrap_or(0);
    ram.put(GHCB + 0x1f8, &(v & 0xffff_ffff).to_le_bytes());
    ram.put(GHCB + 0x310, &(v >> 32).to_le_bytes());
    // sw_exit_code and sw_exit_info_1 are always marked valid, as Linux does and
    // KVM requires.
    let marked = [0x390, 0x398].iter().chain(valid);
    ram.put_bitmap(GHCB + 0x3f0, 16, marked.map(|offset| offset / 8));
}

#[test]
fn vmgexit_msr_accesses_reach_the_hypervisor_synic_with_valid_bitmap_checks() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Confidential);
    let mut p = FakePeers {
        synic: MsrOutcome::Done(0x1_0000_0002),
        ..FakePeers::default()
    };
    ghcb_msr_request(&ram, 0x4000_0080, None, &[0x308]);
    let (action, st) = vmgexit(&mut v, &ram, &mut p);
    assert_eq!(action, Action::Run);
    assert_eq!(st.rip(), CODE + 4);
    assert_eq!(
        p.calls,
        [Call::Synic(Instance::HYPERVISOR, 0x4000_0080, None)]
    );
    assert_eq!(ram.u64_at(GHCB + 0x1f8), 2);
    assert_eq!(ram.u64_at(GHCB + 0x310), 1);
    assert_eq!(ram.u64_at(GHCB + 0x398), 0);

    ghcb_msr_request(
        &ram,
        0x4000_0083,
        Some(0x5_0000_0001),
        &[0x308, 0x1f8, 0x310],
    );
    p.calls.clear();
    vmgexit(&mut v, &ram, &mut p);
    assert_eq!(
        p.calls,
        [Call::Synic(
            Instance::HYPERVISOR,
            0x4000_0083,
            Some(0x5_0000_0001)
        )]
    );
    assert_eq!(ram.u64_at(GHCB + 0x398), 0);

    // A write whose RDX is not marked valid, and a read without RCX: refused in
    // the page, nothing reaches synic-pd.
    for (write, valid) in [
        (Some(1), &[0x308usize, 0x1f8][..]),
        (None, &[0x1f8usize][..]),
    ] {
        ghcb_msr_request(&ram, 0x4000_0083, write, valid);
        p.calls.clear();
        let (action, st) = vmgexit(&mut v, &ram, &mut p);
        assert_eq!(action, Action::Run);
        assert!(p.calls.is_empty());
        assert_eq!(ram.u64_at(GHCB + 0x398), 1);
        assert_eq!(st.rip(), CODE + 4);
    }
    // synic-pd refuses: the error goes back in the page.
    p.synic = MsrOutcome::Gp;
    ghcb_msr_request(&ram, 0x4000_0083, None, &[0x308]);
    let (_, st) = vmgexit(&mut v, &ram, &mut p);
    assert_eq!(ram.u64_at(GHCB + 0x398), 1);
    assert_eq!(st.get(Word::EVENT_INJECT), 0, "the guest is not faulted");
    // synic-pd unreachable: the VM cannot go on.
    p.synic = MsrOutcome::Failed;
    ghcb_msr_request(&ram, 0x4000_0083, None, &[0x308]);
    let (action, _) = vmgexit(&mut v, &ram, &mut p);
    assert!(matches!(action, Action::Stop(Stop::Fatal { .. })));
}

#[test]
fn vmgexit_msr_protocol_sev_info_and_termination() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Confidential);
    let mut p = FakePeers::default();
    v.ghcb.as_mut().unwrap().write_msr(ghcb::info::SEV_INFO_REQ);
    let (action, st) = vmgexit(&mut v, &ram, &mut p);
    assert_eq!(action, Action::Run);
    assert_eq!(st.rip(), CODE + 4);
    let answer = v.ghcb.unwrap().read_msr();
    assert_eq!(answer & 0xfff, ghcb::info::SEV_INFO_RESP);
    assert_eq!(answer >> 48, ghcb::PROTOCOL_MAX);
    assert_eq!((answer >> 32) & 0xffff, ghcb::PROTOCOL_MIN);

    v.ghcb
        .as_mut()
        .unwrap()
        .write_msr(ghcb::info::TERM_REQ | (1 << 12) | (3 << 16));
    let (action, _) = vmgexit(&mut v, &ram, &mut p);
    assert!(
        matches!(action, Action::Stop(Stop::Fatal { what, .. }) if what.contains("termination")),
        "{action:?}"
    );
    assert!(p.calls.is_empty());
}

#[test]
fn vmgexit_with_the_ghcb_msr_pointing_elsewhere_is_refused() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    ram.put(0xb_0ffc, &1u32.to_le_bytes());
    let mut v = vmm(Presentation::Confidential);
    v.ghcb.as_mut().unwrap().write_msr(0xb_0000);
    let mut p = FakePeers {
        hypercall: Some(0),
        ..FakePeers::default()
    };
    let (action, st) = vmgexit(&mut v, &ram, &mut p);
    assert!(matches!(action, Action::Stop(Stop::Fatal { .. })));
    assert!(p.calls.is_empty());
    assert_eq!(st.rip(), CODE);
}

/// VMMCALL and VMGEXIT from user mode are a #UD, a fault: the guest's handler
/// sees the instruction's own address, and nothing reaches a peer.
#[test]
fn vmmcall_and_vmgexit_from_user_mode_are_a_ud_at_the_instruction() {
    for (presentation, code) in [
        (Presentation::Plain, &VMMCALL[..]),
        (Presentation::Confidential, &VMGEXIT[..]),
    ] {
        let ram = Ram::identity_mapped(RAM_SIZE);
        ram.put(CODE, code);
        ram.put(GHCB + 0xffc, &1u32.to_le_bytes());
        let mut v = vmm(presentation);
        let mut st = long_mode_exit(exit::VMMCALL, 3);
        st.set_gpr(0, 0x55);
        let mut p = FakePeers {
            hypercall: Some(0),
            ..FakePeers::default()
        };
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
        assert!(p.calls.is_empty());
        assert_eq!(st.get(Word::EVENT_INJECT), UD, "{presentation:?}");
        assert_eq!(st.gpr(0), 0x55);
        assert_eq!(st.rip(), CODE);
    }
}

// ---- Nested page faults ----

fn npf_exit(ram: &Ram, gpa: u64, code: &[u8], info1: u64) -> VcpuState {
    let mut st = exit_at(exit::NPF, ram, code);
    st.set(Word::EXIT_INFO1, info1);
    st.set(Word::EXIT_INFO2, gpa);
    st.set_gpr(3, gpa);
    st
}

/// mov eax, [rbx] / mov [rbx], ecx / mov [rbx], cl.
const LOAD32: [u8; 2] = [0x8b, 0x03];
const STORE32: [u8; 2] = [0x89, 0x0b];
const STORE8: [u8; 2] = [0x88, 0x0b];

#[test]
fn ioapic_mmio_reaches_the_ioapic_pd_with_size_and_value() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let gpa = MMIO_BASE + 0x10;
    let mut st = npf_exit(&ram, gpa, &LOAD32, 0);
    st.set_gpr(0, 0xffff_ffff_ffff_ffff);
    let mut p = FakePeers {
        ioapic: Some(0x0011_0020),
        ..FakePeers::default()
    };
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(p.calls, [Call::IoapicMmio(gpa, 4, None)]);
    assert_eq!(st.gpr(0), 0x0011_0020, "a 32-bit load zero-extends");
    assert_eq!(st.rip(), CODE + 2);

    // (store, the source register's value, access size, the value stored)
    for (code, rcx, size, stored) in [
        (STORE32, 0xffff_ffff_dead_beef, 4, 0xdead_beef),
        (STORE8, 0x1234, 1, 0x34),
    ] {
        let mut st = npf_exit(&ram, MMIO_BASE, &code, 2);
        st.set_gpr(1, rcx);
        p.calls.clear();
        v.handle_exit(&mut st, &ram, &mut p, NOW);
        assert_eq!(p.calls, [Call::IoapicMmio(MMIO_BASE, size, Some(stored))]);
        assert_eq!(st.rip(), CODE + 2);
    }
    assert_eq!(v.stats.ioapic, 3);

    // A refused read reads all ones.
    p.ioapic = None;
    let mut st = npf_exit(&ram, gpa, &LOAD32, 0);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.gpr(0), 0xffff_ffff);
}

#[test]
fn mmio_loads_write_back_as_the_cpu_would() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let old = 0x1111_2222_3333_4444;
    // (code, access size, destination register, its value afterwards)
    let cases: [(&[u8], u8, usize, u64); 6] = [
        (&[0x8a, 0x03], 1, 0, 0x1111_2222_3333_44ef),
        (&[0x66, 0x8b, 0x03], 2, 0, 0x1111_2222_3333_cdef),
        (&[0x8b, 0x03], 4, 0, 0x89ab_cdef),
        (&[0x48, 0x8b, 0x03], 8, 0, 0x0123_4567_89ab_cdef),
        (&[0x0f, 0xb6, 0x03], 1, 0, 0xef),
        (&[0x44, 0x8b, 0x0b], 4, 9, 0x89ab_cdef),
    ];
    for (code, size, reg, want) in cases {
        let mut v = vmm(Presentation::Plain);
        let mut st = npf_exit(&ram, MMIO_BASE + 0x10, code, 0);
        st.set_gpr(reg, old);
        let mut p = FakePeers {
            ioapic: Some(0x0123_4567_89ab_cdef),
            ..FakePeers::default()
        };
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
        assert_eq!(p.calls, [Call::IoapicMmio(MMIO_BASE + 0x10, size, None)]);
        assert_eq!(st.gpr(reg), want, "{code:02x?}");
        assert_eq!(st.rip(), CODE + code.len() as u64);
    }
}

#[test]
fn holes_read_all_ones_and_drop_writes() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let gpa = 0xd000_0004;
    let mut st = npf_exit(&ram, gpa, &LOAD32, 0);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.gpr(0), 0xffff_ffff);
    assert_eq!(st.rip(), CODE + 2);
    let mut st = npf_exit(&ram, gpa, &STORE32, 2);
    st.set_gpr(1, 5);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.rip(), CODE + 2);
    assert!(p.calls.is_empty());
    assert_eq!(v.stats.holes, 2);
}

#[test]
fn npf_on_a_fetch_stops_and_undecodable_mmio_is_a_ud() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let mut st = npf_exit(&ram, 0xd000_0000, &LOAD32, 1 << 4);
    assert!(matches!(
        v.handle_exit(&mut st, &ram, &mut p, NOW),
        Action::Stop(Stop::Fatal { .. })
    ));
    // CPUID touches no memory: not an MMIO instruction.
    let mut st = npf_exit(&ram, MMIO_BASE, &[0x0f, 0xa2], 0);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(st.get(Word::EVENT_INJECT), UD);
    assert_eq!(st.rip(), CODE);
    assert_eq!(v.stats.unsupported, 1);
    assert!(p.calls.is_empty());
}

/// The classifier, not the device table, decides what is RAM: a fault on guest
/// RAM through either alias stops the VM (emulating it would drop writes), and a
/// device's page seen through the shared alias is no device.
#[test]
fn npf_on_guest_ram_stops_and_a_device_behind_the_shared_alias_is_a_hole() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut p = FakePeers {
        ioapic: Some(0),
        ..FakePeers::default()
    };
    let vtom = 1u64 << isolation::gpa::SVM_VTOM_BIT;
    for gpa in [0x1000, RAM_SIZE as u64 - 4, vtom | 0x1000] {
        let mut v = vmm(Presentation::Confidential);
        let mut st = npf_exit(&ram, gpa, &STORE32, 2);
        let stop = v.handle_exit(&mut st, &ram, &mut p, NOW);
        assert!(
            matches!(stop, Action::Stop(Stop::Fatal { what, .. }) if what.contains("guest RAM")),
            "{gpa:#x}: {stop:?}"
        );
    }
    let mut v = vmm(Presentation::Confidential);
    let mut st = npf_exit(&ram, vtom | MMIO_BASE, &LOAD32, 0);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(st.gpr(0), 0xffff_ffff);
    assert_eq!(v.stats.holes, 1);
    assert!(p.calls.is_empty());
}

#[test]
fn npf_during_event_delivery_stops_instead_of_emulating_the_instruction_at_rip() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers {
        ioapic: Some(0),
        ..FakePeers::default()
    };
    // The interrupt's stack push hit the IOAPIC page; RIP holds an unrelated load.
    let mut st = npf_exit(&ram, MMIO_BASE, &LOAD32, 2);
    st.set(Word::EXIT_INT_INFO, event::VALID | event::TYPE_INTR | 0x30);
    st.set_gpr(0, 7);
    assert!(matches!(
        v.handle_exit(&mut st, &ram, &mut p, NOW),
        Action::Stop(Stop::Fatal { .. })
    ));
    assert!(p.calls.is_empty());
    assert_eq!((st.rip(), st.gpr(0)), (CODE, 7));
}

// ---- Everything else ----

#[test]
fn shutdown_unknown_and_invalid_state_end_the_vm() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let mut st = long_mode_exit(exit::SHUTDOWN, 0);
    assert_eq!(
        v.handle_exit(&mut st, &ram, &mut p, NOW),
        Action::Stop(Stop::TripleFault { rip: CODE })
    );
    for code in [
        0x7e,
        exit::XSETBV,
        0xffff_ffff_ffff_ffff,
        pseudo_exit::INVALID_STATE,
    ] {
        let mut st = long_mode_exit(code, 0);
        match v.handle_exit(&mut st, &ram, &mut p, NOW) {
            Action::Stop(Stop::Fatal { code: c, rip, .. }) => {
                assert_eq!((c, rip), (code, CODE));
            }
            other => panic!("{code:#x}: {other:?}"),
        }
    }
}

#[test]
fn an_interrupted_event_is_delivered_again() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let interrupted = event::VALID | event::TYPE_INTR | 0x41;
    let mut st = long_mode_exit(exit::INTR, 0);
    st.set(Word::EXIT_INT_INFO, interrupted);
    assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
    assert_eq!(st.get(Word::EVENT_INJECT), interrupted);
    // Not over an injection the kernel still holds.
    let mut st = long_mode_exit(exit::INTR, 0);
    st.set(Word::EXIT_INT_INFO, interrupted);
    st.set(Word::EVENT_INJECT, UD);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.get(Word::EVENT_INJECT), UD);
    // An invalid one is ignored.
    let mut st = long_mode_exit(exit::INTR, 0);
    st.set(Word::EXIT_INT_INFO, 0x41);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(st.get(Word::EVENT_INJECT), 0);
}

#[test]
fn pseudo_exits_and_interrupt_exits_change_nothing() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    for (code, kind) in [
        (pseudo_exit::DEADLINE, ExitKind::Deadline),
        (pseudo_exit::NOTIFIED, ExitKind::Notified),
        (exit::VINTR, ExitKind::InterruptWindow),
        (exit::INTR, ExitKind::HostInterrupt),
        (exit::NMI, ExitKind::HostInterrupt),
    ] {
        let before = v.stats.of(kind);
        let mut st = long_mode_exit(code, 0);
        assert_eq!(v.handle_exit(&mut st, &ram, &mut p, NOW), Action::Run);
        assert_eq!(st.dirty(), 0, "{code:#x}");
        assert_eq!(v.stats.of(kind), before + 1);
    }
    assert!(p.calls.is_empty());
}

#[test]
fn intercepted_exceptions_are_handed_back_with_their_error_code() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    let mut st = long_mode_exit(exit::EXCEPTION_BASE + 14, 0);
    st.set(Word::EXIT_INFO1, 0x1_0000_0006);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(
        st.get(Word::EVENT_INJECT),
        event::VALID | event::TYPE_EXCEPTION | event::ERROR_VALID | 14 | (6 << 32)
    );
    let mut st = long_mode_exit(exit::EXCEPTION_BASE + 3, 0);
    st.set(Word::EXIT_INFO1, 9);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(
        st.get(Word::EVENT_INJECT),
        event::VALID | event::TYPE_EXCEPTION | 3
    );
}

#[test]
fn uart_interrupt_line_changes_reach_the_ioapic() {
    let ram = Ram::identity_mapped(RAM_SIZE);
    let mut v = vmm(Presentation::Plain);
    let mut p = FakePeers::default();
    // MCR.OUT2 (the ISA line gate), then IER.THRE: the empty transmitter raises it.
    for (port, value) in [(0x3fc, 0x08), (0x3f9, 0x02)] {
        let mut st = io_exit(port, 1, false, 0);
        st.set_gpr(0, value);
        v.handle_exit(&mut st, &ram, &mut p, NOW);
    }
    assert_eq!(p.calls, [Call::IoapicLine(crate::platform::COM1_IRQ, true)]);
    // Masking it again lowers the line once.
    let mut st = io_exit(0x3f9, 1, false, 0);
    st.set_gpr(0, 0);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    let mut st = io_exit(0x3f9, 1, false, 0);
    v.handle_exit(&mut st, &ram, &mut p, NOW);
    assert_eq!(
        p.calls,
        [
            Call::IoapicLine(crate::platform::COM1_IRQ, true),
            Call::IoapicLine(crate::platform::COM1_IRQ, false),
        ]
    );
}

// ---- Before entry ----

#[test]
fn a_pending_interrupt_is_injected_only_when_the_guest_can_take_it() {
    // (RFLAGS, shadow, event already pending) -> injected?
    let cases = [
        (RFLAGS_IF, 0, 0, true),
        (0, 0, 0, false),
        (RFLAGS_IF, 1, 0, false),
        (RFLAGS_IF, 0, UD, false),
    ];
    for (rflags, shadow, pending, injected) in cases {
        let mut v = vmm(Presentation::Plain);
        enable_lapic(&mut v);
        v.deliver(0x42, false);
        let mut st = long_mode_exit(exit::VINTR, 0);
        st.set(Word::RFLAGS, 2 | rflags);
        st.set(Word::INTERRUPT_SHADOW, shadow);
        st.set(Word::EVENT_INJECT, pending);
        assert_eq!(v.before_entry(&mut st, NOW), None);
        let case = (rflags, shadow, pending);
        if injected {
            assert_eq!(st.get(Word::EVENT_INJECT), event::VALID | 0x42, "{case:?}");
            assert_eq!(st.get(Word::INTERRUPT_WINDOW) & 1, 0);
            assert!(v.platform.lapic.isr().contains(0x42));
            assert_eq!(v.stats.injected, 1);
        } else {
            assert_eq!(st.get(Word::EVENT_INJECT), pending, "{case:?}");
            assert!(v.platform.lapic.irr().contains(0x42));
            assert_eq!(v.stats.injected, 0);
            // A window only when the slot is free: a pending event exits anyway.
            let want_window = u64::from(pending == 0);
            assert_eq!(st.get(Word::INTERRUPT_WINDOW) & 1, want_window, "{case:?}");
        }
    }
}

#[test]
fn nothing_pending_clears_the_window_and_the_deadline_is_the_timers() {
    let mut v = vmm(Presentation::Plain);
    enable_lapic(&mut v);
    let mut st = long_mode_exit(exit::VINTR, 0);
    st.set(Word::INTERRUPT_WINDOW, 1);
    st.set(Word::RFLAGS, 2 | RFLAGS_IF);
    assert_eq!(v.before_entry(&mut st, NOW), None);
    assert_eq!(st.get(Word::INTERRUPT_WINDOW), 0);
    // TSC-deadline mode, vector 0xec.
    v.platform
        .lapic
        .write_msr(0x832, 0xec | (2 << 17), NOW)
        .unwrap();
    v.platform.lapic.write_msr(0x6e0, 50_000, NOW).unwrap();
    assert_eq!(v.before_entry(&mut st, NOW), Some(50_000));
    assert_eq!(st.get(Word::EVENT_INJECT), 0);
    assert!(!v.wakeup_pending(49_999));
    assert_eq!(v.before_entry(&mut st, 50_000), None);
    assert_eq!(st.get(Word::EVENT_INJECT), event::VALID | 0xec);
}
