//! Bulk copies between private buffers and shared memory a peer may be writing (or
//! reading) at the same moment.
//!
//! Why this is sound. Rust has no non-atomic access that may race, so a plain
//! `memcpy` over shared bytes is undefined behaviour even though the hardware copy
//! would be harmless. Two ways out are used:
//!
//! - Word loops of relaxed `AtomicU64`/`AtomicU8` accesses: fully inside the memory
//!   model, but LLVM never merges or vectorises atomics, so they run at 8 bytes per
//!   load (about 2.6x slower than memcpy at 16 KiB).
//! - Inline assembly for the bulk of larger copies. An `asm!` block is opaque to the
//!   compiler and is specified to behave as some operation the abstract machine could
//!   perform. The block here only moves bytes between `src..src+len` and
//!   `dst..dst+len`; each byte it reads on the shared side is a value some store put
//!   there (x86 loads never invent bytes, at worst they tear between bytes), so its
//!   effect is exactly that of a byte-wise relaxed atomic copy (C++ P1478's
//!   `atomic_load_per_byte_memcpy`), which Rust permits alongside the peer's atomic
//!   accesses. Ordering comes from the caller's acquire/release on the ring or queue
//!   indices, which the block cannot be moved across (it is not `pure`/`nomem`).
//!
//! The vector loop touches xmm/ymm registers, so it is compiled only where SSE2 is an
//! enabled target feature (hosted builds). `x86_64-unknown-none` (the kernel's PDs,
//! soft-float) gets `rep movsb`, which uses no vector state. Miri and loom cannot
//! interpret assembly and get the word loops, which keeps their checks meaningful.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Copies `len` bytes of `src` to `shared`, treating the destination as shared.
///
/// # Safety
/// `shared..shared+src.len()` must be valid for atomic writes.
#[inline]
pub(super) unsafe fn to_shared(src: &[u8], shared: *mut u8) {
    // SAFETY: the caller vouches for the shared range; `src` is a live slice.
    let done = unsafe { bulk::copy(shared, src.as_ptr(), src.len()) };
    // SAFETY: done <= src.len(); the rest is inside the caller's range.
    unsafe { words_to_shared(&src[done..], shared.add(done)) };
}

/// Copies `dst.len()` bytes from `shared` into `dst`.
///
/// # Safety
/// `shared..shared+dst.len()` must be valid for atomic reads.
#[inline]
pub(super) unsafe fn from_shared(shared: *const u8, dst: &mut [u8]) {
    // SAFETY: as above, with the directions swapped.
    let done = unsafe { bulk::copy(dst.as_mut_ptr(), shared, dst.len()) };
    // SAFETY: done <= dst.len().
    unsafe { words_from_shared(shared.add(done), &mut dst[done..]) };
}

/// Under Miri every shared byte is accessed as an `AtomicU8`: its weak-memory model
/// cannot hold a word store that overlaps earlier byte stores (or the reverse),
/// which a ring reusing its data area at other offsets produces. The accesses stay
/// relaxed atomics, so its race detector still checks every one.
const BYTES_ONLY: bool = cfg!(miri);

unsafe fn words_from_shared(src: *const u8, dst: &mut [u8]) {
    let head_len = if BYTES_ONLY {
        dst.len()
    } else {
        src.align_offset(8).min(dst.len())
    };
    let (head, rest) = dst.split_at_mut(head_len);
    for (i, byte) in head.iter_mut().enumerate() {
        // SAFETY: i < head_len <= dst.len(), inside the caller's range.
        *byte = unsafe { AtomicU8::from_ptr(src.add(i) as *mut u8) }.load(Ordering::Relaxed);
    }
    // SAFETY: head_len <= dst.len().
    let src = unsafe { src.add(head_len) };
    let rest_len = rest.len();
    let mut words = rest.chunks_exact_mut(8);
    for (w, chunk) in words.by_ref().enumerate() {
        // SAFETY: src is 8-aligned after the head; word w lies inside the range.
        let word =
            unsafe { AtomicU64::from_ptr(src.add(w * 8) as *mut u64) }.load(Ordering::Relaxed);
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let tail = words.into_remainder();
    let tail_start = rest_len - tail.len();
    for (i, byte) in tail.iter_mut().enumerate() {
        // SAFETY: tail_start + i < rest_len, inside the caller's range.
        *byte = unsafe { AtomicU8::from_ptr(src.add(tail_start + i) as *mut u8) }
            .load(Ordering::Relaxed);
    }
}

unsafe fn words_to_shared(src: &[u8], dst: *mut u8) {
    let head_len = if BYTES_ONLY {
        src.len()
    } else {
        dst.align_offset(8).min(src.len())
    };
    let (head, rest) = src.split_at(head_len);
    for (i, &byte) in head.iter().enumerate() {
        // SAFETY: i < head_len <= src.len(), inside the caller's range.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(byte, Ordering::Relaxed);
    }
    // SAFETY: head_len <= src.len().
    let dst = unsafe { dst.add(head_len) };
    let mut words = rest.chunks_exact(8);
    for (w, chunk) in words.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // SAFETY: dst is 8-aligned after the head; word w lies inside the range.
        unsafe { AtomicU64::from_ptr(dst.add(w * 8) as *mut u64) }
            .store(u64::from_ne_bytes(word), Ordering::Relaxed);
    }
    let tail_start = rest.len() - words.remainder().len();
    for (i, &byte) in rest.iter().enumerate().skip(tail_start) {
        // SAFETY: i < rest.len(), inside the caller's range.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(byte, Ordering::Relaxed);
    }
}

#[cfg(not(all(target_arch = "x86_64", not(miri), not(loom))))]
mod bulk {
    /// No assembly here: the word loops do everything.
    pub(super) unsafe fn copy(_dst: *mut u8, _src: *const u8, _len: usize) -> usize {
        0
    }
}

#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
mod bulk {
    use core::arch::asm;

    /// From here on `rep movsb` (fast-string microcode) matches or beats a vector
    /// loop; below it its start-up cost dominates.
    const MOVSB_MIN: usize = 4096;
    /// Below this the word loop is as fast as anything, with no set-up at all.
    #[cfg(target_feature = "sse2")]
    const VECTOR_MIN: usize = 128;

    /// Copies a prefix of `len` bytes from `src` to `dst` and returns its length;
    /// the word loops finish the rest.
    ///
    /// # Safety
    /// Both ranges valid for `len` bytes and not overlapping.
    pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> usize {
        if len >= MOVSB_MIN {
            // SAFETY: forwarded from the caller; the ABI guarantees DF=0 here, so
            // the copy runs upwards over exactly len bytes.
            unsafe {
                asm!(
                    "rep movsb",
                    inout("rcx") len => _,
                    inout("rdi") dst => _,
                    inout("rsi") src => _,
                    options(nostack, preserves_flags)
                );
            }
            return len;
        }
        #[cfg(target_feature = "sse2")]
        if len >= VECTOR_MIN {
            let chunks = len & !63;
            if avx::available() {
                // SAFETY: AVX is present and enabled by the OS (checked above).
                unsafe { avx::copy64(dst, src, chunks) };
            } else {
                // SAFETY: SSE2 is part of this build's baseline.
                unsafe { sse2_copy64(dst, src, chunks) };
            }
            return chunks;
        }
        0
    }

    /// Copies `len` (a non-zero multiple of 64) bytes with 16-byte moves.
    #[cfg(target_feature = "sse2")]
    unsafe fn sse2_copy64(dst: *mut u8, src: *const u8, len: usize) {
        // SAFETY: the caller's ranges; the loop runs len/64 times (len > 0).
        unsafe {
            asm!(
                "2:",
                "movdqu {a}, [{s}]",
                "movdqu {b}, [{s} + 16]",
                "movdqu {c}, [{s} + 32]",
                "movdqu {e}, [{s} + 48]",
                "movdqu [{d}], {a}",
                "movdqu [{d} + 16], {b}",
                "movdqu [{d} + 32], {c}",
                "movdqu [{d} + 48], {e}",
                "add {s}, 64",
                "add {d}, 64",
                "sub {n}, 64",
                "jnz 2b",
                s = inout(reg) src => _,
                d = inout(reg) dst => _,
                n = inout(reg) len => _,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                e = out(xmm_reg) _,
                options(nostack)
            );
        }
    }

    #[cfg(target_feature = "sse2")]
    mod avx {
        use core::arch::asm;
        use core::arch::x86_64::__cpuid;
        use core::sync::atomic::{AtomicU8, Ordering};

        const UNKNOWN: u8 = 0;
        const YES: u8 = 1;
        const NO: u8 = 2;
        static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

        /// AVX in the CPU and its register state enabled by the OS (OSXSAVE and
        /// XCR0 bits 1-2), detected once.
        pub(super) fn available() -> bool {
            match STATE.load(Ordering::Relaxed) {
                YES => true,
                NO => false,
                _ => {
                    let yes = detect();
                    STATE.store(if yes { YES } else { NO }, Ordering::Relaxed);
                    yes
                }
            }
        }

        fn detect() -> bool {
            #[allow(unused_unsafe)]
            // SAFETY: CPUID leaf 1 exists on every x86_64 CPU.
            let ecx = unsafe { __cpuid(1) }.ecx;
            let osxsave = ecx & (1 << 27) != 0;
            let avx = ecx & (1 << 28) != 0;
            if !(osxsave && avx) {
                return false;
            }
            let xcr0_low: u32;
            // SAFETY: XGETBV is available because OSXSAVE is set; it reads XCR0
            // into edx:eax and touches nothing else.
            unsafe {
                asm!("xgetbv", in("ecx") 0, out("eax") xcr0_low, out("edx") _,
                     options(nomem, nostack, preserves_flags));
            }
            xcr0_low & 0b110 == 0b110
        }

        /// Copies `len` (a non-zero multiple of 64) bytes with 32-byte moves.
        #[target_feature(enable = "avx")]
        pub(super) unsafe fn copy64(dst: *mut u8, src: *const u8, len: usize) {
            // SAFETY: the caller's ranges; the loop runs len/64 times (len > 0).
            // vzeroupper avoids SSE/AVX transition stalls in the code after us.
            unsafe {
                asm!(
                    "2:",
                    "vmovdqu {a}, [{s}]",
                    "vmovdqu {b}, [{s} + 32]",
                    "vmovdqu [{d}], {a}",
                    "vmovdqu [{d} + 32], {b}",
                    "add {s}, 64",
                    "add {d}, 64",
                    "sub {n}, 64",
                    "jnz 2b",
                    "vzeroupper",
                    s = inout(reg) src => _,
                    d = inout(reg) dst => _,
                    n = inout(reg) len => _,
                    a = out(ymm_reg) _,
                    b = out(ymm_reg) _,
                    options(nostack)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Every length around each path's threshold, at every alignment of both sides,
    /// lands exactly on its bytes and nothing next to them.
    #[test]
    fn copies_are_exact_at_every_size_and_alignment() {
        let sizes = [
            0, 1, 7, 8, 63, 64, 127, 128, 129, 191, 1000, 4095, 4096, 4103, 9000,
        ];
        // Under Miri (byte-wise atomics, each checked) the sizes past a page add
        // only time: the loops are the same as at 4096.
        let sizes = if cfg!(miri) { &sizes[..13] } else { &sizes[..] };
        for &len in sizes {
            for align in [0usize, 1, 5, 8] {
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let shared: Vec<AtomicU64> = (0..(len + 32) / 8 + 1)
                    .map(|_| AtomicU64::new(u64::MAX))
                    .collect();
                let base = shared.as_ptr() as *mut u8;
                // SAFETY: align + len + 8 bytes lie inside `shared`.
                unsafe { to_shared(&src, base.add(align)) };
                let mut out = std::vec![0u8; len];
                // SAFETY: as above.
                unsafe { from_shared(base.add(align), &mut out) };
                assert_eq!(out, src, "len {len} align {align}");
                let mut guard = [0u8; 1];
                // SAFETY: the byte after the copy is inside `shared`.
                unsafe { from_shared(base.add(align + len), &mut guard) };
                assert_eq!(guard[0], 0xFF, "overrun at len {len} align {align}");
                if align > 0 {
                    // SAFETY: the byte before the copy is inside `shared`.
                    unsafe { from_shared(base.add(align - 1), &mut guard) };
                    assert_eq!(guard[0], 0xFF, "underrun at len {len} align {align}");
                }
            }
        }
    }
}
