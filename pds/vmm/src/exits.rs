//! What the VMM does with each exit of its guest vCPU, and what it injects before
//! the next entry. Sans-IO: the kernel's state words come in as [`VcpuState`],
//! guest memory through [`GuestMemory`], the other PDs through [`Peers`], the
//! platform devices are owned here, and time is a TSC value passed in.

use alloc::vec::Vec;

use isolation::svm::{self, SvmExit};
use isolation::{
    Gpa, GpaClass, GpaError, IoExit, MsrAccess, Partition, PartitionKind, RamRange, VcpuExit,
};
use kernel_abi::vcpu::{segment, Word};
use synic_pd::Instance;

use crate::cpuid::{self, Presentation};
use crate::decode::{
    self, decode_mmio, fetch_instruction, instruction_length, write_back, CpuState,
    FixedInstruction, GuestMemory, LengthError, MmioAccess, MmioDecodeError, TranslateError,
};
use crate::ghcb::{self, Ghcb};
use crate::loader::GuestRam;
use crate::msr::{self, Owner};
use crate::peers::{MsrOutcome, Peers};
use crate::platform::Platform;
use crate::state::{event, VcpuState};
use crate::stats::ExitStats;

/// What the runtime glue does next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the guest again.
    Run,
    /// The guest halted with nothing to deliver: wait (VM_ENTER HALTED) until a
    /// notification or the next timer deadline.
    Halt,
    /// The VM is over.
    Stop(Stop),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The guest powered off through the ACPI sleep control register.
    PowerOff,
    /// Triple fault (SVM SHUTDOWN exit), at this RIP.
    TripleFault { rip: u64 },
    /// Something the VMM cannot continue from; the text says what.
    Fatal {
        what: &'static str,
        code: u64,
        rip: u64,
    },
}

/// The TSC and local APIC timer frequencies the guest is told (Hyper-V frequency
/// MSRs) and the timer runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    pub tsc_hz: u64,
    pub apic_hz: u64,
}

#[derive(Debug)]
pub struct Vmm {
    pub presentation: Presentation,
    pub clock: Clock,
    pub platform: Platform,
    pub stats: ExitStats,
    /// A forwarded device interrupt the guest has not finished yet.
    pub forward: crate::run::ForwardState,
    /// The real CPU's CPUID (a function so tests can give one).
    pub host_cpuid: fn(u32, u32) -> [u32; 4],
    /// Console bytes the guest wrote to COM1, waiting for the glue to print.
    console: Vec<u8>,
    /// The GHCB of a VM presented as SEV-SNP with a paravisor.
    ghcb: Option<Ghcb>,
    /// HV_X64_MSR_TSC_INVARIANT_CONTROL bit 0.
    tsc_invariant: bool,
    /// An NMI waits for the injection slot.
    nmi_pending: bool,
}

impl Vmm {
    pub fn new(
        presentation: Presentation,
        clock: Clock,
        platform: Platform,
        host_cpuid: fn(u32, u32) -> [u32; 4],
    ) -> Self {
        Self {
            presentation,
            clock,
            platform,
            stats: ExitStats::default(),
            forward: crate::run::ForwardState::default(),
            host_cpuid,
            console: Vec::new(),
            tsc_invariant: false,
            nmi_pending: false,
            ghcb: (presentation == Presentation::Confidential).then(|| Ghcb::new(ghcb::PAGE_GPA)),
        }
    }

    /// The SynIC instance the guest's SynIC MSRs reach: the paravisor's own when
    /// it is presented (Confidential VMBus), else the hypervisor's (relayed).
    pub fn synic_instance(&self) -> Instance {
        match self.presentation {
            Presentation::Confidential => Instance::PARAVISOR,
            Presentation::Plain => Instance::HYPERVISOR,
        }
    }

    /// Takes what the guest printed on COM1 since the last call.
    pub fn take_console(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.console)
    }

    /// An interrupt from synic-pd or the ioapic PD for this vCPU.
    pub fn deliver(&mut self, vector: u8, level: bool) {
        self.platform.lapic_request(vector, level);
    }

    /// An NMI for this vCPU (the IOAPIC's NMI delivery mode, or the guest's own
    /// through its ICR); injected ahead of any interrupt.
    pub fn deliver_nmi(&mut self) {
        self.nmi_pending = true;
    }

    /// Injects the highest deliverable interrupt (or asks for a window when the
    /// guest cannot take it yet) and returns the next timer deadline.
    pub fn before_entry(&mut self, st: &mut VcpuState, now: u64) -> Option<u64> {
        self.platform.poll(now);
        if self.platform.take_nmi() {
            self.nmi_pending = true;
        }
        if self.nmi_pending && !st.injection_pending() {
            st.inject_nmi();
            self.nmi_pending = false;
            self.stats.injected += 1;
        }
        let pending = self.platform.lapic_pending();
        match pending {
            Some(vector) if st.interruptible() => {
                st.inject_interrupt(vector);
                self.platform.lapic_acknowledge(vector);
                self.stats.injected += 1;
                st.request_interrupt_window(false);
            }
            Some(_) => st.request_interrupt_window(!st.injection_pending()),
            None => st.request_interrupt_window(false),
        }
        self.platform.next_deadline()
    }

    /// Whether a halted guest has something to wake for.
    pub fn wakeup_pending(&mut self, now: u64) -> bool {
        self.platform.poll(now);
        self.platform.lapic_pending().is_some()
    }

    /// Handles the exit the state words hold: decoded once by the svm backend's
    /// decoder, dispatched on its neutral form.
    pub fn handle_exit(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestRam,
        peers: &mut dyn Peers,
        now: u64,
    ) -> Action {
        let exit = svm::decode_exit(&SvmExit::from_words(st.words()));
        self.stats.count(&exit);
        // An exit in the middle of delivering an event: deliver it again.
        let interrupted = st.get(Word::EXIT_INT_INFO);
        if interrupted & event::VALID != 0 && !st.injection_pending() {
            st.set(Word::EVENT_INJECT, interrupted);
        }
        let action = match exit {
            VcpuExit::Cpuid { leaf, subleaf } => self.cpuid(st, mem, peers, leaf, subleaf),
            VcpuExit::Msr { index, access } => self.msr(st, mem, peers, now, index, access),
            VcpuExit::Io(io) => self.io(st, mem, io, now),
            VcpuExit::Halt => {
                if !self.step_over(st, mem, FixedInstruction::Hlt) {
                    return Action::Run;
                }
                // A masked interrupt does not end HLT (`cli; hlt` is how a guest
                // stops for good); running on would spin the VMM on HLT exits.
                if st.rflags() & crate::state::RFLAGS_IF != 0 && self.wakeup_pending(now) {
                    Action::Run
                } else {
                    Action::Halt
                }
            }
            VcpuExit::Hypercall => self.hypercall(st, mem, peers),
            VcpuExit::MemoryFault { gpa, fetch, .. } => self.npf(st, mem, peers, gpa.0, fetch),
            VcpuExit::Shutdown => Action::Stop(Stop::TripleFault { rip: st.rip() }),
            VcpuExit::InterruptWindow
            | VcpuExit::HostInterrupt
            | VcpuExit::Deadline
            | VcpuExit::Notified => Action::Run,
            VcpuExit::InvalidState => self.fatal(st, "the kernel refused the vCPU state"),
            // Only vectors this VMM asked for arrive here; hand them back.
            VcpuExit::Exception { vector, error_code } => {
                st.inject_exception(vector, error_code);
                Action::Run
            }
            VcpuExit::Other { .. } => self.fatal(st, "an exit this VMM does not handle"),
        };
        for byte in self.platform.take_uart_output() {
            self.console.push(byte);
        }
        if let Some(level) = self.platform.take_uart_irq_change() {
            self.stats.uart_line_changes += 1;
            if !peers.ioapic_line(crate::platform::COM1_IRQ, level) {
                self.stats.uart_line_refused += 1;
            }
        }
        if self.platform.powered_off() {
            return Action::Stop(Stop::PowerOff);
        }
        action
    }

    fn fatal(&self, st: &VcpuState, what: &'static str) -> Action {
        Action::Stop(Stop::Fatal {
            what,
            code: st.exit_code(),
            rip: st.rip(),
        })
    }

    /// Steps RIP over the instruction the exit names, after checking the guest's
    /// code really is that instruction. `false` if it was not advanced (the guest
    /// then re-executes what is there, or takes the fault it was given).
    fn step_over(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestMemory,
        what: FixedInstruction,
    ) -> bool {
        let cpu = cpu_state(st);
        let bytes = match fetch_instruction(mem, &cpu) {
            Ok(b) => b,
            Err(e) => {
                self.inject_translate_error(st, e);
                return false;
            }
        };
        match instruction_length(bytes.as_slice(), cpu.code_mode(), what) {
            Ok(len) => {
                st.set_rip(decode::next_rip(&cpu, len));
                if st.get(Word::INTERRUPT_SHADOW) & 1 != 0 {
                    st.set(Word::INTERRUPT_SHADOW, 0);
                }
                true
            }
            Err(LengthError::Truncated) => {
                match bytes.tail_fault() {
                    Some(e) => self.inject_translate_error(st, e),
                    None => st.inject_ud(),
                }
                false
            }
            Err(LengthError::Invalid) => {
                st.inject_ud();
                false
            }
            // The code changed under the exit: let the guest run what is there now.
            Err(LengthError::Mismatch { .. }) => {
                self.stats.code_changed += 1;
                false
            }
        }
    }

    fn inject_translate_error(&mut self, st: &mut VcpuState, e: TranslateError) {
        match e {
            TranslateError::PageFault(pf) => {
                st.set(Word::CR2, pf.address);
                st.inject_exception(14, Some(pf.error_code));
            }
            TranslateError::NonCanonical | TranslateError::Memory(_) => st.inject_gp(),
        }
    }

    fn cpuid(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestMemory,
        peers: &mut dyn Peers,
        leaf: u32,
        subleaf: u32,
    ) -> Action {
        let answer = if cpuid::is_hypervisor_leaf(leaf) {
            let raw = peers.hv_cpuid(leaf, subleaf).unwrap_or([0; 4]);
            cpuid::hypervisor(leaf, raw, self.presentation)
        } else {
            cpuid::native(
                leaf,
                subleaf,
                self.host_cpuid,
                st.get(Word::CR4),
                st.get(Word::XCR0),
            )
        };
        if self.step_over(st, mem, FixedInstruction::Cpuid) {
            for (reg, value) in [0, 3, 1, 2].into_iter().zip(answer) {
                // EAX, EBX, ECX, EDX in encoding order 0, 3, 1, 2; 32-bit results
                // clear the upper halves.
                st.set_gpr(reg, u64::from(value));
            }
        }
        Action::Run
    }

    fn msr(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestMemory,
        peers: &mut dyn Peers,
        now: u64,
        index: u32,
        access: MsrAccess,
    ) -> Action {
        let (write, what) = match access {
            MsrAccess::Read => (None, FixedInstruction::Rdmsr),
            MsrAccess::Write(v) => (Some(v), FixedInstruction::Wrmsr),
        };
        let is_write = write.is_some();
        self.stats.note_msr(index, is_write);
        let result = match msr::owner(index) {
            Owner::Lapic => self.platform.lapic_msr(index, write, now, peers),
            Owner::Frequency => match (index, write) {
                (msr::HV_TSC_FREQUENCY, None) => MsrOutcome::Done(self.clock.tsc_hz),
                (msr::HV_APIC_FREQUENCY, None) => MsrOutcome::Done(self.clock.apic_hz),
                // The TSC is invariant here (the host's, never scaled or stopped):
                // exposing it is all the control does.
                (msr::HV_TSC_INVARIANT_CONTROL, None) => {
                    MsrOutcome::Done(u64::from(self.tsc_invariant))
                }
                (msr::HV_TSC_INVARIANT_CONTROL, Some(v)) if v & !1 == 0 => {
                    self.tsc_invariant = v & 1 != 0;
                    MsrOutcome::Done(0)
                }
                _ => MsrOutcome::Gp,
            },
            Owner::Synic => match peers.synic_msr(self.synic_instance(), index, write) {
                MsrOutcome::NotMine => MsrOutcome::Gp,
                other => other,
            },
            Owner::Hvcall => match peers.hv_msr(index, write) {
                MsrOutcome::NotMine => MsrOutcome::Gp,
                other => other,
            },
            Owner::StateWord(word) => self.state_msr(st, word, write),
            Owner::Tsc => match write {
                None => MsrOutcome::Done(now),
                Some(_) => MsrOutcome::Gp,
            },
            Owner::Ghcb => match (&mut self.ghcb, write) {
                (Some(g), None) => MsrOutcome::Done(g.read_msr()),
                (Some(g), Some(v)) => {
                    g.write_msr(v);
                    MsrOutcome::Done(0)
                }
                (None, _) => MsrOutcome::Gp,
            },
            Owner::None => MsrOutcome::Gp,
        };
        match result {
            MsrOutcome::Done(value) => {
                if self.step_over(st, mem, what) && !is_write {
                    st.set_gpr(0, value & 0xffff_ffff);
                    st.set_gpr(2, value >> 32);
                }
            }
            MsrOutcome::Gp | MsrOutcome::NotMine => {
                self.stats.msr_gp += 1;
                self.stats.note_msr_gp(index, is_write);
                st.inject_gp();
            }
            MsrOutcome::Failed => return self.fatal(st, "a peer PD did not answer an MSR access"),
        }
        Action::Run
    }

    fn state_msr(&mut self, st: &mut VcpuState, word: usize, write: Option<u64>) -> MsrOutcome {
        match (word, write) {
            (Word::EFER, None) => MsrOutcome::Done(st.get(Word::EFER) & !msr::EFER_SVME),
            (Word::EFER, Some(v)) => {
                if v & !msr::EFER_GUEST_BITS != 0 {
                    return MsrOutcome::Gp;
                }
                // LME may change only with paging off (else the VMCB would hold
                // LMA without LME, which VMRUN refuses: the VM would end).
                let lme = 1 << 8;
                if st.get(Word::CR0) & decode::bits::CR0_PG != 0
                    && (v ^ st.get(Word::EFER)) & lme != 0
                {
                    return MsrOutcome::Gp;
                }
                // LMA is the CPU's to set; keep the current value of it.
                let lma = 1 << 10;
                let kept = st.get(Word::EFER) & (lma | msr::EFER_SVME);
                st.set(Word::EFER, (v & !lma) | kept);
                MsrOutcome::Done(0)
            }
            (Word::PAT, None) => MsrOutcome::Done(st.get(Word::PAT)),
            (Word::PAT, Some(v)) if msr::valid_pat(v) => {
                st.set(Word::PAT, v);
                MsrOutcome::Done(0)
            }
            _ => MsrOutcome::Gp,
        }
    }

    fn hypercall(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestRam,
        peers: &mut dyn Peers,
    ) -> Action {
        if self.ghcb.is_some() && self.is_vmgexit(st, mem) {
            return self.vmgexit(st, mem, peers);
        }
        let (control, rdx, r8) = (st.gpr(1), st.gpr(2), st.gpr(8));
        // Hypercalls from user mode are refused, as Hyper-V does (#UD). A fault:
        // RIP stays on the VMMCALL.
        if cpu_state(st).cpl != 0 {
            st.inject_ud();
            return Action::Run;
        }
        if !self.step_over(st, mem, FixedInstruction::Vmmcall) {
            return Action::Run;
        }
        match peers.hypercall(control, rdx, r8) {
            Some(result) => {
                self.stats.note_hypercall(control, result);
                st.set_gpr(0, result);
                Action::Run
            }
            None => self.fatal(st, "hvcall-pd did not answer a hypercall"),
        }
    }

    /// Whether the VMMCALL exit came from `rep vmmcall` (VMGEXIT).
    fn is_vmgexit(&self, st: &VcpuState, mem: &dyn GuestRam) -> bool {
        let cpu = cpu_state(st);
        fetch_instruction(mem, &cpu).is_ok_and(|b| {
            instruction_length(b.as_slice(), cpu.code_mode(), FixedInstruction::Vmgexit).is_ok()
        })
    }

    fn vmgexit(&mut self, st: &mut VcpuState, mem: &dyn GuestRam, peers: &mut dyn Peers) -> Action {
        if cpu_state(st).cpl != 0 {
            st.inject_ud();
            return Action::Run;
        }
        let Some(ghcb) = &mut self.ghcb else {
            return Action::Run;
        };
        self.stats.vmgexits += 1;
        match ghcb.vmgexit(mem, peers, Instance::HYPERVISOR) {
            ghcb::Outcome::Done => {
                self.step_over(st, mem, FixedInstruction::Vmgexit);
                Action::Run
            }
            ghcb::Outcome::Terminate { .. } => {
                self.fatal(st, "the guest asked for termination (GHCB)")
            }
            ghcb::Outcome::Failed(what) => self.fatal(st, what),
        }
    }

    fn io(&mut self, st: &mut VcpuState, mem: &dyn GuestMemory, io: IoExit, now: u64) -> Action {
        let IoExit {
            port, size, write, ..
        } = io;
        self.stats.note_port(port, write);
        let Some(next_rip) = io.next_rip else {
            return self.fatal(st, "an IN/OUT exit without the next RIP");
        };
        if io.string {
            return self.string_io(st, mem, io, next_rip, now);
        }
        if write {
            let mask = (1u64 << (8 * u32::from(size))) - 1;
            self.platform
                .io_out(port, size, (st.gpr(0) & mask) as u32, now);
        } else {
            let value = u64::from(self.platform.io_in(port, size, now));
            let rax = st.gpr(0);
            let merged = match size {
                1 => (rax & !0xff) | (value & 0xff),
                2 => (rax & !0xffff) | (value & 0xffff),
                _ => value & 0xffff_ffff,
            };
            st.set_gpr(0, merged);
        }
        st.advance(next_rip.wrapping_sub(st.rip()));
        Action::Run
    }

    /// INS/OUTS (with or without REP) in flat 64-bit or 32-bit code: element by
    /// element through the guest's page tables, at most one page of elements per
    /// exit so a huge count cannot stall the VMM; RCX/RSI/RDI advance as the CPU's.
    fn string_io(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestMemory,
        io: IoExit,
        next_rip: u64,
        now: u64,
    ) -> Action {
        let IoExit {
            port, size, rep, ..
        } = io;
        if !io.write {
            // INS writes guest memory, which this VMM only reads through the
            // decoder's view; no device the guest uses needs it.
            self.stats.unsupported += 1;
            st.inject_ud();
            return Action::Run;
        }
        let cpu = cpu_state(st);
        let step = if st.rflags() & (1 << 10) != 0 {
            (size as u64).wrapping_neg()
        } else {
            u64::from(size)
        };
        let mut count = if rep { st.gpr(1) } else { 1 };
        let mut rsi = st.gpr(6);
        let mut done = 0u64;
        while count > 0 && done < 4096 {
            let mut buf = [0u8; 4];
            let len = usize::from(size).min(4);
            let access = decode::Access {
                kind: decode::AccessKind::Read,
                user: cpu.cpl == 3,
                ac: cpu.rflags & decode::bits::RFLAGS_AC != 0,
            };
            let gpa = match decode::translate(mem, &cpu.paging(), rsi, access) {
                Ok(gpa) => gpa,
                Err(e) => {
                    self.inject_translate_error(st, e);
                    break;
                }
            };
            if let Some(b) = buf.get_mut(..len) {
                if mem.read_gpa(gpa, b).is_err() {
                    st.inject_gp();
                    break;
                }
            }
            self.platform
                .io_out(port, size, u32::from_le_bytes(buf), now);
            rsi = rsi.wrapping_add(step);
            count -= 1;
            done += 1;
        }
        st.set_gpr(6, rsi);
        if rep {
            st.set_gpr(1, count);
        }
        if count == 0 && !st.injection_pending() {
            st.advance(next_rip.wrapping_sub(st.rip()));
        }
        Action::Run
    }

    fn npf(
        &mut self,
        st: &mut VcpuState,
        mem: &dyn GuestRam,
        peers: &mut dyn Peers,
        gpa: u64,
        fetch: bool,
    ) -> Action {
        // The kernel maps guest RAM, and its shared alias, in full before the guest
        // runs: a fault there is no MMIO, and emulating it as a hole would drop the
        // guest's writes.
        match ram_partition(mem, |p| p.classify(Gpa(gpa)).ok()) {
            Ok(None) => {}
            Ok(Some(GpaClass::Private)) => {
                return self.fatal(st, "a nested page fault on guest RAM")
            }
            Ok(Some(GpaClass::Shared)) => {
                return self.fatal(st, "a nested page fault on guest RAM's shared alias")
            }
            Err(_) => return self.fatal(st, "guest RAM does not fit below the vTOM"),
        }
        // Code in MMIO or in a hole is not something a guest recovers from.
        if fetch {
            return self.fatal(st, "the guest executed from an address with no memory");
        }
        // A fault while delivering an event is the delivery's (IDT, GDT or stack
        // outside RAM), not the instruction's at RIP: emulating that would corrupt
        // the guest, and redelivering would fault again.
        if st.get(Word::EXIT_INT_INFO) & event::VALID != 0 {
            return self.fatal(st, "event delivery touched an address with no memory");
        }
        let cpu = cpu_state(st);
        let bytes = match fetch_instruction(mem, &cpu) {
            Ok(b) => b,
            Err(e) => {
                self.inject_translate_error(st, e);
                return Action::Run;
            }
        };
        let insn = match decode_mmio(bytes.as_slice(), cpu.code_mode(), &cpu.gprs) {
            Ok(i) => i,
            Err(MmioDecodeError::Truncated) => {
                match bytes.tail_fault() {
                    Some(e) => self.inject_translate_error(st, e),
                    None => st.inject_ud(),
                }
                return Action::Run;
            }
            Err(_) => {
                self.stats.unsupported += 1;
                st.inject_ud();
                return Action::Run;
            }
        };
        // The IOAPIC's register page: the ioapic PD emulates it.
        let on_ioapic = (ioapic::MMIO_BASE..ioapic::MMIO_BASE + ioapic::MMIO_SIZE).contains(&gpa);
        let on_tpm = crate::devices::tpm_crb::in_window(gpa);
        match insn.access {
            MmioAccess::Write { value } => {
                if on_ioapic {
                    self.stats.ioapic += 1;
                    let _ = peers.ioapic_mmio(gpa, insn.size, Some(value));
                } else if on_tpm {
                    // A refused write is dropped, as on a bus with nothing behind it.
                    let _ = peers.tpm_mmio(gpa, insn.size, Some(value));
                } else {
                    self.stats.note_hole(gpa);
                }
            }
            MmioAccess::Read(target) => {
                let value = if on_ioapic {
                    self.stats.ioapic += 1;
                    peers.ioapic_mmio(gpa, insn.size, None).unwrap_or(u64::MAX)
                } else if on_tpm {
                    peers.tpm_mmio(gpa, insn.size, None).unwrap_or(u64::MAX)
                } else {
                    self.stats.note_hole(gpa);
                    u64::MAX
                };
                let mut gprs = cpu.gprs;
                write_back(&mut gprs, target, value);
                st.set_gprs(&gprs);
            }
        }
        st.set_rip(decode::next_rip(&cpu, insn.len));
        Action::Run
    }
}

/// Runs `f` on the partition the guest was given on the svm platform: its RAM
/// from GPA 0, private below the vTOM and host-visible at the alias above it
/// (isolation's one classifier, with system-constants' vTOM).
fn ram_partition<T>(
    mem: &dyn GuestRam,
    f: impl FnOnce(&Partition<'_>) -> T,
) -> Result<T, GpaError> {
    let ram = [RamRange {
        start: 0,
        end: mem.size(),
    }];
    Partition::new(PartitionKind::Svm, &ram).map(|p| f(&p))
}

/// The decoder's view of the state words.
pub fn cpu_state(st: &VcpuState) -> CpuState {
    let cs = Word::SEGMENTS + 2 * segment::CS;
    let ss = Word::SEGMENTS + 2 * segment::SS;
    let (_, cs_attrib, _) = kernel_abi::vcpu::segment_parts(st.get(cs));
    let (_, ss_attrib, _) = kernel_abi::vcpu::segment_parts(st.get(ss));
    CpuState {
        gprs: st.gprs(),
        rip: st.rip(),
        rflags: st.rflags(),
        cr0: st.get(Word::CR0),
        cr3: st.get(Word::CR3),
        cr4: st.get(Word::CR4),
        efer: st.get(Word::EFER),
        cs_base: st.get(cs + 1),
        cs_attrib,
        cpl: ((ss_attrib >> 5) & 3) as u8,
    }
}

#[cfg(test)]
mod tests;
