//! vmm port bus: any sequence of port reads and writes (any port, any size,
//! including the UART, PIT, RTC, PICs, PCI and ACPI sleep ports), guest input and
//! time steps must never panic; reads return only `size` bytes; the UART's output
//! is only ever what was written to THR outside loopback; only the S5 write powers
//! off.
//!
//! Each op is 8 bytes: kind, port selector (2), size, value (4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmm::devices::bus::{PlatformConfig, PortBus};
use vmm::devices::legacy::{PlatformEvent, SleepPorts};

const SLEEP: SleepPorts = SleepPorts {
    control: 0x404,
    status: 0x405,
    s5_type: 5,
};

/// Mostly the ports the platform has, sometimes any port.
fn port(sel: u16) -> u16 {
    const KNOWN: [u16; 24] = [
        0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x80, 0x92, 0xed, 0xcf8,
        0xcf9, 0xcfc, 0xcfe, 0x404, 0x405, 0x3f8, 0x3fa, 0x3fc, 0x3fe,
    ];
    match sel >> 14 {
        0 | 1 => KNOWN[usize::from(sel) % KNOWN.len()],
        2 => 0x3f8 + (sel & 7),
        _ => sel,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let tsc_hz = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let mut bus = PortBus::new(PlatformConfig {
        tsc_hz,
        wall_clock: i64::from(i32::from_le_bytes([head[4], head[5], head[6], head[7]])) << 2,
        now_tsc: 0,
        sleep: SLEEP,
    });
    let mut now = 0u64;
    let mut written = 0usize;
    let mut taken = 0usize;
    for op in ops.chunks(8) {
        let mut b = [0u8; 8];
        b[..op.len()].copy_from_slice(op);
        let p = port(u16::from_le_bytes([b[1], b[2]]));
        let size = match b[3] % 5 {
            0 => 1,
            1 => 2,
            2 => 4,
            3 => b[3],
            _ => 1,
        };
        let value = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        match b[0] % 6 {
            0 | 1 => {
                let v = bus.io_in(p, size, now);
                if matches!(size, 1 | 2) {
                    assert_eq!(v >> (8 * u32::from(size)), 0, "{p:#x}/{size}: {v:#x}");
                }
            }
            2 | 3 => {
                // Count THR writes that can reach the output (DLAB clear, not
                // loopback) as an upper bound on what comes out.
                if matches!(size, 1 | 2 | 4) {
                    written += usize::from(size);
                }
                let event = bus.io_out(p, size, value, now);
                if event == Some(PlatformEvent::PowerOff) {
                    let bytes = value.to_le_bytes();
                    let hit = (0..usize::from(size).min(4)).any(|i| {
                        p.wrapping_add(i as u16) == SLEEP.control
                            && bytes[i] & 0x20 != 0
                            && (bytes[i] >> 2) & 7 == 5
                    });
                    assert!(hit);
                }
            }
            4 => {
                bus.uart.push_input(&b[4..]);
            }
            _ => {
                now = now.saturating_add(u64::from(value) << (b[1] % 32));
            }
        }
        let _ = bus.uart.irq_level();
        if let Some(out) = bus.uart.take_output() {
            taken += out.len();
        }
        assert!(taken <= written);
    }
    taken += bus.uart.flush_output().len();
    assert!(taken <= written);
    assert!(bus.stats().unknown().count() <= vmm::devices::bus::MAX_TRACKED_PORTS);
});
