//! The microkernel: boots from PVH, builds every PD's address space and capability
//! table from the system image the builder appended, and then only moves control
//! between PDs (notify, protected calls, faults, irqs). The policy-free logic lives in
//! `kernel-core` (host-tested); this crate is the x86_64 glue.
#![no_std]
#![no_main]

mod boot;
mod cpu;
mod gdt;
mod serial;
mod trap;

use trap::Frame;

#[no_mangle]
extern "C" fn kmain(start_info: u64) -> ! {
    serial::init();
    kprintln!("kernel: booting (PVH start info at {start_info:#x})");
    gdt::init();
    trap::init();
    kprintln!("kernel: gdt, tss, idt ready");
    cpu::exit_qemu(0)
}

/// The common trap handler: returns the frame to resume.
#[no_mangle]
extern "C" fn trap_entry(frame: *mut Frame) -> *mut Frame {
    // SAFETY: the entry stubs pass the frame they just saved.
    let f = unsafe { &mut *frame };
    kernel_fault(f)
}

fn kernel_fault(f: &Frame) -> ! {
    kprintln!(
        "kernel: FATAL exception {} (error {:#x}) in kernel at rip={:#x} rsp={:#x} cr2={:#x}",
        f.vector,
        f.error,
        f.rip,
        f.rsp,
        cpu::cr2()
    );
    kprintln!(
        "  rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp
    );
    cpu::exit_qemu(0x7f)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    kprintln!("kernel: PANIC: {info}");
    cpu::exit_qemu(0x7e)
}
