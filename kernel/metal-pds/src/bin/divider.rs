//! A parentless PD that divides by zero: the kernel reports the divide error on the
//! console with the PD's name and stops only this PD.
#![no_std]
#![no_main]

pd_rt::entry!(|_init, _kernel| {
    pd_rt::println!("divider: dividing by zero");
    let zero: u64;
    // SAFETY: reads a constant into a register; hides the zero from the compiler.
    unsafe { core::arch::asm!("xor {0:e}, {0:e}", out(reg) zero, options(nomem, nostack)) };
    let q: u64;
    // SAFETY: deliberately raises #DE; no memory is touched.
    unsafe {
        core::arch::asm!("div {d}", d = in(reg) zero, inout("rax") 1u64 => q, inout("rdx") 0u64 => _, options(nomem, nostack));
    }
    pd_rt::println!("divider: got {q}: the divide did not fault");
    Ok(metal_pds::Idle)
});
