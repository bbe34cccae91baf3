//! Reading a guest's code: its linear addresses to guest-physical ones through the
//! guest's own page tables, in whichever paging mode its control registers say.
//! The kernel needs this only to check the bytes of an instruction it emulates
//! itself (XSETBV) before moving RIP past it; the tables are guest memory, so every
//! entry is hostile and a walk that leaves guest RAM simply fails.

/// Guest-physical memory as the walker reads it: 8 bytes at an 8-aligned GPA, or
/// `None` where the VM has no memory.
pub trait GuestPhys {
    fn read_u64(&self, gpa: u64) -> Option<u64>;
}

const PRESENT: u64 = 1;
const LARGE: u64 = 1 << 7;
const ADDR_LONG: u64 = 0x000f_ffff_ffff_f000;

/// The control-register bits that choose the paging mode.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

impl Paging {
    const CR0_PG: u64 = 1 << 31;
    const CR4_PSE: u64 = 1 << 4;
    const CR4_PAE: u64 = 1 << 5;
    const CR4_LA57: u64 = 1 << 12;
    const EFER_LMA: u64 = 1 << 10;

    fn long_mode(&self) -> bool {
        self.efer & Self::EFER_LMA != 0
    }
}

fn read_u32(mem: &dyn GuestPhys, gpa: u64) -> Option<u64> {
    let q = mem.read_u64(gpa & !7)?;
    Some(if gpa & 4 != 0 {
        q >> 32
    } else {
        q & 0xffff_ffff
    })
}

/// The GPA that guest linear address `linear` maps to, or `None` if it is not
/// mapped (or the walk leaves guest memory). Access rights are not checked: the
/// caller reads code the guest just ran.
pub fn translate(mem: &dyn GuestPhys, p: &Paging, linear: u64) -> Option<u64> {
    if p.cr0 & Paging::CR0_PG == 0 {
        return Some(if p.long_mode() {
            linear
        } else {
            linear & 0xffff_ffff
        });
    }
    if p.long_mode() {
        let levels = if p.cr4 & Paging::CR4_LA57 != 0 { 5 } else { 4 };
        return walk_long(mem, p.cr3 & ADDR_LONG, levels, linear);
    }
    let linear = linear & 0xffff_ffff;
    if p.cr4 & Paging::CR4_PAE != 0 {
        let pdpte = mem.read_u64((p.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8)?;
        if pdpte & PRESENT == 0 {
            return None;
        }
        return walk_long(mem, pdpte & ADDR_LONG, 2, linear);
    }
    let pde = read_u32(mem, (p.cr3 & 0xffff_f000) + ((linear >> 22) & 0x3ff) * 4)?;
    if pde & PRESENT == 0 {
        return None;
    }
    if pde & LARGE != 0 && p.cr4 & Paging::CR4_PSE != 0 {
        // PSE-36: bits 13..21 of the entry are physical address bits 32..40.
        let base = (pde & 0xffc0_0000) | (((pde >> 13) & 0xff) << 32);
        return Some(base | (linear & 0x3f_ffff));
    }
    let pte = read_u32(mem, (pde & 0xffff_f000) + ((linear >> 12) & 0x3ff) * 4)?;
    if pte & PRESENT == 0 {
        return None;
    }
    Some((pte & 0xffff_f000) | (linear & 0xfff))
}

/// A walk of 64-bit entries from `table`, `levels` deep (PAE's page directory is
/// level 2 of it); large pages at levels 2 and 3.
fn walk_long(mem: &dyn GuestPhys, mut table: u64, levels: u32, linear: u64) -> Option<u64> {
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let entry = mem.read_u64(table + ((linear >> shift) & 0x1ff) * 8)?;
        if entry & PRESENT == 0 {
            return None;
        }
        if level == 1 || (entry & LARGE != 0 && (level == 2 || level == 3)) {
            let size = 1u64 << shift;
            return Some((entry & ADDR_LONG & !(size - 1)) | (linear & (size - 1)));
        }
        table = entry & ADDR_LONG;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<u64, u64>);

    impl Mem {
        fn set(&mut self, gpa: u64, v: u64) {
            self.0.insert(gpa, v);
        }
        fn set32(&mut self, gpa: u64, v: u32) {
            let q = self.0.entry(gpa & !7).or_default();
            if gpa & 4 != 0 {
                *q = (*q & 0xffff_ffff) | (u64::from(v) << 32);
            } else {
                *q = (*q & !0xffff_ffff) | u64::from(v);
            }
        }
    }

    impl GuestPhys for Mem {
        fn read_u64(&self, gpa: u64) -> Option<u64> {
            self.0.get(&gpa).copied()
        }
    }

    const PG: u64 = 1 << 31;

    /// Paging on, in protected mode, with these CR3, CR4 and EFER.
    fn paged(cr3: u64, cr4: u64, efer: u64) -> Paging {
        Paging {
            cr0: PG | 1,
            cr3,
            cr4,
            efer,
        }
    }

    #[test]
    fn paging_off_is_identity_truncated_outside_long_mode() {
        let m = Mem::default();
        let p = Paging::default();
        assert_eq!(translate(&m, &p, 0x1_2345_6789), Some(0x2345_6789));
        let lm = Paging { efer: 1 << 10, ..p };
        assert_eq!(translate(&m, &lm, 0x1_2345_6789), Some(0x1_2345_6789));
    }

    #[test]
    fn two_level_32_bit_with_4k_and_4m_pages() {
        let mut m = Mem::default();
        // CR3 0x1000; PDE 1 -> PT at 0x2000; PTE 2 -> 0x5000. PDE 3: 4 MiB page at
        // 0x1_0080_0000 (PSE-36 bits).
        m.set32(0x1000 + 4, 0x2001);
        m.set32(0x2000 + 2 * 4, 0x5001);
        m.set32(0x1000 + 3 * 4, 0x0080_0081 | (1 << 13));
        let p = paged(0x1000, 1 << 4, 0);
        assert_eq!(translate(&m, &p, 0x0040_2abc), Some(0x5abc));
        assert_eq!(translate(&m, &p, 0x00c1_2345), Some(0x1_0081_2345));
        assert_eq!(translate(&m, &p, 0x0080_0000), None, "PDE 2 not present");
        let no_pse = Paging { cr4: 0, ..p };
        assert_eq!(
            translate(&m, &no_pse, 0x00c1_2345),
            None,
            "without PSE the entry points at a page table outside guest memory"
        );
    }

    #[test]
    fn pae_and_long_mode_walks_with_large_pages() {
        let mut m = Mem::default();
        // PAE: CR3 0x3020, PDPTE 1 -> PD 0x4000; PDE 0 -> 2 MiB at 0x60_0000.
        m.set(0x3020 + 8, 0x4001);
        m.set(0x4000, 0x60_0081);
        let pae = paged(0x3020, 1 << 5, 0);
        assert_eq!(translate(&m, &pae, 0x4001_2345), Some(0x61_2345));
        // Long mode: PML4 0x10000 -> PDPT 0x11000 -> 1 GiB page, and -> PD -> PT.
        m.set(0x10000 + 511 * 8, 0x11001);
        m.set(0x11000 + 510 * 8, 0x4000_0081);
        m.set(0x11000, 0x12001);
        m.set(0x12000 + 8, 0x13001);
        m.set(0x13000 + 3 * 8, 0x8000_0000_0007_7001);
        let lm = paged(0x10000, 1 << 5, (1 << 10) | (1 << 8));
        assert_eq!(translate(&m, &lm, 0xffff_ffff_8123_4567), Some(0x4123_4567));
        assert_eq!(translate(&m, &lm, 0x20_3abc), None, "PML4 0 absent");
        m.set(0x10000, 0x11001);
        assert_eq!(
            translate(&m, &lm, 0x20_3abc),
            Some(0x7_7abc),
            "NX is ignored"
        );
    }

    proptest! {
        /// Arbitrary table contents never panic and a result always keeps the
        /// page offset.
        #[test]
        fn hostile_tables_never_panic(
            entries in proptest::collection::vec((0u64..0x20, any::<u64>()), 0..64),
            cr0 in any::<u64>(), cr3 in any::<u64>(), cr4 in any::<u64>(),
            efer in any::<u64>(), linear in any::<u64>(),
        ) {
            let mut m = Mem::default();
            for (slot, v) in entries {
                m.set(slot * 8, v);
            }
            let p = Paging { cr0, cr3, cr4, efer };
            if let Some(gpa) = translate(&m, &p, linear) {
                prop_assert_eq!(gpa & 0xfff, linear & 0xfff);
            }
        }
    }
}
