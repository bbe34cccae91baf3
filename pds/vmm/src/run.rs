//! The VMM's main loop: take what synic-pd and the ioapic PD queued for the vCPU,
//! inject, enter the guest, handle the exit; until the guest powers off or cannot
//! go on. The kernel side is the svm platform's machine side,
//! [`isolation::svm::SvmCpu`] (pd-rt's `VM_ENTER` on bare metal, a scripted fake
//! in tests); the exit is decoded by [`isolation::svm::decode_exit`] in
//! [`Vmm::handle_exit`].

use ipc::{Channel, ChannelSet, Consumer, IpcError, Kernel};
use isolation::svm::{self, SvmExit};
// What a port implements, re-exported for the runtime glue.
pub use isolation::svm::{Entered, Entry, SvmCpu};
pub use isolation::VpIndex;

use crate::exits::{Action, Stop, Vmm};
use crate::loader::GuestRam;
use crate::peers::{CallPeers, Channels, Peers};
use crate::state::VcpuState;

/// The vCPU the VMM runs, as the kernel's `VM_ENTER` reaches it.
pub type Vcpu<'a> = dyn SvmCpu<Error = IpcError> + 'a;

/// The one vCPU this VMM runs.
pub const VP: VpIndex = VpIndex(0);

/// How this VMM reaches its peers: the channels it calls them on, and the
/// interrupt queues they fill for its vCPU.
#[derive(Debug)]
pub struct Wiring<'a> {
    pub channels: Channels,
    pub synic: Consumer<'a, synic_pd::api::IrqEntry>,
    pub ioapic: Option<Consumer<'a, ioapic::api::IrqEntry>>,
    /// The interrupt of a device the guest drives itself (a UART whose ports the
    /// kernel lets through), which the VMM passes on to the guest's IOAPIC.
    pub forwarded: Option<ForwardedIrq>,
    /// Entries that named another vCPU or made no sense (counted, never acted on).
    pub dropped: u64,
}

/// Where the forwarded line stands: the host line stays masked from a forwarded
/// interrupt until the guest ends it (its EOI of the vector the IOAPIC gave the
/// pin), so the edges the UART makes while the guest's handler drains it latch in
/// the host PIC as one: one interrupt per handler run, not one per FIFO load.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardState {
    /// The TSC when the host line was last left masked.
    pub held_since: Option<u64>,
    /// The vector the guest's IOAPIC last delivered the line's interrupt on.
    pub vector: Option<u8>,
}

/// How long the host line stays masked waiting for the guest's EOI (TSC rate /
/// this): an edge the guest's IOAPIC dropped (pin masked) is never ended.
const FORWARD_HOLD_DIVISOR: u64 = 1000;

/// A host interrupt line the guest gets as one of its ISA lines.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ForwardedIrq {
    /// The VMM's irq capability (system.xml `<irq>`).
    pub channel: Channel,
    /// The guest's ISA line (the IOAPIC pin the ACPI tables give the device).
    pub line: u8,
}

impl Wiring<'_> {
    /// Passes a forwarded device interrupt on to the guest: an edge on its IOAPIC
    /// pin (ISA lines are edge-triggered; the kernel's 8259 took the host edge),
    /// then the kernel may unmask the host line. A device that keeps interrupting
    /// costs only this VMM's time: the line stays masked until this acknowledgement.
    pub fn forward(&mut self, vmm: &mut Vmm, kernel: &mut dyn Kernel, chs: ChannelSet, now: u64) {
        let Some(f) = self.forwarded.filter(|f| chs.contains(f.channel)) else {
            return;
        };
        let mut peers = CallPeers {
            kernel: &mut *kernel,
            channels: self.channels,
            vp: 0,
        };
        if !peers.ioapic_pulse(f.line) {
            vmm.stats.uart_line_refused += 1;
        }
        vmm.stats.forwarded_irqs += 1;
        vmm.forward.held_since = Some(now);
    }

    /// Unmasks the forwarded host line once the guest ended its interrupt (`eoi`,
    /// the vector of an edge EOI it just wrote), or when it waited too long.
    pub fn release(&mut self, vmm: &mut Vmm, kernel: &mut dyn Kernel, eoi: Option<u8>, now: u64) {
        let (Some(f), Some(since)) = (self.forwarded, vmm.forward.held_since) else {
            return;
        };
        let ended = eoi.is_some() && eoi == vmm.forward.vector;
        if ended || now.wrapping_sub(since) >= Self::hold_limit(vmm) {
            vmm.forward.held_since = None;
            let _ = f.channel.irq_ack(kernel);
        }
    }

    fn hold_limit(vmm: &Vmm) -> u64 {
        (vmm.clock.tsc_hz / FORWARD_HOLD_DIVISOR).max(1)
    }

    /// The TSC by which [`Self::release`] must run even if the guest idles.
    pub fn release_deadline(&self, vmm: &Vmm) -> Option<u64> {
        self.forwarded?;
        Some(vmm.forward.held_since? + Self::hold_limit(vmm))
    }

    /// Moves every queued request into the local APIC; tells a producer that asked
    /// for it that there is room again. A corrupt queue is a broken peer: stop.
    pub fn drain(&mut self, vmm: &mut Vmm, kernel: &mut dyn Kernel) -> Result<(), Stop> {
        let broken = |what| Stop::Fatal {
            what,
            code: 0,
            rip: 0,
        };
        loop {
            match self.synic.dequeue() {
                Ok(Some(e)) if e.vp == 0 && e.vector >= 16 => {
                    vmm.stats.synic_irqs += 1;
                    if e.auto_eoi() {
                        vmm.platform.lapic_request_auto_eoi(e.vector)
                    } else {
                        vmm.deliver(e.vector, false)
                    }
                }
                Ok(Some(_)) => self.dropped += 1,
                Ok(None) => break,
                Err(_) => return Err(broken("synic-pd's interrupt queue is corrupt")),
            }
        }
        if self.synic.take_signal_request() {
            let _ = self.channels.synic.notify(kernel);
        }
        if let (Some(queue), Some(channel)) = (&mut self.ioapic, self.channels.ioapic) {
            loop {
                match queue.dequeue() {
                    Ok(Some(e)) => match e.request() {
                        Ok(r) if !for_vcpu0(&r) => self.dropped += 1,
                        Ok(r) => match r.delivery_mode {
                            ioapic::DeliveryMode::Fixed | ioapic::DeliveryMode::LowestPriority
                                if r.vector >= 16 =>
                            {
                                vmm.stats.ioapic_irqs += 1;
                                if self.forwarded.is_some_and(|f| f.line == e.pin) {
                                    vmm.forward.vector = Some(r.vector);
                                }
                                vmm.deliver(r.vector, r.trigger == ioapic::TriggerMode::Level)
                            }
                            ioapic::DeliveryMode::Nmi => vmm.deliver_nmi(),
                            // SMI, INIT and ExtINT have nothing behind them here.
                            _ => self.dropped += 1,
                        },
                        Err(_) => self.dropped += 1,
                    },
                    Ok(None) => break,
                    Err(_) => return Err(broken("the ioapic PD's interrupt queue is corrupt")),
                }
            }
            if queue.take_signal_request() {
                let _ = channel.notify(kernel);
            }
        }
        Ok(())
    }
}

/// Whether an IOAPIC request is addressed to vCPU 0 (APIC id 0): physically to id 0
/// or the broadcast id, or logically to a set that holds it (x2APIC cluster 0,
/// bit 0, which is what Linux programs for CPU 0).
fn for_vcpu0(r: &ioapic::InterruptRequest) -> bool {
    match r.destination_mode {
        ioapic::DestinationMode::Physical => r.destination == 0 || r.destination == 0xff,
        ioapic::DestinationMode::Logical => r.destination & 1 != 0,
    }
}

/// Runs the guest to its end. `console` gets what the guest writes to COM1.
pub fn run(
    vmm: &mut Vmm,
    st: &mut VcpuState,
    vcpu: &mut Vcpu<'_>,
    mem: &dyn GuestRam,
    kernel: &mut dyn Kernel,
    wiring: &mut Wiring<'_>,
    console: &mut dyn FnMut(&[u8]),
) -> Stop {
    let mut halted = false;
    loop {
        if let Err(stop) = wiring.drain(vmm, kernel) {
            return stop;
        }
        let now = vcpu.now();
        wiring.release(vmm, kernel, None, now);
        let deadline = match (vmm.before_entry(st, now), wiring.release_deadline(vmm)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if st.injection_pending() {
            halted = false;
        }
        let entry = Entry { halted, deadline };
        match vcpu.vmrun(VP, st.words_mut(), entry) {
            Ok(Entered::Notified(chs)) => {
                wiring.forward(vmm, kernel, chs, vcpu.now());
                continue;
            }
            Ok(Entered::Exit) => {}
            Err(_) => {
                return Stop::Fatal {
                    what: "VM_ENTER refused this vCPU",
                    code: 0,
                    rip: st.rip(),
                }
            }
        }
        if halted {
            // A deadline or a notification woke the halted vCPU: nothing ran.
            vmm.stats
                .count(&svm::decode_exit(&SvmExit::from_words(st.words())));
            continue;
        }
        let mut peers = CallPeers {
            kernel: &mut *kernel,
            channels: wiring.channels,
            vp: 0,
        };
        let action = vmm.handle_exit(st, mem, &mut peers, vcpu.now());
        let eoi = vmm.platform.take_edge_eoi();
        wiring.release(vmm, kernel, eoi, vcpu.now());
        let out = vmm.take_console();
        if !out.is_empty() {
            console(&out);
        }
        match action {
            Action::Run => {}
            Action::Halt => halted = true,
            Action::Stop(stop) => {
                let rest = vmm.platform.flush_uart_output();
                if !rest.is_empty() {
                    console(&rest);
                }
                return stop;
            }
        }
    }
}

#[cfg(test)]
mod tests;
