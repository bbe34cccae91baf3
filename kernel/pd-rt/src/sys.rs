//! The raw system calls (see `kernel_abi::syscall` for the ABI).
#![allow(unsafe_code)]

use core::arch::asm;

use kernel_abi::syscall::Sys;

/// (rax, rdi, rsi, rdx) after the call.
pub type Regs = (u64, u64, u64, u64);

#[inline(always)]
pub fn syscall(n: Sys, a0: u64, a1: u64, a2: u64, a3: u64) -> Regs {
    let (rax, rdi, rsi, rdx);
    // SAFETY: `syscall` enters our kernel, which preserves every register but rcx and
    // r11 (declared clobbered) and touches only this PD's IPC buffer, which we hand
    // out no references to across the call (hence no `nomem`).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n.0 => rax,
            inlateout("rdi") a0 => rdi,
            inlateout("rsi") a1 => rsi,
            inlateout("rdx") a2 => rdx,
            in("r10") a3,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    (rax, rdi, rsi, rdx)
}

pub fn debug_puts(bytes: &[u8]) {
    syscall(
        Sys::DEBUG_PUTS,
        bytes.as_ptr() as u64,
        bytes.len() as u64,
        0,
        0,
    );
}

/// Stops the whole machine with `status` (debug kernels; the boot tests' verdict).
pub fn debug_halt(status: u64) -> ! {
    syscall(Sys::DEBUG_HALT, status, 0, 0, 0);
    die()
}

/// Drives the irq line behind irq channel `ch` high or low through QEMU's
/// pc-testdev (debug kernels; the boot test's way to raise a real interrupt).
pub fn debug_irq_line(ch: ipc::Channel, high: bool) -> Result<(), ipc::IpcError> {
    let (st, ..) = syscall(
        Sys::DEBUG_IRQ_LINE,
        u64::from(ch.index()),
        u64::from(high),
        0,
        0,
    );
    crate::kernel::status_to_result(st, ch)
}

/// Raises an NMI `delay` TSC ticks from now (0: none) and returns how many NMIs
/// the kernel has taken in ring 3 so far (debug kernels, PDs granted
/// `debug_halt`; the boot test's check of NMIs in ring 3).
pub fn debug_nmi(delay: u64) -> Result<u64, kernel_abi::syscall::Status> {
    match syscall(Sys::DEBUG_NMI, delay, 0, 0, 0) {
        (0, count, ..) => Ok(count),
        (st, ..) => Err(kernel_abi::syscall::Status(st)),
    }
}

/// Ends this PD with a fault the kernel reports (invalid opcode).
pub fn die() -> ! {
    loop {
        // SAFETY: ud2 raises #UD; the kernel stops this PD and reports it.
        unsafe { asm!("ud2", options(nomem, nostack)) }
    }
}

/// The time-stamp counter. Under QEMU `-icount shift=0` it counts instructions.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}
