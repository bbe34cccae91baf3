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

use std::cell::RefCell;

use kernel_abi::vcpu::{exit, pseudo_exit, segment, segment_word, Word};
use libfuzzer_sys::fuzz_target;
use synic_pd::Instance;
use vmm::cpuid::Presentation;
use vmm::decode::{GuestMemory, MemError};
use vmm::exits::{Action, Clock, Vmm};
use vmm::ghcb;
use vmm::loader::{GuestRamWrite, OutsideRam};
use vmm::peers::{MsrOutcome, Peers};
use vmm::platform::Platform;
use vmm::state::{event, VcpuState, WORDS};

const RAM_SIZE: usize = 0xb_0000;
const CODE: u64 = 0x8000;

struct Ram(RefCell<Vec<u8>>);

impl GuestMemory for Ram {
    fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let ram = self.0.borrow();
        let src = usize::try_from(gpa)
            .ok()
            .and_then(|s| ram.get(s..s.checked_add(buf.len())?))
            .ok_or(MemError { gpa })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl GuestRamWrite for Ram {
    fn size(&self) -> u64 {
        RAM_SIZE as u64
    }

    fn write_gpa(&self, gpa: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        let end = gpa.checked_add(bytes.len() as u64);
        assert!(
            gpa >= ghcb::PAGE_GPA && end.is_some_and(|e| e <= ghcb::PAGE_GPA + ghcb::PAGE),
            "the VMM wrote guest RAM outside the GHCB page: {gpa:#x}+{}",
            bytes.len()
        );
        let outside = OutsideRam {
            gpa,
            len: bytes.len() as u64,
        };
        let mut ram = self.0.borrow_mut();
        let dst = usize::try_from(gpa)
            .ok()
            .and_then(|s| ram.get_mut(s..s.checked_add(bytes.len())?))
            .ok_or(outside)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

/// Peers answering from the input.
struct FuzzPeers {
    value: u64,
    hv_msr: MsrOutcome,
    synic: MsrOutcome,
    hypercall: Option<u64>,
    ioapic: Option<u64>,
    cpuid: Option<[u32; 4]>,
}

fn outcome(sel: u8, value: u64) -> MsrOutcome {
    match sel % 4 {
        0 => MsrOutcome::Done(value),
        1 => MsrOutcome::Gp,
        2 => MsrOutcome::NotMine,
        _ => MsrOutcome::Failed,
    }
}

impl Peers for FuzzPeers {
    fn hv_cpuid(&mut self, _: u32, _: u32) -> Option<[u32; 4]> {
        self.cpuid
    }
    fn hv_msr(&mut self, _: u32, _: Option<u64>) -> MsrOutcome {
        self.hv_msr
    }
    fn synic_msr(&mut self, _: Instance, _: u32, _: Option<u64>) -> MsrOutcome {
        self.synic
    }
    fn hypercall(&mut self, _: u64, _: u64, _: u64) -> Option<u64> {
        self.hypercall
    }
    fn ioapic_mmio(&mut self, _: u64, _: u8, _: Option<u64>) -> Option<u64> {
        self.ioapic
    }
    fn ioapic_eoi(&mut self, vector: u8) {
        self.value = self.value.rotate_left(8) ^ u64::from(vector);
    }
    fn ioapic_line(&mut self, _: u8, asserted: bool) -> bool {
        asserted || self.value & 1 != 0
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

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let n = self.0.len().min(8);
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(b)
    }
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = self.0.len().min(n);
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// Identity-maps the first 2 MiB with one large page (PML4 at 0x1000).
fn page_tables(ram: &mut [u8]) {
    for (at, entry) in [(0x1000, 0x2007u64), (0x2000, 0x3007), (0x3000, 0x87)] {
        ram[at..at + 8].copy_from_slice(&entry.to_le_bytes());
    }
}

fn sane_words(r: &mut Reader<'_>, cpl: u64, flat32: bool) -> [u64; WORDS] {
    let mut w = [0u64; WORDS];
    for i in 0..8 {
        w[Word::RAX + i] = r.u64();
    }
    w[Word::RFLAGS] = r.u64() | 2;
    w[Word::RIP] = CODE;
    w[Word::CR0] = 0x8001_0001;
    w[Word::CR3] = 0x1000;
    w[Word::CR4] = 1 << 5;
    w[Word::EFER] = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12);
    w[Word::PAT] = 0x0007_0406_0007_0406;
    w[Word::XCR0] = 1;
    let mut cs = 0xb | (1 << 4) | (1 << 7) | (1 << 9) | ((cpl as u16) << 5);
    if flat32 {
        // 32-bit protected mode with paging off: CS.D instead of CS.L.
        w[Word::CR0] = 1;
        w[Word::EFER] = 1 << 12;
        cs ^= (1 << 9) | (1 << 10);
    }
    let ss = 0x93 | ((cpl as u16) << 5);
    w[Word::SEGMENTS + 2 * segment::CS] = segment_word(0x10, cs, !0);
    w[Word::SEGMENTS + 2 * segment::SS] = segment_word(0x18, ss, !0);
    w
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let head: Vec<u8> = r.bytes(8).to_vec();
    let h = |i: usize| head.get(i).copied().unwrap_or(0);
    let value = r.u64();
    let presentation = if h(0) & 1 != 0 {
        Presentation::Confidential
    } else {
        Presentation::Plain
    };
    let sane = h(0) & 2 != 0;
    let exits = usize::from(h(1) % 9);
    let mut peers = FuzzPeers {
        value,
        hv_msr: outcome(h(2), value),
        synic: outcome(h(2) >> 2, value.rotate_left(32)),
        hypercall: (h(3) & 1 != 0).then_some(value),
        ioapic: (h(3) & 2 != 0).then_some(value >> 3),
        cpuid: (h(3) & 4 != 0).then(|| [value as u32, (value >> 32) as u32, !0, 0]),
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
        let src = r.bytes(len);
        bytes[at..at + src.len()].copy_from_slice(src);
    }
    if sane {
        page_tables(&mut bytes);
    }
    let ram = Ram(RefCell::new(bytes));

    let tsc_hz = 1_000_000_000;
    let mut vmm = Vmm::new(
        presentation,
        Clock {
            tsc_hz,
            apic_hz: tsc_hz,
        },
        Platform::new(tsc_hz, tsc_hz, 0, 0),
        host_cpuid,
    );
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
