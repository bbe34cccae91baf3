//! AMD SVM: detection and enabling, the shared MSR and I/O permission maps, the
//! host save areas, VMCB field offsets, and the one routine that runs a guest
//! (`svm_run`: guest GPRs in, VMLOAD, VMRUN, VMSAVE, host VMLOAD, GPRs out).
//!
//! Host state that VMRUN does not restore itself (FS/GS/TR/LDTR hidden state,
//! KERNEL_GS_BASE, STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*) is VMSAVEd once at boot
//! into `HOST_SAVE` and VMLOADed after every exit: the kernel never changes those
//! after boot, and PDs cannot (no MSR access, no FSGSBASE).
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};

use kernel_abi::vcpu::EFER_SVME;
use kernel_core::vmcb::Gprs;

use crate::cpu;
use crate::mem::{self, Frames};

/// What the CPU offers, found at boot.
#[derive(Copy, Clone, Debug)]
pub struct Features {
    pub asids: u32,
    /// XCR0 bits the CPU supports (CPUID 0xD.0 EDX:EAX), 0 without XSAVE.
    pub xcr0_supported: u64,
}

static mut FEATURES: Option<Features> = None;
static mut MSRPM_PA: u64 = 0;
static mut IOPM_PA: u64 = 0;
static mut HOST_SAVE_PA: u64 = 0;
/// An XSAVE area whose header says "every component in its initial state".
static mut XSAVE_INIT_PA: u64 = 0;

pub fn features() -> Option<Features> {
    // SAFETY: written once in `init`, before any PD runs.
    unsafe { FEATURES }
}

pub fn msrpm_pa() -> u64 {
    // SAFETY: as for `features`.
    unsafe { MSRPM_PA }
}

pub fn iopm_pa() -> u64 {
    // SAFETY: as for `features`.
    unsafe { IOPM_PA }
}

pub fn xsave_init_pa() -> u64 {
    // SAFETY: as for `features`.
    unsafe { XSAVE_INIT_PA }
}

const MSR_EFER: u32 = 0xc000_0080;
const MSR_VM_CR: u32 = 0xc001_0114;
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
const CR4_OSXSAVE: u64 = 1 << 18;

/// MSRs VMLOAD/VMSAVE swap, so the guest may use them without exits.
const PASSTHROUGH_MSRS: [u32; 10] = [
    0xc000_0100, // FS_BASE
    0xc000_0101, // GS_BASE
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
];

/// The MSR permission map offset (bytes) and bit of `msr`'s read intercept; the
/// write intercept is the next bit. `None` for MSRs outside the three mapped ranges
/// (those always exit).
fn msrpm_bit(msr: u32) -> Option<(u64, u32)> {
    let (base, first) = match msr {
        0..=0x1fff => (0, 0),
        0xc000_0000..=0xc000_1fff => (0x800, 0xc000_0000),
        0xc001_0000..=0xc001_1fff => (0x1000, 0xc001_0000),
        _ => return None,
    };
    let n = u64::from(msr - first) * 2;
    Some((base + n / 8, (n % 8) as u32))
}

/// A fresh permission map of `bytes` (MSR or I/O: a set bit is an intercept) with
/// every bit set but the `(byte, mask)` bits of `cleared`; pairs past the map are
/// left set. `None` when memory is exhausted.
pub fn permission_map(
    frames: &mut Frames,
    bytes: u64,
    cleared: impl IntoIterator<Item = (u64, u8)>,
) -> Option<u64> {
    let map = frames.alloc(bytes.div_ceil(layout_page()))?;
    for off in (0..bytes).step_by(8) {
        mem::write_u64(map + off, u64::MAX);
    }
    for (byte, mask) in cleared.into_iter().filter(|&(byte, _)| byte < bytes) {
        let p = mem::phys_ptr(map + byte);
        // SAFETY: `byte` is inside the frames just allocated, reached through the
        // physical window.
        unsafe { p.write_volatile(p.read_volatile() & !mask) };
    }
    Some(map)
}

/// Detects and enables SVM with nested paging. Returns false (and leaves the CPU
/// alone) when it is missing: VMs then cannot run, every VM_ENTER fails.
pub fn init(frames: &mut Frames) -> bool {
    let ext = cpu::cpuid(0x8000_0000, 0)[0];
    if ext < 0x8000_000a || cpu::cpuid(0x8000_0001, 0)[2] & (1 << 2) == 0 {
        return false;
    }
    let svm = cpu::cpuid(0x8000_000a, 0);
    // Nested paging is the only way guest memory is confined.
    if svm[3] & 1 == 0 || cpu::rdmsr(MSR_VM_CR) & (1 << 4) != 0 {
        return false;
    }
    let passthrough = PASSTHROUGH_MSRS
        .into_iter()
        .filter_map(msrpm_bit)
        .map(|(byte, bit)| (byte, 3 << bit));
    let (Some(msrpm), Some(iopm), Some(hsave), Some(host), Some(xinit)) = (
        permission_map(frames, 0x2000, passthrough),
        permission_map(frames, kernel_core::iopm::IOPM_BYTES as u64, []),
        frames.alloc(1),
        frames.alloc(1),
        frames.alloc(1),
    ) else {
        return false;
    };
    let (xcr0_supported, xsave_size) = if cpu::cpuid(1, 0)[2] & (1 << 26) != 0 {
        let d = cpu::cpuid(0xd, 0);
        let mask = u64::from(d[0]) | (u64::from(d[3]) << 32);
        (mask, d[2])
    } else {
        (0, 0)
    };
    // Each vCPU's extended state is saved with XSAVE into one page: without XSAVE
    // (or with a larger area) guests could not be kept apart, so no SVM then.
    if xcr0_supported & 3 != 3 || xsave_size as u64 > layout_page() {
        return false;
    }
    // SAFETY: EFER.SVME and VM_HSAVE_PA only enable SVM; single CPU at boot.
    unsafe {
        cpu::wrmsr(MSR_EFER, cpu::rdmsr(MSR_EFER) | EFER_SVME);
        cpu::wrmsr(MSR_VM_HSAVE_PA, hsave);
        asm!("vmsave rax", in("rax") host, options(nostack));
        MSRPM_PA = msrpm;
        IOPM_PA = iopm;
        HOST_SAVE_PA = host;
        XSAVE_INIT_PA = xinit;
        FEATURES = Some(Features {
            asids: svm[1],
            xcr0_supported,
        });
    }
    true
}

fn layout_page() -> u64 {
    kernel_abi::layout::PAGE_SIZE
}

// svm_run(gprs: *mut Gprs, vmcb_pa: u64, host_save_pa: u64). Called with GIF clear
// and IF set (so, with V_INTR_MASKING, a host interrupt exits the guest); returns
// with GIF clear and IF set again (VMRUN restores the host RFLAGS).
global_asm!(
    r#"
    .section .text.svm, "ax"

    /* Every Gprs field but rdi (the pointer itself, moved last) with its offset:
       one list for the load before VMRUN and the store after it. */
    .macro svm_gprs op
    \op rbx, 0
    \op rcx, 8
    \op rdx, 16
    \op rsi, 24
    \op rbp, 40
    \op r8, 48
    \op r9, 56
    \op r10, 64
    \op r11, 72
    \op r12, 80
    \op r13, 88
    \op r14, 96
    \op r15, 104
    .endm
    .macro svm_gpr_load reg, offset
    mov \reg, [rdi + \offset]
    .endm
    .macro svm_gpr_store reg, offset
    mov [rdi + \offset], \reg
    .endm

    .global svm_run
svm_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdx
    push rdi
    mov rax, rsi
    svm_gprs svm_gpr_load
    mov rdi, [rdi + 32]
    vmload rax
    vmrun rax
    vmsave rax
    xchg rdi, [rsp]
    svm_gprs svm_gpr_store
    pop rax
    mov [rdi + 32], rax
    pop rax
    vmload rax
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
"#
);

extern "C" {
    fn svm_run(gprs: *mut Gprs, vmcb_pa: u64, host_save_pa: u64);
}

// `svm_run` addresses the registers by these offsets.
const _: () = {
    assert!(core::mem::offset_of!(Gprs, rsi) == 24);
    assert!(core::mem::offset_of!(Gprs, rdi) == 32);
    assert!(core::mem::offset_of!(Gprs, rbp) == 40);
    assert!(core::mem::offset_of!(Gprs, r15) == 104);
};

/// Runs the guest of `vmcb_pa` once, until its next #VMEXIT, with `guest_xcr0` in
/// XCR0 while it runs. The caller has loaded the guest's extended state. On return
/// GIF is set and IF clear; a host interrupt that caused the exit is still pending.
pub fn run(gprs: &mut Gprs, vmcb_pa: u64, guest_xcr0: u64) {
    let host_save = {
        // SAFETY: written once in `init`.
        unsafe { HOST_SAVE_PA }
    };
    // SAFETY: `vmcb_pa` is a VMCB the kernel built (validated intercepts, its own
    // nested page tables, the shared permission maps); VMRUN either runs it or
    // exits with VMEXIT_INVALID, restoring the host either way. CLGI keeps host
    // interrupts from being taken between STI and VMRUN; XCR0 is the guest's only
    // between the two XSETBVs, with GIF clear.
    unsafe {
        asm!("clgi", options(nomem, nostack));
        xsetbv(guest_xcr0);
        asm!("sti", options(nomem, nostack));
        svm_run(gprs, vmcb_pa, host_save);
        asm!("cli", options(nomem, nostack));
        xsetbv(xcr0_host());
        asm!("stgi", options(nomem, nostack));
    }
}

/// The XCR0 the host keeps while no guest runs: x87 only (PDs cannot reach any of
/// it: CR0.EM is set and CR4.OSXSAVE is clear whenever ring 3 runs).
fn xcr0_host() -> u64 {
    1
}

/// # Safety
/// CR4.OSXSAVE must be set and `v` a value XSETBV accepts.
unsafe fn xsetbv(v: u64) {
    // SAFETY: per the contract.
    unsafe {
        asm!("xsetbv", in("ecx") 0u32, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nomem, nostack))
    }
}

/// Sets or clears CR4.OSXSAVE: set only while the kernel swaps guest state, so
/// PDs never see XSAVE/XGETBV.
pub fn osxsave(on: bool) {
    let cr4 = cpu::cr4();
    let want = if on {
        cr4 | CR4_OSXSAVE
    } else {
        cr4 & !CR4_OSXSAVE
    };
    if want != cr4 {
        // SAFETY: OSXSAVE changes no paging behaviour.
        unsafe { cpu::set_cr4(want) };
    }
}

/// Runs `op` (an XSAVE or XRSTOR) with XCR0 set to every supported component,
/// so it covers every component whatever the guest enabled, then restores the
/// host's XCR0. CR4.OSXSAVE must be on ([`osxsave`]).
fn with_every_component(op: impl FnOnce()) {
    let f = features().map_or(0, |f| f.xcr0_supported);
    // SAFETY: CR4.OSXSAVE is on (the callers' contract); XCR0 takes the CPU's
    // supported set, then the host's value.
    unsafe { xsetbv(f) };
    op();
    // SAFETY: as above.
    unsafe { xsetbv(xcr0_host()) };
}

/// Saves the current extended state (every supported component) to the area at
/// `pa`. CR4.OSXSAVE must be on ([`osxsave`]).
pub fn xsave(pa: u64) {
    let area = mem::phys_ptr(pa);
    // SAFETY: `pa` is a page-aligned page the kernel owns for this vCPU, at least
    // `xsave_size` bytes (checked in `init`).
    with_every_component(|| unsafe {
        asm!("xsave64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX,
             options(nostack));
    });
}

/// Loads extended state from the area at `pa` (as [`xsave`] wrote it, or the
/// initial area). CR4.OSXSAVE must be on.
pub fn xrstor(pa: u64) {
    let area = mem::phys_ptr(pa);
    // SAFETY: as for `xsave`; the area's header is one XSAVE wrote or all zeros
    // (every component initial), which XRSTOR accepts.
    with_every_component(|| unsafe {
        asm!("xrstor64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX,
             options(nostack));
    });
}

/// DR0..DR3 as they are.
pub fn debug_registers() -> [u64; 4] {
    let (a, b, c, d): (u64, u64, u64, u64);
    // SAFETY: reading debug registers has no side effects (ring 0).
    unsafe {
        asm!("mov {}, dr0", "mov {}, dr1", "mov {}, dr2", "mov {}, dr3",
             out(reg) a, out(reg) b, out(reg) c, out(reg) d, options(nomem, nostack))
    }
    [a, b, c, d]
}

/// Loads DR0..DR3. The host's DR7 enables none of them, so they act only in a guest.
pub fn set_debug_registers(dr: &[u64; 4]) {
    // SAFETY: breakpoint addresses only; DR7 decides whether they fire, and the
    // host's enables none (a guest's DR7 comes from its VMCB).
    unsafe {
        asm!("mov dr0, {}", "mov dr1, {}", "mov dr2, {}", "mov dr3, {}",
             in(reg) dr[0], in(reg) dr[1], in(reg) dr[2], in(reg) dr[3], options(nomem, nostack))
    }
}

/// Makes sure no breakpoint is enabled in the host after an exit (the guest's DR7
/// lives in its VMCB; what the CPU leaves in DR7 on #VMEXIT is not relied on).
pub fn disable_host_breakpoints() {
    let dr7: u64;
    // SAFETY: reading DR7 has no side effects (ring 0).
    unsafe { asm!("mov {}, dr7", out(reg) dr7, options(nomem, nostack)) };
    if dr7 != 0x400 {
        // SAFETY: 0x400 is DR7's reset value: every breakpoint disabled.
        unsafe { asm!("mov dr7, {}", in(reg) 0x400u64, options(nomem, nostack)) };
    }
}
