//! vmm exit handling: any state words, guest RAM bytes and peer answers through
//! `Vmm::handle_exit` and `Vmm::before_entry`, for a VM of either presentation,
//! must never panic; the VMM writes guest RAM only inside the registered GHCB page;
//! an injected event is always marked valid.
//!
//! Input: a 16-byte header (flags, exit count, peer answer selectors, vectors to
//! deliver, a peer value), then either 58 raw state words or, in "sane" mode, an
//! identity-mapped long-mode (or flat 32-bit, paging off) vCPU with 9 fuzzed words
//! (8 GPRs and RFLAGS); then per
//! exit 25 bytes (exit selector, EXITINFO1, EXITINFO2, time step); the rest is guest
//! RAM: the code page at 0x8000, the GHCB page, then RAM from 0x10000.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use kernel_abi::vcpu::{exit, pseudo_exit, Word};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vmm::cpuid::Presentation;
use vmm::exits::Action;
use vmm::ghcb;
use vmm::peers::MsrOutcome;
use vmm::state::{event, VcpuState, WORDS};
use vmm::testing::{self, FakePeers, Mode, Ram};

const RAM_SIZE: usize = 0xb_0000;
const CODE: u64 = 0x8000;

fn outcome(sel: u8, value: u64) -> MsrOutcome {
    match sel % 4 {
        0 => MsrOutcome::Done(value),
        1 => MsrOutcome::Gp,
        2 => MsrOutcome::NotMine,
        _ => MsrOutcome::Failed,
    }
}

/// A CPU whose answers depend on the leaf, so filtering has bits to work on.
fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let x = leaf.wrapping_mul(0x9e37_79b9) ^ subleaf;
    [x, !x, x.rotate_left(7), x.rotate_left(19)]
}

/// Mostly the exits the VMM handles, sometimes any code.
fn exit_code(sel: u8, raw: u64) -> u64 {
    const CODES: [u64; 15] = [
        exit::CPUID,
        exit::MSR,
        exit::IOIO,
        exit::HLT,
        exit::VMMCALL,
        exit::NPF,
        exit::SHUTDOWN,
        exit::VINTR,
        exit::INTR,
        exit::NMI,
        exit::XSETBV,
        pseudo_exit::DEADLINE,
        pseudo_exit::NOTIFIED,
        pseudo_exit::INVALID_STATE,
        exit::EXCEPTION_BASE,
    ];
    match sel >> 4 {
        0..=11 => CODES[usize::from(sel) % CODES.len()],
        12..=14 => exit::EXCEPTION_BASE + u64::from(sel & 0x1f),
        _ => raw,
    }
}

fn sane_words(r: &mut Bytes<'_>, cpl: u16, flat32: bool) -> [u64; WORDS] {
    let mode = if flat32 { Mode::Flat32 } else { Mode::Long };
    let mut w = testing::vcpu_words(mode, cpl, CODE);
    for i in 0..8 {
        w[Word::RAX + i] = r.u64();
    }
    w[Word::RFLAGS] |= r.u64();
    w
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes(data);
    let head: Vec<u8> = r.take(8).to_vec();
    let h = |i: usize| head.get(i).copied().unwrap_or(0);
    let value = r.u64();
    let presentation = if h(0) & 1 != 0 {
        Presentation::Confidential
    } else {
        Presentation::Plain
    };
    let sane = h(0) & 2 != 0;
    let exits = usize::from(h(1) % 9);
    let mut peers = FakePeers {
        line: value & 1 != 0,
        hv_msr: outcome(h(2), value),
        synic: outcome(h(2) >> 2, value.rotate_left(32)),
        hypercall: (h(3) & 1 != 0).then_some(value),
        ioapic: (h(3) & 2 != 0).then_some(value >> 3),
        cpuid: (h(3) & 4 != 0).then(|| [value as u32, (value >> 32) as u32, !0, 0]),
        ..FakePeers::default()
    };

    let words = if sane {
        sane_words(&mut r, if h(0) & 4 != 0 { 3 } else { 0 }, h(0) & 8 != 0)
    } else {
        std::array::from_fn(|_| r.u64())
    };
    let steps: Vec<(u8, u64, u64, u64)> = (0..exits)
        .map(|_| (r.u8(), r.u64(), r.u64(), r.u64()))
        .collect();

    let mut bytes = vec![0u8; RAM_SIZE];
    for (at, len) in [
        (CODE as usize, 4096),
        (ghcb::PAGE_GPA as usize, 4096),
        (0x1_0000, RAM_SIZE - 0x1_0000),
    ] {
        let src = r.take(len);
        bytes[at..at + src.len()].copy_from_slice(src);
    }
    let ram = Ram::from_bytes(bytes).writable_only(ghcb::PAGE_GPA..ghcb::PAGE_GPA + ghcb::PAGE);
    if sane {
        ram.map_first_2mib();
    }

    let tsc_hz = 1_000_000_000;
    let mut vmm = testing::vmm(presentation, tsc_hz, tsc_hz, host_cpuid);
    // The guest's usual set-up: a software-enabled APIC, and some requests.
    if h(4) & 1 != 0 {
        let _ = vmm.platform.lapic.write_msr(0x80f, 0x1ff, 0);
    }
    if h(5) != 0 {
        vmm.deliver(h(5), h(4) & 2 != 0);
    }

    let mut st = VcpuState::new();
    st.load_exit(&words);
    let mut now = 0u64;
    for (sel, info1, info2, step) in steps {
        let mut w = st.take_entry();
        w[Word::EXIT_CODE] = exit_code(sel, info1 ^ info2);
        w[Word::EXIT_INFO1] = info1;
        w[Word::EXIT_INFO2] = info2;
        // VMRUN consumed the injection.
        w[Word::EVENT_INJECT] = if sel & 1 != 0 { step } else { 0 };
        st.load_exit(&w);
        now = now.wrapping_add(step >> 8);
        let action = vmm.handle_exit(&mut st, &ram, &mut peers, now);
        // Bounded memory over long runs; the answers stay scripted.
        peers.calls.clear();
        let _ = vmm.take_console();
        if matches!(action, Action::Stop(_)) {
            return;
        }
        let _ = vmm.before_entry(&mut st, now);
        let inject = st.get(Word::EVENT_INJECT);
        if st.dirty() & (1 << Word::EVENT_INJECT) != 0 {
            assert!(inject == 0 || inject & event::VALID != 0);
        }
        let _ = vmm.wakeup_pending(now);
    }
});
