//! vmm x2APIC: any sequence of MSR reads and writes, interrupt requests,
//! acknowledgements and time steps must never panic, and must keep the priority
//! rules: only a vector whose class beats PPR is offered, no vector below 16 is
//! ever requested or in service, an EOI names the highest in-service vector, and
//! an armed timer's deadline lies in the future after a poll.
//!
//! Each op is 12 bytes: kind, MSR selector, then a 64-bit value / vector / time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmm::devices::lapic::{msr, Lapic, LapicConfig, LapicEvent};

fuzz_target!(|data: &[u8]| {
    let Some((head, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let cfg = LapicConfig {
        apic_id: u32::from(head[0]),
        // Any frequencies, including degenerate ones.
        tsc_hz: u64::from(u32::from_le_bytes([head[1], head[2], head[3], 0])) << (head[4] % 16),
        bus_hz: u64::from(u16::from_le_bytes([head[5], head[6]])) << (head[7] % 24),
    };
    let mut l = Lapic::new(cfg);
    let mut now = 0u64;
    for op in ops.chunks(12) {
        let mut b = [0u8; 12];
        b[..op.len()].copy_from_slice(op);
        let value = u64::from_le_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]);
        let m = match b[1] {
            0xfe => msr::APIC_BASE,
            0xfd => msr::TSC_DEADLINE,
            x => msr::X2APIC_FIRST + u32::from(x),
        };
        match b[0] % 8 {
            0 | 1 => {
                let in_service = l.isr().highest();
                if let Ok(Some(LapicEvent::Eoi { vector, .. })) = l.write_msr(m, value, now) {
                    assert_eq!(Some(vector), in_service);
                }
            }
            2 => {
                let _ = l.read_msr(m, now);
            }
            3 => l.request(b[2]),
            4 => l.request_level(b[2]),
            5 => {
                if let Some(v) = l.pending() {
                    assert!(u32::from(v) & 0xf0 > l.ppr() & 0xf0);
                    assert!(l.acknowledge(v));
                }
            }
            6 => {
                let was = l.irr().contains(b[2]);
                assert_eq!(l.acknowledge(b[2]), was);
            }
            _ => {
                now = now.saturating_add(value >> (b[10] % 64));
                l.poll(now);
                if let Some(d) = l.next_deadline() {
                    assert!(d > now || now == u64::MAX);
                }
            }
        }
        for v in 0..16u8 {
            assert!(!l.irr().contains(v) && !l.isr().contains(v));
        }
    }
});
