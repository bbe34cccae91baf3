//! Guest vCPUs: one VMCB, saved GPRs and an XSAVE area each, the VMs' nested page
//! tables, and `VM_ENTER` (see `kernel_abi::vcpu`): apply the VMM's dirty state
//! words, run the guest until an exit the VMM must see, write the state back.
//!
//! The VMM PD's thread is the vCPU's thread: while it runs its guest it stays the
//! core's current PD, so the scheduler needs no new state for it; only the glue
//! must resume the guest (not `iretq`) when it picks a PD whose `VM_ENTER` is still
//! in progress ([`in_guest`]). Host interrupts exit the guest (INTR intercept) and
//! are taken by the kernel's normal irq path right after the exit; if that made
//! another PD current, the guest waits in its VMCB until its VMM runs again.
#![allow(unsafe_code)]

use core::ptr::addr_of_mut;

use kernel_abi::image::{perms, SystemImage, MAX_PDS, MAX_REGIONS};
use kernel_abi::syscall::{Event, Status};
use kernel_abi::vcpu::{exit, flags, pseudo_exit, segment_parts, segment_word, Word};
use kernel_core::guest::{self, GuestPhys, Paging};
use kernel_core::paging::{self, PageSize, NO_EXECUTE, PRESENT, USER, WRITABLE};
use kernel_core::{PdId, Ret};

use crate::mem::{self, Frames, Phys};
use crate::svm::{self, vmcb, Gprs};

/// vCPUs the kernel can hold in all (its static table).
pub const MAX_VCPU_SLOTS: usize = 64;
/// The machine-check vector: always intercepted (a host matter, reported).
const MC: u32 = 1 << 18;
/// SVM's VMEXIT_INVALID (-1): VMRUN refused the state. QEMU stores it as a 32-bit
/// value, so only the low half is compared.
const EXIT_INVALID: u32 = u32::MAX;
/// The part of the VMCB's state-save area VMRUN reads (through G_PAT and the
/// debug-control words after it).
const SAVE_AREA: core::ops::Range<u64> = 0x400..0x6a0;
/// State words VMRUN checks: changing one may make it refuse the state, and a
/// refused VMRUN overwrites the save area (under QEMU with host values), so the
/// kernel keeps a copy of the area to put back.
const CHECKED_WORDS: u64 = (1 << Word::CR0)
    | (1 << Word::CR3)
    | (1 << Word::CR4)
    | (1 << Word::EFER)
    | (1 << Word::RFLAGS)
    | (1 << Word::DR7)
    | (1 << Word::EVENT_INJECT)
    | (1 << Word::PAT)
    | (0xffff << Word::SEGMENTS)
    | (0xf << Word::GDTR);
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
    gprs: Gprs,
    /// DR0..DR3 while another vCPU owns the registers.
    dr: [u64; 4],
    xcr0: u64,
    /// Exception vectors the VMM asked to see.
    exceptions: u32,
    /// The guest's TLB entries may be stale (first run, CR0/CR3/CR4/EFER changed).
    flush: bool,
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

#[derive(Debug)]
pub enum VmLoadError {
    NoSvm,
    TooManyVcpus,
    OutOfMemory,
    Map(paging::MapError),
}

impl core::fmt::Display for VmLoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSvm => write!(
                f,
                "the system has VMs but the CPU has no SVM with nested paging"
            ),
            Self::TooManyVcpus => write!(f, "more than {MAX_VCPU_SLOTS} vCPUs"),
            Self::OutOfMemory => write!(f, "out of memory for VMCBs or nested page tables"),
            Self::Map(e) => write!(f, "cannot build a nested page table: {e:?}"),
        }
    }
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
        for &id in vm.vcpu_ids() {
            let entry = vcpus().get_mut(slot).ok_or(VmLoadError::TooManyVcpus)?;
            let vmcb = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            let xsave = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            let backup = frames.alloc(1).ok_or(VmLoadError::OutOfMemory)?;
            write_xsave_header(xsave);
            init_vmcb(vmcb, root, asid);
            *entry = Some(Vcpu {
                owner: vm.desc.owner_pd,
                id,
                vmcb,
                xsave,
                backup,
                backed_up: false,
                gprs: Gprs::default(),
                dr: [0; 4],
                xcr0: 1,
                exceptions: 0,
                flush: true,
            });
            slot += 1;
        }
    }
    // SAFETY: single CPU at boot, before any PD runs.
    unsafe { LOADED = slot };
    Ok(slot)
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
    let mut flags = PRESENT | USER;
    if p & perms::W != 0 {
        flags |= WRITABLE;
    }
    if p & perms::X == 0 {
        flags |= NO_EXECUTE;
    }
    let mut off = 0;
    while off < size {
        let big = PageSize::Size2M.bytes();
        let page = if (gpa + off).is_multiple_of(big)
            && (pa + off).is_multiple_of(big)
            && size - off >= big
        {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        };
        paging::map(&mut Phys(frames), root, gpa + off, pa + off, page, flags)
            .map_err(VmLoadError::Map)?;
        off += page.bytes();
    }
    Ok(())
}

/// A fresh XSAVE area: every component initial, MXCSR at its reset value.
fn write_xsave_header(pa: u64) {
    mem::write_u64(pa + 24, 0x1f80 | (0xffff << 32));
}

fn w64(vmcb: u64, off: u64, v: u64) {
    mem::write_u64(vmcb + off, v);
}

fn r64(vmcb: u64, off: u64) -> u64 {
    mem::read_u64(vmcb + off)
}

fn w32(vmcb: u64, off: u64, v: u32) {
    // SAFETY: inside a VMCB page the kernel owns; 4-byte aligned offsets.
    unsafe { (mem::phys_ptr(vmcb + off) as *mut u32).write_volatile(v) }
}

fn r32(vmcb: u64, off: u64) -> u32 {
    // SAFETY: as for `w32`.
    unsafe { (mem::phys_ptr(vmcb + off) as *const u32).read_volatile() }
}

fn w8(vmcb: u64, off: u64, v: u8) {
    // SAFETY: as for `w32`.
    unsafe { mem::phys_ptr(vmcb + off).write_volatile(v) }
}

fn r8(vmcb: u64, off: u64) -> u8 {
    // SAFETY: as for `w32`.
    unsafe { mem::phys_ptr(vmcb + off).read_volatile() }
}

/// The intercepts the kernel always sets (`kernel_abi::vcpu`'s list).
const MISC1: u32 = vmcb::I_INTR
    | vmcb::I_NMI
    | vmcb::I_SMI
    | vmcb::I_INIT
    | vmcb::I_CPUID
    | vmcb::I_HLT
    | vmcb::I_INVLPGA
    | vmcb::I_IOIO
    | vmcb::I_MSR
    | vmcb::I_SHUTDOWN;
const MISC2: u32 = vmcb::I_VMRUN
    | vmcb::I_VMMCALL
    | vmcb::I_VMLOAD
    | vmcb::I_VMSAVE
    | vmcb::I_STGI
    | vmcb::I_CLGI
    | vmcb::I_SKINIT
    | vmcb::I_MONITOR
    | vmcb::I_MWAIT
    | vmcb::I_XSETBV;

fn set_segment(vmcb: u64, off: u64, selector: u16, attrib: u16, limit: u32, base: u64) {
    w64(
        vmcb,
        off,
        u64::from(selector) | (u64::from(attrib) << 16) | (u64::from(limit) << 32),
    );
    w64(vmcb, off + 8, base);
}

/// Intercepts, maps, nested paging, and the architectural reset state (real mode
/// at F000:FFF0), so a VMCB is runnable before the VMM writes anything.
fn init_vmcb(v: u64, npt_root: u64, asid: u32) {
    w32(v, vmcb::INTERCEPT_EXCEPTIONS, MC);
    w32(v, vmcb::INTERCEPT_MISC1, MISC1);
    w32(v, vmcb::INTERCEPT_MISC2, MISC2);
    w64(v, vmcb::IOPM_BASE, svm::iopm_pa());
    w64(v, vmcb::MSRPM_BASE, svm::msrpm_pa());
    w32(v, vmcb::ASID, asid);
    w64(v, vmcb::VINTR, vmcb::V_INTR_MASKING);
    w64(v, vmcb::NP_ENABLE, 1);
    w64(v, vmcb::N_CR3, npt_root);
    for off in [vmcb::ES, vmcb::SS, vmcb::DS, vmcb::FS, vmcb::GS] {
        set_segment(v, off, 0, 0x93, 0xffff, 0);
    }
    set_segment(v, vmcb::CS, 0xf000, 0x9b, 0xffff, 0xffff_0000);
    set_segment(v, vmcb::GDTR, 0, 0, 0xffff, 0);
    set_segment(v, vmcb::IDTR, 0, 0, 0xffff, 0);
    set_segment(v, vmcb::LDTR, 0, 0x82, 0xffff, 0);
    set_segment(v, vmcb::TR, 0, 0x8b, 0xffff, 0);
    w64(v, vmcb::EFER, 1 << 12);
    w64(v, vmcb::CR0, 0x6000_0010);
    w64(v, vmcb::DR6, 0xffff_0ff0);
    w64(v, vmcb::DR7, 0x400);
    w64(v, vmcb::RFLAGS, 2);
    w64(v, vmcb::RIP, 0xfff0);
    w64(v, vmcb::G_PAT, 0x0007_0406_0007_0406);
}

/// VMCB offsets of the segments in [`Word::SEGMENTS`] order.
const SEGMENTS: [u64; 8] = [
    vmcb::ES,
    vmcb::CS,
    vmcb::SS,
    vmcb::DS,
    vmcb::FS,
    vmcb::GS,
    vmcb::LDTR,
    vmcb::TR,
];

fn slot_of(pd: PdId, id: u64) -> Option<usize> {
    // SAFETY: written once in `load`.
    let loaded = unsafe { LOADED };
    vcpus()
        .get(..loaded)?
        .iter()
        .position(|v| v.is_some_and(|v| v.owner == pd && u64::from(v.id) == id))
}

/// Whether `xcr0` is a value XSETBV would accept on this host.
fn xcr0_valid(xcr0: u64) -> bool {
    let supported = svm::features().map_or(1, |f| f.xcr0_supported);
    let avx512 = 0b111 << 5;
    xcr0 & !supported == 0
        && xcr0 & 1 != 0
        && (xcr0 & 4 == 0 || xcr0 & 2 != 0)
        && (xcr0 & avx512 == 0 || (xcr0 & avx512 == avx512 && xcr0 & 4 != 0))
}

/// Applies the words the VMM marked dirty. `Err` if one cannot be run (an XCR0 the
/// host refuses); the VMCB may then be partly updated, which the VMM sees.
fn load_dirty(v: &mut Vcpu, words: &[u64; Word::COUNT]) -> Result<(), ()> {
    let mut dirty = words[Word::DIRTY] & ((1 << Word::COUNT) - 1);
    let vm = v.vmcb;
    let mut ok = true;
    while dirty != 0 {
        let i = dirty.trailing_zeros() as usize;
        dirty &= dirty - 1;
        let w = words[i];
        match i {
            Word::INTERRUPT_SHADOW => w64(vm, vmcb::INTERRUPT_SHADOW, w & 1),
            // Only the architectural bits: vector, type, EV, V, error code.
            Word::EVENT_INJECT => w64(vm, vmcb::EVENT_INJ, w & 0xffff_ffff_8000_0fff),
            Word::INTERRUPT_WINDOW => {
                let mut vintr = r64(vm, vmcb::VINTR)
                    & !(vmcb::V_IRQ | 0xff | (0xf << vmcb::V_INTR_PRIO_SHIFT) | vmcb::V_IGN_TPR);
                vintr |= (w >> 8) & 0xff;
                let mut misc1 = r32(vm, vmcb::INTERCEPT_MISC1) & !vmcb::I_VINTR;
                if w & 1 != 0 {
                    vintr |= vmcb::V_IRQ | vmcb::V_IGN_TPR | (0xf << vmcb::V_INTR_PRIO_SHIFT);
                    misc1 |= vmcb::I_VINTR;
                }
                w64(vm, vmcb::VINTR, vintr);
                w32(vm, vmcb::INTERCEPT_MISC1, misc1);
            }
            Word::RAX => w64(vm, vmcb::RAX, w),
            Word::RSP => w64(vm, vmcb::RSP, w),
            Word::RCX => v.gprs.rcx = w,
            Word::RDX => v.gprs.rdx = w,
            Word::RBX => v.gprs.rbx = w,
            Word::RBP => v.gprs.rbp = w,
            Word::RSI => v.gprs.rsi = w,
            Word::RDI => v.gprs.rdi = w,
            16 => v.gprs.r8 = w,
            17 => v.gprs.r9 = w,
            18 => v.gprs.r10 = w,
            19 => v.gprs.r11 = w,
            20 => v.gprs.r12 = w,
            21 => v.gprs.r13 = w,
            22 => v.gprs.r14 = w,
            23 => v.gprs.r15 = w,
            Word::RIP => w64(vm, vmcb::RIP, w),
            Word::RFLAGS => w64(vm, vmcb::RFLAGS, w),
            Word::CR0 => {
                w64(vm, vmcb::CR0, w);
                v.flush = true;
            }
            Word::CR2 => w64(vm, vmcb::CR2, w),
            Word::CR3 => {
                w64(vm, vmcb::CR3, w);
                v.flush = true;
            }
            Word::CR4 => {
                w64(vm, vmcb::CR4, w);
                v.flush = true;
            }
            // The guest must stay under SVM's control: SVME cannot be turned off.
            Word::EFER => {
                w64(vm, vmcb::EFER, w | (1 << 12));
                v.flush = true;
            }
            Word::EXCEPTION_INTERCEPTS => {
                v.exceptions = w as u32;
                w32(vm, vmcb::INTERCEPT_EXCEPTIONS, w as u32 | MC);
            }
            Word::GDTR | Word::IDTR => {
                let off = if i == Word::GDTR {
                    vmcb::GDTR
                } else {
                    vmcb::IDTR
                };
                w32(vm, off + 4, w as u32);
            }
            49 => w64(vm, vmcb::GDTR + 8, w),
            51 => w64(vm, vmcb::IDTR + 8, w),
            Word::PAT => w64(vm, vmcb::G_PAT, w),
            Word::DR7 => w64(vm, vmcb::DR7, w),
            Word::XCR0 => {
                if xcr0_valid(w) {
                    v.xcr0 = w;
                } else {
                    ok = false;
                }
            }
            s if (Word::SEGMENTS..Word::GDTR).contains(&s) => {
                let off = SEGMENTS[(s - Word::SEGMENTS) / 2];
                if (s - Word::SEGMENTS).is_multiple_of(2) {
                    let (sel, attrib, limit) = segment_parts(w);
                    set_segment(vm, off, sel, attrib, limit, r64(vm, off + 8));
                } else {
                    w64(vm, off + 8, w);
                }
            }
            _ => {}
        }
    }
    // The CPL follows SS.DPL in protected mode; VMRUN takes it from the VMCB.
    let pe = r64(vm, vmcb::CR0) & 1 != 0;
    let v86 = r64(vm, vmcb::RFLAGS) & (1 << 17) != 0;
    let ss_attrib = (r64(vm, vmcb::SS) >> 16) as u16;
    let cpl = match (pe, v86) {
        (false, _) => 0,
        (true, true) => 3,
        (true, false) => ((ss_attrib >> 5) & 3) as u8,
    };
    w8(vm, vmcb::CPL, cpl);
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// Writes the vCPU's whole state and `exit_code` into the VMM's IPC buffer.
fn store_words(v: &Vcpu, ipc: u64, exit_code: u64) {
    let vm = v.vmcb;
    let put = |word: usize, value: u64| mem::write_u64(ipc + word as u64 * 8, value);
    put(Word::EXIT_CODE, exit_code);
    put(Word::EXIT_INFO1, r64(vm, vmcb::EXIT_INFO1));
    put(Word::EXIT_INFO2, r64(vm, vmcb::EXIT_INFO2));
    put(Word::EXIT_INT_INFO, r64(vm, vmcb::EXIT_INT_INFO));
    put(Word::INTERRUPT_SHADOW, r64(vm, vmcb::INTERRUPT_SHADOW) & 1);
    put(Word::DIRTY, 0);
    put(Word::EVENT_INJECT, r64(vm, vmcb::EVENT_INJ));
    let vintr = r64(vm, vmcb::VINTR);
    put(
        Word::INTERRUPT_WINDOW,
        u64::from(vintr & vmcb::V_IRQ != 0) | ((vintr & 0xff) << 8),
    );
    let g = &v.gprs;
    put(Word::RAX, r64(vm, vmcb::RAX));
    put(Word::RCX, g.rcx);
    put(Word::RDX, g.rdx);
    put(Word::RBX, g.rbx);
    put(Word::RSP, r64(vm, vmcb::RSP));
    put(Word::RBP, g.rbp);
    put(Word::RSI, g.rsi);
    put(Word::RDI, g.rdi);
    for (k, r) in [g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15]
        .into_iter()
        .enumerate()
    {
        put(Word::R8 + k, r);
    }
    put(Word::RIP, r64(vm, vmcb::RIP));
    put(Word::RFLAGS, r64(vm, vmcb::RFLAGS));
    put(Word::CR0, r64(vm, vmcb::CR0));
    put(Word::CR2, r64(vm, vmcb::CR2));
    put(Word::CR3, r64(vm, vmcb::CR3));
    put(Word::CR4, r64(vm, vmcb::CR4));
    put(Word::EFER, r64(vm, vmcb::EFER));
    put(Word::EXCEPTION_INTERCEPTS, u64::from(v.exceptions));
    for (k, &off) in SEGMENTS.iter().enumerate() {
        // The VMCB's selector/attrib/limit word is the state word's layout already,
        // with the attribute's 12 bits in place.
        let raw = r64(vm, off);
        put(
            Word::SEGMENTS + 2 * k,
            segment_word(raw as u16, (raw >> 16) as u16 & 0xfff, (raw >> 32) as u32),
        );
        put(Word::SEGMENTS + 2 * k + 1, r64(vm, off + 8));
    }
    put(Word::GDTR, u64::from(r32(vm, vmcb::GDTR + 4)));
    put(Word::GDTR + 1, r64(vm, vmcb::GDTR + 8));
    put(Word::IDTR, u64::from(r32(vm, vmcb::IDTR + 4)));
    put(Word::IDTR + 1, r64(vm, vmcb::IDTR + 8));
    put(Word::PAT, r64(vm, vmcb::G_PAT));
    put(Word::DR7, r64(vm, vmcb::DR7));
    put(Word::XCR0, v.xcr0);
    let n = r8(vm, vmcb::INSN_BYTES).min(15);
    let (b0, b1) = if n > 0 {
        (r64(vm, vmcb::INSN_BYTES), r64(vm, vmcb::INSN_BYTES + 8))
    } else {
        (0, 0)
    };
    put(Word::INSN_BYTES, b0);
    put(Word::INSN_BYTES + 1, b1);
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
    let loaded = load_dirty(v, &words);
    if words[Word::DIRTY] & CHECKED_WORDS != 0 {
        copy_save_area(v.vmcb, v.backup);
        v.backed_up = true;
    }
    if loaded.is_err() {
        store_words(v, ipc, pseudo_exit::INVALID_STATE);
        return Ok(Some(vm_exit_ret()));
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

fn vm_exit_ret() -> Ret {
    Ret {
        rax: Event::VM_EXIT.0,
        ..Ret::default()
    }
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
            let ret = Ret {
                rax: Event::NOTIFICATION.0,
                rsi: bits,
                ..Ret::default()
            };
            return finish(pseudo_exit::NOTIFIED, ret);
        }
        if run.deadline != 0 && crate::cpu::rdtsc() >= run.deadline {
            return finish(pseudo_exit::DEADLINE, vm_exit_ret());
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
                w64(
                    vm,
                    vmcb::VINTR,
                    r64(vm, vmcb::VINTR) & !(vmcb::V_IRQ | vmcb::V_IGN_TPR),
                );
                w32(
                    vm,
                    vmcb::INTERCEPT_MISC1,
                    r32(vm, vmcb::INTERCEPT_MISC1) & !vmcb::I_VINTR,
                );
                return finish(exit::VINTR, vm_exit_ret());
            }
            // SVM is not offered to guests: its instructions raise #UD there.
            Some(
                EXIT_VMRUN | EXIT_VMLOAD..=EXIT_SKINIT | EXIT_INVLPGA | EXIT_MONITOR | EXIT_MWAIT,
            ) => inject_ud(vm),
            Some(c) => return finish(c, vm_exit_ret()),
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
        cr0: r64(vm, vmcb::CR0),
        cr3: r64(vm, vmcb::CR3),
        cr4: r64(vm, vmcb::CR4),
        efer: r64(vm, vmcb::EFER),
    };
    let rip = r64(vm, vmcb::RIP);
    let cs_long = (r64(vm, vmcb::CS) >> 16) & (1 << 9) != 0;
    let linear = if p.efer & (1 << 10) != 0 && cs_long {
        rip
    } else {
        r64(vm, vmcb::CS + 8).wrapping_add(rip) & 0xffff_ffff
    };
    let ram = GuestRam {
        npt_root: r64(vm, vmcb::N_CR3),
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
    let value = (v.gprs.rdx << 32) | (r64(vm, vmcb::RAX) & 0xffff_ffff);
    if p.cr4 & (1 << 18) == 0 {
        inject_ud(vm);
    } else if r8(vm, vmcb::CPL) != 0 || v.gprs.rcx as u32 != 0 || !xcr0_valid(value) {
        // #GP(0): valid, error code valid, type exception, vector 13.
        w64(vm, vmcb::EVENT_INJ, (1 << 31) | (1 << 11) | (3 << 8) | 13);
    } else {
        v.xcr0 = value;
        w64(vm, vmcb::RIP, rip.wrapping_add(3));
        w64(vm, vmcb::INTERRUPT_SHADOW, 0);
    }
    true
}

fn copy_save_area(from: u64, to: u64) {
    for off in SAVE_AREA.step_by(8) {
        mem::write_u64(to + off, mem::read_u64(from + off));
    }
}

/// An exit the VMM never sees may have interrupted the delivery of an event (one
/// the VMM injected, or the guest's own): deliver it again on the next VMRUN, as
/// the VMM would for the exits it handles.
fn reinject_interrupted_event(vm: u64) {
    let info = r64(vm, vmcb::EXIT_INT_INFO);
    if info & (1 << 31) != 0 {
        w64(vm, vmcb::EVENT_INJ, info);
    }
}

fn inject_ud(vm: u64) {
    // Valid, type exception (3), vector 6.
    w64(vm, vmcb::EVENT_INJ, (1 << 31) | (3 << 8) | 6);
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
    let flush = v.flush || *last != v.vmcb;
    w8(v.vmcb, vmcb::TLB_CONTROL, u8::from(flush));
    v.flush = false;
    *last = v.vmcb;
    w64(v.vmcb, vmcb::EXIT_CODE, 0);
    svm::osxsave(true);
    let start = crate::cpu::rdtsc();
    svm::run(&mut v.gprs, v.vmcb, v.xcr0);
    // SAFETY: single CPU, interrupts off.
    unsafe { *addr_of_mut!(GUEST_TSC) += crate::cpu::rdtsc() - start };
    svm::disable_host_breakpoints();
    svm::osxsave(false);
    r64(v.vmcb, vmcb::EXIT_CODE)
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
