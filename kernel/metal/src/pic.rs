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
