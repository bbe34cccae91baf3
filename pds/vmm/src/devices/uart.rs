//! A 16550A UART (COM1 at 0x3F8, ISA IRQ 4): the guest's console.
//!
//! Faithful where Linux's 8250 driver looks: its autoconfig probes (the IER
//! scratch test, the loopback test that reads MCR's outputs back through MSR, the
//! FIFO and EFR/16750/XScale discrimination that must conclude "16550A"), and the
//! THRE interrupt rules its interrupt-driven transmit path and THRE re-assertion
//! test rely on. Transmission is instantaneous: THR is always empty again by the
//! time the guest looks, so LSR always has THRE|TEMT.
//!
//! Output collects in a buffer the VMM drains with [`Uart::take_output`]; input is
//! queued with [`Uart::push_input`] into the receive FIFO (16 bytes, 1 with FIFOs
//! off), and [`Uart::irq_level`] is the interrupt line as the board wires it (gated
//! by MCR.OUT2, as on a PC).

use alloc::vec::Vec;

/// The base port of COM1.
pub const COM1: u16 = 0x3f8;
/// COM1's ISA interrupt.
pub const COM1_IRQ: u8 = 4;
/// Output is handed to the VMM at a newline or when this much is buffered.
pub const FLUSH_AT: usize = 256;

const RX_FIFO: usize = 16;

pub mod reg {
    /// RBR/THR, or DLL with LCR.DLAB.
    pub const DATA: u16 = 0;
    /// IER, or DLM with LCR.DLAB.
    pub const IER: u16 = 1;
    /// IIR on read, FCR on write.
    pub const IIR_FCR: u16 = 2;
    pub const LCR: u16 = 3;
    pub const MCR: u16 = 4;
    pub const LSR: u16 = 5;
    pub const MSR: u16 = 6;
    pub const SCR: u16 = 7;
}

pub mod ier {
    pub const RX_DATA: u8 = 1 << 0;
    pub const THRE: u8 = 1 << 1;
    pub const LINE_STATUS: u8 = 1 << 2;
    pub const MODEM_STATUS: u8 = 1 << 3;
}

pub mod iir {
    pub const NO_INT: u8 = 0x01;
    pub const MODEM_STATUS: u8 = 0x00;
    pub const THRE: u8 = 0x02;
    pub const RX_DATA: u8 = 0x04;
    pub const LINE_STATUS: u8 = 0x06;
    pub const FIFO_ENABLED: u8 = 0xc0;
}

pub mod lsr {
    pub const DATA_READY: u8 = 1 << 0;
    pub const OVERRUN: u8 = 1 << 1;
    pub const THRE: u8 = 1 << 5;
    pub const TEMT: u8 = 1 << 6;
}

pub mod mcr {
    pub const DTR: u8 = 1 << 0;
    pub const RTS: u8 = 1 << 1;
    pub const OUT1: u8 = 1 << 2;
    pub const OUT2: u8 = 1 << 3;
    pub const LOOP: u8 = 1 << 4;
}

pub mod msr {
    pub const DELTAS: u8 = 0x0f;
    pub const TERI: u8 = 1 << 2;
    pub const CTS: u8 = 1 << 4;
    pub const DSR: u8 = 1 << 5;
    pub const RI: u8 = 1 << 6;
    pub const DCD: u8 = 1 << 7;
}

const LCR_DLAB: u8 = 1 << 7;

/// The 16550A's registers and queues.
#[derive(Clone, Debug)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// Overrun (the only line error this model can produce).
    overrun: bool,
    /// MSR delta bits not yet read.
    msr_deltas: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    /// THRE interrupt armed: set when THR empties (immediately after a write) or
    /// when ETBEI is enabled; cleared by reading IIR while it is the source.
    thre_pending: bool,
    rx: [u8; RX_FIFO],
    rx_head: usize,
    rx_len: usize,
    out: Vec<u8>,
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart {
    pub fn new() -> Self {
        Self {
            ier: 0,
            lcr: 0,
            mcr: 0,
            overrun: false,
            msr_deltas: 0,
            scr: 0,
            // 115200 baud from the 1.8432 MHz clock, as firmware leaves it.
            dll: 1,
            dlm: 0,
            fifo_enabled: false,
            thre_pending: false,
            rx: [0; RX_FIFO],
            rx_head: 0,
            rx_len: 0,
            out: Vec::new(),
        }
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled {
            RX_FIFO
        } else {
            1
        }
    }

    fn rx_push(&mut self, b: u8) -> bool {
        if self.rx_len >= self.rx_capacity() {
            return false;
        }
        let tail = (self.rx_head + self.rx_len) % RX_FIFO;
        self.rx[tail] = b;
        self.rx_len += 1;
        true
    }

    fn rx_pop(&mut self) -> Option<u8> {
        if self.rx_len == 0 {
            return None;
        }
        let b = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % RX_FIFO;
        self.rx_len -= 1;
        Some(b)
    }

    fn rx_clear(&mut self) {
        self.rx_head = 0;
        self.rx_len = 0;
    }

    /// Queues guest input; returns how many bytes fit (the rest: try again after
    /// the guest has read some).
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        // In loopback the receiver hears only the transmitter.
        if self.mcr & mcr::LOOP != 0 {
            return 0;
        }
        bytes.iter().take_while(|&&b| self.rx_push(b)).count()
    }

    /// Output ready for the console: everything up to the last newline, or the
    /// whole buffer once it reaches [`FLUSH_AT`] bytes.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        if self.out.len() >= FLUSH_AT {
            return Some(core::mem::take(&mut self.out));
        }
        let end = self.out.iter().rposition(|&b| b == b'\n')? + 1;
        let rest = self.out.split_off(end);
        Some(core::mem::replace(&mut self.out, rest))
    }

    /// Everything buffered, newline or not (when the guest stops or idles).
    pub fn flush_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Modem-status inputs: in loopback, MCR's outputs; otherwise a connected
    /// terminal (CTS, DSR, DCD).
    fn modem_inputs(&self) -> u8 {
        if self.mcr & mcr::LOOP != 0 {
            let m = self.mcr;
            (if m & mcr::RTS != 0 { msr::CTS } else { 0 })
                | (if m & mcr::DTR != 0 { msr::DSR } else { 0 })
                | (if m & mcr::OUT1 != 0 { msr::RI } else { 0 })
                | (if m & mcr::OUT2 != 0 { msr::DCD } else { 0 })
        } else {
            msr::CTS | msr::DSR | msr::DCD
        }
    }

    fn write_mcr(&mut self, value: u8) {
        let before = self.modem_inputs();
        self.mcr = value & 0x1f;
        let after = self.modem_inputs();
        let changed = before ^ after;
        // DCTS, DDSR, DDCD on any change; TERI only on RI's trailing edge.
        let mut deltas = (changed >> 4) & 0b1011;
        if before & msr::RI != 0 && after & msr::RI == 0 {
            deltas |= msr::TERI;
        }
        self.msr_deltas |= deltas;
    }

    fn line_status(&self) -> u8 {
        let mut v = lsr::THRE | lsr::TEMT;
        if self.rx_len > 0 {
            v |= lsr::DATA_READY;
        }
        if self.overrun {
            v |= lsr::OVERRUN;
        }
        v
    }

    /// The highest-priority pending interrupt's IIR code (16550 order: line
    /// status, received data, THR empty, modem status).
    fn interrupt_id(&self) -> u8 {
        if self.ier & ier::LINE_STATUS != 0 && self.overrun {
            iir::LINE_STATUS
        } else if self.ier & ier::RX_DATA != 0 && self.rx_len > 0 {
            iir::RX_DATA
        } else if self.ier & ier::THRE != 0 && self.thre_pending {
            iir::THRE
        } else if self.ier & ier::MODEM_STATUS != 0 && self.msr_deltas != 0 {
            iir::MODEM_STATUS
        } else {
            iir::NO_INT
        }
    }

    /// The interrupt line: a pending interrupt, passed to the board through OUT2
    /// (which loopback mode disconnects).
    pub fn irq_level(&self) -> bool {
        self.mcr & mcr::OUT2 != 0 && self.mcr & mcr::LOOP == 0 && self.interrupt_id() != iir::NO_INT
    }

    fn transmit(&mut self, b: u8) {
        if self.mcr & mcr::LOOP != 0 {
            if !self.rx_push(b) {
                self.overrun = true;
            }
        } else {
            self.out.push(b);
        }
        // The character left at once: THR is empty again.
        self.thre_pending = true;
    }

    /// A byte read from `offset` (0..8) relative to the base port.
    pub fn read(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            reg::DATA if dlab => self.dll,
            reg::DATA => self.rx_pop().unwrap_or(0),
            reg::IER if dlab => self.dlm,
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                if id == iir::THRE {
                    self.thre_pending = false;
                }
                id | if self.fifo_enabled {
                    iir::FIFO_ENABLED
                } else {
                    0
                }
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let v = self.line_status();
                self.overrun = false;
                v
            }
            reg::MSR => {
                let v = self.modem_inputs() | self.msr_deltas;
                self.msr_deltas = 0;
                v
            }
            reg::SCR => self.scr,
            _ => 0xff,
        }
    }

    /// A byte written to `offset` (0..8) relative to the base port.
    pub fn write(&mut self, offset: u16, value: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            reg::DATA if dlab => self.dll = value,
            reg::DATA => self.transmit(value),
            reg::IER if dlab => self.dlm = value,
            reg::IER => {
                let enabling_thre = value & ier::THRE != 0 && self.ier & ier::THRE == 0;
                // The 16550A has four enable bits; the rest read as zero (which is
                // how Linux tells it from an XScale UART).
                self.ier = value & 0x0f;
                if enabling_thre {
                    self.thre_pending = true;
                }
            }
            reg::IIR_FCR => self.write_fcr(value),
            reg::LCR => self.lcr = value,
            reg::MCR => self.write_mcr(value),
            reg::SCR => self.scr = value,
            // LSR and MSR are read-only (writes reach factory-test latches).
            _ => {}
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & 1 != 0;
        if enable != self.fifo_enabled {
            self.rx_clear();
        }
        self.fifo_enabled = enable;
        // The receive trigger level (bits 6..8) is moot: data is offered at once.
        if enable && value & 2 != 0 {
            self.rx_clear();
        }
    }
}

#[cfg(test)]
mod tests;
