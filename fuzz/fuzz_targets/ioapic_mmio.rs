//! ioapic: any sequence of MMIO accesses, line changes and EOIs must never panic
//! and must keep the register invariants.
//!
//! Bit 1 of the first byte picks the layer: clear drives the core directly (6-byte
//! ops); set drives the PD adapter through `ipc::Handler` (16-byte ops) with
//! arbitrary labels, registers and channels, while a hostile vCPU PD drains the
//! interrupt queue, sleeps on it, or scribbles on its header.
#![no_main]

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use ioapic::api::{label, IrqEntry, Status};
use ioapic::pd::{self, IoapicPd, IRQ_QUEUE, IRQ_QUEUE_CAPACITY};
use ioapic::{InterruptRequest, InterruptSink, Ioapic, SinkFull, MMIO_BASE, NUM_PINS};
use ipc::testing::{leaked_region, FakeInit, RecordingKernel};
use ipc::{
    Channel, ChannelSet, Consumer, Handler, MessageInfo, MessageRegisters, PpCall, Queue, Region,
};
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

fn check_entries(io: &Ioapic) {
    for pin in 0..NUM_PINS {
        let e = io.entry(pin).unwrap_or(ioapic::RedirectionEntry::RESET);
        assert!(!e.remote_irr() || e.is_level());
        assert_eq!(e.0 & 0x00ff_ffff_fffe_0000, 0);
    }
}

fn core_ops(data: &[u8]) {
    let version = if data.first().is_some_and(|b| b & 1 == 1) {
        0x20
    } else {
        0x11
    };
    let mut io = Ioapic::new(0, version);
    let mut sink = Sink {
        delivered: 0,
        full: false,
    };
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
        check_entries(&io);
    }
    assert_eq!(io.stats().delivered, sink.delivered);
}

const VCPU: Channel = Channel::new(0);

/// One queue region for the whole run (leaking one per input would grow without
/// bound), reset before each input.
fn queue_region() -> Region<'static> {
    static REGION: OnceLock<Region<'static>> = OnceLock::new();
    *REGION.get_or_init(|| {
        leaked_region(Queue::<IrqEntry>::layout_size(IRQ_QUEUE_CAPACITY).unwrap_or(4096))
    })
}

fn pd_ops(data: &[u8]) {
    let region = queue_region();
    if Queue::<IrqEntry>::init(&region, IRQ_QUEUE_CAPACITY).is_err() {
        return;
    }
    let version = if data.first().is_some_and(|b| b & 1 == 1) {
        0x20
    } else {
        0x11
    };
    let init = FakeInit::new("ioapic")
        .region(IRQ_QUEUE, region)
        .variable(pd::VCPU_CHANNEL, 0)
        .variable(pd::IOAPIC_VERSION, version)
        .variable("lines_1", 0x00ff_00ff)
        .variable("lines_2", 0x00ff_ff00);
    let Ok(mut pd) = IoapicPd::init(&init) else {
        return;
    };
    let Ok(mut consumer) = Consumer::<IrqEntry>::new(region, IRQ_QUEUE_CAPACITY) else {
        return;
    };
    let mut k = RecordingKernel::default();
    let mut scribbled = false;
    for op in data.chunks(16) {
        let mut b = [0u8; 16];
        b[..op.len()].copy_from_slice(op);
        let word = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
        let ch = Channel::new(b[1] % 4);
        match b[0] % 8 {
            0..=3 => {
                let label = match b[2] % 5 {
                    0 => label::MMIO_READ,
                    1 => label::MMIO_WRITE,
                    2 => label::EOI,
                    3 => label::SET_LINE,
                    _ => word(4) | (word(8) << 32),
                };
                // Addresses mostly near the page, sometimes anywhere.
                let a0 = if b[2] & 0x80 == 0 {
                    (MMIO_BASE - 0x10).wrapping_add(word(4) % 0x1020)
                } else {
                    word(4) | (u64::from(b[3]) << 32)
                };
                let mut mrs = MessageRegisters::new();
                mrs.set(
                    0,
                    if label == label::SET_LINE {
                        word(4) % 32
                    } else {
                        a0
                    },
                );
                mrs.set(
                    1,
                    if b[3] & 0x40 == 0 {
                        word(8) % 10
                    } else {
                        word(8)
                    },
                );
                mrs.set(2, word(12));
                let count = usize::from(b[3] % 5);
                let reply = pd.protected(
                    &mut k,
                    PpCall::new(ch, MessageInfo::new(label, count), &mut mrs),
                );
                match reply {
                    Ok(info) => assert!(Status(info.label()).name().is_some()),
                    // Only a notification the fake kernel refuses could fail the
                    // call, and it grants them all.
                    Err(e) => panic!("protected failed: {e}"),
                }
            }
            4 => {
                while let Ok(Some(e)) = consumer.dequeue() {
                    if !scribbled {
                        assert!(e.request().is_ok(), "{e:?}");
                    }
                }
                if consumer.take_signal_request() {
                    let _ = pd.notified(&mut k, ChannelSet::from_iter([VCPU]));
                }
            }
            5 => {
                let _ = consumer.prepare_to_sleep();
            }
            6 => {
                // A hostile consumer writes any header word.
                if let Ok(w) = region.atomic_u32(usize::from(b[1] % 4) * 64) {
                    w.store(word(4) as u32, Ordering::Relaxed);
                    scribbled = true;
                }
            }
            _ => {
                let _ = pd.notified(&mut k, ChannelSet::from_bits(word(4) | (word(8) << 32)));
            }
        }
        check_entries(pd.ioapic());
    }
}

fuzz_target!(|data: &[u8]| {
    if data.first().is_some_and(|b| b & 2 == 2) {
        pd_ops(data);
    } else {
        core_ops(data);
    }
});
