//! Guest vCPUs: one VMCB, saved GPRs and an XSAVE area each, the VMs' nested page
//! tables, and `VM_ENTER` (see `kernel_abi::vcpu`): apply the VMM's dirty state
//! words, run the guest until an exit the VMM must see, write the state back.
//!
//! The VMM PD's thread is the vCPU's thread: while it runs its guest it stays
//! `Running` (or `Ready` when preempted) in the core, at its guest's priority and
//! on its guest's budget (`Kernel::enter_guest`); the glue resumes the guest (not
//! `iretq`) when it picks a PD whose `VM_ENTER` is still in progress
//! ([`in_guest`]). Host interrupts exit the guest (INTR intercept) and are taken
//! by the kernel's normal irq path right after the exit; if that made another PD
//! current, the guest waits in its VMCB until its VMM runs again. What goes in and
//! out of the VMCB is `kernel_core::vmcb`'s (host-tested); this module owns the
//! memory, the CPU state VMRUN does not swap, and the run loop.
#![allow(unsafe_code)]

use core::ptr::addr_of_mut;

use kernel_abi::image::{SystemImage, MAX_PDS, MAX_REGIONS};
use kernel_abi::syscall::{Event, Status};
use kernel_abi::vcpu::{exit, flags, pseudo_exit, Word};
use kernel_core::guest::{self, GuestPhys, Paging};
use kernel_core::paging::{self, PageSize};
use kernel_core::vmcb::{self, off, Regs, Vmcb};
use kernel_core::{PdId, Ret};

use crate::mem::{self, Frames, Phys};
use crate::svm;

/// vCPUs the kernel can hold in all (its static table).
pub const MAX_VCPU_SLOTS: usize = 64;
/// SVM's VMEXIT_INVALID (-1): VMRUN refused the state. QEMU stores it as a 32-bit
/// value, so only the low half is compared.
const EXIT_INVALID: u32 = u32::MAX;
/// Exits the kernel answers with #UD: SVM itself and MONITOR/MWAIT are not offered
/// to guests (VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA, MONITOR, MWAIT).
const EXIT_VMRUN: u64 = 0x80;
const EXIT_VMLOAD: u64 = 0x82;
const EXIT_SKINIT: u64 = 0x86;
const EXIT_INVLPGA: u64 = 0x7a;
const EXIT_MONITOR: u64 = 0x8a;
const EXIT_MWAIT: u64 = 0x8b;

#[derive(Copy, Clone, Debug)]
struct Vcpu {
    owner: PdId,
    /// The id the VMM names it by (system.xml).
    id: u8,
    vmcb: u64,
    xsave: u64,
    /// A copy of the VMCB's save area, taken before a VMRUN that may refuse it.
    backup: u64,
    /// `backup` is current: the next VMRUN is the first with state VMRUN checks.
    backed_up: bool,
    regs: Regs,
    /// DR0..DR3 while another vCPU owns the registers.
    dr: [u64; 4],
}

/// A `VM_ENTER` in progress on a PD's thread.
#[derive(Copy, Clone, Debug)]
struct Run {
    slot: usize,
    deadline: u64,
    halted: bool,
}

static mut VCPUS: [Option<Vcpu>; MAX_VCPU_SLOTS] = [None; MAX_VCPU_SLOTS];
static mut RUNS: [Option<Run>; MAX_PDS] = [None; MAX_PDS];
/// Slots `load` filled (the first ones).
static mut LOADED: usize = 0;
/// The VMCB that ran last: switching to another one flushes the TLB (QEMU has no
/// flush-by-ASID, and vCPUs of one VM share an ASID).
static mut LAST_VMCB: u64 = 0;
/// The TSC rate measured at boot, reported with every exit ([`Word::TSC_HZ`]).
static mut TSC_HZ: u64 = 0;

pub fn set_tsc_hz(hz: u64) {
    // SAFETY: written once at boot, before any PD runs; single CPU.
    unsafe { TSC_HZ = hz };
}
/// Whose extended state is in the registers: PDs cannot touch it (CR0.EM set,
/// CR4.OSXSAVE clear in ring 3), so it is saved only when another vCPU needs them.
static mut FPU_OWNER: Option<usize> = None;
/// Time spent from just before VMRUN to just after the exit (the guest, the
/// world switch, and for INTR exits nothing else: the irq is taken afterwards),
/// plus the irq windows; subtracted from VM_ENTER's kernel time for the report.
static mut GUEST_TSC: u64 = 0;

pub fn guest_tsc() -> u64 {
    // SAFETY: single CPU; read only.
    unsafe { GUEST_TSC }
}

/// Whose DR0..DR3 are in the registers. VMRUN swaps only DR6/DR7; the host never
/// uses the others and ring 3 cannot read them, so they are swapped only when
/// another vCPU runs, and no guest sees another's breakpoints.
static mut DR_OWNER: Option<usize> = None;

/// Exits by code, for the report at halt: (code, count).
static mut EXIT_COUNTS: [(u64, u64); 24] = [(0, 0); 24];

fn vcpus() -> &'static mut [Option<Vcpu>; MAX_VCPU_SLOTS] {
    // SAFETY: single CPU, kernel entered with interrupts off; no caller keeps the
    // reference across the irq window in `take_host_irq`.
    unsafe { &mut *addr_of_mut!(VCPUS) }
}

fn runs() -> &'static mut [Option<Run>; MAX_PDS] {
    // SAFETY: as for `vcpus`.
    unsafe { &mut *addr_of_mut!(RUNS) }
}

#[derive(Debug, thiserror::Error)]
pub enum VmLoadError {
    #[error("the system has VMs but the CPU has no SVM with nested paging")]
    NoSvm,
    #[error("more than {MAX_VCPU_SLOTS} vCPUs")]
    TooManyVcpus,
    #[error("out of memory for VMCBs or nested page tables")]
    OutOfMemory,
    #[error("cannot build a nested page table: {0:?}")]
    Map(paging::MapError),
}

/// Builds every VM: its nested page tables from its maps (nothing else is
/// guest-physical memory) and a VMCB per vCPU in the x86 reset state.
pub fn load(
    image: &SystemImage<'_>,
    frames: &mut Frames,
    region_pa: &[u64; MAX_REGIONS],
) -> Result<usize, VmLoadError> {
    if image.vm_count() == 0 {
        return Ok(0);
    }
    if !svm::init(frames) {
        return Err(VmLoadError::NoSvm);
    }
    write_xsave_header(svm::xsave_init_pa());
    let mut slot = 0;
    for (vm_index, vm) in image.vms().enumerate() {
        let root = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
        for m in vm.maps {
            let region = usize::try_from(m.region).unwrap_or(usize::MAX);
            let (Some(r), Some(&pa)) = (image.regions().get(region), region_pa.get(region)) else {
                continue;
            };
            map_guest(frames, root, m.gpa, pa, r.size, m.perms)?;
        }
        let asids = svm::features().map_or(2, |f| f.asids.max(2));
        let asid = (vm_index as u32 % (asids - 1)) + 1;
        let iopm = match vm.desc.io_count {
            0 => svm::iopm_pa(),
            count => io_permission_map(frames, vm.desc.io_base, count)?,
        };
        for &id in vm.vcpu_ids() {
            let entry = vcpus().get_mut(slot).ok_or(VmLoadError::TooManyVcpus)?;
            let vmcb = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            let xsave = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            let backup = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            write_xsave_header(xsave);
            vmcb::init(&mut PhysVmcb::at(vmcb), root, asid, iopm, svm::msrpm_pa());
            *entry = Some(Vcpu {
                owner: vm.desc.owner_pd,
                id,
                vmcb,
                xsave,
                backup,
                backed_up: false,
                regs: Regs::default(),
                dr: [0; 4],
            });
            slot += 1;
        }
    }
    // SAFETY: single CPU at boot, before any PD runs.
    unsafe { LOADED = slot };
    Ok(slot)
}

/// A VM's own I/O permission map: every port intercepted but its grant (which
/// the image parser checked against `GUEST_PORT_RANGES`).
fn io_permission_map(frames: &mut Frames, base: u16, count: u8) -> Result<u64, VmLoadError> {
    let granted =
        kernel_core::iopm::granted_bits(base, count).map(|(byte, mask)| (byte as u64, mask));
    svm::permission_map(frames, kernel_core::iopm::IOPM_BYTES as u64, granted)
        .ok_or(VmLoadError::OutOfMemory)
}

/// Maps `size` bytes of frames at `pa` to guest-physical `gpa`; 2 MiB pages where
/// both sides are aligned. NPT walks count as user accesses, so leaves carry USER.
fn map_guest(
    frames: &mut Frames,
    root: u64,
    gpa: u64,
    pa: u64,
    size: u64,
    p: u32,
) -> Result<(), VmLoadError> {
    paging::map_range(
        &mut Phys(frames),
        root,
        gpa,
        pa,
        size,
        PageSize::Size2M,
        paging::user_flags(p, true),
    )
    .map_err(VmLoadError::Map)
}

/// A fresh XSAVE area: every component initial, MXCSR at its reset value.
fn write_xsave_header(pa: u64) {
    mem::write_u64(pa + 24, 0x1f80 | (0xffff << 32));
}

/// A VMCB page the kernel owns, through the physical window (its address there
/// computed once: the state words go in and out word by word on every entry).
struct PhysVmcb(*mut u8);

impl PhysVmcb {
    fn at(pa: u64) -> Self {
        Self(mem::phys_ptr(pa))
    }
}

impl Vmcb for PhysVmcb {
    fn read(&self, offset: u64) -> u64 {
        // SAFETY: the VMCB is a page the kernel allocated; the core's offsets are
        // 8-byte aligned and inside it.
        unsafe { (self.0.add(offset as usize) as *const u64).read_volatile() }
    }
    fn write(&mut self, offset: u64, value: u64) {
        // SAFETY: as for `read`.
        unsafe { (self.0.add(offset as usize) as *mut u64).write_volatile(value) }
    }
}

fn w64(vmcb: u64, offset: u64, v: u64) {
    mem::write_u64(vmcb + offset, v);
}

fn r64(vmcb: u64, offset: u64) -> u64 {
    mem::read_u64(vmcb + offset)
}

fn slot_of(pd: PdId, id: u64) -> Option<usize> {
    // SAFETY: written once in `load`.
    let loaded = unsafe { LOADED };
    vcpus()
        .get(..loaded)?
        .iter()
        .position(|v| v.is_some_and(|v| v.owner == pd && u64::from(v.id) == id))
}

fn xcr0_supported() -> u64 {
    svm::features().map_or(1, |f| f.xcr0_supported)
}

/// Writes the vCPU's whole state and `exit_code` into the VMM's IPC buffer.
fn store_words(v: &Vcpu, ipc: u64, exit_code: u64) {
    let words = mem::phys_ptr(ipc) as *mut u64;
    let mut put = |word: usize, value: u64| {
        if word < Word::COUNT {
            // SAFETY: the IPC buffer is a page the kernel allocated for this PD,
            // and `Word::COUNT` words fit in it.
            unsafe { words.add(word).write_volatile(value) }
        }
    };
    put(Word::EXIT_CODE, exit_code);
    vmcb::store_words(&PhysVmcb::at(v.vmcb), &v.regs, &mut put);
    // SAFETY: written once at boot.
    put(Word::TSC_HZ, unsafe { TSC_HZ });
}

/// The DIRTY word and the words it names (the others stay 0: unused).
fn read_words(ipc: u64) -> [u64; Word::COUNT] {
    let mut words = [0u64; Word::COUNT];
    let dirty = mem::read_u64(ipc + Word::DIRTY as u64 * 8) & ((1 << Word::COUNT) - 1);
    words[Word::DIRTY] = dirty;
    let mut rest = dirty;
    while rest != 0 {
        let i = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        words[i] = mem::read_u64(ipc + i as u64 * 8);
    }
    words
}

/// `VM_ENTER(vcpu, flags, deadline)` from `pd`: `Err` with the status to return at
/// once, `Ok(None)` when the guest is to run (the caller keeps the PD current and
/// the scheduler resumes the guest through [`resume`]), `Ok(Some(ret))` when it
/// returns at once with the state words written (an unrunnable state).
pub fn enter(pd: PdId, ipc: u64, vcpu: u64, fl: u64, deadline: u64) -> Result<Option<Ret>, Status> {
    let slot = slot_of(pd, vcpu).ok_or(Status::NOT_A_VCPU)?;
    if fl & !flags::HALTED != 0 {
        return Err(Status::BAD_ARGUMENT);
    }
    let Some(v) = vcpus()[slot].as_mut() else {
        return Err(Status::NOT_A_VCPU);
    };
    let words = read_words(ipc);
    let loaded = vmcb::load_dirty(
        &mut PhysVmcb::at(v.vmcb),
        &mut v.regs,
        &words,
        xcr0_supported(),
    );
    if words[Word::DIRTY] & vmcb::CHECKED_WORDS != 0 {
        copy_save_area(v.vmcb, v.backup);
        v.backed_up = true;
    }
    if loaded.is_err() {
        store_words(v, ipc, pseudo_exit::INVALID_STATE);
        return Ok(Some(Ret::vm_exit()));
    }
    // A deadline already past ends a halted entry at once: the run below returns
    // DEADLINE before VMRUN.
    let passed = deadline != 0 && crate::cpu::rdtsc() >= deadline;
    runs()[usize::from(pd)] = Some(Run {
        slot,
        deadline,
        halted: fl & flags::HALTED != 0 && !passed,
    });
    Ok(None)
}

/// Whether `pd` is halted in `VM_ENTER` (the core blocks it until a notification
/// or its deadline) and that deadline.
pub fn halted(pd: PdId) -> Option<u64> {
    runs()
        .get(usize::from(pd))
        .copied()
        .flatten()
        .filter(|r| r.halted)
        .map(|r| r.deadline)
}

/// Whether the scheduler must resume `pd` through [`resume`] instead of its frame.
pub fn in_guest(pd: PdId) -> bool {
    runs().get(usize::from(pd)).is_some_and(|r| r.is_some())
}

/// How [`resume`] ended.
#[derive(Debug)]
pub enum Resumed {
    /// `VM_ENTER` returns with this result; the state words are written.
    Return(Ret),
    /// Another PD is to run; the guest stays in its VMCB until `pd` runs again.
    Preempted,
}

/// What [`resume`] needs from the rest of the kernel.
pub trait Host {
    /// Whether `pd` is still the one to run.
    fn is_current(&self, pd: PdId) -> bool;
    /// Takes `pd`'s pending notification bits.
    fn take_pending(&mut self, pd: PdId) -> u64;
    /// Lets the host interrupt that exited the guest run through the irq path.
    fn take_irq(&mut self);
}

/// Runs `pd`'s guest (its `VM_ENTER` in progress) until something its VMM must see.
/// `ret_of_halt` is the result the core set when it woke a halted `VM_ENTER`.
pub fn resume(pd: PdId, ipc: u64, host: &mut dyn Host, ret_of_halt: Ret) -> Resumed {
    let Some(run) = runs()[usize::from(pd)] else {
        return Resumed::Preempted;
    };
    let slot = run.slot;
    let finish = |code: u64, ret: Ret| {
        if let Some(v) = vcpus()[slot].as_ref() {
            store_words(v, ipc, code);
        }
        runs()[usize::from(pd)] = None;
        Resumed::Return(ret)
    };
    if vcpus()[slot].is_none() {
        runs()[usize::from(pd)] = None;
        return Resumed::Return(Ret::status(Status::NOT_A_VCPU));
    }
    if run.halted {
        let code = if ret_of_halt.rax == Event::NOTIFICATION.0 {
            pseudo_exit::NOTIFIED
        } else {
            pseudo_exit::DEADLINE
        };
        return finish(code, ret_of_halt);
    }
    loop {
        if !host.is_current(pd) {
            return Resumed::Preempted;
        }
        let bits = host.take_pending(pd);
        if bits != 0 {
            return finish(pseudo_exit::NOTIFIED, Ret::notification(bits));
        }
        if run.deadline != 0 && crate::cpu::rdtsc() >= run.deadline {
            return finish(pseudo_exit::DEADLINE, Ret::vm_exit());
        }
        if run.deadline != 0 {
            crate::apic::arm(run.deadline);
        }
        take_registers(slot);
        // The borrow ends before anything else reaches the vCPU table (the irq path
        // in `take_irq` does not, but keep it obvious).
        let (code, vm) = {
            let Some(v) = vcpus()[slot].as_mut() else {
                return Resumed::Preempted;
            };
            let code = run_once(v);
            count_exit(code);
            match code {
                exit::XSETBV if emulate_xsetbv(v) => (None, v.vmcb),
                c if c as u32 == EXIT_INVALID => {
                    // Nothing ran: the state is the one the VMM asked for, as it was.
                    if v.backed_up {
                        copy_save_area(v.backup, v.vmcb);
                    }
                    v.backed_up = false;
                    (Some(pseudo_exit::INVALID_STATE), v.vmcb)
                }
                c => {
                    v.backed_up = false;
                    (Some(c), v.vmcb)
                }
            }
        };
        match code {
            None => {}
            Some(exit::INTR) => {
                reinject_interrupted_event(vm);
                let start = crate::cpu::rdtsc();
                host.take_irq();
                // SAFETY: single CPU, interrupts off.
                unsafe { *addr_of_mut!(GUEST_TSC) += crate::cpu::rdtsc() - start };
            }
            // The NMI is taken by the host once GIF is set again.
            Some(exit::NMI) => reinject_interrupted_event(vm),
            Some(exit::VINTR) => {
                // One shot: the window is open, the VMM injects now.
                vmcb::close_interrupt_window(&mut PhysVmcb::at(vm));
                return finish(exit::VINTR, Ret::vm_exit());
            }
            // SVM is not offered to guests: its instructions raise #UD there.
            Some(
                EXIT_VMRUN | EXIT_VMLOAD..=EXIT_SKINIT | EXIT_INVLPGA | EXIT_MONITOR | EXIT_MWAIT,
            ) => inject_ud(vm),
            Some(c) => return finish(c, Ret::vm_exit()),
        }
    }
}

/// Guest memory through the VM's nested page tables.
struct GuestRam {
    npt_root: u64,
}

impl GuestPhys for GuestRam {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        let (pa, _) = paging::translate(&mem::PhysRead, self.npt_root, gpa & !7)?;
        Some(mem::read_u64(pa))
    }
}

/// The guest's code byte at linear address `linear`.
fn fetch_byte(ram: &GuestRam, p: &Paging, linear: u64) -> Option<u8> {
    let gpa = guest::translate(ram, p, linear)?;
    Some((ram.read_u64(gpa)? >> ((gpa & 7) * 8)) as u8)
}

/// XSETBV, emulated here because XCR0 is the kernel's to swap: checks that the
/// bytes at CS:RIP are exactly `0F 01 D1` (SVM gives no instruction length here),
/// raises the architectural #UD/#GP in the guest, else sets its XCR0 and moves RIP
/// past the instruction. `false` leaves the exit to the VMM (a prefixed form, or
/// code the walk cannot read), which may complete it through [`Word::XCR0`].
fn emulate_xsetbv(v: &mut Vcpu) -> bool {
    let vm = v.vmcb;
    let p = Paging {
        cr0: r64(vm, off::CR0),
        cr3: r64(vm, off::CR3),
        cr4: r64(vm, off::CR4),
        efer: r64(vm, off::EFER),
    };
    let rip = r64(vm, off::RIP);
    let cs_long = (r64(vm, off::CS) >> 16) & (1 << 9) != 0;
    let linear = if p.efer & (1 << 10) != 0 && cs_long {
        rip
    } else {
        r64(vm, off::CS + 8).wrapping_add(rip) & 0xffff_ffff
    };
    let ram = GuestRam {
        npt_root: r64(vm, off::N_CR3),
    };
    let mut bytes = [0u8; 3];
    for (i, b) in bytes.iter_mut().enumerate() {
        match fetch_byte(&ram, &p, linear.wrapping_add(i as u64)) {
            Some(x) => *b = x,
            None => return false,
        }
    }
    if bytes != [0x0f, 0x01, 0xd1] {
        return false;
    }
    let value = (v.regs.gprs.rdx << 32) | (r64(vm, off::RAX) & 0xffff_ffff);
    let cpl = vmcb::read8(&PhysVmcb::at(vm), off::CPL);
    if p.cr4 & (1 << 18) == 0 {
        inject_ud(vm);
    } else if cpl != 0 || v.regs.gprs.rcx as u32 != 0 || !vmcb::xcr0_valid(value, xcr0_supported())
    {
        // #GP(0): valid, error code valid, type exception, vector 13.
        w64(vm, off::EVENT_INJ, (1 << 31) | (1 << 11) | (3 << 8) | 13);
    } else {
        v.regs.xcr0 = value;
        w64(vm, off::RIP, rip.wrapping_add(3));
        w64(vm, off::INTERRUPT_SHADOW, 0);
    }
    true
}

fn copy_save_area(from: u64, to: u64) {
    for at in off::SAVE_AREA.step_by(8) {
        mem::write_u64(to + at, mem::read_u64(from + at));
    }
}

/// An exit the VMM never sees may have interrupted the delivery of an event (one
/// the VMM injected, or the guest's own): deliver it again on the next VMRUN, as
/// the VMM would for the exits it handles.
fn reinject_interrupted_event(vm: u64) {
    let info = r64(vm, off::EXIT_INT_INFO);
    if info & (1 << 31) != 0 {
        w64(vm, off::EVENT_INJ, info);
    }
}

fn inject_ud(vm: u64) {
    // Valid, type exception (3), vector 6.
    w64(vm, off::EVENT_INJ, (1 << 31) | (3 << 8) | 6);
}

/// Makes vCPU `slot`'s extended state and DR0..DR3 the ones in the registers,
/// saving the previous owner's first.
fn take_registers(slot: usize) {
    // SAFETY: single CPU; kernel statics touched with interrupts off.
    let (fpu, dr) = unsafe { (&mut *addr_of_mut!(FPU_OWNER), &mut *addr_of_mut!(DR_OWNER)) };
    if *fpu != Some(slot) {
        svm::osxsave(true);
        if let Some(prev) = fpu.and_then(|o| vcpus()[o].as_ref()) {
            svm::xsave(prev.xsave);
        }
        if let Some(v) = vcpus()[slot].as_ref() {
            svm::xrstor(v.xsave);
        }
        *fpu = Some(slot);
    }
    if *dr != Some(slot) {
        if let Some(prev) = dr.and_then(|o| vcpus()[o].as_mut()) {
            prev.dr = svm::debug_registers();
        }
        if let Some(v) = vcpus()[slot].as_ref() {
            svm::set_debug_registers(&v.dr);
        }
        *dr = Some(slot);
    }
}

/// One VMRUN of `v` (whose registers [`take_registers`] loaded): TLB flush when
/// needed, the guest's XCR0 while it runs. Returns the exit code.
fn run_once(v: &mut Vcpu) -> u64 {
    // SAFETY: single CPU; kernel statics touched with interrupts off.
    let last = unsafe { &mut *addr_of_mut!(LAST_VMCB) };
    let flush = v.regs.flush || *last != v.vmcb;
    vmcb::write8(&mut PhysVmcb::at(v.vmcb), off::TLB_CONTROL, u8::from(flush));
    v.regs.flush = false;
    *last = v.vmcb;
    w64(v.vmcb, off::EXIT_CODE, 0);
    svm::osxsave(true);
    let start = crate::cpu::rdtsc();
    svm::run(&mut v.regs.gprs, v.vmcb, v.regs.xcr0);
    // SAFETY: single CPU, interrupts off.
    unsafe { *addr_of_mut!(GUEST_TSC) += crate::cpu::rdtsc() - start };
    svm::disable_host_breakpoints();
    svm::osxsave(false);
    r64(v.vmcb, off::EXIT_CODE)
}

fn count_exit(code: u64) {
    // SAFETY: single CPU, interrupts off.
    let counts = unsafe { &mut *addr_of_mut!(EXIT_COUNTS) };
    if let Some(e) = counts.iter_mut().find(|e| e.1 == 0 || e.0 == code) {
        e.0 = code;
        e.1 += 1;
    }
}

/// Prints how many exits of each kind the guests took (at halt).
pub fn print_exit_counts() {
    // SAFETY: single CPU, interrupts off; read only.
    let counts = unsafe { &*addr_of_mut!(EXIT_COUNTS) };
    for &(code, n) in counts.iter().filter(|e| e.1 != 0) {
        crate::kprintln!("kernel: guest exits {code:#x}: {n} ({})", exit_name(code));
    }
}

fn exit_name(code: u64) -> &'static str {
    match code {
        exit::INTR => "host interrupt, handled in the kernel",
        exit::NMI => "host NMI",
        exit::VINTR => "interrupt window",
        exit::CPUID => "CPUID",
        exit::HLT => "HLT",
        exit::IOIO => "port I/O",
        exit::MSR => "MSR",
        exit::SHUTDOWN => "shutdown (triple fault)",
        exit::VMMCALL => "VMMCALL",
        exit::XSETBV => "XSETBV",
        exit::NPF => "nested page fault",
        c if c as u32 == EXIT_INVALID => "VMRUN refused the state",
        c if (exit::EXCEPTION_BASE..exit::EXCEPTION_BASE + 32).contains(&c) => "exception",
        EXIT_VMRUN | EXIT_VMLOAD..=EXIT_SKINIT | EXIT_INVLPGA | EXIT_MONITOR | EXIT_MWAIT => {
            "SVM or MONITOR/MWAIT, #UD in the guest"
        }
        _ => "other",
    }
}
