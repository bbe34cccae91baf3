//! The SVM VMCB as the kernel fills it: field offsets, the intercepts it always
//! sets, the reset state, and the translation between a VMM's state words
//! (`kernel_abi::vcpu::Word`) and the VMCB plus the registers VMRUN does not keep
//! there. The words come from a VMM PD and are hostile: every combination of
//! dirty mask and values lands in the VMCB's guest state only (never its
//! intercepts, maps or nested page tables), with SVME forced on and XCR0 checked;
//! anything else VMRUN refuses comes back as a pseudo exit, not a crash.

use kernel_abi::vcpu::{segment_parts, segment_word, Word, EFER_SVME};

/// Field offsets (AMD APM vol. 2, appendix B).
pub mod off {
    pub const INTERCEPT_EXCEPTIONS: u64 = 0x008;
    pub const INTERCEPT_MISC1: u64 = 0x00c;
    pub const INTERCEPT_MISC2: u64 = 0x010;
    pub const IOPM_BASE: u64 = 0x040;
    pub const MSRPM_BASE: u64 = 0x048;
    /// ASID (u32).
    pub const ASID: u64 = 0x058;
    /// TLB_CONTROL (u8).
    pub const TLB_CONTROL: u64 = 0x05c;
    /// V_TPR 0..8, V_IRQ 8, V_INTR_PRIO 16..20, V_IGN_TPR 20, V_INTR_MASKING 24.
    pub const VINTR: u64 = 0x060;
    pub const INTERRUPT_SHADOW: u64 = 0x068;
    pub const EXIT_CODE: u64 = 0x070;
    pub const EXIT_INFO1: u64 = 0x078;
    pub const EXIT_INFO2: u64 = 0x080;
    pub const EXIT_INT_INFO: u64 = 0x088;
    pub const NP_ENABLE: u64 = 0x090;
    pub const EVENT_INJ: u64 = 0x0a8;
    pub const N_CR3: u64 = 0x0b0;
    /// Byte count at +0, up to 15 bytes after it.
    pub const INSN_BYTES: u64 = 0x0d0;

    /// Segments: selector u16, attrib u16, limit u32, base u64; in this order.
    pub const ES: u64 = 0x400;
    pub const CS: u64 = 0x410;
    pub const SS: u64 = 0x420;
    pub const DS: u64 = 0x430;
    pub const FS: u64 = 0x440;
    pub const GS: u64 = 0x450;
    pub const GDTR: u64 = 0x460;
    pub const LDTR: u64 = 0x470;
    pub const IDTR: u64 = 0x480;
    pub const TR: u64 = 0x490;
    /// CPL (u8).
    pub const CPL: u64 = 0x4cb;
    pub const EFER: u64 = 0x4d0;
    pub const CR4: u64 = 0x548;
    pub const CR3: u64 = 0x550;
    pub const CR0: u64 = 0x558;
    pub const DR7: u64 = 0x560;
    pub const DR6: u64 = 0x568;
    pub const RFLAGS: u64 = 0x570;
    pub const RIP: u64 = 0x578;
    pub const RSP: u64 = 0x5d8;
    pub const RAX: u64 = 0x5f8;
    pub const CR2: u64 = 0x640;
    pub const G_PAT: u64 = 0x668;
    /// The part of the state-save area VMRUN reads (through G_PAT and the
    /// debug-control words after it).
    pub const SAVE_AREA: core::ops::Range<u64> = 0x400..0x6a0;
}

/// INTERCEPT_MISC1 bits.
pub mod misc1 {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const SMI: u32 = 1 << 2;
    pub const INIT: u32 = 1 << 3;
    pub const VINTR: u32 = 1 << 4;
    pub const CPUID: u32 = 1 << 18;
    pub const HLT: u32 = 1 << 24;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO: u32 = 1 << 27;
    pub const MSR: u32 = 1 << 28;
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// INTERCEPT_MISC2 bits.
pub mod misc2 {
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const MONITOR: u32 = 1 << 10;
    pub const MWAIT: u32 = 1 << 11;
    pub const XSETBV: u32 = 1 << 13;
}

/// VINTR bits.
pub const V_IRQ: u64 = 1 << 8;
pub const V_INTR_PRIO_SHIFT: u64 = 16;
pub const V_IGN_TPR: u64 = 1 << 20;
pub const V_INTR_MASKING: u64 = 1 << 24;

/// The machine-check vector: always intercepted (a host matter, reported).
pub const MC: u32 = 1 << 18;

/// The intercepts the kernel always sets (`kernel_abi::vcpu`'s list).
pub const MISC1: u32 = misc1::INTR
    | misc1::NMI
    | misc1::SMI
    | misc1::INIT
    | misc1::CPUID
    | misc1::HLT
    | misc1::INVLPGA
    | misc1::IOIO
    | misc1::MSR
    | misc1::SHUTDOWN;
pub const MISC2: u32 = misc2::VMRUN
    | misc2::VMMCALL
    | misc2::VMLOAD
    | misc2::VMSAVE
    | misc2::STGI
    | misc2::CLGI
    | misc2::SKINIT
    | misc2::MONITOR
    | misc2::MWAIT
    | misc2::XSETBV;

/// State words VMRUN checks: changing one may make it refuse the state (and a
/// refused VMRUN overwrites the save area, so the kernel keeps a copy).
pub const CHECKED_WORDS: u64 = (1 << Word::CR0)
    | (1 << Word::CR3)
    | (1 << Word::CR4)
    | (1 << Word::EFER)
    | (1 << Word::RFLAGS)
    | (1 << Word::DR7)
    | (1 << Word::EVENT_INJECT)
    | (1 << Word::PAT)
    | (0xffff << Word::SEGMENTS)
    | (0xf << Word::GDTR);

/// VMCB offsets of the segments in [`Word::SEGMENTS`] order.
pub const SEGMENTS: [u64; 8] = [
    off::ES,
    off::CS,
    off::SS,
    off::DS,
    off::FS,
    off::GS,
    off::LDTR,
    off::TR,
];

/// A VMCB page: 8-byte words at 8-aligned offsets below 4096.
pub trait Vmcb {
    fn read(&self, offset: u64) -> u64;
    fn write(&mut self, offset: u64, value: u64);
}

fn read32<V: Vmcb + ?Sized>(v: &V, offset: u64) -> u32 {
    (v.read(offset & !7) >> ((offset & 4) * 8)) as u32
}

fn write32<V: Vmcb + ?Sized>(v: &mut V, offset: u64, value: u32) {
    let shift = (offset & 4) * 8;
    let q = v.read(offset & !7) & !(0xffff_ffff << shift);
    v.write(offset & !7, q | (u64::from(value) << shift));
}

pub fn read8<V: Vmcb + ?Sized>(v: &V, offset: u64) -> u8 {
    (v.read(offset & !7) >> ((offset & 7) * 8)) as u8
}

pub fn write8<V: Vmcb + ?Sized>(v: &mut V, offset: u64, value: u8) {
    let shift = (offset & 7) * 8;
    let q = v.read(offset & !7) & !(0xff << shift);
    v.write(offset & !7, q | (u64::from(value) << shift));
}

/// Guest general-purpose registers VMRUN does not keep in the VMCB (RAX and RSP
/// are there), in the order the kernel's VMRUN routine saves them.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Gprs {
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// A vCPU's state outside its VMCB.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Regs {
    pub gprs: Gprs,
    /// The guest's XCR0 (loaded around VMRUN).
    pub xcr0: u64,
    /// Exception vectors the VMM asked to see.
    pub exceptions: u32,
    /// The guest's TLB entries may be stale (first run, CR0/CR3/CR4/EFER changed).
    pub flush: bool,
}

impl Default for Regs {
    fn default() -> Self {
        Self {
            gprs: Gprs::default(),
            xcr0: 1,
            exceptions: 0,
            flush: true,
        }
    }
}

fn set_segment<V: Vmcb + ?Sized>(
    v: &mut V,
    at: u64,
    selector: u16,
    attrib: u16,
    limit: u32,
    base: u64,
) {
    v.write(
        at,
        u64::from(selector) | (u64::from(attrib & 0xfff) << 16) | (u64::from(limit) << 32),
    );
    v.write(at + 8, base);
}

/// Intercepts, maps, nested paging, and the architectural reset state (real mode
/// at F000:FFF0), so a VMCB is runnable before the VMM writes anything.
pub fn init<V: Vmcb + ?Sized>(v: &mut V, npt_root: u64, asid: u32, iopm: u64, msrpm: u64) {
    write32(v, off::INTERCEPT_EXCEPTIONS, MC);
    write32(v, off::INTERCEPT_MISC1, MISC1);
    write32(v, off::INTERCEPT_MISC2, MISC2);
    v.write(off::IOPM_BASE, iopm);
    v.write(off::MSRPM_BASE, msrpm);
    write32(v, off::ASID, asid);
    v.write(off::VINTR, V_INTR_MASKING);
    v.write(off::NP_ENABLE, 1);
    v.write(off::N_CR3, npt_root);
    for at in [off::ES, off::SS, off::DS, off::FS, off::GS] {
        set_segment(v, at, 0, 0x93, 0xffff, 0);
    }
    set_segment(v, off::CS, 0xf000, 0x9b, 0xffff, 0xffff_0000);
    set_segment(v, off::GDTR, 0, 0, 0xffff, 0);
    set_segment(v, off::IDTR, 0, 0, 0xffff, 0);
    set_segment(v, off::LDTR, 0, 0x82, 0xffff, 0);
    set_segment(v, off::TR, 0, 0x8b, 0xffff, 0);
    v.write(off::EFER, EFER_SVME);
    v.write(off::CR0, 0x6000_0010);
    v.write(off::DR6, 0xffff_0ff0);
    v.write(off::DR7, 0x400);
    v.write(off::RFLAGS, 2);
    v.write(off::RIP, 0xfff0);
    v.write(off::G_PAT, 0x0007_0406_0007_0406);
}

/// Whether XSETBV would accept `xcr0` on a host supporting `supported`.
pub fn xcr0_valid(xcr0: u64, supported: u64) -> bool {
    let avx512 = 0b111 << 5;
    xcr0 & !supported == 0
        && xcr0 & 1 != 0
        && (xcr0 & 4 == 0 || xcr0 & 2 != 0)
        && (xcr0 & avx512 == 0 || (xcr0 & avx512 == avx512 && xcr0 & 4 != 0))
}

/// The state words name an XCR0 the host refuses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BadXcr0;

/// Applies the words `words[Word::DIRTY]` names. Out-only and reserved words are
/// ignored. On `Err` the other words are applied all the same (the VMM sees them).
pub fn load_dirty<V: Vmcb + ?Sized>(
    v: &mut V,
    r: &mut Regs,
    words: &[u64; Word::COUNT],
    xcr0_supported: u64,
) -> Result<(), BadXcr0> {
    let mut dirty = words[Word::DIRTY] & ((1 << Word::COUNT) - 1);
    let mut result = Ok(());
    while dirty != 0 {
        let i = dirty.trailing_zeros() as usize;
        dirty &= dirty - 1;
        let w = words[i];
        let g = &mut r.gprs;
        match i {
            Word::INTERRUPT_SHADOW => v.write(off::INTERRUPT_SHADOW, w & 1),
            // Only the architectural bits: vector, type, EV, V, error code.
            Word::EVENT_INJECT => v.write(off::EVENT_INJ, w & 0xffff_ffff_8000_0fff),
            Word::INTERRUPT_WINDOW => {
                let mut vintr =
                    v.read(off::VINTR) & !(V_IRQ | 0xff | (0xf << V_INTR_PRIO_SHIFT) | V_IGN_TPR);
                vintr |= (w >> 8) & 0xff;
                let mut m1 = read32(v, off::INTERCEPT_MISC1) & !misc1::VINTR;
                if w & 1 != 0 {
                    vintr |= V_IRQ | V_IGN_TPR | (0xf << V_INTR_PRIO_SHIFT);
                    m1 |= misc1::VINTR;
                }
                v.write(off::VINTR, vintr);
                write32(v, off::INTERCEPT_MISC1, m1);
            }
            Word::RAX => v.write(off::RAX, w),
            Word::RSP => v.write(off::RSP, w),
            Word::RCX => g.rcx = w,
            Word::RDX => g.rdx = w,
            Word::RBX => g.rbx = w,
            Word::RBP => g.rbp = w,
            Word::RSI => g.rsi = w,
            Word::RDI => g.rdi = w,
            16 => g.r8 = w,
            17 => g.r9 = w,
            18 => g.r10 = w,
            19 => g.r11 = w,
            20 => g.r12 = w,
            21 => g.r13 = w,
            22 => g.r14 = w,
            23 => g.r15 = w,
            Word::RIP => v.write(off::RIP, w),
            Word::RFLAGS => v.write(off::RFLAGS, w),
            Word::CR2 => v.write(off::CR2, w),
            Word::CR0 | Word::CR3 | Word::CR4 => {
                let at = match i {
                    Word::CR0 => off::CR0,
                    Word::CR3 => off::CR3,
                    _ => off::CR4,
                };
                v.write(at, w);
                r.flush = true;
            }
            // The guest must stay under SVM's control: SVME cannot be turned off.
            Word::EFER => {
                v.write(off::EFER, w | EFER_SVME);
                r.flush = true;
            }
            Word::EXCEPTION_INTERCEPTS => {
                r.exceptions = w as u32;
                write32(v, off::INTERCEPT_EXCEPTIONS, w as u32 | MC);
            }
            Word::GDTR => write32(v, off::GDTR + 4, w as u32),
            Word::IDTR => write32(v, off::IDTR + 4, w as u32),
            49 => v.write(off::GDTR + 8, w),
            51 => v.write(off::IDTR + 8, w),
            Word::PAT => v.write(off::G_PAT, w),
            Word::DR7 => v.write(off::DR7, w),
            Word::XCR0 => {
                if xcr0_valid(w, xcr0_supported) {
                    r.xcr0 = w;
                } else {
                    result = Err(BadXcr0);
                }
            }
            s if (Word::SEGMENTS..Word::GDTR).contains(&s) => {
                let k = s - Word::SEGMENTS;
                let at = SEGMENTS[k / 2];
                if k.is_multiple_of(2) {
                    let (sel, attrib, limit) = segment_parts(w);
                    let base = v.read(at + 8);
                    set_segment(v, at, sel, attrib, limit, base);
                } else {
                    v.write(at + 8, w);
                }
            }
            _ => {}
        }
    }
    // The CPL follows SS.DPL in protected mode; VMRUN takes it from the VMCB.
    let pe = v.read(off::CR0) & 1 != 0;
    let v86 = v.read(off::RFLAGS) & (1 << 17) != 0;
    let ss_attrib = (v.read(off::SS) >> 16) as u16;
    let cpl = match (pe, v86) {
        (false, _) => 0,
        (true, true) => 3,
        (true, false) => ((ss_attrib >> 5) & 3) as u8,
    };
    write8(v, off::CPL, cpl);
    result
}

/// Every state word but the exit code and [`Word::TSC_HZ`], as of now, handed
/// to `put(word, value)`.
pub fn store_words<V: Vmcb + ?Sized>(v: &V, r: &Regs, mut put: impl FnMut(usize, u64)) {
    put(Word::EXIT_INFO1, v.read(off::EXIT_INFO1));
    put(Word::EXIT_INFO2, v.read(off::EXIT_INFO2));
    put(Word::EXIT_INT_INFO, v.read(off::EXIT_INT_INFO));
    put(Word::INTERRUPT_SHADOW, v.read(off::INTERRUPT_SHADOW) & 1);
    put(Word::DIRTY, 0);
    put(Word::EVENT_INJECT, v.read(off::EVENT_INJ));
    let vintr = v.read(off::VINTR);
    put(
        Word::INTERRUPT_WINDOW,
        u64::from(vintr & V_IRQ != 0) | ((vintr & 0xff) << 8),
    );
    let g = &r.gprs;
    put(Word::RAX, v.read(off::RAX));
    put(Word::RCX, g.rcx);
    put(Word::RDX, g.rdx);
    put(Word::RBX, g.rbx);
    put(Word::RSP, v.read(off::RSP));
    put(Word::RBP, g.rbp);
    put(Word::RSI, g.rsi);
    put(Word::RDI, g.rdi);
    for (k, x) in [g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15]
        .into_iter()
        .enumerate()
    {
        put(Word::R8 + k, x);
    }
    put(Word::RIP, v.read(off::RIP));
    put(Word::RFLAGS, v.read(off::RFLAGS));
    put(Word::CR0, v.read(off::CR0));
    put(Word::CR2, v.read(off::CR2));
    put(Word::CR3, v.read(off::CR3));
    put(Word::CR4, v.read(off::CR4));
    put(Word::EFER, v.read(off::EFER));
    put(Word::EXCEPTION_INTERCEPTS, u64::from(r.exceptions));
    for (k, &at) in SEGMENTS.iter().enumerate() {
        let raw = v.read(at);
        put(
            Word::SEGMENTS + 2 * k,
            segment_word(raw as u16, (raw >> 16) as u16 & 0xfff, (raw >> 32) as u32),
        );
        put(Word::SEGMENTS + 2 * k + 1, v.read(at + 8));
    }
    put(Word::GDTR, u64::from(read32(v, off::GDTR + 4)));
    put(Word::GDTR + 1, v.read(off::GDTR + 8));
    put(Word::IDTR, u64::from(read32(v, off::IDTR + 4)));
    put(Word::IDTR + 1, v.read(off::IDTR + 8));
    put(Word::PAT, v.read(off::G_PAT));
    put(Word::DR7, v.read(off::DR7));
    put(Word::XCR0, r.xcr0);
    let (b0, b1) = if read8(v, off::INSN_BYTES) != 0 {
        (v.read(off::INSN_BYTES), v.read(off::INSN_BYTES + 8))
    } else {
        (0, 0)
    };
    put(Word::INSN_BYTES, b0);
    put(Word::INSN_BYTES + 1, b1);
}

/// Turns the interrupt-window request off (it is one-shot: the window opened).
pub fn close_interrupt_window<V: Vmcb + ?Sized>(v: &mut V) {
    v.write(off::VINTR, v.read(off::VINTR) & !(V_IRQ | V_IGN_TPR));
    let m1 = read32(v, off::INTERCEPT_MISC1) & !misc1::VINTR;
    write32(v, off::INTERCEPT_MISC1, m1);
}

#[cfg(test)]
mod tests;
