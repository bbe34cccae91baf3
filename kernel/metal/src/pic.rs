//! The legacy 8259 PICs: lines 0..15 at vectors 32..47, all masked until a PD
//! holds the line; a line stays masked from its interrupt until its owner acks it.

use crate::cpu::{inb, outb};

pub const VECTOR_BASE: u64 = 32;

const MASTER: u16 = 0x20;
const SLAVE: u16 = 0xa0;

pub fn init() {
    // ICW1..4: cascade, vectors 0x20/0x28, slave on line 2, 8086 mode.
    for (port, base, cascade) in [(MASTER, 0x20, 4), (SLAVE, 0x28, 2)] {
        outb(port, 0x11);
        outb(port + 1, base);
        outb(port + 1, cascade);
        outb(port + 1, 0x01);
        outb(port + 1, 0xff);
    }
}

fn port_bit(line: u8) -> (u16, u8) {
    if line < 8 {
        (MASTER + 1, line)
    } else {
        (SLAVE + 1, line - 8)
    }
}

pub fn unmask(line: u8) {
    let (port, bit) = port_bit(line & 15);
    outb(port, inb(port) & !(1 << bit));
    if line >= 8 {
        unmask(2);
    }
}

pub fn mask(line: u8) {
    let (port, bit) = port_bit(line & 15);
    outb(port, inb(port) | (1 << bit));
}

pub fn end_of_interrupt(line: u8) {
    if line >= 8 {
        outb(SLAVE, 0x20);
    }
    outb(MASTER, 0x20);
}

/// The kernel's tick: PIT channel 0 as a rate generator on line 0.
pub const TIMER_LINE: u8 = 0;
pub const TICK_US: u64 = 1000;

pub fn start_timer() {
    let divisor = (1_193_182 * TICK_US / 1_000_000) as u16;
    outb(0x43, 0x34); // channel 0, lobyte/hibyte, mode 2
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
    unmask(TIMER_LINE);
}

/// The TSC's rate in Hz, measured over ~10 ms of PIT channel 2 (mode 0, gated by
/// port 0x61; its output reads back in bit 5). Under QEMU TCG the TSC runs at the
/// host's rate and the PIT on the virtual clock, so this is what a guest's timers
/// must be converted with; under `-icount` both follow the instruction count.
pub fn measure_tsc_hz() -> u64 {
    const COUNT: u64 = 11_932;
    let gate = inb(0x61);
    outb(0x61, (gate & !0x02) | 0x01);
    outb(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0
    outb(0x42, COUNT as u8);
    outb(0x42, (COUNT >> 8) as u8);
    let start = crate::cpu::rdtsc();
    let mut spins = 0u64;
    // Bounded: a PIT that never fires must not hang the boot.
    while inb(0x61) & 0x20 == 0 && spins < 100_000_000 {
        spins += 1;
    }
    let end = crate::cpu::rdtsc();
    outb(0x61, gate);
    end.wrapping_sub(start).saturating_mul(1_193_182) / COUNT
}
