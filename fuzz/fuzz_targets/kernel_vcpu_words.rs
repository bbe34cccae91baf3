//! The state words a VMM hands `VM_ENTER` (kernel-core `vmcb::load_dirty`): any
//! words and dirty mask land in the guest's part of the VMCB only: intercepts (but
//! the interrupt window's), permission maps, nested paging, ASID and SVME stay the
//! kernel's, the guest's XCR0 stays one XSETBV accepts; never a panic.
#![no_main]

use kernel_abi::vcpu::Word;
use kernel_core::vmcb::{self, off, Regs, Vmcb};
use libfuzzer_sys::fuzz_target;

struct Page([u64; 512]);

impl Vmcb for Page {
    fn read(&self, offset: u64) -> u64 {
        self.0[(offset / 8) as usize]
    }
    fn write(&mut self, offset: u64, value: u64) {
        self.0[(offset / 8) as usize] = value;
    }
}

const SUPPORTED: u64 = 0x2e7;

fuzz_target!(|data: &[u8]| {
    let mut page = Page([0; 512]);
    vmcb::init(&mut page, 0x30_0000, 1, 0x10_0000, 0x20_0000);
    let mut regs = Regs::default();
    // Several entries in a row, each a run of 58 words from the input.
    for chunk in data.chunks(Word::COUNT * 8).take(4) {
        let mut words = [0u64; Word::COUNT];
        for (w, bytes) in words.iter_mut().zip(chunk.chunks(8)) {
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            *w = u64::from_le_bytes(b);
        }
        let _ = vmcb::load_dirty(&mut page, &mut regs, &words, SUPPORTED);
        let misc1 = page.read(off::INTERCEPT_MISC1 & !7) >> 32;
        assert_eq!(misc1 as u32 & !vmcb::misc1::VINTR, vmcb::MISC1);
        assert_eq!(page.read(off::INTERCEPT_MISC2 & !7) as u32, vmcb::MISC2);
        assert_eq!(page.read(off::IOPM_BASE), 0x10_0000);
        assert_eq!(page.read(off::MSRPM_BASE), 0x20_0000);
        assert_eq!(page.read(off::N_CR3), 0x30_0000);
        assert_eq!(page.read(off::NP_ENABLE), 1);
        assert_ne!(page.read(off::EFER) & (1 << 12), 0);
        assert!(vmcb::xcr0_valid(regs.xcr0, SUPPORTED));
        let mut out = [0u64; Word::COUNT];
        vmcb::store_words(&page, &regs, |i, v| out[i] = v);
        assert_eq!(out[Word::DIRTY], 0);
    }
});
