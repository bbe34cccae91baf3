//! malloc and friends over the PD's Rust global allocator (`pd_rt::global_heap!`
//! in the PD), so C and Rust share one heap. Each block carries its total size
//! in a 16-byte header, which `free` and `realloc` need to rebuild the `Layout`.
#![allow(unsafe_code)]

use alloc::alloc::{alloc, dealloc, realloc as grow, Layout};
use core::ffi::c_void;
use core::ptr::null_mut;

use super::errno::{set_errno, ENOMEM};

/// malloc's guarantee (max_align_t), and the header's size.
const ALIGN: usize = 16;

fn layout(total: usize) -> Option<Layout> {
    Layout::from_size_align(total, ALIGN).ok()
}

/// # Safety
/// Plain C `malloc`.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    let Some(l) = size.checked_add(ALIGN).and_then(layout) else {
        set_errno(ENOMEM);
        return null_mut();
    };
    // SAFETY: `l` has a non-zero size (at least the header).
    let base = unsafe { alloc(l) };
    if base.is_null() {
        set_errno(ENOMEM);
        return null_mut();
    }
    // SAFETY: the block is at least ALIGN bytes, 16-aligned; the payload follows.
    unsafe {
        base.cast::<usize>().write(l.size());
        base.add(ALIGN).cast()
    }
}

/// # Safety
/// `p` is null or came from this module's malloc/calloc/realloc, not yet freed.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: per the contract the header sits ALIGN bytes below and holds the
    // block's total size, which made a valid layout when allocated.
    unsafe {
        let base = p.cast::<u8>().sub(ALIGN);
        let total = base.cast::<usize>().read();
        dealloc(base, Layout::from_size_align_unchecked(total, ALIGN));
    }
}

/// # Safety
/// Plain C `calloc`.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(bytes) = n.checked_mul(size) else {
        set_errno(ENOMEM);
        return null_mut();
    };
    // SAFETY: malloc's result is null or `bytes` writable bytes.
    unsafe {
        let p = malloc(bytes);
        if !p.is_null() {
            p.cast::<u8>().write_bytes(0, bytes);
        }
        p
    }
}

/// # Safety
/// `p` as for [`free`].
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: plain malloc.
        return unsafe { malloc(size) };
    }
    let Some(total) = size.checked_add(ALIGN).filter(|t| layout(*t).is_some()) else {
        set_errno(ENOMEM);
        return null_mut();
    };
    // SAFETY: the header holds the old total (see `free`); `grow` keeps the
    // contents up to the smaller size and the old block on failure, as C does.
    unsafe {
        let base = p.cast::<u8>().sub(ALIGN);
        let old = Layout::from_size_align_unchecked(base.cast::<usize>().read(), ALIGN);
        let new = grow(base, old, total);
        if new.is_null() {
            set_errno(ENOMEM);
            return null_mut();
        }
        new.cast::<usize>().write(total);
        new.add(ALIGN).cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_contents_through_realloc_and_calloc_zeroes() {
        // SAFETY: plain use of the C allocator functions under test.
        unsafe {
            let p = malloc(10).cast::<u8>();
            assert!(!p.is_null());
            assert_eq!(p as usize % ALIGN, 0);
            for i in 0..10 {
                p.add(i).write(i as u8);
            }
            let q = realloc(p.cast(), 5000).cast::<u8>();
            assert!((0..10).all(|i| q.add(i).read() == i as u8));
            let q = realloc(q.cast(), 3).cast::<u8>();
            assert!((0..3).all(|i| q.add(i).read() == i as u8));
            free(q.cast());
            let z = calloc(7, 9).cast::<u8>();
            assert!((0..63).all(|i| z.add(i).read() == 0));
            free(z.cast());
            free(null_mut());
        }
    }

    #[test]
    fn impossible_sizes_are_refused_not_wrapped() {
        // SAFETY: the calls fail before touching memory.
        unsafe {
            assert!(malloc(usize::MAX).is_null());
            assert!(calloc(usize::MAX / 2, 3).is_null());
            let p = malloc(1);
            assert!(realloc(p, usize::MAX - 4).is_null());
            free(p);
        }
    }
}
