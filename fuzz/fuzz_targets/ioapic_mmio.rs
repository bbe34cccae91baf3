//! ioapic: any sequence of MMIO accesses, line changes and EOIs must never panic
//! and must keep the register invariants.
#![no_main]

use ioapic::{InterruptRequest, InterruptSink, Ioapic, SinkFull, NUM_PINS};
use libfuzzer_sys::fuzz_target;

struct Sink {
    delivered: u64,
    full: bool,
}

impl InterruptSink for Sink {
    fn deliver(&mut self, _r: InterruptRequest) -> Result<(), SinkFull> {
        if self.full {
            return Err(SinkFull);
        }
        self.delivered += 1;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let version = if data.first().is_some_and(|b| b & 1 == 1) { 0x20 } else { 0x11 };
    let mut io = Ioapic::new(0, version);
    let mut sink = Sink { delivered: 0, full: false };
    for op in data.chunks(6) {
        let mut b = [0u8; 6];
        b[..op.len()].copy_from_slice(op);
        let value = u64::from(u32::from_le_bytes([b[2], b[3], b[4], b[5]]));
        match b[0] % 8 {
            0 => {
                io.mmio_read(u64::from(b[1]), b[2] % 9);
            }
            1 => io.mmio_write(0x00, 4, value, &mut sink),
            2 => io.mmio_write(0x10, 4, value, &mut sink),
            3 => io.mmio_write(u64::from(b[1]), b[2] % 9, value, &mut sink),
            4 => io.set_irq(usize::from(b[1] % 32), b[2] & 1 == 1, &mut sink),
            5 => io.eoi(b[1], &mut sink),
            6 => io.retry_pending(&mut sink),
            _ => sink.full = b[1] & 1 == 1,
        }
        for pin in 0..NUM_PINS {
            let e = io.entry(pin).unwrap_or(ioapic::RedirectionEntry::RESET);
            assert!(!e.remote_irr() || e.is_level());
            assert_eq!(e.0 & 0x00ff_ffff_fffe_0000, 0);
        }
    }
    assert_eq!(io.stats().delivered, sink.delivered);
});
