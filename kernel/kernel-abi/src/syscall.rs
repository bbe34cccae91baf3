//! System calls. `syscall` with the number in rax and arguments in rdi, rsi, rdx,
//! r10; results come back in rax (status or event), rdi, rsi, rdx. Every other
//! register except rcx and r11 is preserved. Message registers travel in the PD's
//! IPC buffer, never in memory the kernel would have to look up.
//!
//! Capabilities are named by the per-PD channel id (0..=61) system.xml gave them;
//! a PD can name nothing else, so it has no ambient authority.

/// System call numbers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sys(pub u64);

impl Sys {
    /// (ptr, len): write bytes to the kernel console. Debug kernels only.
    pub const DEBUG_PUTS: Self = Self(1);
    /// (channel): set the peer's notification bit.
    pub const NOTIFY: Self = Self(2);
    /// (channel, label, count): protected call; the callee runs now, at its priority.
    /// Returns (status, -, label, count) with the reply's registers in the IPC buffer.
    pub const PP_CALL: Self = Self(3);
    /// (): block until an event; returns (event, badge, label-or-bits, count).
    pub const RECV: Self = Self(4);
    /// (label, count, flags): answer the call or fault just received, then RECV.
    pub const REPLY_RECV: Self = Self(5);
    /// (channel): re-enable the irq behind this channel id.
    pub const IRQ_ACK: Self = Self(6);
    /// (status): stop the machine with this status. Debug kernels only; the boot
    /// tests use it to hand their verdict to QEMU.
    pub const DEBUG_HALT: Self = Self(7);
    /// (channel, level): drive the interrupt line behind this irq channel through
    /// QEMU's pc-testdev (I/O port 0x2000 + line). Debug kernels only; it lets the
    /// boot test exercise real irq delivery, and still needs the irq capability.
    pub const DEBUG_IRQ_LINE: Self = Self(8);
    /// (vcpu, flags, deadline): run the guest vCPU `vcpu` of the VM this PD owns
    /// until it exits, the PD is notified or the TSC passes `deadline` (0 = none).
    /// See [`crate::vcpu`] for the state words in the IPC buffer. Returns
    /// [`Event::VM_EXIT`], or [`Event::NOTIFICATION`] as RECV would, or a status.
    pub const VM_ENTER: Self = Self(9);
    /// (delay): raise an NMI on this CPU `delay` TSC ticks from now (0: none),
    /// through the local APIC timer; returns (status, NMIs taken in ring 3 so
    /// far). Debug kernels only, for PDs granted `debug_halt`: it lets the boot
    /// test check that an NMI taken in ring 3 resumes the PD where it was.
    pub const DEBUG_NMI: Self = Self(10);
    /// (channel, offset, flags, value): read or write the configuration space of
    /// the PCI function behind this channel id (system.xml `<pci_device>`); flags =
    /// width in bytes | [`crate::pci::WRITE`]. Returns (status, value read). The
    /// policy is [`crate::pci::check_access`].
    pub const PCI_CONFIG: Self = Self(11);
}

/// What a system call returns in rax (for RECV/REPLY_RECV: see [`Event`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Status(pub u64);

impl Status {
    pub const OK: Self = Self(0);
    /// No capability at that channel id.
    pub const NOT_GRANTED: Self = Self(1);
    pub const NOTIFY_NOT_PERMITTED: Self = Self(2);
    pub const CALL_NOT_PERMITTED: Self = Self(3);
    pub const NOT_AN_IRQ: Self = Self(4);
    /// The callee has faulted (now or while serving this call).
    pub const PEER_GONE: Self = Self(5);
    /// The callee answered with an error.
    pub const CALL_FAILED: Self = Self(6);
    /// An argument is out of range (channel id > 61, count > 64, bad pointer).
    pub const BAD_ARGUMENT: Self = Self(7);
    pub const UNKNOWN_SYSCALL: Self = Self(8);
    /// VM_ENTER on a vCPU this PD does not own.
    pub const NOT_A_VCPU: Self = Self(9);
    /// PCI_CONFIG: a write to a register the kernel decided at boot (ids, BARs,
    /// interrupt routing).
    pub const CONFIG_PROTECTED: Self = Self(10);
}

/// The kind of event RECV and REPLY_RECV return in rax.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Event(pub u64);

impl Event {
    /// rsi = the set of notified channel ids (bit per id); notifications and irqs
    /// that arrived while the PD was busy are coalesced.
    pub const NOTIFICATION: Self = Self(0x100);
    /// rdi = the receiver's channel id, rsi = label, rdx = register count.
    pub const CALL: Self = Self(0x101);
    /// rdi = the child's id; IPC buffer words 0..4 = [`FaultMessage`].
    pub const FAULT: Self = Self(0x102);
    /// The guest exited: the IPC buffer holds its state and the exit
    /// ([`crate::vcpu::Word`]).
    pub const VM_EXIT: Self = Self(0x103);
}

/// Flags of REPLY_RECV (r10).
pub mod reply {
    /// The call failed in the callee: the caller sees `CALL_FAILED`.
    pub const ERROR: u64 = 1;
    /// Answering a fault: resume the child where it faulted.
    pub const RESUME: u64 = 2;
}

/// Message registers in the IPC buffer, as in seL4.
pub const MESSAGE_REGISTERS: usize = 64;

/// How a fault is reported in the receiver's IPC buffer (words 0..4).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultMessage {
    /// x86 exception vector (14 = page fault, 13 = general protection, 0 = divide,
    /// 6 = invalid opcode, which is also how a PD's panic ends).
    pub vector: u64,
    /// CR2 for a page fault, else 0.
    pub address: u64,
    pub ip: u64,
    pub error_code: u64,
}

impl FaultMessage {
    pub const WORDS: usize = 4;

    pub fn to_words(&self) -> [u64; Self::WORDS] {
        [self.vector, self.address, self.ip, self.error_code]
    }

    pub fn from_words(w: [u64; Self::WORDS]) -> Self {
        Self {
            vector: w[0],
            address: w[1],
            ip: w[2],
            error_code: w[3],
        }
    }

    /// A short human name for the vector, for console reports.
    pub fn vector_name(&self) -> &'static str {
        match self.vector {
            0 => "divide error",
            1 => "debug",
            3 => "breakpoint",
            4 => "overflow",
            5 => "bound range",
            6 => "invalid opcode",
            7 => "device not available",
            13 => "general protection fault",
            14 => "page fault",
            16 => "x87 floating point",
            17 => "alignment check",
            19 => "SIMD floating point",
            _ => "exception",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_message_round_trips_through_words() {
        let m = FaultMessage {
            vector: 14,
            address: 0xdead_0000,
            ip: 0x40_1000,
            error_code: 6,
        };
        assert_eq!(FaultMessage::from_words(m.to_words()), m);
        assert_eq!(m.vector_name(), "page fault");
    }

    #[test]
    fn events_and_statuses_do_not_overlap() {
        for e in [
            Event::NOTIFICATION,
            Event::CALL,
            Event::FAULT,
            Event::VM_EXIT,
        ] {
            assert!(e.0 > Status::UNKNOWN_SYSCALL.0);
        }
    }
}
