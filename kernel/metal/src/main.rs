//! The microkernel: boots from PVH, builds every PD's address space and capability
//! table from the system image the builder appended, and then only moves control
//! between PDs (notify, protected calls, faults, irqs). The decisions live in
//! `kernel-core` (host-tested); this crate is the x86_64 glue.
//!
//! `unsafe_code` is denied crate-wide (Cargo.toml); the modules that touch the
//! hardware allow it for themselves, and here only the functions that need it
//! do, every block with its `// SAFETY:` argument.
#![no_std]
#![no_main]

mod apic;
mod boot;
mod cpu;
mod gdt;
mod loader;
mod mem;
mod pci;
mod pic;
mod serial;
mod svm;
mod trap;
mod vcpu;

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use kernel_abi::image::{PdDesc, SystemImage, MAX_PDS};
use kernel_abi::syscall::{FaultMessage, Status, Sys, MESSAGE_REGISTERS};
use kernel_core::{Effects, PdId, Ret};
use loader::Tcb;
use trap::{Frame, SYSCALL_VECTOR};

/// Everything the kernel knows at run time. One CPU, interrupts off in the kernel
/// (except in the idle wait), so plain statics suffice.
static mut TCBS: [Tcb; MAX_PDS] = [Tcb::EMPTY; MAX_PDS];
static mut CORE: MaybeUninit<kernel_core::Kernel> = MaybeUninit::uninit();
static mut IDLE: bool = false;

#[allow(unsafe_code)]
fn tcbs() -> &'static mut [Tcb; MAX_PDS] {
    // SAFETY: single CPU, kernel entered with interrupts off; callers do not keep the
    // reference across a point where a nested trap could run (the idle wait).
    unsafe { &mut *addr_of_mut!(TCBS) }
}

#[allow(unsafe_code)]
fn core_state() -> &'static mut kernel_core::Kernel {
    // SAFETY: as for `tcbs`; CORE is written once in `kmain` before any trap from
    // ring 3 or irq can reach the kernel.
    unsafe { (*addr_of_mut!(CORE)).assume_init_mut() }
}

#[no_mangle]
#[allow(unsafe_code)]
extern "C" fn kmain(start_info: u64) -> ! {
    serial::init();
    kprintln!("kernel: booting");
    gdt::init();
    trap::init();
    pic::init();

    // The builder put the system image at the first page after the kernel.
    let image_pa = mem::kernel_phys_end();
    let image_len = {
        let magic = mem::read_u64(image_pa).to_le_bytes();
        if magic != kernel_abi::image::MAGIC {
            kprintln!(
                "kernel: no system image after the kernel (build one with `paravisor build`)"
            );
            cpu::exit_qemu(0x7b);
        }
        mem::read_u64(image_pa + core::mem::offset_of!(kernel_abi::image::Header, total_len) as u64)
    };
    let (mut frames, kernel_root) = mem::init(start_info, image_pa.saturating_add(image_len));
    // SAFETY: the image lies in RAM below the allocator's range (never handed out)
    // and is never written.
    let bytes = unsafe { core::slice::from_raw_parts(mem::phys_ptr(image_pa), image_len as usize) };
    let image = match SystemImage::parse(bytes) {
        Ok(image) => image,
        Err(e) => {
            kprintln!("kernel: bad system image: {e}");
            cpu::exit_qemu(0x7b)
        }
    };
    let mut loaded = match loader::load(&image, &mut frames, kernel_root, tcbs()) {
        Ok(l) => l,
        Err(e) => {
            kprintln!("kernel: cannot build the PDs: {e}");
            cpu::exit_qemu(0x7b)
        }
    };
    match pci::load(
        &image,
        &mut frames,
        tcbs(),
        &mut loaded.configs[..loaded.count],
    ) {
        Ok(0) => {}
        Ok(n) => kprintln!("kernel: {n} PCI functions granted"),
        Err(e) => {
            kprintln!("kernel: cannot grant a PCI device: {e}");
            cpu::exit_qemu(0x7b)
        }
    }
    let vcpus = match vcpu::load(&image, &mut frames, &loaded.region_pa) {
        Ok(n) => n,
        Err(e) => {
            kprintln!("kernel: cannot build the VMs: {e}");
            cpu::exit_qemu(0x7b)
        }
    };
    if vcpus != 0 {
        kprintln!(
            "kernel: {} VMs with {vcpus} vCPUs (SVM, nested paging)",
            image.vm_count()
        );
    }
    let core = kernel_core::Kernel::new(&loaded.configs[..loaded.count]);
    let lines = core.irq_lines();
    // SAFETY: first and only write, before anything reads CORE.
    unsafe { (*addr_of_mut!(CORE)).write(core) };
    for line in 0..16 {
        if lines & (1 << line) != 0 {
            pic::unmask(line);
        }
    }
    let tsc_hz = pic::measure_tsc_hz();
    vcpu::set_tsc_hz(tsc_hz);
    apic::init(tsc_hz);
    pic::start_timer();
    kprintln!(
        "kernel: {} PDs loaded, {} KiB free; starting",
        loaded.count,
        frames.free_bytes() >> 10
    );
    trap::enter(switch_to_next())
}

/// Applies the core's effects to the PDs' saved state.
struct Glue;

impl Effects for Glue {
    #[inline(always)]
    fn set_return(&mut self, pd: PdId, ret: Ret) {
        tcbs()[usize::from(pd)].frame.set_ret(ret);
    }

    #[inline(always)]
    fn copy_message(&mut self, from: PdId, to: PdId, count: usize) {
        if count == 0 {
            return;
        }
        let (src, dst) = (
            tcbs()[usize::from(from)].ipc_buffer,
            tcbs()[usize::from(to)].ipc_buffer,
        );
        for i in 0..count.min(MESSAGE_REGISTERS) as u64 {
            mem::write_u64(dst + i * 8, mem::read_u64(src + i * 8));
        }
    }

    fn write_fault(&mut self, to: PdId, fault: &FaultMessage) {
        let dst = tcbs()[usize::from(to)].ipc_buffer;
        for (i, w) in fault.to_words().iter().enumerate() {
            mem::write_u64(dst + i as u64 * 8, *w);
        }
    }

    fn unmask_irq(&mut self, line: u8) {
        pic::unmask(line);
    }

    fn unhandled_fault(&mut self, pd: PdId, f: &FaultMessage) {
        kprintln!(
            "kernel: PD {} faulted: {} (vector {}) at ip {:#x}, address {:#x}, error {:#x}; it is stopped, the rest keeps running",
            tcbs()[usize::from(pd)].name(),
            f.vector_name(),
            f.vector,
            f.ip,
            f.address,
            f.error_code
        );
    }
}

/// The next PD to run (waiting for an irq while there is none), its address space
/// loaded and its frame set up as the save area for the next trap. A PD inside
/// `VM_ENTER` runs its guest here first, until the guest exits to it or another PD
/// is to run.
#[allow(unsafe_code)]
fn switch_to_next() -> *mut Frame {
    let pd = loop {
        let Some(pd) = core_state().schedule() else {
            let k = core_state();
            if k.irq_lines() == 0 && !k.any_throttled() && !k.any_deadline() {
                kprintln!(
                    "kernel: every PD is waiting and no irq or refill can wake one; stopping"
                );
                cpu::exit_qemu(0x7d);
            }
            let start = cpu::rdtsc();
            // SAFETY: single CPU; the flag tells the nested irq path it may run.
            unsafe { IDLE = true };
            cpu::wait_for_interrupt();
            // SAFETY: as above.
            unsafe {
                IDLE = false;
                IDLE_TSC += cpu::rdtsc() - start;
            }
            continue;
        };
        if !vcpu::in_guest(pd) {
            break pd;
        }
        let tcb = &tcbs()[usize::from(pd)];
        match vcpu::resume(pd, tcb.ipc_buffer, &mut GuestHost, tcb.frame.ret()) {
            vcpu::Resumed::Return(ret) => {
                core_state().leave_guest(pd);
                Glue.set_return(pd, ret);
                break pd;
            }
            vcpu::Resumed::Preempted => {}
        }
    };
    switch_to(pd)
}

/// Loads `pd`'s address space and makes its frame the save area for the next
/// trap; returns that frame, to resume.
#[inline(always)]
#[allow(unsafe_code)]
fn switch_to(pd: PdId) -> *mut Frame {
    let tcb = &mut tcbs()[usize::from(pd)];
    if cpu::cr3() != tcb.cr3 {
        // SAFETY: every PD root shares the kernel half of the kernel's own root.
        unsafe { cpu::set_cr3(tcb.cr3) };
    }
    let frame = addr_of_mut!(tcb.frame);
    trap::set_user_frame(frame);
    frame
}

/// The kernel as a running guest sees it.
struct GuestHost;

impl vcpu::Host for GuestHost {
    fn is_current(&self, pd: PdId) -> bool {
        core_state().current() == Some(pd)
    }

    fn take_pending(&mut self, pd: PdId) -> u64 {
        core_state().take_pending(pd)
    }

    #[allow(unsafe_code)]
    fn take_irq(&mut self) {
        // SAFETY: single CPU; the flag tells the nested irq path it may run.
        unsafe { IDLE = true };
        cpu::take_interrupt();
        // SAFETY: as above.
        unsafe { IDLE = false };
    }
}

/// Time spent idle (waiting for an irq), left out of the system call costs.
static mut IDLE_TSC: u64 = 0;

/// Time no system call's cost includes: idle waits and guest runs.
#[allow(unsafe_code)]
fn excluded_tsc() -> u64 {
    // SAFETY: single CPU; read only.
    unsafe { IDLE_TSC }.wrapping_add(vcpu::guest_tsc())
}

/// Time (under `-icount shift=0`: instructions) spent between kernel entry and exit,
/// idle waits and guest runs excluded, per system call number: (calls, total).
/// Printed when the system halts.
static mut SYSCALL_COST: [(u64, u64); 10] = [(0, 0); 10];

/// NMIs taken in ring 3.
static mut USER_NMIS: u64 = 0;

/// System calls that took the fast path (see [`syscall_fast`]).
static mut FAST_SYSCALLS: u64 = 0;

/// The fast path of the IPC system calls, straight from `syscall_entry`, seL4
/// style: the common case of each (a granted call to a waiting callee, a plain
/// reply to the caller that runs next, a notification, a wait) with none of the
/// general entry's work (frame copy, irq and fault dispatch, per-call time
/// accounting, the scheduler loop). The transitions are the core's
/// `fast_*` ones, with the same capability checks, property-tested to end where
/// the general path ends. Returns the frame to resume, or null for the general
/// path (every other system call, and every case a fast transition declines).
#[no_mangle]
#[allow(unsafe_code)]
extern "C" fn syscall_fast(
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    n: u64,
    frame: *mut Frame,
) -> *mut Frame {
    // One function per system call, each saving only the registers it uses.
    match Sys(n) {
        Sys::PP_CALL => fast_pp_call(a0, a1, a2),
        Sys::REPLY_RECV => fast_reply_recv(a0, a1, a3),
        Sys::NOTIFY => fast_notify(a0, frame),
        Sys::RECV => fast_recv(frame),
        _ => core::ptr::null_mut(),
    }
}

#[inline(never)]
fn fast_pp_call(ch: u64, label: u64, count: u64) -> *mut Frame {
    match core_state().fast_pp_call(&mut Glue, ch, label, count) {
        // The callee waited in RECV: not in its guest.
        Some(callee) => fast_switch(callee),
        None => core::ptr::null_mut(),
    }
}

#[inline(never)]
fn fast_reply_recv(label: u64, count: u64, flags: u64) -> *mut Frame {
    match core_state().fast_reply_recv(&mut Glue, label, count, flags) {
        // The caller waited in PP_CALL: not in its guest.
        Some(caller) => fast_switch(caller),
        None => core::ptr::null_mut(),
    }
}

#[inline(never)]
fn fast_notify(ch: u64, frame: *mut Frame) -> *mut Frame {
    let k = core_state();
    let cur = k.current();
    match k.fast_notify(&mut Glue, ch) {
        // Back to the notifier: its address space and save area are loaded.
        Some(pd) if Some(pd) == cur => fast_resume(frame),
        // The notified PD waited in RECV: not in its guest.
        Some(pd) => fast_switch(pd),
        None => core::ptr::null_mut(),
    }
}

#[inline(never)]
fn fast_recv(frame: *mut Frame) -> *mut Frame {
    let k = core_state();
    let cur = k.current();
    match k.fast_recv(&mut Glue) {
        Some(pd) if Some(pd) == cur => fast_resume(frame),
        // A VMM preempted in its guest resumes the guest: the general switch does that.
        Some(pd) if vcpu::in_guest(pd) => {
            count_fast();
            switch_to_next()
        }
        Some(pd) => fast_switch(pd),
        None => core::ptr::null_mut(),
    }
}

#[inline(always)]
#[allow(unsafe_code)]
fn count_fast() {
    // SAFETY: single CPU, interrupts off.
    unsafe { FAST_SYSCALLS += 1 };
}

#[inline(always)]
fn fast_resume(frame: *mut Frame) -> *mut Frame {
    count_fast();
    frame
}

#[inline(always)]
#[allow(unsafe_code)]
fn fast_switch(pd: PdId) -> *mut Frame {
    count_fast();
    switch_to(pd)
}

/// The common trap handler: returns the frame to resume.
#[no_mangle]
#[allow(unsafe_code)]
extern "C" fn trap_entry(frame: *mut Frame) -> *mut Frame {
    // An interrupt from ring 3 keeps the PD's AC flag, which would lift SMAP here.
    // SAFETY: read-only flag set once at boot; clac exists when SMAP does.
    if unsafe { mem::SMAP } {
        // SAFETY: clac only clears RFLAGS.AC.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
    let start = cpu::rdtsc();
    let excluded = excluded_tsc();
    // SAFETY: the entry stubs pass the frame they just saved; we copy the fields we
    // need out of it before anything else can write it.
    let f = unsafe {
        Frame {
            vector: (*frame).vector,
            error: (*frame).error,
            cs: (*frame).cs,
            rip: (*frame).rip,
            rax: (*frame).rax,
            rdi: (*frame).rdi,
            rsi: (*frame).rsi,
            rdx: (*frame).rdx,
            r10: (*frame).r10,
            ..Frame::default()
        }
    };
    // The APIC's spurious vector (255) counts too: nothing to do, from any mode.
    let is_irq = (pic::VECTOR_BASE..pic::VECTOR_BASE + 16).contains(&f.vector)
        || f.vector == apic::VECTOR
        || f.vector == 255;
    if !f.is_from_user() {
        // SAFETY: single CPU; read-only.
        if is_irq && unsafe { IDLE } {
            irq_vector(f.vector);
            return frame;
        }
        // An NMI has nothing for the kernel to do; one that hit a guest arrives
        // here, in the kernel, as soon as the exit path sets GIF again.
        if f.vector == 2 {
            return frame;
        }
        kernel_fault(&f);
    }
    match f.vector {
        SYSCALL_VECTOR => syscall(&f),
        _ if is_irq => irq_vector(f.vector),
        // Spurious: nothing to do, and no PD is at fault.
        255 => {}
        // NMIs neither: counted, so the boot test sees one taken in ring 3.
        2 => {
            // SAFETY: single CPU, interrupts off.
            unsafe { USER_NMIS += 1 };
        }
        v => core_state().fault(
            &mut Glue,
            FaultMessage {
                vector: v,
                address: if v == 14 { cpu::cr2() } else { 0 },
                ip: f.rip,
                error_code: f.error,
            },
        ),
    }
    let next = switch_to_next();
    if f.vector == SYSCALL_VECTOR {
        // SAFETY: single CPU, interrupts off.
        let cost = unsafe { &mut *addr_of_mut!(SYSCALL_COST) };
        if let Some(c) = cost.get_mut(f.rax as usize) {
            c.0 += 1;
            c.1 += (cpu::rdtsc() - start).saturating_sub(excluded_tsc().wrapping_sub(excluded));
        }
    }
    next
}

#[allow(unsafe_code)]
fn print_syscall_costs() {
    // SAFETY: single CPU, interrupts off; read only.
    let fast = unsafe { FAST_SYSCALLS };
    kprintln!("kernel: {fast} IPC system calls took the fast path (not in the costs below)");
    // SAFETY: as above.
    let cost = unsafe { &*addr_of_mut!(SYSCALL_COST) };
    for (n, name) in [
        (2, "notify"),
        (3, "pp_call"),
        (4, "recv"),
        (5, "reply_recv"),
    ] {
        let (calls, total) = cost[n];
        if let Some(avg) = total.checked_div(calls) {
            kprintln!(
                "kernel: measure {name} {avg} tsc in the kernel's C path per call ({calls} calls)"
            );
        }
    }
    let (calls, total) = cost[Sys::VM_ENTER.0 as usize];
    if let Some(avg) = total.checked_div(calls) {
        kprintln!(
            "kernel: measure vm_enter {avg} tsc in the kernel per entry, guest time and host irqs excluded ({calls} entries)"
        );
    }
}

/// Ticks since boot.
static mut TICKS: u64 = 0;

fn irq_vector(vector: u64) {
    match vector {
        apic::VECTOR => {
            apic::fired();
            let k = core_state();
            k.expire_deadlines(&mut Glue, cpu::rdtsc());
            // It may have fired for an entry that ended early: the next one waits.
            if let Some(d) = k.next_deadline() {
                apic::arm(d);
            }
        }
        v if (pic::VECTOR_BASE..pic::VECTOR_BASE + 16).contains(&v) => {
            irq((v - pic::VECTOR_BASE) as u8)
        }
        _ => {}
    }
}

#[allow(unsafe_code)]
fn irq(line: u8) {
    if line == pic::TIMER_LINE {
        pic::end_of_interrupt(line);
        // SAFETY: single CPU, interrupts off.
        let ticks = unsafe { &mut *addr_of_mut!(TICKS) };
        *ticks += 1;
        core_state().tick(*ticks * pic::TICK_US);
        core_state().expire_deadlines(&mut Glue, cpu::rdtsc());
        return;
    }
    pic::mask(line);
    pic::end_of_interrupt(line);
    core_state().irq(&mut Glue, line);
}

#[allow(unsafe_code)]
fn syscall(f: &Frame) {
    let k = core_state();
    let Some(cur) = k.current() else { return };
    match Sys(f.rax) {
        Sys::NOTIFY => k.notify(&mut Glue, f.rdi),
        Sys::PP_CALL => k.pp_call(&mut Glue, f.rdi, f.rsi, f.rdx),
        Sys::RECV => k.recv(&mut Glue),
        Sys::REPLY_RECV => k.reply_recv(&mut Glue, f.rdi, f.rsi, f.r10),
        Sys::IRQ_ACK => k.irq_ack(&mut Glue, f.rdi),
        Sys::DEBUG_PUTS => {
            let st = if !granted(cur, PdDesc::DEBUG_CONSOLE) {
                Status::NOT_GRANTED
            } else if debug_puts(cur, f.rdi, f.rsi) {
                Status::OK
            } else {
                Status::BAD_ARGUMENT
            };
            Glue.set_return(cur, Ret::status(st));
        }
        Sys::DEBUG_IRQ_LINE => {
            let st = match k.irq_line_of(f.rdi) {
                Ok(line) => {
                    cpu::outb(0x2000 + u16::from(line), u8::from(f.rsi != 0));
                    Status::OK
                }
                Err(st) => st,
            };
            Glue.set_return(cur, Ret::status(st));
        }
        Sys::VM_ENTER => {
            let ipc = tcbs()[usize::from(cur)].ipc_buffer;
            match vcpu::enter(cur, ipc, f.rdi, f.rsi, f.rdx) {
                Err(st) => Glue.set_return(cur, Ret::status(st)),
                Ok(Some(ret)) => Glue.set_return(cur, ret),
                Ok(None) => match vcpu::halted(cur) {
                    Some(deadline) => {
                        if deadline != 0 {
                            apic::arm(deadline);
                        }
                        k.vm_halt(&mut Glue, deadline)
                    }
                    None => k.enter_guest(),
                },
            }
        }
        Sys::DEBUG_NMI => {
            let nmis = if !granted(cur, PdDesc::DEBUG_HALT) {
                Err(Status::NOT_GRANTED)
            } else if f.rdi != 0 && !apic::nmi_after(f.rdi) {
                Err(Status::BAD_ARGUMENT)
            } else {
                // SAFETY: single CPU, interrupts off; read only.
                Ok(unsafe { USER_NMIS })
            };
            Glue.set_return(cur, Ret::value(nmis));
        }
        Sys::PCI_CONFIG => {
            let value = pci::config(cur, f.rdi, f.rsi, f.rdx, f.r10);
            Glue.set_return(cur, Ret::value(value));
        }
        Sys::DEBUG_HALT if !granted(cur, PdDesc::DEBUG_HALT) => {
            Glue.set_return(cur, Ret::status(Status::NOT_GRANTED))
        }
        Sys::DEBUG_HALT => {
            print_syscall_costs();
            vcpu::print_exit_counts();
            kprintln!(
                "kernel: halted by PD {} with status {}",
                tcbs()[usize::from(cur)].name(),
                f.rdi
            );
            cpu::exit_qemu(f.rdi as u32)
        }
        _ => Glue.set_return(cur, Ret::status(Status::UNKNOWN_SYSCALL)),
    }
}

/// Whether system.xml granted `pd` the debug system call `what`.
fn granted(pd: PdId, what: u8) -> bool {
    tcbs()[usize::from(pd)].debug & what != 0
}

/// The largest `DEBUG_PUTS`.
const PUTS_MAX: usize = 4096;

/// Where `DEBUG_PUTS` copies a PD's bytes before printing them.
static mut PUTS_BUF: [u8; PUTS_MAX] = [0; PUTS_MAX];

/// Prints `len` bytes at user address `ptr` of PD `pd`, if every byte is mapped
/// user-readable for the PD, each line prefixed with the PD's name unless the
/// PD put it there itself: no PD can print a line that looks like the kernel's
/// or another PD's. Reads go through the physical window, never the user
/// mapping, one page at a time.
#[allow(unsafe_code)]
fn debug_puts(pd: PdId, ptr: u64, len: u64) -> bool {
    let Some(end) = ptr.checked_add(len).filter(|_| len <= PUTS_MAX as u64) else {
        return false;
    };
    let tcb = &mut tcbs()[usize::from(pd)];
    // SAFETY: single CPU, interrupts off; the buffer is used only here.
    let buf = unsafe { &mut *addr_of_mut!(PUTS_BUF) };
    let mut va = ptr;
    let mut n = 0;
    // Copy everything first, so a bad pointer prints nothing.
    while va < end {
        let chunk = (((va & !0xfff) + 0x1000).min(end) - va) as usize;
        match kernel_core::paging::translate(&mem::PhysRead, tcb.cr3, va) {
            Some((pa, rights)) if rights & kernel_core::paging::USER != 0 => {
                // SAFETY: `pa..pa + chunk` lies in one frame mapped to this PD,
                // inside the physical window; `n + chunk <= len <= PUTS_MAX`.
                unsafe {
                    core::ptr::copy_nonoverlapping(mem::phys_ptr(pa), buf[n..].as_mut_ptr(), chunk)
                };
            }
            _ => return false,
        }
        n += chunk;
        va += chunk as u64;
    }
    let name_buf = tcb.name;
    let name = kernel_abi::name_str(&name_buf).unwrap_or("?").as_bytes();
    kernel_core::console::write_prefixed(name, &mut tcb.at_line_start, &buf[..n], |b| {
        serial::write_bytes(b)
    });
    true
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
