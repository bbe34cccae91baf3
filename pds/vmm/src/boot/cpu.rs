//! The vCPU state for the 64-bit entry (boot.rst "64-bit BOOT PROTOCOL"): long
//! mode with paging on, an identity map, a flat GDT with __BOOT_CS = 0x10 and
//! __BOOT_DS = 0x18, interrupts off, RSI = boot_params.

use alloc::vec::Vec;

use crate::decode::bits::{
    CR0_ET, CR0_NE, CR0_PE, CR0_PG, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, PTE_P, PTE_PS, PTE_RW,
};

use super::layout::{
    BOOT_PARAMS_GPA, GDT_GPA, PAGE_SIZE, PDPT_GPA, PD_COUNT, PD_GPA, PML4_GPA, STACK_TOP,
};

pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;

/// Flat 64-bit code: G, L, P, S, type execute/read accessed, limit 0xFFFFF.
const CODE64_DESC: u64 = 0x00AF_9B00_0000_FFFF;
/// Flat data: G, D/B, P, S, type read/write accessed, limit 0xFFFFF.
const DATA_DESC: u64 = 0x00CF_9300_0000_FFFF;
/// The GDT's entries, indexed by selector >> 3.
const GDT: [u64; 4] = [0, 0, CODE64_DESC, DATA_DESC];

/// Bit 1 of RFLAGS is reserved as one; IF stays clear.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// The power-on PAT (WB, WT, UC-, UC, twice).
const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;

/// SVM (VMCB) segment attribute bits, for the system segments.
const ATTR_PRESENT: u16 = 1 << 7;
const TYPE_LDT: u16 = 0x2;
const TYPE_TSS64_BUSY: u16 = 0xB;

/// A segment register as the VMCB holds it. `attrib` is SVM's 12-bit form:
/// type | S << 4 | DPL << 5 | P << 7 | AVL << 8 | L << 9 | D/B << 10 | G << 11.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

impl Segment {
    /// The hidden part a `mov` of `selector` would load from `desc`, in VMCB form:
    /// descriptor bits 40..48 (type, S, DPL, P) and 52..56 (AVL, L, D/B, G).
    const fn from_descriptor(selector: u16, desc: u64) -> Self {
        let attrib = (((desc >> 40) & 0xFF) | (((desc >> 52) & 0xF) << 8)) as u16;
        let raw_limit = ((desc & 0xFFFF) | ((desc >> 32) & 0xF_0000)) as u32;
        let limit = if attrib & (1 << 11) != 0 {
            (raw_limit << 12) | 0xFFF
        } else {
            raw_limit
        };
        let base = ((desc >> 16) & 0xFF_FFFF) | (((desc >> 56) & 0xFF) << 24);
        Self {
            selector,
            attrib,
            limit,
            base,
        }
    }
}

/// GDTR / IDTR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TableRegister {
    pub base: u64,
    pub limit: u16,
}

/// The vCPU's registers at the kernel's 64-bit entry. Registers not named here
/// are zero. The host adds what its VMRUN needs (EFER.SVME, its intercepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VcpuState {
    pub rip: u64,
    pub rsi: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub pat: u64,
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub ss: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: TableRegister,
    pub idtr: TableRegister,
}

impl VcpuState {
    /// Long mode at `entry` (load address + 0x200) with the loader's page tables
    /// and GDT. The TR and LDTR are the architectural reset values: Linux loads
    /// its own before it could need them. The IDT is empty: interrupts are off and
    /// the kernel installs its own before it enables them.
    pub(crate) fn long_mode_entry(entry: u64) -> Self {
        let code = Segment::from_descriptor(BOOT_CS, GDT[usize::from(BOOT_CS >> 3)]);
        let data = Segment::from_descriptor(BOOT_DS, GDT[usize::from(BOOT_DS >> 3)]);
        Self {
            rip: entry,
            rsi: BOOT_PARAMS_GPA,
            rsp: STACK_TOP,
            rflags: RFLAGS_RESERVED,
            cr0: CR0_PE | CR0_ET | CR0_NE | CR0_PG,
            cr3: PML4_GPA,
            cr4: CR4_PAE,
            // NXE costs nothing (no entry below sets NX) and is what the kernel
            // turns on itself.
            efer: EFER_LME | EFER_LMA | EFER_NXE,
            pat: PAT_DEFAULT,
            cs: code,
            ds: data,
            es: data,
            ss: data,
            fs: data,
            gs: data,
            ldtr: Segment {
                selector: 0,
                attrib: ATTR_PRESENT | TYPE_LDT,
                limit: 0xFFFF,
                base: 0,
            },
            tr: Segment {
                selector: 0,
                attrib: ATTR_PRESENT | TYPE_TSS64_BUSY,
                limit: 0xFFFF,
                base: 0,
            },
            gdtr: TableRegister {
                base: GDT_GPA,
                limit: (GDT.len() * 8 - 1) as u16,
            },
            idtr: TableRegister { base: 0, limit: 0 },
        }
    }
}

/// The GDT's bytes, for [`GDT_GPA`].
pub(crate) fn gdt_bytes() -> Vec<u8> {
    GDT.iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// PML4, PDPT and [`PD_COUNT`] page directories, contiguous from [`PML4_GPA`],
/// identity-mapping [0, 4 GiB) with 2 MiB pages. 2 MiB rather than 1 GiB pages so
/// the guest needs no PDPE1GB; what is really behind each page is the nested page
/// tables' business.
pub(crate) fn identity_page_tables() -> Vec<u8> {
    let pages = (2 + PD_COUNT) as usize;
    let mut t = alloc::vec![0u8; pages * PAGE_SIZE as usize];
    let mut put = |gpa: u64, index: u64, entry: u64| {
        let at = (gpa - PML4_GPA + index * 8) as usize;
        t[at..at + 8].copy_from_slice(&entry.to_le_bytes());
    };
    put(PML4_GPA, 0, PDPT_GPA | PTE_P | PTE_RW);
    for pd in 0..PD_COUNT {
        let pd_gpa = PD_GPA + pd * PAGE_SIZE;
        put(PDPT_GPA, pd, pd_gpa | PTE_P | PTE_RW);
        for i in 0..512 {
            let addr = ((pd << 9) | i) << 21;
            put(pd_gpa, i, addr | PTE_P | PTE_RW | PTE_PS);
        }
    }
    t
}

const _: () = {
    assert!(PDPT_GPA == PML4_GPA + PAGE_SIZE);
    assert!(PD_GPA == PDPT_GPA + PAGE_SIZE);
};
