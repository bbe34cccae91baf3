//! The IOAPIC emulation PD's core: the 82093AA-style register interface at
//! 0xFEC00000 and the redirection semantics behind it.
//!
//! The guest programs it through MMIO (IOREGSEL/IOWIN, and the EOI register of
//! version 0x20); devices drive its 24 input pins; it produces interrupt requests
//! (vector, destination, delivery mode) for the vCPU PD through an
//! [`InterruptSink`]. Pure and `no_std`: the PD adapter feeds it MMIO exits,
//! line changes and EOIs.
//!
//! [`pd`] adapts it to the `ipc` runtime (MMIO and EOI calls from the vCPU PD,
//! line changes from device PDs, interrupt requests out through a shared queue);
//! [`api`] is the wire contract those peers use.
//!
//! Input pins are logical: `set_irq(pin, true)` means "the device asserts its
//! interrupt", whatever the programmed polarity (polarity describes the wire,
//! which is virtual here); the polarity bit is stored and read back.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod api;
mod entry;
pub mod pd;
mod regs;

pub use entry::{DeliveryMode, DestinationMode, RedirectionEntry, TriggerMode};
pub use regs::*;

/// What the IOAPIC asks the local APIC(s) to do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InterruptRequest {
    pub vector: u8,
    pub delivery_mode: DeliveryMode,
    pub destination_mode: DestinationMode,
    /// APIC id (physical) or logical destination mask.
    pub destination: u8,
    pub trigger: TriggerMode,
    /// The input pin, for tracing.
    pub pin: u8,
}

/// The sink refused the request (its queue is full); the IOAPIC keeps it pending
/// (delivery status 1) and retries on [`Ioapic::retry_pending`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SinkFull;

/// Where interrupt requests go: the vCPU PD (later over an `ipc` queue).
pub trait InterruptSink {
    fn deliver(&mut self, request: InterruptRequest) -> Result<(), SinkFull>;
}

/// Counters for odd guest behaviour, for logs and tests.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub delivered: u64,
    /// Entries programmed with a reserved delivery mode (never delivered).
    pub reserved_mode: u64,
    /// MMIO accesses of an unsupported size or offset (ignored).
    pub bad_access: u64,
}

/// The IOAPIC state.
#[derive(Clone, Debug)]
pub struct Ioapic {
    id: u8,
    version: u8,
    ioregsel: u8,
    entries: [RedirectionEntry; NUM_PINS],
    /// Logical level of each input pin.
    asserted: u32,
    /// Edge interrupts the sink could not take yet.
    pending_edge: u32,
    stats: Stats,
}

impl Ioapic {
    /// A reset IOAPIC: every entry masked, id `id`, version 0x11 or 0x20.
    pub fn new(id: u8, version: u8) -> Self {
        Self {
            id: id & 0x0f,
            version,
            ioregsel: 0,
            entries: [RedirectionEntry::RESET; NUM_PINS],
            asserted: 0,
            pending_edge: 0,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn entry(&self, pin: usize) -> Option<RedirectionEntry> {
        self.entries.get(pin).copied()
    }

    /// Back to the power-on state (lines stay as the devices drive them).
    pub fn reset(&mut self) {
        let asserted = self.asserted;
        *self = Self::new(self.id, self.version);
        self.asserted = asserted;
    }

    // ---- MMIO -----------------------------------------------------------

    /// A guest read of `size` bytes at `offset` from the base. Sub-dword reads
    /// return the addressed bytes of the 32-bit register; unknown offsets read 0.
    pub fn mmio_read(&mut self, offset: u64, size: u8) -> u64 {
        if !matches!(size, 1 | 2 | 4) {
            self.stats.bad_access += 1;
            return 0;
        }
        let reg = offset & !3;
        let shift = (offset & 3) * 8;
        let value = match reg {
            IOREGSEL => u32::from(self.ioregsel),
            IOWIN => self.read_indirect(self.ioregsel),
            _ => 0,
        };
        let mask = if size == 4 {
            u64::from(u32::MAX)
        } else {
            (1u64 << (size * 8)) - 1
        };
        (u64::from(value) >> shift) & mask
    }

    /// A guest write. IOREGSEL takes any size (its low byte counts); IOWIN and
    /// EOI need aligned 32-bit writes, as the chipsets require.
    pub fn mmio_write(&mut self, offset: u64, size: u8, value: u64, sink: &mut dyn InterruptSink) {
        match (offset, size) {
            (IOREGSEL, 1 | 2 | 4) => self.ioregsel = value as u8,
            (IOWIN, 4) => self.write_indirect(self.ioregsel, value as u32, sink),
            (EOI, 4) if self.version >= VERSION_WITH_EOI => self.eoi(value as u8, sink),
            _ => self.stats.bad_access += 1,
        }
    }

    fn read_indirect(&self, index: u8) -> u32 {
        match index {
            REG_ID => u32::from(self.id) << 24,
            REG_VERSION => u32::from(self.version) | ((NUM_PINS as u32 - 1) << 16),
            REG_ARBITRATION => u32::from(self.id) << 24,
            REG_REDIR_BASE..=REG_REDIR_LAST => {
                let e = self.entries[usize::from((index - REG_REDIR_BASE) / 2)];
                if index.is_multiple_of(2) {
                    e.0 as u32
                } else {
                    (e.0 >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_indirect(&mut self, index: u8, value: u32, sink: &mut dyn InterruptSink) {
        match index {
            REG_ID => self.id = ((value >> 24) & 0x0f) as u8,
            REG_REDIR_BASE..=REG_REDIR_LAST => {
                let pin = usize::from((index - REG_REDIR_BASE) / 2);
                let old = self.entries[pin];
                let raw = if index.is_multiple_of(2) {
                    (old.0 & !0xffff_ffff) | u64::from(value)
                } else {
                    (old.0 & 0xffff_ffff) | (u64::from(value) << 32)
                };
                self.entries[pin] = old.reprogram(raw);
                if self.entries[pin].delivery_mode().is_none() {
                    self.stats.reserved_mode += 1;
                }
                // Unmasking an asserted level line (or a change that makes an
                // entry deliverable) delivers now.
                self.service(pin, sink);
            }
            // Version and arbitration are read-only; other indices do not exist.
            _ => {}
        }
    }

    // ---- Lines and EOI --------------------------------------------------

    /// A device drives input `pin` to `asserted`. Out-of-range pins are ignored.
    pub fn set_irq(&mut self, pin: usize, asserted: bool, sink: &mut dyn InterruptSink) {
        if pin >= NUM_PINS {
            return;
        }
        let bit = 1u32 << pin;
        let was = self.asserted & bit != 0;
        if asserted {
            self.asserted |= bit;
        } else {
            self.asserted &= !bit;
        }
        let e = self.entries[pin];
        if e.is_level() {
            if asserted {
                self.service(pin, sink);
            }
        } else if asserted && !was && !e.masked() {
            // A rising edge; edges on a masked pin are lost, as on the 82093AA.
            self.pending_edge |= bit;
            self.service(pin, sink);
        }
    }

    /// End of interrupt for `vector` (the local APIC's broadcast, or the EOI
    /// register): clears remote IRR on matching level entries and re-delivers
    /// those whose line is still asserted.
    pub fn eoi(&mut self, vector: u8, sink: &mut dyn InterruptSink) {
        for pin in 0..NUM_PINS {
            let e = self.entries[pin];
            if e.vector() == vector && e.remote_irr() {
                self.entries[pin] = e.with_remote_irr(false);
                self.service(pin, sink);
            }
        }
    }

    /// Retries requests the sink refused earlier.
    pub fn retry_pending(&mut self, sink: &mut dyn InterruptSink) {
        for pin in 0..NUM_PINS {
            if self.entries[pin].delivery_status() {
                self.service(pin, sink);
            }
        }
    }

    /// Delivers pin `pin` if its entry and line call for it.
    fn service(&mut self, pin: usize, sink: &mut dyn InterruptSink) {
        let bit = 1u32 << pin;
        let e = self.entries[pin];
        let Some(mode) = e.delivery_mode() else {
            self.pending_edge &= !bit;
            self.entries[pin] = e.with_delivery_status(false);
            return;
        };
        let level = e.is_level();
        let wanted = if e.masked() {
            false
        } else if level {
            self.asserted & bit != 0 && !e.remote_irr()
        } else {
            self.pending_edge & bit != 0
        };
        if !wanted {
            if e.masked() {
                self.pending_edge &= !bit;
            }
            self.entries[pin] = e.with_delivery_status(false);
            return;
        }
        let request = InterruptRequest {
            vector: e.vector(),
            delivery_mode: mode,
            destination_mode: e.destination_mode(),
            destination: e.destination(),
            trigger: if level {
                TriggerMode::Level
            } else {
                TriggerMode::Edge
            },
            pin: pin as u8,
        };
        match sink.deliver(request) {
            Ok(()) => {
                self.stats.delivered += 1;
                self.pending_edge &= !bit;
                let mut e = e.with_delivery_status(false);
                if level {
                    e = e.with_remote_irr(true);
                }
                self.entries[pin] = e;
            }
            Err(SinkFull) => self.entries[pin] = e.with_delivery_status(true),
        }
    }
}

#[cfg(test)]
mod pd_tests;
#[cfg(test)]
mod tests;
