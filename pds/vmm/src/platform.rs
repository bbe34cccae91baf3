//! The devices of the guest's platform that live in the VMM, as the exit handler
//! sees them: the vCPU's local APIC and the port-I/O bus (COM1 and the legacy
//! chipset). Interrupt lines of these devices leave through the ioapic PD.

use alloc::vec::Vec;

use crate::devices::bus::{PlatformConfig, PortBus};
use crate::devices::lapic::{Gp, Lapic, LapicConfig, LapicEvent};
use crate::devices::legacy::{PlatformEvent, SleepPorts};
use crate::peers::{MsrOutcome, Peers};

/// COM1's ISA line (the ioapic PD's input 4).
pub const COM1_IRQ: u8 = crate::devices::uart::COM1_IRQ;

#[derive(Debug)]
pub struct Platform {
    pub lapic: Lapic,
    pub bus: PortBus,
    /// The UART's line as last told to the ioapic PD.
    uart_line: bool,
    powered_off: bool,
    nmi_pending: bool,
    /// The vector of the last EOI of an edge-triggered interrupt, not yet taken.
    edge_eoi: Option<u8>,
}

impl Platform {
    /// `wall_clock_secs`: what the RTC reads at `now_tsc` (seconds since 1970).
    pub fn new(tsc_hz: u64, apic_hz: u64, wall_clock_secs: i64, now_tsc: u64) -> Self {
        Self {
            lapic: Lapic::new(LapicConfig {
                apic_id: 0,
                tsc_hz,
                bus_hz: apic_hz,
            }),
            bus: PortBus::new(PlatformConfig {
                tsc_hz,
                wall_clock: wall_clock_secs,
                now_tsc,
                sleep: SleepPorts {
                    control: crate::acpi::SLEEP_CONTROL_PORT,
                    status: crate::acpi::SLEEP_STATUS_PORT,
                    s5_type: crate::acpi::S5_SLEEP_TYPE,
                },
            }),
            uart_line: false,
            powered_off: false,
            nmi_pending: false,
            edge_eoi: None,
        }
    }

    /// A SynIC interrupt whose SINT has AutoEOI.
    pub fn lapic_request_auto_eoi(&mut self, vector: u8) {
        self.lapic.request_auto_eoi(vector);
    }

    pub fn lapic_request(&mut self, vector: u8, level: bool) {
        if level {
            self.lapic.request_level(vector);
        } else {
            self.lapic.request(vector);
        }
    }

    pub fn lapic_pending(&self) -> Option<u8> {
        self.lapic.pending()
    }

    pub fn lapic_acknowledge(&mut self, vector: u8) {
        self.lapic.acknowledge(vector);
    }

    pub fn poll(&mut self, now: u64) {
        self.lapic.poll(now);
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.lapic.next_deadline()
    }

    /// Takes a self-NMI the guest sent through its ICR.
    /// The vector the guest last ended an edge-triggered interrupt of, once.
    pub fn take_edge_eoi(&mut self) -> Option<u8> {
        self.edge_eoi.take()
    }

    pub fn take_nmi(&mut self) -> bool {
        core::mem::take(&mut self.nmi_pending)
    }

    pub fn lapic_msr(
        &mut self,
        msr: u32,
        write: Option<u64>,
        now: u64,
        peers: &mut dyn Peers,
    ) -> MsrOutcome {
        match write {
            None => match self.lapic.read_msr(msr, now) {
                Ok(v) => MsrOutcome::Done(v),
                Err(Gp) => MsrOutcome::Gp,
            },
            Some(value) => match self.lapic.write_msr(msr, value, now) {
                Ok(event) => {
                    match event {
                        Some(LapicEvent::Eoi {
                            vector,
                            level: true,
                        }) => peers.ioapic_eoi(vector),
                        Some(LapicEvent::Nmi) => self.nmi_pending = true,
                        Some(LapicEvent::Eoi {
                            vector,
                            level: false,
                        }) => self.edge_eoi = Some(vector),
                        None => {}
                    }
                    MsrOutcome::Done(0)
                }
                Err(Gp) => MsrOutcome::Gp,
            },
        }
    }

    pub fn io_in(&mut self, port: u16, size: u8, now: u64) -> u32 {
        self.bus.io_in(port, size, now)
    }

    pub fn io_out(&mut self, port: u16, size: u8, value: u32, now: u64) {
        if let Some(event) = self.bus.io_out(port, size, value, now) {
            self.platform_event(event);
        }
    }

    fn platform_event(&mut self, event: PlatformEvent) {
        match event {
            PlatformEvent::PowerOff => self.powered_off = true,
            // A reset request ends this VM as well: the VMM does not reboot guests.
            _ => self.powered_off = true,
        }
    }

    pub fn powered_off(&self) -> bool {
        self.powered_off
    }

    /// What the guest wrote to COM1 and the UART has let go of.
    pub fn take_uart_output(&mut self) -> Vec<u8> {
        self.bus.uart.take_output().unwrap_or_default()
    }

    /// Everything still buffered in the UART (at the end of the VM).
    pub fn flush_uart_output(&mut self) -> Vec<u8> {
        self.bus.uart.flush_output()
    }

    /// The UART's interrupt line, if it changed since the last call.
    pub fn take_uart_irq_change(&mut self) -> Option<bool> {
        let level = self.bus.uart.irq_level();
        if level == self.uart_line {
            return None;
        }
        self.uart_line = level;
        Some(level)
    }
}
