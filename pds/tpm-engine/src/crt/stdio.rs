//! The stream side of `<stdio.h>`: everything written to any FILE goes to the
//! PD's log sink ([`set_log_sink`]), which is how libtpms's and OpenSSL's
//! diagnostics reach the kernel console. The printf family is in
//! `c/crt_variadic.c` and ends here in [`crt_write`]. Nothing can be read.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicPtr, Ordering};

use super::string::strlen;

/// Where C output goes: a `fn(&[u8])`, stored type-erased; null drops output.
static SINK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

pub fn set_log_sink(sink: fn(&[u8])) {
    SINK.store(sink as *mut (), Ordering::Release);
}

fn emit(bytes: &[u8]) {
    let p = SINK.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: SINK only ever holds a `fn(&[u8])` (set_log_sink).
        let f = unsafe { core::mem::transmute::<*mut (), fn(&[u8])>(p) };
        f(bytes);
    }
}

/// A `FILE *` value for `stdin`/`stdout`/`stderr`: never dereferenced here.
#[repr(transparent)]
#[derive(Debug)]
pub struct FilePtr(*const c_void);
// SAFETY: the pointer is an opaque token, never dereferenced.
unsafe impl Sync for FilePtr {}

#[cfg_attr(target_os = "none", no_mangle)]
#[allow(non_upper_case_globals)]
pub static stderr: FilePtr = FilePtr(&SINK as *const AtomicPtr<()> as *const c_void);
#[cfg_attr(target_os = "none", no_mangle)]
#[allow(non_upper_case_globals)]
pub static stdout: FilePtr = FilePtr(&SINK as *const AtomicPtr<()> as *const c_void);
#[cfg_attr(target_os = "none", no_mangle)]
#[allow(non_upper_case_globals)]
pub static stdin: FilePtr = FilePtr(core::ptr::null());

/// # Safety
/// `bytes` is readable for `len` bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn crt_write(bytes: *const c_char, len: usize) {
    if !bytes.is_null() && len != 0 {
        // SAFETY: per the contract.
        emit(unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), len) });
    }
}

/// # Safety
/// `s` is a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn fputs(s: *const c_char, _f: *mut c_void) -> c_int {
    // SAFETY: a C string per the contract.
    unsafe { crt_write(s, strlen(s)) };
    0
}

/// # Safety
/// `s` is a C string.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn puts(s: *const c_char) -> c_int {
    // SAFETY: a C string per the contract.
    unsafe { crt_write(s, strlen(s)) };
    emit(b"\n");
    0
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn fputc(c: c_int, _f: *mut c_void) -> c_int {
    emit(&[c as u8]);
    c
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn putchar(c: c_int) -> c_int {
    emit(&[c as u8]);
    c
}

/// # Safety
/// `p` is readable for `size * n` bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn fwrite(p: *const c_void, size: usize, n: usize, _f: *mut c_void) -> usize {
    let Some(len) = size.checked_mul(n) else {
        return 0;
    };
    // SAFETY: per the contract.
    unsafe { crt_write(p.cast(), len) };
    n
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn fflush(_f: *mut c_void) -> c_int {
    0
}
