//! glibc's `<ctype.h>` macros index a class table through `__ctype_b_loc()`
//! (C locale, indices -128..=255): this is that table.
#![allow(unsafe_code)]

/// glibc's class bits (`_ISbit`: bit n < 8 is stored at n + 8, else n - 8).
const fn bit(n: u32) -> u16 {
    if n < 8 {
        1 << (n + 8)
    } else {
        1 << (n - 8)
    }
}
const UPPER: u16 = bit(0);
const LOWER: u16 = bit(1);
const ALPHA: u16 = bit(2);
const DIGIT: u16 = bit(3);
const XDIGIT: u16 = bit(4);
const SPACE: u16 = bit(5);
const PRINT: u16 = bit(6);
const GRAPH: u16 = bit(7);
const BLANK: u16 = bit(8);
const CNTRL: u16 = bit(9);
const PUNCT: u16 = bit(10);
const ALNUM: u16 = bit(11);

const fn class(c: u8) -> u16 {
    let mut m = 0;
    if c.is_ascii_uppercase() {
        m |= UPPER | ALPHA | ALNUM | PRINT | GRAPH;
    }
    if c.is_ascii_lowercase() {
        m |= LOWER | ALPHA | ALNUM | PRINT | GRAPH;
    }
    if c.is_ascii_digit() {
        m |= DIGIT | ALNUM | PRINT | GRAPH;
    }
    if c.is_ascii_hexdigit() {
        m |= XDIGIT;
    }
    if matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        m |= SPACE;
    }
    if c == b' ' || c == b'\t' {
        m |= BLANK;
    }
    if c == b' ' {
        m |= PRINT;
    }
    if c < 0x20 || c == 0x7f {
        m |= CNTRL;
    }
    if c.is_ascii_punctuation() {
        m |= PUNCT | PRINT | GRAPH;
    }
    m
}

/// Both glibc tables, indexed -128..=255 from 128: the class bits (nothing
/// outside ASCII in the C locale) and `tolower`'s mapping.
const fn tables() -> ([u16; 384], [i32; 384]) {
    let mut class_of = [0u16; 384];
    let mut lower = [0i32; 384];
    let mut i = 0;
    while i < 384 {
        let c = i as i32 - 128;
        if c >= 0 && c < 128 {
            class_of[i] = class(c as u8);
        }
        lower[i] = if c >= b'A' as i32 && c <= b'Z' as i32 {
            c + 32
        } else {
            c
        };
        i += 1;
    }
    (class_of, lower)
}

static TABLES: ([u16; 384], [i32; 384]) = tables();

/// A pointer to entry 0 of a table, which glibc's macros index from -128.
#[derive(Debug)]
#[repr(transparent)]
pub struct Origin<T>(*const T);
// SAFETY: points into an immutable static.
unsafe impl<T> Sync for Origin<T> {}

static CLASS_ORIGIN: Origin<u16> = Origin(TABLES.0.as_ptr().wrapping_add(128));
static LOWER_ORIGIN: Origin<i32> = Origin(TABLES.1.as_ptr().wrapping_add(128));

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn __ctype_b_loc() -> *const *const u16 {
    &CLASS_ORIGIN.0
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn __ctype_tolower_loc() -> *const *const i32 {
    &LOWER_ORIGIN.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(c: i32, m: u16) -> bool {
        // SAFETY: the table covers -128..=255, as glibc's does.
        unsafe { *(*__ctype_b_loc()).offset(c as isize) & m != 0 }
    }

    #[test]
    fn tolower_maps_only_ascii_capitals() {
        for c in -128..=255i32 {
            // SAFETY: the map covers -128..=255.
            let got = unsafe { *(*__ctype_tolower_loc()).offset(c as isize) };
            let want = u8::try_from(c).map_or(c, |b| i32::from(b.to_ascii_lowercase()));
            assert_eq!(got, want, "{c}");
        }
    }

    #[test]
    fn classes_match_the_c_locale() {
        for c in -128..=255i32 {
            let a = u8::try_from(c).ok().filter(u8::is_ascii);
            assert_eq!(is(c, DIGIT), a.is_some_and(|a| a.is_ascii_digit()), "{c}");
            assert_eq!(is(c, ALPHA), a.is_some_and(|a| a.is_ascii_alphabetic()));
            assert_eq!(
                is(c, SPACE),
                a.is_some_and(|a| b" \t\n\x0b\x0c\r".contains(&a))
            );
            assert_eq!(is(c, XDIGIT), a.is_some_and(|a| a.is_ascii_hexdigit()));
            assert_eq!(is(c, UPPER), a.is_some_and(|a| a.is_ascii_uppercase()));
            assert_eq!(is(c, PRINT), a.is_some_and(|a| (0x20..0x7f).contains(&a)));
        }
    }
}
