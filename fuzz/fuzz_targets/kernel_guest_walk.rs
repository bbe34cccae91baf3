//! The kernel's guest page-table walk (kernel-core `guest::translate`): arbitrary
//! control registers, address and table contents (the guest's memory, hostile)
//! either translate, keeping the page offset, or fail; never a panic.
#![no_main]

use kernel_core::guest::{translate, GuestPhys, Paging};
use libfuzzer_sys::fuzz_target;

/// Guest memory: the input after the header, read as 8-byte words from GPA 0.
struct Mem<'a>(&'a [u8]);

impl GuestPhys for Mem<'_> {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        let at = usize::try_from(gpa).ok()?;
        let bytes = self.0.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, mem)) = data.split_at_checked(40) else {
        return;
    };
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let p = Paging {
        cr0: word(0),
        // Keep the tables inside the input often enough to reach deep levels.
        cr3: word(1) % 0x10000,
        cr4: word(2),
        efer: word(3),
    };
    let linear = word(4);
    if let Some(gpa) = translate(&Mem(mem), &p, linear) {
        assert_eq!(gpa & 0xfff, linear & 0xfff);
    }
});
