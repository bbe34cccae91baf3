//! The `<string.h>` functions libtpms and libcrypto call that `compiler_builtins`
//! does not already provide (it has memcpy, memmove, memset, memcmp and bcmp).
//! All take C strings: NUL-terminated, valid for reads up to the NUL.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void, CStr};
use core::ptr::null_mut;

use super::heap::malloc;

/// # Safety
/// `s` is a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strlen(s: *const c_char) -> usize {
    let mut n = 0;
    // SAFETY: reads stop at the NUL the caller guarantees.
    while unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}

/// # Safety
/// `s` is valid for reads up to its NUL or `max` bytes, whichever comes first.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strnlen(s: *const c_char, max: usize) -> usize {
    let mut n = 0;
    // SAFETY: as the contract bounds it.
    while n < max && unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}

/// Compares at most `max` bytes, folding case with `fold`.
///
/// # Safety
/// `a` and `b` are C strings (or valid for `max` bytes).
unsafe fn compare(a: *const c_char, b: *const c_char, max: usize, fold: fn(u8) -> u8) -> c_int {
    for i in 0..max {
        // SAFETY: both are read up to their NUL or `max`, per the contract.
        let (x, y) = unsafe { (fold(*a.add(i) as u8), fold(*b.add(i) as u8)) };
        if x != y || x == 0 {
            return c_int::from(x) - c_int::from(y);
        }
    }
    0
}

fn same(c: u8) -> u8 {
    c
}

/// # Safety
/// C strings.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strcmp(a: *const c_char, b: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, usize::MAX, same) }
}

/// # Safety
/// C strings or `max` readable bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strncmp(a: *const c_char, b: *const c_char, max: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, max, same) }
}

/// # Safety
/// C strings.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strcasecmp(a: *const c_char, b: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, usize::MAX, |c| c.to_ascii_lowercase()) }
}

/// # Safety
/// C strings or `max` readable bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strncasecmp(a: *const c_char, b: *const c_char, max: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { compare(a, b, max, |c| c.to_ascii_lowercase()) }
}

/// # Safety
/// `s` is a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strchr(s: *const c_char, c: c_int) -> *mut c_char {
    let c = c as u8;
    let mut p = s;
    loop {
        // SAFETY: walks `s` up to and including its NUL.
        let v = unsafe { *p } as u8;
        if v == c {
            return p.cast_mut();
        }
        if v == 0 {
            return null_mut();
        }
        // SAFETY: `v` was not the NUL, so the next byte is still in the string.
        p = unsafe { p.add(1) };
    }
}

/// # Safety
/// `s` is a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strrchr(s: *const c_char, c: c_int) -> *mut c_char {
    // SAFETY: `s` is a C string; the index stays within it and its NUL.
    unsafe {
        let n = strlen(s);
        (0..=n)
            .rev()
            .map(|i| s.add(i))
            .find(|p| **p as u8 == c as u8)
            .map_or(null_mut(), |p| p.cast_mut())
    }
}

/// # Safety
/// C strings.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strstr(hay: *const c_char, needle: *const c_char) -> *mut c_char {
    // SAFETY: both are C strings; each candidate compares within `hay`'s bytes
    // (strncmp stops at hay's NUL) and the start never passes hay's end.
    unsafe {
        let n = strlen(needle);
        let Some(last) = strlen(hay).checked_sub(n) else {
            return null_mut();
        };
        (0..=last)
            .map(|i| hay.add(i))
            .find(|p| strncmp(*p, needle, n) == 0)
            .map_or(null_mut(), |p| p.cast_mut())
    }
}

/// # Safety
/// `src` a C string; `dst` has room for it and its NUL; no overlap.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strcpy(dst: *mut c_char, src: *const c_char) -> *mut c_char {
    // SAFETY: per the contract.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, strlen(src) + 1) };
    dst
}

/// # Safety
/// `src` a C string or `n` readable bytes; `dst` has `n` bytes; no overlap.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strncpy(dst: *mut c_char, src: *const c_char, n: usize) -> *mut c_char {
    // SAFETY: per the contract; C pads the rest of `dst` with NULs.
    unsafe {
        let len = strnlen(src, n);
        core::ptr::copy_nonoverlapping(src, dst, len);
        dst.add(len).write_bytes(0, n - len);
    }
    dst
}

/// # Safety
/// `dst` and `src` C strings, `dst` with room for both; no overlap.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strcat(dst: *mut c_char, src: *const c_char) -> *mut c_char {
    // SAFETY: per the contract.
    unsafe { strcpy(dst.add(strlen(dst)), src) };
    dst
}

/// The length of `s`'s prefix made of bytes in `set` (`accept`) or not in it.
///
/// # Safety
/// C strings.
unsafe fn span(s: *const c_char, set: *const c_char, accept: bool) -> usize {
    // SAFETY: both are C strings.
    let (s, set) = unsafe { (CStr::from_ptr(s).to_bytes(), CStr::from_ptr(set).to_bytes()) };
    s.iter().take_while(|c| set.contains(c) == accept).count()
}

/// # Safety
/// C strings.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strspn(s: *const c_char, accept: *const c_char) -> usize {
    // SAFETY: forwarded contract.
    unsafe { span(s, accept, true) }
}

/// # Safety
/// C strings.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strcspn(s: *const c_char, reject: *const c_char) -> usize {
    // SAFETY: forwarded contract.
    unsafe { span(s, reject, false) }
}

/// # Safety
/// `s` a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strdup(s: *const c_char) -> *mut c_char {
    // SAFETY: `s` is a C string; the copy is as long as it plus the NUL.
    unsafe {
        let n = strlen(s) + 1;
        let p = malloc(n).cast::<c_char>();
        if !p.is_null() {
            core::ptr::copy_nonoverlapping(s, p, n);
        }
        p
    }
}

/// # Safety
/// `s` is valid for `n` bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn memchr(s: *const c_void, c: c_int, n: usize) -> *mut c_void {
    // SAFETY: `n` readable bytes at `s`.
    let bytes = unsafe { core::slice::from_raw_parts(s.cast::<u8>(), n) };
    bytes
        .iter()
        .position(|b| *b == c as u8)
        .map_or(null_mut(), |i| {
            s.cast::<u8>().wrapping_add(i).cast_mut().cast()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &CStr) -> *const c_char {
        s.as_ptr()
    }

    #[test]
    fn comparisons_follow_c() {
        let cases: [(&CStr, &CStr, usize, c_int, c_int); 5] = [
            (c"abc", c"abc", 9, 0, 0),
            (c"abc", c"abd", 9, -1, -1),
            (c"ABC", c"abc", 9, -32, 0),
            (c"abcx", c"abcy", 3, 0, 0),
            (c"", c"a", 9, -97, -97),
        ];
        for (a, b, n, sign, fold) in cases {
            // SAFETY: literals are C strings.
            unsafe {
                assert_eq!(
                    strncmp(p(a), p(b), n).signum(),
                    sign.signum(),
                    "{a:?} {b:?}"
                );
                assert_eq!(strncasecmp(p(a), p(b), n).signum(), fold.signum());
                if n == 9 {
                    assert_eq!(strcmp(p(a), p(b)).signum(), sign.signum());
                    assert_eq!(strcasecmp(p(a), p(b)).signum(), fold.signum());
                }
            }
        }
    }

    #[test]
    fn searches_find_first_last_or_nothing() {
        let s = c"a.b.c";
        // SAFETY: literals are C strings.
        unsafe {
            assert_eq!(strlen(p(s)), 5);
            assert_eq!(strnlen(p(s), 3), 3);
            assert_eq!(strchr(p(s), '.' as c_int).offset_from(p(s)), 1);
            assert_eq!(strrchr(p(s), '.' as c_int).offset_from(p(s)), 3);
            assert_eq!(strchr(p(s), 0).offset_from(p(s)), 5);
            assert!(strchr(p(s), 'z' as c_int).is_null());
            assert_eq!(strstr(p(s), p(c"b.c")).offset_from(p(s)), 2);
            assert_eq!(strstr(p(s), p(c"")), p(s).cast_mut());
            assert!(strstr(p(s), p(c"c.d")).is_null());
            assert!(strstr(p(c"ab"), p(c"abc")).is_null());
            assert_eq!(strspn(p(c"aab:c"), p(c"ab")), 3);
            assert_eq!(strcspn(p(c"aab:c"), p(c":")), 3);
            assert_eq!(strcspn(p(c"aab"), p(c":")), 3);
            assert_eq!(
                memchr(p(s).cast(), 'c' as c_int, 5) as usize,
                p(s) as usize + 4
            );
            assert!(memchr(p(s).cast(), 'c' as c_int, 4).is_null());
        }
    }

    #[test]
    fn copies_terminate_and_pad() {
        let mut buf = [0x55 as c_char; 12];
        // SAFETY: `buf` has room for every copy below.
        unsafe {
            strcpy(buf.as_mut_ptr(), p(c"ab"));
            strcat(buf.as_mut_ptr(), p(c"cd"));
            assert_eq!(CStr::from_ptr(buf.as_ptr()), c"abcd");
            strncpy(buf.as_mut_ptr(), p(c"xy"), 6);
            assert_eq!(
                &buf[..7],
                &[b'x' as c_char, b'y' as c_char, 0, 0, 0, 0, 0x55]
            );
            let d = strdup(p(c"dup"));
            assert_eq!(CStr::from_ptr(d), c"dup");
            super::super::heap::free(d.cast());
        }
    }
}
