//! Files and directories: a PD has none. libtpms's disk NV fallback (unused:
//! its NV goes through callbacks) and OpenSSL's file store and directory
//! lookups are linked but always find nothing, as on an empty file system.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_long, c_void};
use core::ptr::null_mut;

use super::errno::set_errno;

const ENOENT: c_int = 2;
const EBADF: c_int = 9;

fn missing<T>(v: T) -> T {
    set_errno(ENOENT);
    v
}

/// # Safety
/// Any arguments: nothing is read.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn fopen(_path: *const c_char, _mode: *const c_char) -> *mut c_void {
    missing(null_mut())
}

/// # Safety
/// Any arguments: nothing is read.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn stat(_path: *const c_char, _out: *mut c_void) -> c_int {
    missing(-1)
}

/// # Safety
/// Any arguments: nothing is read.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn opendir(_path: *const c_char) -> *mut c_void {
    missing(null_mut())
}

/// No stream or directory can have been opened, so these only report that.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn readdir(_dir: *mut c_void) -> *mut c_void {
    set_errno(EBADF);
    null_mut()
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn closedir(_dir: *mut c_void) -> c_int {
    set_errno(EBADF);
    -1
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn fread(_p: *mut c_void, _size: usize, _n: usize, _f: *mut c_void) -> usize {
    set_errno(EBADF);
    0
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn fclose(_f: *mut c_void) -> c_int {
    set_errno(EBADF);
    -1
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn fseek(_f: *mut c_void, _off: c_long, _whence: c_int) -> c_int {
    set_errno(EBADF);
    -1
}

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn ftell(_f: *mut c_void) -> c_long {
    set_errno(EBADF);
    -1
}

/// OpenSSL's secure heap is never initialised here, so nothing was mapped.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn munmap(_p: *mut c_void, _len: usize) -> c_int {
    set_errno(EBADF);
    -1
}
