//! `<stdlib.h>`, `<assert.h>` and process-level odds and ends: no environment,
//! no exit handlers; abort and failed assertions end the PD through its panic
//! handler (which reports on the console).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};

/// # Safety
/// Any C string or null.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn getenv(_name: *const c_char) -> *mut c_char {
    core::ptr::null_mut()
}

/// # Safety
/// Any C string or null.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn secure_getenv(_name: *const c_char) -> *mut c_char {
    core::ptr::null_mut()
}

/// # Safety
/// Any value.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strerror(_errnum: c_int) -> *const c_char {
    c"error".as_ptr()
}

/// libtpms falls back to `rand()` for entropy when OpenSSL's DRBG fails. Serve
/// it RDRAND too; when that fails, a constant, which libtpms's own check
/// (the same value twice) turns into an entropy failure instead of weak seeds.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn rand() -> c_int {
    let mut b = [0u8; 4];
    if super::entropy::fill(&mut b) {
        (u32::from_le_bytes(b) & 0x7fff_ffff) as c_int
    } else {
        0
    }
}

/// Seeds nothing: [`rand`] does not use a seed.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn srand(_seed: c_uint) {}

/// C's `strtoul`: optional space and sign, base 0 (prefix decides), 2..=36;
/// saturates at `ULONG_MAX` with ERANGE; `end` gets the first byte not used
/// (`s` itself when no digit was).
///
/// # Safety
/// `s` a C string; `end` null or writable.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strtoul(s: *const c_char, end: *mut *mut c_char, base: c_int) -> c_ulong {
    // SAFETY: `s` is a C string.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    let (value, used) = parse_unsigned(bytes, base);
    if !end.is_null() {
        // SAFETY: `used` is within `s`; `end` writable per the contract.
        unsafe { end.write(s.add(used).cast_mut()) };
    }
    value
}

/// C's `strtol`: as [`strtoul`], saturating at `LONG_MIN`/`LONG_MAX` (ERANGE).
///
/// # Safety
/// `s` a C string; `end` null or writable.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn strtol(s: *const c_char, end: *mut *mut c_char, base: c_int) -> c_long {
    // SAFETY: forwarded contract.
    let v = unsafe { strtoul(s, end, base) };
    // SAFETY: `s` is a C string.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    signed(bytes, v)
}

/// strtol's value from strtoul's on the same input: in range or saturated.
fn signed(b: &[u8], v: c_ulong) -> c_long {
    let negative = b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'-');
    let magnitude = if negative { v.wrapping_neg() } else { v };
    match (negative, c_long::try_from(magnitude)) {
        (false, Ok(m)) => m,
        (true, Ok(m)) => -m,
        (true, Err(_)) if magnitude == c_long::MIN.unsigned_abs() => c_long::MIN,
        (neg, Err(_)) => {
            super::errno::set_errno(ERANGE);
            if neg {
                c_long::MIN
            } else {
                c_long::MAX
            }
        }
    }
}

/// (value, bytes consumed) as strtoul computes them; 0 consumed for no digits.
fn parse_unsigned(b: &[u8], base: c_int) -> (c_ulong, usize) {
    let mut i = b
        .iter()
        .take_while(|c| b" \t\n\x0b\x0c\r".contains(c))
        .count();
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let hex_prefix = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let base = match base {
        0 if hex_prefix => 16,
        0 if b.get(i) == Some(&b'0') => 8,
        0 => 10,
        2..=36 => base as u32,
        _ => {
            super::errno::set_errno(super::errno::EINVAL);
            return (0, 0);
        }
    };
    if base == 16 && hex_prefix {
        i += 2;
    }
    let start = i;
    let mut value: c_ulong = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|c| (*c as char).to_digit(base)) {
        match value
            .checked_mul(c_ulong::from(base))
            .and_then(|v| v.checked_add(c_ulong::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, 0);
    }
    if overflow {
        super::errno::set_errno(ERANGE);
        return (c_ulong::MAX, i);
    }
    (
        if negative {
            value.wrapping_neg()
        } else {
            value
        },
        i,
    )
}

const ERANGE: c_int = 34;

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn getpid() -> c_int {
    1
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn atexit(_f: Option<extern "C" fn()>) -> c_int {
    // Registered and never run: a PD does not exit.
    0
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn abort() -> ! {
    panic!("C code called abort()");
}

fn text<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "?";
    }
    // SAFETY: glibc's assert passes NUL-terminated literals.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

/// # Safety
/// C strings (assert's literals) or null.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn __assert_fail(
    expr: *const c_char,
    file: *const c_char,
    line: c_uint,
    func: *const c_char,
) -> ! {
    panic!(
        "C assertion failed: {} ({}:{line}, {})",
        text(expr),
        text(file),
        text(func)
    );
}

/// Insertion sort: the arrays sorted here are OpenSSL's small stacks.
///
/// # Safety
/// `base` holds `n` elements of `size` bytes; `cmp` compares two of them.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn qsort(
    base: *mut c_void,
    n: usize,
    size: usize,
    cmp: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> c_int>,
) {
    let Some(cmp) = cmp else { return };
    let base = base.cast::<u8>();
    for i in 1..n {
        let mut j = i;
        // SAFETY: j and j-1 index elements of the array; swapping elements of
        // `size` bytes in place, as C's qsort may.
        unsafe {
            while j > 0 && cmp(base.add((j - 1) * size).cast(), base.add(j * size).cast()) > 0 {
                core::ptr::swap_nonoverlapping(base.add((j - 1) * size), base.add(j * size), size);
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    unsafe extern "C" fn by_value(a: *const c_void, b: *const c_void) -> c_int {
        // SAFETY: the test sorts u32s.
        let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
        a.cmp(&b) as c_int
    }

    #[test]
    fn strtoul_follows_c() {
        let cases: [(&[u8], c_int, c_ulong, usize); 12] = [
            (b"123", 10, 123, 3),
            (b"  42xyz", 10, 42, 4),
            (b"0x1F", 0, 31, 4),
            (b"0x1F", 16, 31, 4),
            (b"0x", 16, 0, 1),
            (b"017", 0, 15, 3),
            (b"-1", 10, c_ulong::MAX, 2),
            (b"+7", 10, 7, 2),
            (b"zz", 36, 35 * 36 + 35, 2),
            (b"abc", 10, 0, 0),
            (b"99999999999999999999999", 10, c_ulong::MAX, 23),
            (b"12", 1, 0, 0),
        ];
        for (input, base, want, used) in cases {
            assert_eq!(
                parse_unsigned(input, base),
                (want, used),
                "{input:?} base {base}"
            );
        }
    }

    #[test]
    fn strtol_saturates_both_ways() {
        let cases: [(&[u8], c_long); 6] = [
            (b"-5", -5),
            (b" 12", 12),
            (b"9223372036854775807", c_long::MAX),
            (b"9223372036854775808", c_long::MAX),
            (b"-9223372036854775808", c_long::MIN),
            (b"-9223372036854775809", c_long::MIN),
        ];
        for (input, want) in cases {
            assert_eq!(
                signed(input, parse_unsigned(input, 10).0),
                want,
                "{input:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn strtoul_round_trips(v in any::<u64>(), base in 2u32..=36) {
            let mut digits = std::string::String::new();
            let mut x = v;
            loop {
                digits.insert(0, core::char::from_digit((x % u64::from(base)) as u32, base).unwrap_or('?'));
                x /= u64::from(base);
                if x == 0 { break; }
            }
            prop_assert_eq!(parse_unsigned(digits.as_bytes(), base as c_int), (v as c_ulong, digits.len()));
        }
    }

    proptest! {
        #[test]
        fn qsort_sorts_like_the_std(mut v in proptest::collection::vec(any::<u32>(), 0..40)) {
            let mut want: Vec<u32> = v.clone();
            want.sort();
            // SAFETY: `v` holds `len` u32s.
            unsafe { qsort(v.as_mut_ptr().cast(), v.len(), 4, Some(by_value)) };
            prop_assert_eq!(v, want);
        }
    }
}
