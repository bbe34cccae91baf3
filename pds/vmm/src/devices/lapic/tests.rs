use super::*;
use proptest::prelude::*;

const TSC_HZ: u64 = 2_000_000_000;
const BUS_HZ: u64 = 100_000_000;

fn lapic() -> Lapic {
    Lapic::new(LapicConfig {
        apic_id: 0,
        tsc_hz: TSC_HZ,
        bus_hz: BUS_HZ,
    })
}

/// Software-enabled, as Linux leaves it after setup_local_APIC.
fn enabled() -> Lapic {
    let mut l = lapic();
    l.write_msr(msr::SVR, 0x1ff, 0).expect("SVR");
    l
}

fn rd(l: &Lapic, m: u32) -> u64 {
    l.read_msr(m, 0).expect("readable")
}

#[test]
fn reset_state_and_identity() {
    let l = Lapic::new(LapicConfig {
        apic_id: 0x13,
        tsc_hz: TSC_HZ,
        bus_hz: BUS_HZ,
    });
    assert_eq!(
        rd(&l, msr::APIC_BASE),
        0xfee0_0000 | APIC_BASE_BSP | APIC_BASE_EN | APIC_BASE_EXTD
    );
    assert_eq!(rd(&l, msr::ID), 0x13);
    assert_eq!(rd(&l, msr::VERSION), 0x6_0014);
    assert_eq!(rd(&l, msr::LDR), (1 << 16) | (1 << 3));
    assert_eq!(rd(&l, msr::SVR), 0xff);
    for m in [
        msr::LVT_CMCI,
        msr::LVT_TIMER,
        msr::LVT_LINT0,
        msr::LVT_ERROR,
    ] {
        assert_eq!(rd(&l, m), 1 << 16);
    }
    // Software-disabled: requests are held, not offered.
    let mut l = l;
    l.request(0x40);
    assert_eq!(l.pending(), None);
    l.write_msr(msr::SVR, 0x1ff, 0).expect("SVR");
    assert_eq!(l.pending(), Some(0x40));
}

#[test]
fn read_only_write_only_and_reserved_registers_fault() {
    let mut l = enabled();
    for m in [
        msr::ID,
        msr::VERSION,
        msr::PPR,
        msr::LDR,
        msr::ISR0,
        msr::IRR0 + 7,
        msr::TMR0,
        msr::TIMER_CURRENT,
    ] {
        assert_eq!(l.write_msr(m, 0, 0), Err(Gp), "{m:#x}");
    }
    for m in [
        msr::EOI,
        msr::SELF_IPI,
        0x800,
        0x801,
        0x809,
        0x80c,
        0x80e,
        0x831,
        0x83a,
        0x840,
        0x8ff,
    ] {
        assert_eq!(l.read_msr(m, 0), Err(Gp), "{m:#x}");
    }
    // Reserved bits.
    assert_eq!(l.write_msr(msr::TPR, 0x100, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::TPR, 1 << 32, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::EOI, 1, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::SVR, 0x1000, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::ESR, 1, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::LVT_ERROR, 0x700 | 0xfe, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::LVT_TIMER, 3 << 17, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::LVT_TIMER, 1 << 12, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::TIMER_DIVIDE, 4, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::SELF_IPI, 0x100, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::ICR, 1 << 12, 0), Err(Gp));
    assert_eq!(l.write_msr(msr::APIC_BASE, 1, 0), Err(Gp));
    // Writable registers read back.
    l.write_msr(msr::TPR, 0x20, 0).expect("TPR");
    assert_eq!(rd(&l, msr::TPR), 0x20);
    l.write_msr(msr::LVT_LINT0, 0x700, 0).expect("ExtINT LINT0");
    assert_eq!(rd(&l, msr::LVT_LINT0), 0x700);
    l.write_msr(msr::LVT_PERF, 0x400, 0).expect("NMI perf");
    assert_eq!(rd(&l, msr::LVT_PERF), 0x400);
}

#[test]
fn apic_base_transitions() {
    let mut l = enabled();
    let base = rd(&l, msr::APIC_BASE);
    // x2APIC -> xAPIC directly is invalid; EXTD without EN too.
    assert_eq!(
        l.write_msr(msr::APIC_BASE, base & !APIC_BASE_EXTD, 0),
        Err(Gp)
    );
    assert_eq!(
        l.write_msr(msr::APIC_BASE, base & !APIC_BASE_EN, 0),
        Err(Gp)
    );
    // Disable: the state resets and the x2APIC MSRs fault.
    l.request(0x50);
    l.write_msr(msr::APIC_BASE, base & !(APIC_BASE_EN | APIC_BASE_EXTD), 0)
        .expect("disable");
    assert_eq!(l.read_msr(msr::ID, 0), Err(Gp));
    assert_eq!(l.irr().highest(), None);
    // Disabled -> x2APIC directly is invalid; via xAPIC it works. BSP is read-only.
    assert_eq!(l.write_msr(msr::APIC_BASE, base, 0), Err(Gp));
    l.write_msr(msr::APIC_BASE, 0xfee0_0000 | APIC_BASE_EN, 0)
        .expect("xAPIC");
    assert_eq!(l.read_msr(msr::TPR, 0), Err(Gp));
    l.write_msr(
        msr::APIC_BASE,
        0xfee0_0000 | APIC_BASE_EN | APIC_BASE_EXTD,
        0,
    )
    .expect("x2APIC");
    assert_eq!(rd(&l, msr::APIC_BASE), base);
    assert_eq!(rd(&l, msr::SVR), 0xff);
}

#[test]
fn priority_tpr_ppr_eoi() {
    let mut l = enabled();
    l.request(0x31);
    l.request(0x45);
    l.request_level(0x62);
    assert_eq!(l.pending(), Some(0x62));
    assert!(l.acknowledge(0x62));
    assert_eq!(rd(&l, msr::PPR), 0x60);
    // 0x45 is a lower class than the in-service 0x62: held.
    assert_eq!(l.pending(), None);
    assert_eq!(rd(&l, msr::ISR0 + 3), 1 << 2);
    assert_eq!(rd(&l, msr::TMR0 + 3), 1 << 2);
    assert_eq!(
        l.write_msr(msr::EOI, 0, 0),
        Ok(Some(LapicEvent::Eoi {
            vector: 0x62,
            level: true
        }))
    );
    assert_eq!(l.pending(), Some(0x45));
    // TPR 0x45: class 4 is not above it; 0x50 would be.
    l.write_msr(msr::TPR, 0x45, 0).expect("TPR");
    assert_eq!(rd(&l, msr::PPR), 0x45);
    assert_eq!(l.pending(), None);
    l.request(0x50);
    assert_eq!(l.pending(), Some(0x50));
    assert!(l.acknowledge(0x50));
    assert!(!l.acknowledge(0x50));
    assert_eq!(
        l.write_msr(msr::EOI, 0, 0),
        Ok(Some(LapicEvent::Eoi {
            vector: 0x50,
            level: false
        }))
    );
    // Nothing in service: EOI is a no-op.
    assert_eq!(l.write_msr(msr::EOI, 0, 0), Ok(None));
}

#[test]
fn illegal_vectors_log_errors() {
    let mut l = enabled();
    l.write_msr(msr::LVT_ERROR, 0xfe, 0).expect("error LVT");
    l.request(3);
    assert_eq!(l.irr().highest(), Some(0xfe));
    assert_eq!(
        rd(&l, msr::ESR),
        0,
        "ESR shows errors only after a write latches them"
    );
    l.write_msr(msr::ESR, 0, 0).expect("latch");
    assert_eq!(rd(&l, msr::ESR), u64::from(esr::RECEIVE_ILLEGAL_VECTOR));
    l.write_msr(msr::ESR, 0, 0).expect("latch");
    assert_eq!(rd(&l, msr::ESR), 0);
    l.write_msr(msr::SELF_IPI, 5, 0).expect("self IPI");
    l.write_msr(msr::ESR, 0, 0).expect("latch");
    assert_eq!(rd(&l, msr::ESR), u64::from(esr::RECEIVE_ILLEGAL_VECTOR));
}

#[test]
fn ipis() {
    let mut l = Lapic::new(LapicConfig {
        apic_id: 2,
        tsc_hz: TSC_HZ,
        bus_hz: BUS_HZ,
    });
    l.write_msr(msr::SVR, 0x1ff, 0).expect("SVR");
    // Physical to self, to another CPU, all-including-self, all-excluding-self.
    l.write_msr(msr::ICR, (2u64 << 32) | 0x41, 0).expect("ICR");
    l.write_msr(msr::ICR, (3u64 << 32) | 0x42, 0).expect("ICR");
    l.write_msr(msr::ICR, (2 << 18) | 0x43, 0).expect("ICR");
    l.write_msr(msr::ICR, (3 << 18) | 0x44, 0).expect("ICR");
    // Logical: cluster 0, bit 2 is us.
    l.write_msr(msr::ICR, (0b100u64 << 32) | (1 << 11) | 0x45, 0)
        .expect("ICR");
    l.write_msr(msr::ICR, (0b010u64 << 32) | (1 << 11) | 0x46, 0)
        .expect("ICR");
    for (v, want) in [
        (0x41, true),
        (0x42, false),
        (0x43, true),
        (0x44, false),
        (0x45, true),
        (0x46, false),
    ] {
        assert_eq!(l.irr().contains(v), want, "{v:#x}");
    }
    assert_eq!(rd(&l, msr::ICR), (0b010u64 << 32) | (1 << 11) | 0x46);
    // NMI to self; INIT/SIPI to self are dropped.
    assert_eq!(
        l.write_msr(msr::ICR, (1 << 18) | (4 << 8), 0),
        Ok(Some(LapicEvent::Nmi))
    );
    assert_eq!(l.write_msr(msr::ICR, (1 << 18) | (5 << 8), 0), Ok(None));
    assert_eq!(
        l.write_msr(msr::ICR, (1 << 18) | (6 << 8) | 0x10, 0),
        Ok(None)
    );
    l.write_msr(msr::SELF_IPI, 0x80, 0).expect("self IPI");
    assert_eq!(l.pending(), Some(0x80));
}

#[test]
fn one_shot_and_periodic_timer() {
    let mut l = enabled();
    l.write_msr(msr::TIMER_DIVIDE, 0b1011, 0)
        .expect("divide by 1");
    l.write_msr(msr::LVT_TIMER, 0xec, 0).expect("one-shot");
    // 1000 bus ticks = 20000 TSC ticks.
    l.write_msr(msr::TIMER_INITIAL, 1000, 100).expect("start");
    assert_eq!(l.next_deadline(), Some(20_100));
    assert_eq!(rd(&l, msr::TIMER_INITIAL), 1000);
    assert_eq!(l.read_msr(msr::TIMER_CURRENT, 10_100), Ok(500));
    l.poll(20_099);
    assert_eq!(l.pending(), None);
    l.poll(20_100);
    assert_eq!(l.pending(), Some(0xec));
    assert_eq!(l.next_deadline(), None);
    assert_eq!(l.read_msr(msr::TIMER_CURRENT, 30_000), Ok(0));

    // Periodic, divide by 2: 100 ticks = 4000 TSC; a late poll coalesces.
    l.write_msr(msr::TIMER_DIVIDE, 0, 0).expect("divide by 2");
    l.write_msr(msr::LVT_TIMER, (1 << 17) | 0xed, 0)
        .expect("periodic");
    l.write_msr(msr::TIMER_INITIAL, 100, 0).expect("start");
    assert_eq!(l.next_deadline(), Some(4000));
    // Not yet polled, 1000 TSC past the expiry: reloaded, 75 ticks left.
    assert_eq!(l.read_msr(msr::TIMER_CURRENT, 5000), Ok(75));
    l.poll(4000);
    assert!(l.irr().contains(0xed));
    assert_eq!(l.next_deadline(), Some(8000));
    l.poll(17_000);
    assert_eq!(l.next_deadline(), Some(20_000));
    // Masked: counts but does not interrupt.
    assert!(l.acknowledge(0xed));
    l.write_msr(msr::LVT_TIMER, (1 << 17) | (1 << 16) | 0xed, 0)
        .expect("mask");
    l.poll(20_000);
    assert!(!l.irr().contains(0xed));
    assert_eq!(l.next_deadline(), Some(24_000));
    // Writing 0 stops it.
    l.write_msr(msr::TIMER_INITIAL, 0, 0).expect("stop");
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn tsc_deadline_timer() {
    let mut l = enabled();
    // Not in deadline mode: the MSR reads 0 and ignores writes.
    l.write_msr(msr::TSC_DEADLINE, 5000, 0).expect("ignored");
    assert_eq!(rd(&l, msr::TSC_DEADLINE), 0);
    assert_eq!(l.next_deadline(), None);
    l.write_msr(msr::LVT_TIMER, (2 << 17) | 0xef, 0)
        .expect("deadline mode");
    l.write_msr(msr::TIMER_INITIAL, 10, 0)
        .expect("ignored in deadline mode");
    assert_eq!(rd(&l, msr::TIMER_INITIAL), 0);
    l.write_msr(msr::TSC_DEADLINE, 5000, 0).expect("arm");
    assert_eq!(rd(&l, msr::TSC_DEADLINE), 5000);
    assert_eq!(l.next_deadline(), Some(5000));
    l.poll(4999);
    assert_eq!(l.pending(), None);
    l.poll(6000);
    assert_eq!(l.pending(), Some(0xef));
    assert_eq!(rd(&l, msr::TSC_DEADLINE), 0);
    assert_eq!(l.next_deadline(), None);
    // Arm then disarm with 0; switching modes disarms.
    l.write_msr(msr::TSC_DEADLINE, 9000, 0).expect("arm");
    l.write_msr(msr::TSC_DEADLINE, 0, 0).expect("disarm");
    assert_eq!(l.next_deadline(), None);
    l.write_msr(msr::TSC_DEADLINE, 9000, 0).expect("arm");
    l.write_msr(msr::LVT_TIMER, 0xef, 0).expect("one-shot");
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn software_disable_masks_lvts() {
    let mut l = enabled();
    l.write_msr(msr::LVT_TIMER, 0xec, 0).expect("unmask");
    l.write_msr(msr::SVR, 0xff, 0).expect("disable");
    assert_eq!(rd(&l, msr::LVT_TIMER), 0x1_00ec);
    l.write_msr(msr::LVT_TIMER, 0xec, 0).expect("stays masked");
    assert_eq!(rd(&l, msr::LVT_TIMER), 0x1_00ec);
}

#[derive(Clone, Debug)]
enum Op {
    Write(u32, u64),
    Read(u32),
    Request(u8, bool),
    AckPending,
    Ack(u8),
    Time(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let msr = prop_oneof![0x800u32..0x840, Just(0x1b), Just(0x6e0), 0x840u32..0x900];
    let value = prop_oneof![0u64..0x300, any::<u32>().prop_map(u64::from), any::<u64>()];
    prop_oneof![
        (msr.clone(), value).prop_map(|(m, v)| Op::Write(m, v)),
        msr.prop_map(Op::Read),
        (any::<u8>(), any::<bool>()).prop_map(|(v, l)| Op::Request(v, l)),
        Just(Op::AckPending),
        any::<u8>().prop_map(Op::Ack),
        (0u64..100_000).prop_map(Op::Time),
    ]
}

proptest! {
    #[test]
    fn random_traffic_keeps_the_invariants(ops in proptest::collection::vec(op(), 0..200)) {
        let mut l = enabled();
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Write(m, v) => {
                    let in_service = l.isr().highest();
                    if let Ok(Some(LapicEvent::Eoi { vector, .. })) = l.write_msr(m, v, now) {
                        prop_assert_eq!(Some(vector), in_service);
                    }
                }
                Op::Read(m) => { let _ = l.read_msr(m, now); }
                Op::Request(v, level) => l.request_level_or_edge(v, level),
                Op::AckPending => {
                    if let Some(v) = l.pending() {
                        // Priority: only a class above PPR is offered.
                        prop_assert!(u32::from(v) & 0xf0 > l.ppr() & 0xf0);
                        prop_assert!(v >= 16);
                        prop_assert!(l.acknowledge(v));
                        prop_assert!(l.isr().contains(v));
                        prop_assert!(l.ppr() & 0xf0 >= u32::from(v) & 0xf0);
                    }
                }
                Op::Ack(v) => {
                    let was = l.irr().contains(v);
                    prop_assert_eq!(l.acknowledge(v), was);
                }
                Op::Time(dt) => {
                    now += dt;
                    l.poll(now);
                    if let Some(d) = l.next_deadline() {
                        prop_assert!(d > now);
                    }
                }
            }
            // Vectors below 16 are never requested or in service.
            for v in 0..16u8 {
                prop_assert!(!l.irr().contains(v) && !l.isr().contains(v));
            }
            let ppr = l.ppr();
            prop_assert!(ppr <= 0xff);
        }
    }
}

impl Lapic {
    fn request_level_or_edge(&mut self, v: u8, level: bool) {
        if level {
            self.request_level(v)
        } else {
            self.request(v)
        }
    }
}

#[test]
fn an_auto_eoi_interrupt_never_enters_service() {
    let mut l = enabled();
    l.request_auto_eoi(0x40);
    l.request(0x30);
    assert_eq!(l.pending(), Some(0x40));
    assert!(l.acknowledge(0x40));
    assert!(!l.isr().contains(0x40), "delivery was its end of interrupt");
    // Nothing in service holds the lower vector back, and it takes an EOI as usual.
    assert_eq!(l.pending(), Some(0x30));
    assert!(l.acknowledge(0x30));
    assert!(l.isr().contains(0x30));
    // The same vector requested again without AutoEOI is an ordinary interrupt.
    l.request(0x40);
    assert!(l.acknowledge(0x40));
    assert!(l.isr().contains(0x40));
}
