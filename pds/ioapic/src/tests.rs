use super::*;
use std::vec::Vec;

#[derive(Default)]
struct Sink {
    got: Vec<InterruptRequest>,
    /// Refuse everything while set.
    full: bool,
}

impl InterruptSink for Sink {
    fn deliver(&mut self, r: InterruptRequest) -> Result<(), SinkFull> {
        if self.full {
            return Err(SinkFull);
        }
        self.got.push(r);
        Ok(())
    }
}

fn rd(io: &mut Ioapic, index: u8) -> u32 {
    let mut s = Sink::default();
    io.mmio_write(IOREGSEL, 4, u64::from(index), &mut s);
    io.mmio_read(IOWIN, 4) as u32
}

fn wr(io: &mut Ioapic, index: u8, value: u32, sink: &mut Sink) {
    io.mmio_write(IOREGSEL, 4, u64::from(index), sink);
    io.mmio_write(IOWIN, 4, u64::from(value), sink);
}

/// An 82093AA with ID 0 and an empty sink.
fn fresh() -> (Ioapic, Sink) {
    (Ioapic::new(0, VERSION_82093AA), Sink::default())
}

/// Programs pin `pin`: vector, level?, masked?, destination.
fn program(
    io: &mut Ioapic,
    pin: u8,
    vector: u8,
    level: bool,
    masked: bool,
    dest: u8,
    s: &mut Sink,
) {
    let mut low = u32::from(vector);
    if level {
        low |= 1 << 15;
    }
    if masked {
        low |= 1 << 16;
    }
    wr(io, REG_REDIR_BASE + 2 * pin + 1, u32::from(dest) << 24, s);
    wr(io, REG_REDIR_BASE + 2 * pin, low, s);
}

#[test]
fn reset_state_and_identity_registers() {
    let mut io = Ioapic::new(2, VERSION_82093AA);
    assert_eq!(rd(&mut io, REG_ID), 2 << 24);
    assert_eq!(rd(&mut io, REG_VERSION), 0x0017_0011);
    assert_eq!(rd(&mut io, REG_ARBITRATION), 2 << 24);
    for pin in 0..NUM_PINS as u8 {
        assert_eq!(rd(&mut io, REG_REDIR_BASE + 2 * pin), 1 << 16, "masked");
        assert_eq!(rd(&mut io, REG_REDIR_BASE + 2 * pin + 1), 0);
    }
    let mut v20 = Ioapic::new(0, VERSION_WITH_EOI);
    assert_eq!(rd(&mut v20, REG_VERSION), 0x0017_0020);
    // Max redirection entry 23: index 0x3f exists, 0x40 does not.
    assert_eq!(REG_REDIR_LAST, 0x3f);
    assert_eq!(rd(&mut v20, 0x40), 0);
    assert_eq!(rd(&mut v20, 0x03), 0);
    assert_eq!(rd(&mut v20, 0xff), 0);
}

#[test]
fn id_is_four_bits_and_version_arbitration_are_read_only() {
    let (mut io, mut s) = fresh();
    wr(&mut io, REG_ID, 0xffff_ffff, &mut s);
    assert_eq!(rd(&mut io, REG_ID), 0x0f << 24);
    assert_eq!(rd(&mut io, REG_ARBITRATION), 0x0f << 24);
    wr(&mut io, REG_VERSION, 0, &mut s);
    assert_eq!(rd(&mut io, REG_VERSION), 0x0017_0011);
    wr(&mut io, REG_ARBITRATION, 0, &mut s);
    assert_eq!(rd(&mut io, REG_ARBITRATION), 0x0f << 24);
    // A write to a register that does not exist changes nothing.
    wr(&mut io, 0x50, 0x1234, &mut s);
    assert_eq!(rd(&mut io, 0x50), 0);
    assert!(s.got.is_empty());
}

#[test]
fn ioregsel_reads_back_and_accepts_byte_writes() {
    let (mut io, mut s) = fresh();
    io.mmio_write(IOREGSEL, 4, 0xdead_be12, &mut s);
    assert_eq!(io.mmio_read(IOREGSEL, 4), 0x12);
    io.mmio_write(IOREGSEL, 1, 0x01, &mut s);
    assert_eq!(io.mmio_read(IOWIN, 4), 0x0017_0011);
    // Sub-dword reads pick bytes out of the register.
    assert_eq!(io.mmio_read(IOWIN + 2, 1), 0x17);
    assert_eq!(io.mmio_read(IOWIN, 2), 0x0011);
    assert_eq!(io.mmio_read(IOWIN + 2, 2), 0x0017);
    // Unsupported accesses are ignored and counted.
    assert_eq!(io.mmio_read(IOWIN, 8), 0);
    io.mmio_write(IOWIN, 2, 0, &mut s);
    io.mmio_write(IOWIN + 1, 4, 0, &mut s);
    io.mmio_write(0x20, 4, 0, &mut s);
    assert_eq!(io.stats().bad_access, 4);
    assert_eq!(io.mmio_read(0x30, 4), 0);
}

#[test]
fn redirection_entries_keep_read_only_bits_and_drop_reserved_ones() {
    let (mut io, mut s) = fresh();
    // Level, unmasked, vector 0x30, then assert: remote IRR becomes 1.
    program(&mut io, 5, 0x30, true, false, 1, &mut s);
    io.set_irq(5, true, &mut s);
    assert_eq!(s.got.len(), 1);
    let low = rd(&mut io, REG_REDIR_BASE + 10);
    assert_ne!(low & (1 << 14), 0, "remote IRR set");
    // The guest writes the entry with remote IRR and delivery status as 0 and 1.
    wr(
        &mut io,
        REG_REDIR_BASE + 10,
        (low & !(1 << 14)) | (1 << 12),
        &mut s,
    );
    let low = rd(&mut io, REG_REDIR_BASE + 10);
    assert_ne!(low & (1 << 14), 0, "remote IRR is read-only");
    assert_eq!(low & (1 << 12), 0, "delivery status is read-only");
    // Reserved bits 17-31 and 32-55 read as zero; the destination byte sticks.
    wr(&mut io, REG_REDIR_BASE + 10, low | 0xfffe_0000, &mut s);
    assert_eq!(rd(&mut io, REG_REDIR_BASE + 10) & 0xfffe_0000, 0);
    wr(&mut io, REG_REDIR_BASE + 11, 0xabff_ffff, &mut s);
    assert_eq!(rd(&mut io, REG_REDIR_BASE + 11), 0xab00_0000);
    // All writable low bits round-trip (polarity, dest mode, delivery mode).
    let mut io = Ioapic::new(0, VERSION_82093AA);
    let pattern = 0x0001_2fffu32 & !(1 << 12);
    wr(&mut io, REG_REDIR_BASE, pattern, &mut s);
    assert_eq!(rd(&mut io, REG_REDIR_BASE), pattern);
    assert!(io.entry(0).is_some_and(|e| e.active_low()));
}

#[test]
fn edge_delivers_once_per_rising_edge() {
    let (mut io, mut s) = fresh();
    program(&mut io, 1, 0x41, false, false, 3, &mut s);
    io.set_irq(1, true, &mut s);
    io.set_irq(1, true, &mut s);
    assert_eq!(s.got.len(), 1, "held high: one interrupt");
    io.set_irq(1, false, &mut s);
    io.set_irq(1, true, &mut s);
    assert_eq!(s.got.len(), 2);
    let r = s.got[1];
    assert_eq!(
        r,
        InterruptRequest {
            vector: 0x41,
            delivery_mode: DeliveryMode::Fixed,
            destination_mode: DestinationMode::Physical,
            destination: 3,
            trigger: TriggerMode::Edge,
            pin: 1,
        }
    );
    assert!(
        !io.entry(1).is_some_and(|e| e.remote_irr()),
        "no remote IRR for edge"
    );
    // EOI does nothing for edge entries.
    io.eoi(0x41, &mut s);
    assert_eq!(s.got.len(), 2);
}

#[test]
fn masked_edges_are_lost() {
    let (mut io, mut s) = fresh();
    program(&mut io, 2, 0x42, false, true, 0, &mut s);
    io.set_irq(2, true, &mut s);
    io.set_irq(2, false, &mut s);
    program(&mut io, 2, 0x42, false, false, 0, &mut s);
    assert!(s.got.is_empty());
    io.set_irq(2, true, &mut s);
    assert_eq!(s.got.len(), 1);
}

#[test]
fn level_remote_irr_eoi_and_redelivery() {
    let (mut io, mut s) = fresh();
    program(&mut io, 9, 0x59, true, false, 0, &mut s);
    io.set_irq(9, true, &mut s);
    assert_eq!(s.got.len(), 1);
    assert_eq!(s.got[0].trigger, TriggerMode::Level);
    assert!(io.entry(9).is_some_and(|e| e.remote_irr()));
    // Still asserted, remote IRR set: nothing more.
    io.set_irq(9, true, &mut s);
    assert_eq!(s.got.len(), 1);
    // EOI for another vector: nothing.
    io.eoi(0x58, &mut s);
    assert_eq!(s.got.len(), 1);
    // EOI while the line is still asserted: delivered again.
    io.eoi(0x59, &mut s);
    assert_eq!(s.got.len(), 2);
    assert!(io.entry(9).is_some_and(|e| e.remote_irr()));
    // The device drops the line, then EOI: remote IRR clears, no delivery.
    io.set_irq(9, false, &mut s);
    io.eoi(0x59, &mut s);
    assert_eq!(s.got.len(), 2);
    assert!(!io.entry(9).is_some_and(|e| e.remote_irr()));
}

#[test]
fn unmasking_an_asserted_level_line_delivers() {
    let (mut io, mut s) = fresh();
    program(&mut io, 4, 0x34, true, true, 0, &mut s);
    io.set_irq(4, true, &mut s);
    assert!(s.got.is_empty());
    program(&mut io, 4, 0x34, true, false, 0, &mut s);
    assert_eq!(s.got.len(), 1);
    // Masking does not clear remote IRR; EOI while masked does not deliver.
    program(&mut io, 4, 0x34, true, true, 0, &mut s);
    assert!(io.entry(4).is_some_and(|e| e.remote_irr()));
    io.eoi(0x34, &mut s);
    assert_eq!(s.got.len(), 1);
    program(&mut io, 4, 0x34, true, false, 0, &mut s);
    assert_eq!(s.got.len(), 2);
}

#[test]
fn eoi_register_only_on_version_0x20() {
    let mut s = Sink::default();
    let mut io = Ioapic::new(0, VERSION_WITH_EOI);
    program(&mut io, 3, 0x63, true, false, 0, &mut s);
    io.set_irq(3, true, &mut s);
    io.mmio_write(EOI, 4, 0x63, &mut s);
    assert_eq!(s.got.len(), 2, "EOI register re-delivers the asserted line");

    let mut old = Ioapic::new(0, VERSION_82093AA);
    let mut s = Sink::default();
    program(&mut old, 3, 0x63, true, false, 0, &mut s);
    old.set_irq(3, true, &mut s);
    old.mmio_write(EOI, 4, 0x63, &mut s);
    assert_eq!(s.got.len(), 1);
    assert_eq!(old.stats().bad_access, 1);
}

#[test]
fn switching_to_edge_clears_remote_irr() {
    let (mut io, mut s) = fresh();
    program(&mut io, 7, 0x77, true, false, 0, &mut s);
    io.set_irq(7, true, &mut s);
    assert!(io.entry(7).is_some_and(|e| e.remote_irr()));
    program(&mut io, 7, 0x77, false, false, 0, &mut s);
    assert!(!io.entry(7).is_some_and(|e| e.remote_irr()));
}

#[test]
fn delivery_modes_destinations_and_reserved_modes() {
    let (mut io, mut s) = fresh();
    // Logical destination, lowest priority, level.
    let low = 0x51 | (1 << 8) | (1 << 11) | (1 << 15);
    wr(&mut io, REG_REDIR_BASE + 1, 0x0f << 24, &mut s);
    wr(&mut io, REG_REDIR_BASE, low, &mut s);
    io.set_irq(0, true, &mut s);
    let r = s.got[0];
    assert_eq!(r.delivery_mode, DeliveryMode::LowestPriority);
    assert_eq!(r.destination_mode, DestinationMode::Logical);
    assert_eq!(r.destination, 0x0f);
    // NMI programmed as level behaves as edge: no remote IRR, one per edge.
    wr(&mut io, REG_REDIR_BASE + 2, (4 << 8) | (1 << 15), &mut s);
    io.set_irq(1, true, &mut s);
    io.set_irq(1, true, &mut s);
    assert_eq!(s.got.len(), 2);
    assert_eq!(s.got[1].delivery_mode, DeliveryMode::Nmi);
    assert_eq!(s.got[1].trigger, TriggerMode::Edge);
    assert!(!io.entry(1).is_some_and(|e| e.remote_irr()));
    for (mode, want) in [
        (2, DeliveryMode::Smi),
        (5, DeliveryMode::Init),
        (7, DeliveryMode::ExtInt),
    ] {
        wr(&mut io, REG_REDIR_BASE + 4, mode << 8, &mut s);
        io.set_irq(2, false, &mut s);
        io.set_irq(2, true, &mut s);
        assert_eq!(s.got.last().map(|r| r.delivery_mode), Some(want));
    }
    // Reserved delivery modes 3 and 6 are never delivered.
    let before = s.got.len();
    for mode in [3u32, 6] {
        wr(&mut io, REG_REDIR_BASE + 6, (mode << 8) | (1 << 15), &mut s);
        io.set_irq(3, true, &mut s);
        io.set_irq(3, false, &mut s);
    }
    assert_eq!(s.got.len(), before);
    assert_eq!(io.stats().reserved_mode, 2);
}

#[test]
fn a_full_sink_leaves_the_request_pending() {
    let (mut io, mut s) = fresh();
    program(&mut io, 10, 0x70, false, false, 0, &mut s);
    program(&mut io, 11, 0x71, true, false, 0, &mut s);
    s.full = true;
    io.set_irq(10, true, &mut s);
    io.set_irq(11, true, &mut s);
    assert!(s.got.is_empty());
    assert!(io.entry(10).is_some_and(|e| e.delivery_status()));
    assert!(io
        .entry(11)
        .is_some_and(|e| e.delivery_status() && !e.remote_irr()));
    assert_ne!(
        rd(&mut io, REG_REDIR_BASE + 20) & (1 << 12),
        0,
        "visible to the guest"
    );
    s.full = false;
    io.retry_pending(&mut s);
    assert_eq!(
        s.got.iter().map(|r| r.vector).collect::<Vec<_>>(),
        [0x70, 0x71]
    );
    assert!(io.entry(10).is_some_and(|e| !e.delivery_status()));
    assert!(io.entry(11).is_some_and(|e| e.remote_irr()));
    io.retry_pending(&mut s);
    assert_eq!(s.got.len(), 2, "nothing delivered twice");
}

#[test]
fn out_of_range_pins_and_reset() {
    let mut io = Ioapic::new(1, VERSION_82093AA);
    let mut s = Sink::default();
    io.set_irq(24, true, &mut s);
    io.set_irq(usize::MAX, true, &mut s);
    assert!(s.got.is_empty());
    program(&mut io, 0, 0x30, true, false, 0, &mut s);
    io.set_irq(0, true, &mut s);
    io.reset();
    assert_eq!(io.entry(0), Some(RedirectionEntry::RESET));
    assert_eq!(rd(&mut io, REG_ID), 1 << 24);
    // The line is still high: unmasking delivers.
    program(&mut io, 0, 0x30, true, false, 0, &mut s);
    assert_eq!(s.got.len(), 2);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Read(u64, u8),
        Write(u64, u8, u64),
        Irq(usize, bool),
        Eoi(u8),
        Retry,
        Full(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..0x100, 0u8..9).prop_map(|(o, s)| Op::Read(o, s)),
            (
                prop_oneof![Just(0u64), Just(0x10), Just(0x40), 0u64..0x100],
                0u8..9,
                any::<u64>()
            )
                .prop_map(|(o, s, v)| Op::Write(o, s, v)),
            (0usize..30, any::<bool>()).prop_map(|(p, l)| Op::Irq(p, l)),
            any::<u8>().prop_map(Op::Eoi),
            Just(Op::Retry),
            any::<bool>().prop_map(Op::Full),
        ]
    }

    proptest! {
        /// Any access sequence: no panic, remote IRR only on level entries, and
        /// every delivered request matches its entry's vector.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec(op(), 0..200)) {
            let mut io = Ioapic::new(0, VERSION_WITH_EOI);
            let mut s = Sink::default();
            for op in ops {
                match op {
                    Op::Read(o, sz) => { io.mmio_read(o, sz); }
                    Op::Write(o, sz, v) => io.mmio_write(o, sz, v, &mut s),
                    Op::Irq(p, l) => io.set_irq(p, l, &mut s),
                    Op::Eoi(v) => io.eoi(v, &mut s),
                    Op::Retry => io.retry_pending(&mut s),
                    Op::Full(f) => s.full = f,
                }
                for pin in 0..NUM_PINS {
                    let e = io.entry(pin).unwrap();
                    prop_assert!(!e.remote_irr() || e.is_level());
                    prop_assert_eq!(e.0 & 0x00ff_ffff_fffe_0000, 0);
                }
            }
            prop_assert_eq!(io.stats().delivered, s.got.len() as u64);
        }
    }
}

#[test]
fn delivery_mode_codes_round_trip_and_reserved_ones_are_refused() {
    for code in 0..=u8::MAX {
        match DeliveryMode::from_code(code) {
            Some(m) => assert_eq!(m.code(), code),
            None => assert!(matches!(code, 3 | 6 | 8..), "code {code}"),
        }
    }
    assert_eq!(DeliveryMode::from_code(4), Some(DeliveryMode::Nmi));
}
