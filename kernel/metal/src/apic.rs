//! The local APIC's timer, one-shot, for guest deadlines finer than the 1 ms PIT
//! tick: a VMM halted until (or running its guest until) a TSC deadline is woken
//! within microseconds of it. x2APIC (MSR) mode, so no MMIO mapping is needed; the
//! 8259 keeps delivering the other irqs through LINT0 as before. Without x2APIC
//! (or without a measured TSC rate) deadlines fall back to the tick.
#![allow(unsafe_code)]

use core::ptr::addr_of_mut;

use crate::cpu;

/// The timer's interrupt vector (the IDT stub after the PIC's 32..48).
pub const VECTOR: u64 = 48;

const MSR_APIC_BASE: u32 = 0x1b;
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_INITIAL_COUNT: u32 = 0x838;
const X2APIC_DIVIDE: u32 = 0x83e;
const LVT_MASKED: u64 = 1 << 16;
/// Delivery mode NMI (0b100 in bits 10:8).
const LVT_DELIVER_NMI: u64 = 0b100 << 8;
/// The APIC timer counts at this rate with divide-by-1 under QEMU (its virtual
/// clock in nanoseconds).
const TIMER_HZ: u64 = 1_000_000_000;

/// TSC ticks per second, 0 while the timer is not in use.
static mut TSC_HZ: u64 = 0;
/// The TSC value the timer is armed for, 0 if none.
static mut ARMED: u64 = 0;

/// Switches the local APIC to x2APIC mode with its timer masked. `tsc_hz` converts
/// deadlines to timer counts.
pub fn init(tsc_hz: u64) {
    if cpu::cpuid(1, 0)[2] & (1 << 21) == 0 || tsc_hz == 0 {
        return;
    }
    // SAFETY: x2APIC mode keeps every LVT (LINT0 still passes the 8259's
    // interrupts through); the timer stays masked until `arm`; the spurious
    // vector is the IDT's 255 stub, and bit 8 software-enables the APIC.
    unsafe {
        cpu::wrmsr(
            MSR_APIC_BASE,
            cpu::rdmsr(MSR_APIC_BASE) | (1 << 11) | (1 << 10),
        );
        cpu::wrmsr(X2APIC_SVR, cpu::rdmsr(X2APIC_SVR) | 0x100 | 0xff);
        cpu::wrmsr(X2APIC_DIVIDE, 0b1011);
        cpu::wrmsr(X2APIC_LVT_TIMER, LVT_MASKED | VECTOR);
        TSC_HZ = tsc_hz;
    }
}

/// Makes the timer fire at TSC `deadline` if that is before what it is armed for.
/// Deadlines already past or further than the 32-bit count reaches are left to
/// the tick.
pub fn arm(deadline: u64) {
    // SAFETY: single CPU, interrupts off.
    let (hz, armed) = unsafe { (TSC_HZ, &mut *addr_of_mut!(ARMED)) };
    let now = cpu::rdtsc();
    if hz == 0 || deadline <= now || (*armed != 0 && *armed <= deadline) {
        return;
    }
    let ticks = (u128::from(deadline - now) * u128::from(TIMER_HZ)).div_ceil(u128::from(hz));
    let Ok(count) = u32::try_from(ticks.max(1)) else {
        return;
    };
    *armed = deadline;
    // SAFETY: one-shot timer on our vector; writing the initial count starts it.
    unsafe {
        cpu::wrmsr(X2APIC_LVT_TIMER, VECTOR);
        cpu::wrmsr(X2APIC_INITIAL_COUNT, u64::from(count));
    }
}

/// Makes the timer raise an NMI in `delay` TSC ticks (the boot test's way to
/// take one in ring 3). Refused while a deadline is armed, or without the timer.
pub fn nmi_after(delay: u64) -> bool {
    // SAFETY: single CPU, interrupts off.
    let (hz, armed) = unsafe { (TSC_HZ, ARMED) };
    let ticks = (u128::from(delay) * u128::from(TIMER_HZ)).div_ceil(u128::from(hz.max(1)));
    let Ok(count) = u32::try_from(ticks.max(1)) else {
        return false;
    };
    if hz == 0 || armed != 0 {
        return false;
    }
    // SAFETY: one shot in NMI delivery mode (the vector is ignored); the next
    // `arm` puts the timer back on its vector.
    unsafe {
        cpu::wrmsr(X2APIC_LVT_TIMER, LVT_DELIVER_NMI);
        cpu::wrmsr(X2APIC_INITIAL_COUNT, u64::from(count));
    }
    true
}

/// The timer fired: acknowledge it; the caller checks the deadlines.
pub fn fired() {
    // SAFETY: EOI only retires the in-service interrupt; single CPU.
    unsafe {
        ARMED = 0;
        cpu::wrmsr(X2APIC_EOI, 0);
    }
}
