//! The boot self-test. In `init` it checks protected calls (registers both ways, an
//! error reply, capability errors) and measures a call round trip; then, driven by
//! events, it measures notification round trips with ponger, waits for the echo pair
//! to finish and for its child `faulter` to fault, checks the other PDs still answer,
//! prints a report and halts the machine with the verdict (0 = pass).
#![no_std]
#![no_main]

extern crate alloc;

use ipc::{
    ChannelSet, Child, FaultInfo, Handler, HandlerError, Init, InitError, IpcError, Kernel,
    MessageInfo, MessageRegisters, Region,
};
use metal_pds::*;
use pd_rt::{println, sys::rdtsc};

const ROUNDS: u64 = 1000;
/// Round trips per timed batch.
const BATCH: u64 = 100;

pd_rt::global_heap!(256 * 1024);

/// `alloc` on pd-rt's heap: what vmbus-server and storvsp need on bare metal.
fn heap(check: &mut Check) {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    let v: Vec<u64> = (0..10_000).collect();
    let mut m = BTreeMap::new();
    for i in 0..1000u64 {
        m.insert(i * 7 % 1000, i);
    }
    let sum: u64 = v.iter().sum();
    drop(v);
    // After the free, the same space serves a larger request.
    let w: Vec<u8> = alloc::vec![7; 150_000];
    check.expect(
        sum == 49_995_000 && m.len() == 1000 && w.iter().all(|&b| b == 7),
        "heap: Vec and BTreeMap on pd-rt's allocator, freed space reused",
    );
}
const SHARED_MAGIC: u64 = 0x5eed_cafe_f00d_0001;

struct SelfTest {
    check: Check,
    pongs: u64,
    /// When the current batch of notify round trips started, and the best
    /// batch's cost per round trip so far.
    pong_start: u64,
    pong_best: u64,
    echo_done: bool,
    child_fault: bool,
    panic_fault: bool,
    irqs: u32,
    /// hostile's verdict arrived.
    hostile_done: bool,
    finished: bool,
}

fn call(
    k: &mut dyn Kernel,
    label: u64,
    regs: &[u64],
) -> Result<(MessageInfo, MessageRegisters), IpcError> {
    let mut mrs = MessageRegisters::new();
    for (i, &r) in regs.iter().enumerate() {
        mrs.set(i, r);
    }
    let info = SELFTEST_PING.pp_call(k, MessageInfo::new(label, regs.len()), &mut mrs)?;
    Ok((info, mrs))
}

fn calls(check: &mut Check, k: &mut dyn Kernel) {
    match call(k, LABEL_INCREMENT, &[1, 2, 3]) {
        Ok((info, mrs)) => check.expect(
            info.label() == LABEL_INCREMENT + 1 && info.count() == 3 && mrs.0[..3] == [2, 3, 4],
            "protected call: registers travel both ways",
        ),
        Err(e) => check.expect(false, fmt_err(e)),
    }
    let big: [u64; 64] = core::array::from_fn(|i| i as u64);
    let ok =
        matches!(call(k, LABEL_INCREMENT, &big), Ok((i, m)) if i.count() == 64 && m.0[63] == 64);
    check.expect(ok, "protected call: all 64 message registers");
    check.expect(
        matches!(call(k, LABEL_READ_SHARED, &[]), Ok((_, m)) if m.0[0] == SHARED_MAGIC),
        "shared region: the callee reads what we wrote",
    );
    check.expect(
        call(k, LABEL_FAIL, &[]) == Err(IpcError::CallFailed(SELFTEST_PING)),
        "protected call: a handler error fails the call",
    );
    check.expect(
        NOT_GRANTED.notify(k) == Err(IpcError::NotGranted(NOT_GRANTED)),
        "capabilities: notify on an id we were not given",
    );
    let mut mrs = MessageRegisters::new();
    check.expect(
        SELFTEST_PONG.pp_call(k, MessageInfo::new(0, 0), &mut mrs)
            == Err(IpcError::CallNotPermitted(SELFTEST_PONG)),
        "capabilities: call over a notify-only channel",
    );
    check.expect(
        SELFTEST_PING.irq_ack(k) == Err(IpcError::NotAnIrq(SELFTEST_PING)),
        "capabilities: irq ack on a channel",
    );
    calibrate();
    // Cost of a round trip: call + reply, kernel and both runtimes included. Under
    // QEMU -icount shift=0 the time-stamp counter counts instructions. The best of
    // ten batches: a batch a timer tick lands in pays for the tick too.
    let mut mrs = MessageRegisters::new();
    let mut best = u64::MAX;
    for _ in 0..ROUNDS / BATCH {
        let start = rdtsc();
        for _ in 0..BATCH {
            let _ = SELFTEST_PING.pp_call(k, MessageInfo::new(LABEL_INCREMENT, 0), &mut mrs);
        }
        best = best.min((rdtsc() - start) / BATCH);
    }
    let per = best;
    println!("selftest: measure ppc_round_trip {per} tsc per call+reply (best batch of {BATCH}, {ROUNDS} rounds)");
}

/// How many counts a known instruction sequence takes: checks that the counter
/// counts instructions (QEMU -icount shift=0) before trusting the measurements.
fn calibrate() {
    let iterations: u64 = 1000;
    let start = rdtsc();
    // SAFETY: a register-only countdown loop: 2 instructions per iteration.
    unsafe {
        core::arch::asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) iterations => _, options(nomem, nostack));
    }
    let delta = rdtsc() - start;
    println!("selftest: measure calibration {delta} tsc for {} instructions (a 1000-iteration dec/jnz loop)", 2 * iterations);
}

/// Iterations the spin in [`nmi_in_ring3`] ran, counted in memory, which an
/// NMI that resumed this PD from a stale frame (its previous kernel entry's)
/// would not rewind: the count would come out too high.
static NMI_SPINS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// An NMI taken in ring 3 (on the IST stack, not in the PD's save area) resumes
/// the PD exactly where it was, registers intact.
fn nmi_in_ring3(check: &mut Check) {
    use core::sync::atomic::Ordering::SeqCst;
    const ITERATIONS: u64 = 1_000_000;
    let before = pd_rt::sys::debug_nmi(0);
    let armed = pd_rt::sys::debug_nmi(20_000).is_ok();
    let pattern = [
        0x1111_2222_3333_4444u64,
        0x5555_6666_7777_8888,
        0x9999,
        0xabcd,
    ];
    let mut regs = pattern;
    // SAFETY: a countdown (3M instructions, the NMI comes after 20k) that counts
    // its iterations in NMI_SPINS and leaves r12..r15 as they are.
    unsafe {
        core::arch::asm!(
            "2:", "lock inc qword ptr [{c}]", "dec {n}", "jnz 2b",
            c = in(reg) NMI_SPINS.as_ptr(),
            n = inout(reg) ITERATIONS => _,
            inout("r12") regs[0], inout("r13") regs[1], inout("r14") regs[2], inout("r15") regs[3],
            options(nostack),
        );
    }
    let after = pd_rt::sys::debug_nmi(0);
    check.expect(
        armed && matches!((before, after), (Ok(b), Ok(a)) if a == b + 1),
        "nmi: one NMI taken while this PD ran in ring 3",
    );
    check.expect(
        NMI_SPINS.load(SeqCst) == ITERATIONS && regs == pattern,
        "nmi: the PD resumed where the NMI hit it, registers intact",
    );
}

fn fmt_err(e: IpcError) -> &'static str {
    match e {
        IpcError::PeerGone(_) => "protected call: callee gone",
        _ => "protected call failed",
    }
}

impl SelfTest {
    fn new(init: &dyn Init, k: &mut dyn Kernel) -> Result<Self, InitError> {
        println!("selftest: starting in PD {}", init.pd_name());
        let shared: Region<'static> = init.region(SHARED)?;
        let mut check = Check::new("selftest");
        check.expect(
            shared.write(0, &SHARED_MAGIC).is_ok(),
            "shared region: writable here",
        );
        check.expect(
            init.variable(SHARED) == Ok(shared.base_address() as u64),
            "setvar_vaddr: the variable holds the region's address",
        );
        calls(&mut check, k);
        nmi_in_ring3(&mut check);
        heap(&mut check);
        let mut t = Self {
            check,
            pongs: 0,
            pong_start: rdtsc(),
            pong_best: u64::MAX,
            echo_done: false,
            child_fault: false,
            panic_fault: false,
            irqs: 0,
            hostile_done: false,
            finished: false,
        };
        // The ponger outranks us: each notify runs it at once; its answer is
        // delivered when we next wait.
        if SELFTEST_PONG.notify(k).is_err() {
            t.check.expect(false, "notify ponger");
        }
        // A real interrupt: pulse our line; it arrives once we wait.
        t.check.expect(
            pulse().is_ok(),
            "irq: raise our line through the test device",
        );
        // The panicker outranks us too: it panics at once; its fault reaches us when
        // we next wait.
        if SELFTEST_PANICKER.notify(k).is_err() {
            t.check.expect(false, "notify panicker");
        }
        Ok(t)
    }

    fn maybe_finish(&mut self, k: &mut dyn Kernel) {
        if self.finished
            || self.pongs < ROUNDS
            || !self.echo_done
            || !self.child_fault
            || !self.panic_fault
            || self.irqs < 2
            || !self.hostile_done
        {
            return;
        }
        self.finished = true;
        self.check
            .expect(self.irqs == 2, "irq: a line not acked stays masked");
        let alive = matches!(call(k, LABEL_INCREMENT, &[41]), Ok((_, m)) if m.0[0] == 42);
        self.check
            .expect(alive, "after the faults, pingserver still answers");
        let verdict = if self.check.failures == 0 {
            "PASS"
        } else {
            "FAIL"
        };
        // Under -icount shift=0: instructions the machine ran since reset (firmware,
        // kernel boot, every PD) up to this report.
        println!(
            "selftest: measure boot_to_report {} tsc since reset",
            rdtsc()
        );
        println!(
            "selftest: REPORT {verdict} ({} failures)",
            self.check.failures
        );
        pd_rt::sys::debug_halt(u64::from(self.check.failures.min(100)))
    }
}

/// An edge on our irq line.
fn pulse() -> Result<(), IpcError> {
    pd_rt::sys::debug_irq_line(SELFTEST_IRQ, true)?;
    pd_rt::sys::debug_irq_line(SELFTEST_IRQ, false)
}

impl SelfTest {
    /// First irq: ack, then pulse again, which must arrive as the second. Second irq:
    /// pulse again without acking; that edge must never arrive (checked at the end).
    fn irq(&mut self, k: &mut dyn Kernel) -> Result<(), HandlerError> {
        self.irqs += 1;
        match self.irqs {
            1 => {
                self.check
                    .expect(true, "irq: delivered as a notification on its channel");
                SELFTEST_IRQ.irq_ack(k)?;
                pulse()?;
            }
            2 => {
                self.check
                    .expect(true, "irq: after the ack the line delivers again");
                pulse()?;
            }
            _ => self
                .check
                .expect(false, "irq: an edge on a line we did not ack arrived"),
        }
        Ok(())
    }
}

impl Handler for SelfTest {
    fn notified(&mut self, k: &mut dyn Kernel, ch: ChannelSet) -> Result<(), HandlerError> {
        for c in ch.iter() {
            match c {
                SELFTEST_PONG => {
                    self.pongs += 1;
                    // Batches, as for calls: other events (the irq, the faults,
                    // the echo pair's end) land in some of them.
                    if self.pongs.is_multiple_of(BATCH) {
                        let now = rdtsc();
                        self.pong_best = self.pong_best.min((now - self.pong_start) / BATCH);
                        self.pong_start = now;
                    }
                    if self.pongs < ROUNDS {
                        SELFTEST_PONG.notify(k)?;
                    } else if self.pongs == ROUNDS {
                        let per = self.pong_best;
                        println!("selftest: measure notify_round_trip {per} tsc per notify+notify back (best batch of {BATCH}, {ROUNDS} rounds)");
                        self.check
                            .expect(true, "notifications: 1000 round trips with ponger");
                    }
                }
                SELFTEST_IRQ => self.irq(k)?,
                SELFTEST_HOSTILE_PASS | SELFTEST_HOSTILE_FAIL => {
                    self.hostile_done = true;
                    self.check.expect(
                        c == SELFTEST_HOSTILE_PASS,
                        "hostile PD: every random system call refused with the status its capabilities call for",
                    );
                }
                SELFTEST_ECHO_DONE => {
                    self.echo_done = true;
                    self.check.expect(
                        true,
                        "echo pair (pds/pd-echo on pd-rt): every message back in order",
                    );
                }
                other => return Err(HandlerError::UnexpectedNotification(other)),
            }
        }
        self.maybe_finish(k);
        Ok(())
    }

    fn fault(
        &mut self,
        k: &mut dyn Kernel,
        child: Child,
        info: FaultInfo,
    ) -> Result<bool, HandlerError> {
        println!(
            "selftest: child {} faulted: vector {} at ip {:#x}, address {:#x}",
            child.0, info.code, info.ip, info.address
        );
        match child.0 {
            FAULTER_ID => {
                self.check.expect(
                    info.code == 14 && info.address != 0,
                    "fault containment: the child's write to a read-only page reached us as a page fault",
                );
                self.child_fault = true;
            }
            PANICKER_ID => {
                self.check.expect(
                    info.code == 6,
                    "fault containment: a child's panic reached us as an invalid-opcode fault",
                );
                self.panic_fault = true;
            }
            _ => self
                .check
                .expect(false, "a fault from a child we do not have"),
        }
        self.maybe_finish(k);
        // Leave it stopped: resuming would only fault again.
        Ok(false)
    }
}

pd_rt::entry!(|init, kernel| SelfTest::new(init, kernel));
