//! GDT with kernel and user segments and the TSS, whose `rsp0` is where the CPU
//! saves a PD's state when it traps: the end of that PD's register frame.
#![allow(unsafe_code)]

use core::arch::asm;
use core::ptr::addr_of;

use crate::cpu::TablePointer;

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;
pub const USER_DS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;
const TSS_SEL: u16 = 0x28;

#[repr(C, packed)]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

#[repr(C, align(16))]
struct Stack([u8; 16384]);

static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    // Past the TSS limit: no I/O permission bitmap, so ring 3 has no port access.
    iomap_base: core::mem::size_of::<Tss>() as u16,
};

static mut GDT: [u64; 7] = [
    0,
    0x00AF_9A00_0000_FFFF, // kernel code, 64-bit
    0x00CF_9200_0000_FFFF, // kernel data
    0x00CF_F200_0000_FFFF, // user data, DPL 3
    0x00AF_FA00_0000_FFFF, // user code, 64-bit, DPL 3
    0,                     // TSS, low
    0,                     // TSS, high
];

/// Double faults and NMIs run on their own stack, so a kernel stack overflow still
/// gets reported.
static mut FAULT_STACK: Stack = Stack([0; 16384]);

pub fn init() {
    // SAFETY: single CPU at boot, interrupts off: nothing else touches GDT/TSS yet.
    unsafe {
        let tss = addr_of!(TSS) as u64;
        let limit = (core::mem::size_of::<Tss>() - 1) as u64;
        let low = (limit & 0xFFFF)
            | ((tss & 0xFF_FFFF) << 16)
            | (0x89 << 40) // present, 64-bit available TSS
            | (((limit >> 16) & 0xF) << 48)
            | (((tss >> 24) & 0xFF) << 56);
        GDT[5] = low;
        GDT[6] = tss >> 32;
        TSS.ist[0] = addr_of!(FAULT_STACK) as u64 + core::mem::size_of::<Stack>() as u64;
        let ptr = TablePointer::to(addr_of!(GDT));
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u64::from(KERNEL_CS),
            tmp = out(reg) _,
            ds = in(reg) KERNEL_DS,
            tss = in(reg) TSS_SEL,
        );
    }
}

/// Where the CPU pushes state on the next trap from ring 3.
pub fn set_kernel_entry_stack(top: u64) {
    // SAFETY: single CPU, called with interrupts off; the CPU reads rsp0 only on a
    // privilege change, which cannot happen while we write it.
    unsafe { TSS.rsp[0] = top };
}
