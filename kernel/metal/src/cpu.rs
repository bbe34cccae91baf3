//! Thin wrappers over the privileged instructions the kernel uses.
#![allow(unsafe_code)]

use core::arch::asm;

/// The operand of LGDT and LIDT: a descriptor table's limit (its last byte's
/// offset) and linear address.
#[repr(C, packed)]
pub struct TablePointer {
    limit: u16,
    base: u64,
}

impl TablePointer {
    /// Points at the whole of the table `table` points at.
    pub fn to<T>(table: *const T) -> Self {
        Self {
            limit: (core::mem::size_of::<T>() - 1) as u16,
            base: table as u64,
        }
    }
}

/// `$out(port, value)` and `$in(port)`: port I/O of one width, through `$reg`.
macro_rules! port_io {
    ($out:ident, $in:ident, $ty:ty, $reg:tt) => {
        pub fn $out(port: u16, value: $ty) {
            // SAFETY: port I/O has no memory effects; the kernel owns every port it
            // touches.
            unsafe {
                asm!(concat!("out dx, ", $reg), in("dx") port, in($reg) value,
                     options(nomem, nostack, preserves_flags))
            }
        }

        pub fn $in(port: u16) -> $ty {
            let value: $ty;
            // SAFETY: as for the write.
            unsafe {
                asm!(concat!("in ", $reg, ", dx"), out($reg) value, in("dx") port,
                     options(nomem, nostack, preserves_flags))
            }
            value
        }
    };
}

port_io!(outb, inb, u8, "al");
port_io!(outw, inw, u16, "ax");
port_io!(outl, inl, u32, "eax");

/// # Safety
/// The MSR and value must keep the kernel's invariants (segments, syscall entry).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the value.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// # Safety
/// `root` must be a page-table root that maps the kernel exactly as the current one does.
pub unsafe fn set_cr3(root: u64) {
    // SAFETY: the caller vouches that the kernel stays mapped.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) }
}

pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Stops this CPU for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops the CPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// Ends the QEMU run through the isa-debug-exit device (iobase 0xf4): QEMU exits
/// with `(status << 1) | 1`. Without that device this just halts.
pub fn exit_qemu(status: u32) -> ! {
    outl(0xf4, status);
    halt_forever()
}

pub fn cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// # Safety
/// The new CR4 must keep paging as it is (PAE stays on).
pub unsafe fn set_cr4(v: u64) {
    // SAFETY: the caller vouches for the bits.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) }
}

/// Sleeps until an interrupt, which runs (nested, from ring 0) before this returns.
pub fn wait_for_interrupt() {
    // SAFETY: sti; hlt; cli only lets one interrupt in. Not `nomem`: the handler
    // changes kernel state the caller reads afterwards.
    unsafe { asm!("sti; hlt; cli", options(nostack)) }
}

/// Lets an interrupt that is already pending run (nested, from ring 0) now.
pub fn take_interrupt() {
    // SAFETY: the STI shadow covers the NOP; the interrupt is taken before CLI. Not
    // `nomem`: the handler changes kernel state the caller reads afterwards.
    unsafe { asm!("sti; nop; cli", options(nostack)) }
}

/// The time-stamp counter; under QEMU `-icount shift=0`, guest instructions retired.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// # Safety
/// Paging and protection must stay on.
pub unsafe fn set_cr0(v: u64) {
    // SAFETY: the caller vouches for the bits.
    unsafe { asm!("mov cr0, {}", in(reg) v, options(nostack, preserves_flags)) }
}

pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers read MSRs the CPU has (checked through CPUID first).
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags))
    }
    u64::from(lo) | (u64::from(hi) << 32)
}
