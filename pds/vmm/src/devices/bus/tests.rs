use super::*;
use crate::devices::legacy::pit::PIT_HZ;

const TSC_HZ: u64 = PIT_HZ * 100;

fn bus() -> PortBus {
    PortBus::new(PlatformConfig {
        tsc_hz: TSC_HZ,
        wall_clock: 1_796_434_245,
        now_tsc: 0,
        sleep: SleepPorts {
            control: 0x404,
            status: 0x405,
            s5_type: 5,
        },
    })
}

#[test]
fn unknown_ports_float_and_are_counted() {
    let mut b = bus();
    assert_eq!(b.io_in(0x1234, 1, 0), 0xff);
    assert_eq!(b.io_in(0x1234, 2, 0), 0xffff);
    assert_eq!(b.io_in(0x1234, 4, 0), 0xffff_ffff);
    assert_eq!(b.io_out(0x5678, 4, 0, 0), None);
    // A wide access that runs off a device into nothing counts as unknown too.
    assert_eq!(b.io_in(0x3ff, 2, 0), 0xff00);
    // Nonsense sizes.
    assert_eq!(b.io_in(0x3f8, 3, 0), u32::MAX);
    let unknown: std::vec::Vec<_> = b.stats().unknown().collect();
    assert_eq!(unknown, [(0x3f8, 1), (0x3ff, 1), (0x1234, 3), (0x5678, 1)]);
    for p in 0..200u16 {
        b.io_in(0x9000 + p, 1, 0);
    }
    assert_eq!(b.stats().unknown().count(), MAX_TRACKED_PORTS);
    assert_eq!(
        b.stats().unknown_untracked,
        200 - (MAX_TRACKED_PORTS as u64 - 4)
    );
}

#[test]
fn pci_type1_probe_finds_an_empty_bus() {
    let mut b = bus();
    // pci_check_type1: the dword latch reads back.
    b.io_out(0xcf8, 4, 0x8000_0000, 0);
    assert_eq!(b.io_in(0xcf8, 4, 0), 0x8000_0000);
    b.io_out(0xcf8, 4, 0x8000_0800, 0);
    assert_eq!(b.io_in(0xcfc, 4, 0), 0xffff_ffff);
    assert_eq!(b.io_in(0xcfe, 2, 0), 0xffff);
    assert_eq!(b.io_out(0xcfc, 4, 0x1234_5678, 0), None);
    // A byte write to 0xCF8 is not the latch.
    b.io_out(0xcf8, 1, 0, 0);
    assert_eq!(b.io_in(0xcf8, 4, 0), 0x8000_0800);
    assert_eq!(b.io_out(0xcf9, 1, 0x06, 0), Some(PlatformEvent::Reset));
    assert_eq!(b.stats().unknown().count(), 0);
}

#[test]
fn acpi_s5_powers_off() {
    let mut b = bus();
    assert_eq!(b.io_out(0x404, 1, 5 << 2, 0), None);
    assert_eq!(
        b.io_out(0x404, 1, (5 << 2) | (1 << 5), 0),
        Some(PlatformEvent::PowerOff)
    );
    assert_eq!(b.io_in(0x405, 1, 0), 0);
}

#[test]
fn uart_through_the_bus_with_wide_accesses() {
    let mut b = bus();
    // A word write to 0x3FB/0x3FC sets LCR and MCR together.
    b.io_out(0x3fb, 2, 0x0803, 0);
    assert_eq!(b.io_in(0x3fb, 2, 0), 0x0803);
    for &c in b"ok\n" {
        b.io_out(0x3f8, 1, u32::from(c), 0);
    }
    assert_eq!(b.uart.take_output().as_deref(), Some(&b"ok\n"[..]));
    b.io_out(0x3f9, 1, 0x02, 0);
    assert!(b.uart.irq_level());
    // LSR | MSR<<8
    assert_eq!(b.io_in(0x3fd, 2, 0) & 0xff, 0x60);
}

#[test]
fn pit_channel2_via_port_61() {
    let mut b = bus();
    // quick_pit_calibrate: gate on, speaker off; ch2 mode 0 lo/hi 0xffff.
    let p61 = b.io_in(0x61, 1, 0);
    b.io_out(0x61, 1, (p61 & !0x02) | 0x01, 0);
    b.io_out(0x43, 1, 0xb0, 0);
    b.io_out(0x42, 1, 0xff, 0);
    b.io_out(0x42, 1, 0xff, 0);
    let msb = |b: &mut PortBus, now| {
        b.io_in(0x42, 1, now);
        b.io_in(0x42, 1, now)
    };
    assert_eq!(msb(&mut b, 0), 0xff);
    // 256 PIT ticks later the MSB has dropped by one.
    assert_eq!(msb(&mut b, 256 * 100), 0xfe);
    assert_eq!(b.io_in(0x61, 1, 256 * 100) & 0x20, 0);
    assert_eq!(
        b.io_in(0x61, 1, 0x10000 * 100) & 0x20,
        0x20,
        "terminal count"
    );
    assert_eq!(b.io_in(0x61, 1, 0) & 0x0f, 0x01);
    assert_eq!(b.io_in(0x43, 1, 0), 0xff);
}

#[test]
fn pic_and_rtc_and_misc() {
    let mut b = bus();
    b.io_out(0x21, 1, 0xff, 0);
    b.io_out(0xa1, 1, 0xfb, 0);
    assert_eq!(b.io_in(0x21, 1, 0), 0xff);
    assert_eq!(b.io_in(0xa1, 1, 0), 0xfb);
    assert_eq!(b.io_in(0x20, 1, 0), 0);
    b.io_out(0x70, 1, 0x80 | 0x09, 0);
    assert_eq!(b.io_in(0x71, 1, 0), 0x26);
    assert!(b.rtc.nmi_masked());
    b.io_out(0x80, 1, 0x55, 0);
    b.io_out(0xed, 1, 0x55, 0);
    assert_eq!(b.io_in(0x92, 1, 0), 0x02);
    assert_eq!(b.io_out(0x92, 1, 0x03, 0), Some(PlatformEvent::Reset));
    assert_eq!(b.stats().unknown().count(), 0);
    assert!(b.stats().known > 0);
}

mod random {
    use super::*;
    use proptest::prelude::*;

    fn port() -> impl Strategy<Value = u16> {
        prop_oneof![
            prop::sample::select(std::vec![
                0x20u16, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x80, 0x92,
                0xed, 0xcf8, 0xcf9, 0xcfc, 0x404, 0x405
            ]),
            0x3f8u16..0x400,
            any::<u16>(),
        ]
    }

    proptest! {
        #[test]
        fn random_port_traffic_answers_within_size(
            ops in proptest::collection::vec((any::<bool>(), port(), 0u8..6, any::<u32>(), 0u64..1_000_000), 0..300)
        ) {
            let mut b = bus();
            let mut now = 0u64;
            for (is_in, p, size, value, dt) in ops {
                now += dt;
                if is_in {
                    let v = b.io_in(p, size, now);
                    if matches!(size, 1 | 2) {
                        prop_assert_eq!(v >> (8 * u32::from(size)), 0);
                    }
                } else if let Some(e) = b.io_out(p, size, value, now) {
                    // Only the reset ports and the sleep register raise events.
                    let ports: std::vec::Vec<u16> =
                        (0..u16::from(size.min(4))).map(|i| p.wrapping_add(i)).collect();
                    let expect = match e {
                        PlatformEvent::PowerOff => ports.contains(&0x404),
                        PlatformEvent::Reset => ports.contains(&0xcf9) || ports.contains(&0x92),
                    };
                    prop_assert!(expect, "{:?} from {:#x}/{}", e, p, size);
                }
                let _ = b.uart.take_output();
            }
        }
    }
}
