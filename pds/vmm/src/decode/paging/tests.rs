use super::*;
use crate::decode::memory::FlatMemory;
use std::vec;
use std::vec::Vec;

const RWU: u64 = PTE_P | PTE_RW | PTE_US;

struct Ram(Vec<u8>);

impl Ram {
    fn new() -> Self {
        Ram(vec![0; 0x10_0000])
    }
    fn set64(&mut self, gpa: u64, v: u64) {
        let a = gpa as usize;
        self.0[a..a + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn set32(&mut self, gpa: u64, v: u32) {
        let a = gpa as usize;
        self.0[a..a + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn mem(&self) -> FlatMemory<'_> {
        FlatMemory {
            base: 0,
            bytes: &self.0,
        }
    }
}

const CR0: u64 = CR0_PE | CR0_PG | CR0_WP;
const LONG_EFER: u64 = EFER_LMA | EFER_NXE;

fn long4() -> Paging {
    Paging::from_registers(CR0, 0x1000, CR4_PAE, LONG_EFER).with_phys_bits(40)
}

const KERNEL: Access = Access {
    kind: AccessKind::Read,
    user: false,
    ac: false,
};

fn with(kind: AccessKind, user: bool) -> Access {
    Access {
        kind,
        user,
        ac: false,
    }
}

/// gva 0xffff_8000_0040_3123 -> 4K page at 0x7000 through PML4 0x1000, PDPT 0x2000,
/// PD 0x3000, PT 0x4000, with `leaf` flags on the PTE.
fn map_4k(ram: &mut Ram, leaf: u64) -> u64 {
    let gva: u64 = 0xffff_8000_0040_3123;
    ram.set64(0x1000 + ((gva >> 39) & 0x1ff) * 8, 0x2000 | RWU);
    ram.set64(0x2000 + ((gva >> 30) & 0x1ff) * 8, 0x3000 | RWU);
    ram.set64(0x3000 + ((gva >> 21) & 0x1ff) * 8, 0x4000 | RWU);
    ram.set64(0x4000 + ((gva >> 12) & 0x1ff) * 8, 0x7000 | leaf);
    gva
}

fn pf(address: u64, error_code: u32) -> Result<u64, TranslateError> {
    Err(TranslateError::PageFault(PageFault {
        address,
        error_code,
    }))
}

#[test]
fn long_mode_4k_translation_and_rights() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, PTE_P | PTE_RW);
    let m = ram.mem();
    let p = long4();
    assert_eq!(translate(&m, &p, gva, KERNEL), Ok(0x7123));
    assert_eq!(
        translate(&m, &p, gva, with(AccessKind::Write, false)),
        Ok(0x7123)
    );
    // Supervisor page, user access: protection fault with U.
    assert_eq!(
        translate(&m, &p, gva, with(AccessKind::Read, true)),
        pf(gva, PageFault::PRESENT | PageFault::USER)
    );
    // Executable (no XD) for the kernel.
    assert_eq!(translate(&m, &p, gva, Access::fetch(0)), Ok(0x7123));
}

#[test]
fn not_present_and_nx_and_write_protect() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, 0);
    assert_eq!(
        translate(&ram.mem(), &long4(), gva, Access::fetch(0)),
        pf(gva, PageFault::FETCH)
    );
    let gva = map_4k(&mut ram, PTE_P | PTE_XD);
    let m = ram.mem();
    assert_eq!(
        translate(&m, &long4(), gva, Access::fetch(0)),
        pf(gva, PageFault::PRESENT | PageFault::FETCH)
    );
    assert_eq!(
        translate(&m, &long4(), gva, with(AccessKind::Write, false)),
        pf(gva, PageFault::PRESENT | PageFault::WRITE)
    );
    // CR0.WP clear: the supervisor may write read-only pages.
    let mut p = long4();
    p.wp = false;
    assert_eq!(
        translate(&m, &p, gva, with(AccessKind::Write, false)),
        Ok(0x7123)
    );
}

#[test]
fn xd_is_reserved_without_nxe() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, PTE_P | PTE_XD);
    let p = Paging::from_registers(CR0, 0x1000, CR4_PAE, EFER_LMA);
    // Without NXE, no I/D bit either.
    assert_eq!(
        translate(&ram.mem(), &p, gva, Access::fetch(0)),
        pf(gva, PageFault::PRESENT | PageFault::RESERVED)
    );
}

#[test]
fn reserved_physical_bits_and_ps_in_pml4() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, PTE_P | (1 << 45));
    assert_eq!(
        translate(&ram.mem(), &long4(), gva, KERNEL),
        pf(gva, PageFault::PRESENT | PageFault::RESERVED)
    );
    // With 52 physical bits, bit 45 is an address bit (outside our RAM).
    let p = long4().with_phys_bits(52);
    assert_eq!(
        translate(&ram.mem(), &p, gva, KERNEL),
        Ok((1 << 45) | 0x7123)
    );
    let gva = map_4k(&mut ram, PTE_P);
    ram.set64(0x1000 + ((gva >> 39) & 0x1ff) * 8, 0x2000 | RWU | PTE_PS);
    assert_eq!(
        translate(&ram.mem(), &long4(), gva, KERNEL),
        pf(gva, PageFault::PRESENT | PageFault::RESERVED)
    );
}

#[test]
fn large_pages() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, PTE_P);
    let pde = 0x3000 + ((gva >> 21) & 0x1ff) * 8;
    let pdpte = 0x2000 + ((gva >> 30) & 0x1ff) * 8;
    let in_2m = 0x4000_0000 | (gva & 0x1f_ffff);
    // (the entry, the large leaf written there, the translation), in order.
    let cases = [
        // 2 MiB leaf at 0x4000_0000 in the PD.
        (pde, 0x4000_0000, Ok(in_2m)),
        // Misaligned 2 MiB frame (bit 13 set, not PAT at bit 12): reserved.
        (
            pde,
            0x4000_2000,
            pf(gva, PageFault::PRESENT | PageFault::RESERVED),
        ),
        // PAT bit (12) of a large leaf is fine.
        (pde, 0x4000_1000, Ok(in_2m)),
        // 1 GiB leaf in the PDPT.
        (pdpte, 0x8000_0000, Ok(0x8000_0000 | (gva & 0x3fff_ffff))),
    ];
    for (entry, leaf, want) in cases {
        ram.set64(entry, leaf | PTE_P | PTE_PS);
        let got = translate(&ram.mem(), &long4(), gva, KERNEL);
        assert_eq!(got, want, "{leaf:#x} at {entry:#x}");
    }
}

#[test]
fn non_canonical_and_unreadable_tables() {
    let ram = Ram::new();
    let p = long4();
    assert_eq!(
        translate(&ram.mem(), &p, 0x0000_8000_0000_0000, KERNEL),
        Err(TranslateError::NonCanonical)
    );
    let mut p5 = p;
    p5.mode = PagingMode::Level5;
    // Canonical under LA57, and walks to an empty PML5: not present.
    assert_eq!(
        translate(&ram.mem(), &p5, 0x0000_8000_0000_0000, KERNEL),
        pf(0x0000_8000_0000_0000, 0)
    );
    let mut far = p;
    far.cr3 = 0x1_0000_0000;
    assert_eq!(
        translate(&ram.mem(), &far, 0x1000, KERNEL),
        Err(TranslateError::Memory(MemError { gpa: 0x1_0000_0000 }))
    );
}

#[test]
fn five_level_walk() {
    let mut ram = Ram::new();
    let gva: u64 = 0x0001_0000_0000_0000 | 0x5123;
    let p = Paging::from_registers(CR0, 0x1000, CR4_PAE | CR4_LA57, LONG_EFER);
    ram.set64(0x1000 + ((gva >> 48) & 0x1ff) * 8, 0x2000 | RWU);
    ram.set64(0x2000, 0x3000 | RWU);
    ram.set64(0x3000, 0x4000 | RWU);
    ram.set64(0x4000, 0x5000 | RWU);
    ram.set64(0x5000 + 5 * 8, 0x9000 | RWU);
    assert_eq!(
        translate(&ram.mem(), &p, gva, with(AccessKind::Write, true)),
        Ok(0x9123)
    );
}

#[test]
fn smep_and_smap() {
    let mut ram = Ram::new();
    let gva = map_4k(&mut ram, RWU);
    let m = ram.mem();
    let mut p = long4();
    p.smep = true;
    p.smap = true;
    assert_eq!(
        translate(&m, &p, gva, Access::fetch(0)),
        pf(gva, PageFault::PRESENT | PageFault::FETCH)
    );
    assert_eq!(translate(&m, &p, gva, KERNEL), pf(gva, PageFault::PRESENT));
    let ac = Access {
        kind: AccessKind::Read,
        user: false,
        ac: true,
    };
    assert_eq!(translate(&m, &p, gva, ac), Ok(0x7123));
    assert_eq!(translate(&m, &p, gva, Access::fetch(3)), Ok(0x7123));
}

#[test]
fn pae_walk() {
    let mut ram = Ram::new();
    let p = Paging::from_registers(CR0, 0x1020, CR4_PAE, EFER_NXE);
    assert_eq!(p.mode, PagingMode::Pae);
    let gva: u64 = 0xc040_1abc;
    ram.set64(0x1020 + 3 * 8, 0x2000 | PTE_P);
    ram.set64(0x2000 + 2 * 8, 0x3000 | RWU);
    ram.set64(0x3000 + 8, 0x6000 | PTE_P | PTE_XD);
    let m = ram.mem();
    assert_eq!(translate(&m, &p, gva, KERNEL), Ok(0x6abc));
    assert_eq!(
        translate(&m, &p, gva, Access::fetch(0)),
        pf(gva, PageFault::PRESENT | PageFault::FETCH)
    );
    // Bit 1 (R/W) is reserved in a PAE PDPTE.
    ram.set64(0x1020 + 3 * 8, 0x2000 | PTE_P | PTE_RW);
    assert_eq!(
        translate(&ram.mem(), &p, gva, KERNEL),
        pf(gva, PageFault::PRESENT | PageFault::RESERVED)
    );
}

#[test]
fn legacy_32bit_walk_with_pse() {
    let mut ram = Ram::new();
    let p = Paging::from_registers(CR0, 0x1000, CR4_PSE, 0);
    assert_eq!(p.mode, PagingMode::Bits32);
    // 4 MiB page at 0x0040_0000 plus PSE-36 high bits (1 << 32).
    ram.set32(
        0x1000 + 0x300 * 4,
        0x0040_0000 | (1 << 13) | (PTE_P | PTE_RW | PTE_PS) as u32,
    );
    ram.set32(0x1000 + 0x301 * 4, 0x2000 | (PTE_P | PTE_US) as u32);
    ram.set32(0x2000 + 0x5 * 4, 0x9000 | (PTE_P | PTE_US) as u32);
    let m = ram.mem();
    assert_eq!(
        translate(&m, &p, 0xc012_3456, KERNEL),
        Ok(0x1_0040_0000 | 0x12_3456)
    );
    assert_eq!(
        translate(&m, &p, 0xc040_5010, with(AccessKind::Read, true)),
        Ok(0x9010)
    );
    assert_eq!(
        translate(&m, &p, 0xc040_5010, with(AccessKind::Write, true)),
        pf(
            0xc040_5010,
            PageFault::PRESENT | PageFault::WRITE | PageFault::USER
        )
    );
    // Paging off: identity, 32 bits.
    let off = Paging::from_registers(CR0_PE, 0, 0, 0);
    assert_eq!(translate(&m, &off, 0x1_2345_6789, KERNEL), Ok(0x2345_6789));
}

mod random {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any table contents: never a panic, and a translation keeps the offset
        /// within the smallest page.
        #[test]
        fn random_tables_translate_or_fault(
            words in proptest::collection::vec(any::<u64>(), 64),
            cr3 in 0u64..0x2000,
            gva in any::<u64>(),
            regs in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
            kind in 0u8..3,
            user in any::<bool>(),
            phys_bits in 0u8..64,
        ) {
            let mut ram = Ram::new();
            // Entries scattered so walks from any CR3 hit fuzzed values, pointing
            // (mostly) back into this small RAM.
            for (i, w) in words.iter().enumerate() {
                let v = if i % 2 == 0 { w & 0x8000_0000_000f_f1ff } else { *w };
                for page in 0..4u64 {
                    ram.set64(page * 0x1000 + (i as u64 * 67 % 512) * 8, v);
                }
            }
            let (pg, pae, lma, la57, pse) = regs;
            let cr0 = CR0_PE | if pg { CR0_PG } else { 0 } | CR0_WP;
            let cr4 = if pae { CR4_PAE } else { 0 } | if la57 { CR4_LA57 } else { 0 } | if pse { CR4_PSE } else { 0 };
            let efer = if lma { EFER_LMA } else { 0 } | EFER_NXE;
            let p = Paging::from_registers(cr0, cr3, cr4, efer).with_phys_bits(phys_bits);
            let kind = [AccessKind::Read, AccessKind::Write, AccessKind::Execute][usize::from(kind)];
            match translate(&ram.mem(), &p, gva, Access { kind, user, ac: false }) {
                Ok(gpa) => prop_assert_eq!(gpa & 0xfff, gva & 0xfff),
                Err(TranslateError::PageFault(f)) => {
                    prop_assert_eq!(f.address, gva);
                    prop_assert_eq!(f.error_code & PageFault::USER != 0, user);
                    prop_assert_eq!(f.error_code & PageFault::WRITE != 0, kind == AccessKind::Write);
                    prop_assert!(f.error_code & PageFault::RESERVED == 0 || f.error_code & PageFault::PRESENT != 0);
                }
                Err(TranslateError::NonCanonical) => prop_assert!(p.mode == PagingMode::Level4 || p.mode == PagingMode::Level5),
                Err(TranslateError::Memory(_)) => {}
            }
        }
    }
}
