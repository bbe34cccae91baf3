use proptest::prelude::*;

use super::*;
use kernel_abi::vcpu::segment;

/// A VMCB page in host memory.
struct Page([u64; 512]);

impl Vmcb for Page {
    fn read(&self, offset: u64) -> u64 {
        assert!(
            offset.is_multiple_of(8) && offset < 4096,
            "offset {offset:#x}"
        );
        self.0[(offset / 8) as usize]
    }
    fn write(&mut self, offset: u64, value: u64) {
        assert!(
            offset.is_multiple_of(8) && offset < 4096,
            "offset {offset:#x}"
        );
        self.0[(offset / 8) as usize] = value;
    }
}

const IOPM: u64 = 0x10_0000;
const MSRPM: u64 = 0x20_0000;
const NPT: u64 = 0x30_0000;
const SUPPORTED: u64 = 0b111;

fn fresh() -> (Page, Regs) {
    let mut p = Page([0; 512]);
    init(&mut p, NPT, 3, IOPM, MSRPM);
    (p, Regs::default())
}

fn dirty(words: &mut [u64; Word::COUNT], list: &[usize]) {
    words[Word::DIRTY] = list.iter().fold(0, |m, &w| m | (1 << w));
}

fn stored(p: &Page, r: &Regs) -> [u64; Word::COUNT] {
    let mut out = [u64::MAX; Word::COUNT];
    store_words(p, r, |i, v| out[i] = v);
    out
}

#[test]
fn the_reset_state_is_real_mode_at_the_reset_vector() {
    let (p, r) = fresh();
    let w = stored(&p, &r);
    assert_eq!(w[Word::RIP], 0xfff0);
    assert_eq!(w[Word::SEGMENTS + 2 * segment::CS + 1], 0xffff_0000);
    assert_eq!(w[Word::CR0], 0x6000_0010);
    assert_eq!(w[Word::EFER], 1 << 12);
    assert_eq!(w[Word::XCR0], 1);
    assert_eq!(read32(&p, off::INTERCEPT_MISC1), MISC1);
    assert_eq!(read32(&p, off::INTERCEPT_MISC2), MISC2);
    assert_eq!(read32(&p, off::INTERCEPT_EXCEPTIONS), MC);
    assert_eq!(read32(&p, off::ASID), 3);
    assert!(r.flush);
}

#[test]
fn words_round_trip_through_the_vmcb() {
    let (mut p, mut r) = fresh();
    let mut w = [0u64; Word::COUNT];
    for (i, x) in w.iter_mut().enumerate() {
        *x = 0x1111_0000_0000_0000 | (i as u64) << 8 | 0x5;
    }
    w[Word::XCR0] = 7;
    w[Word::SEGMENTS + 2 * segment::SS] = segment_word(0x23, 0xcf3, 0xffff_ffff);
    let list: [usize; 49] = core::array::from_fn(|k| k + Word::RAX);
    dirty(&mut w, &list);
    assert_eq!(load_dirty(&mut p, &mut r, &w, SUPPORTED), Ok(()));
    let out = stored(&p, &r);
    for i in Word::RAX..Word::SEGMENTS {
        let want = match i {
            Word::EFER => w[i] | (1 << 12),
            Word::EXCEPTION_INTERCEPTS => w[i] & 0xffff_ffff,
            _ => w[i],
        };
        assert_eq!(out[i], want, "word {i}");
    }
    for k in 0..8 {
        let (sel, attrib, limit) = segment_parts(w[Word::SEGMENTS + 2 * k]);
        assert_eq!(
            out[Word::SEGMENTS + 2 * k],
            segment_word(sel, attrib, limit),
            "segment {k}"
        );
        assert_eq!(
            out[Word::SEGMENTS + 2 * k + 1],
            w[Word::SEGMENTS + 2 * k + 1]
        );
    }
    assert_eq!(out[Word::GDTR], w[Word::GDTR] & 0xffff_ffff);
    assert_eq!(out[Word::IDTR + 1], w[Word::IDTR + 1]);
    assert_eq!(out[Word::PAT], w[Word::PAT]);
    assert_eq!(out[Word::DR7], w[Word::DR7]);
    assert_eq!(out[Word::XCR0], 7);
    assert_eq!(out[Word::DIRTY], 0);
    assert_eq!(read8(&p, off::CPL), 3, "SS.DPL 3 in protected mode");
    assert_eq!(
        read32(&p, off::INTERCEPT_EXCEPTIONS),
        w[Word::EXCEPTION_INTERCEPTS] as u32 | MC
    );
}

#[test]
fn only_dirty_words_are_loaded() {
    let (mut p, mut r) = fresh();
    let mut w = [0xdead_beefu64; Word::COUNT];
    dirty(&mut w, &[Word::RBX]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    let out = stored(&p, &r);
    assert_eq!(out[Word::RBX], 0xdead_beef);
    assert_eq!(out[Word::RCX], 0);
    assert_eq!(out[Word::RIP], 0xfff0);
}

#[test]
fn svme_stays_on_and_injected_events_keep_only_architectural_bits() {
    let (mut p, mut r) = fresh();
    let mut w = [0u64; Word::COUNT];
    w[Word::EFER] = 0x500;
    w[Word::EVENT_INJECT] = u64::MAX;
    dirty(&mut w, &[Word::EFER, Word::EVENT_INJECT]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    assert_eq!(p.read(off::EFER), 0x1500);
    assert_eq!(p.read(off::EVENT_INJ), 0xffff_ffff_8000_0fff);
}

#[test]
fn xcr0_is_checked_like_xsetbv() {
    let table = [
        (1, 0b111, true),
        (7, 0b111, true),
        (0, 0b111, false),
        (6, 0b111, false),
        (5, 0b111, false),
        (0xf, 0b111, false),
        (0xe7, 0xe7, true),
        (0x67, 0xe7, false),
        (0xe3, 0xe7, false),
    ];
    for (xcr0, supported, ok) in table {
        assert_eq!(
            xcr0_valid(xcr0, supported),
            ok,
            "{xcr0:#x} on {supported:#x}"
        );
    }
    let (mut p, mut r) = fresh();
    let mut w = [0u64; Word::COUNT];
    w[Word::XCR0] = 6;
    w[Word::RBX] = 9;
    dirty(&mut w, &[Word::XCR0, Word::RBX]);
    assert_eq!(load_dirty(&mut p, &mut r, &w, SUPPORTED), Err(BadXcr0));
    assert_eq!(r.xcr0, 1, "unchanged");
    assert_eq!(r.gprs.rbx, 9, "the other words still apply");
}

#[test]
fn the_interrupt_window_sets_v_irq_and_the_vintr_intercept_and_closes() {
    let (mut p, mut r) = fresh();
    let mut w = [0u64; Word::COUNT];
    w[Word::INTERRUPT_WINDOW] = 1 | (0x5 << 8);
    dirty(&mut w, &[Word::INTERRUPT_WINDOW]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    assert_ne!(p.read(off::VINTR) & V_IRQ, 0);
    assert_eq!(p.read(off::VINTR) & 0xff, 5);
    assert_ne!(read32(&p, off::INTERCEPT_MISC1) & misc1::VINTR, 0);
    assert_eq!(stored(&p, &r)[Word::INTERRUPT_WINDOW], 1 | (5 << 8));
    close_interrupt_window(&mut p);
    assert_eq!(p.read(off::VINTR) & V_IRQ, 0);
    assert_eq!(read32(&p, off::INTERCEPT_MISC1), MISC1);
    assert_eq!(stored(&p, &r)[Word::INTERRUPT_WINDOW], 5 << 8);
}

#[test]
fn the_cpl_follows_the_mode() {
    let (mut p, mut r) = fresh();
    let mut w = [0u64; Word::COUNT];
    w[Word::SEGMENTS + 2 * segment::SS] = segment_word(0x2b, 0xcf3, 0xffff_ffff);
    dirty(&mut w, &[Word::SEGMENTS + 2 * segment::SS]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    assert_eq!(read8(&p, off::CPL), 0, "real mode");
    w[Word::CR0] = 0x11;
    dirty(&mut w, &[Word::CR0]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    assert_eq!(read8(&p, off::CPL), 3, "protected mode: SS.DPL");
    w[Word::RFLAGS] = 0x2_0002;
    w[Word::SEGMENTS + 2 * segment::SS] = segment_word(0x10, 0x93, 0xffff);
    dirty(&mut w, &[Word::RFLAGS, Word::SEGMENTS + 2 * segment::SS]);
    load_dirty(&mut p, &mut r, &w, SUPPORTED).unwrap();
    assert_eq!(read8(&p, off::CPL), 3, "virtual-8086 mode");
}

proptest! {
    /// Whatever a VMM writes, the kernel's part of the VMCB stays the kernel's:
    /// intercepts (but the window's), permission maps, nested paging, ASID, #MC.
    #[test]
    fn hostile_words_never_touch_the_kernels_fields(
        values in proptest::collection::vec(any::<u64>(), Word::COUNT),
        mask in any::<u64>(),
    ) {
        let (mut p, mut r) = fresh();
        let mut w = [0u64; Word::COUNT];
        w.copy_from_slice(&values);
        w[Word::DIRTY] = mask;
        let _ = load_dirty(&mut p, &mut r, &w, SUPPORTED);
        prop_assert_eq!(read32(&p, off::INTERCEPT_MISC1) & !misc1::VINTR, MISC1);
        prop_assert_eq!(read32(&p, off::INTERCEPT_MISC2), MISC2);
        prop_assert_eq!(read32(&p, off::INTERCEPT_EXCEPTIONS) & MC, MC);
        prop_assert_eq!(p.read(off::IOPM_BASE), IOPM);
        prop_assert_eq!(p.read(off::MSRPM_BASE), MSRPM);
        prop_assert_eq!(p.read(off::N_CR3), NPT);
        prop_assert_eq!(p.read(off::NP_ENABLE), 1);
        prop_assert_eq!(read32(&p, off::ASID), 3);
        prop_assert_ne!(p.read(off::VINTR) & V_INTR_MASKING, 0);
        prop_assert_ne!(p.read(off::EFER) & (1 << 12), 0);
        prop_assert!(xcr0_valid(r.xcr0, SUPPORTED));
        prop_assert!(read8(&p, off::CPL) <= 3);
    }
}
