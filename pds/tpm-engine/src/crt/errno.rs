//! `errno` as glibc's headers reach it (`__errno_location`). The PD has one
//! thread; an atomic keeps the host tests (many threads) sound as well. (The
//! C-name export is what the `unsafe_code` allowance is for.)
#![allow(unsafe_code)]

use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, Ordering};

pub const ENOMEM: c_int = 12;
pub const EINVAL: c_int = 22;
pub const EIO: c_int = 5;

static ERRNO: AtomicI32 = AtomicI32::new(0);

#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn __errno_location() -> *mut c_int {
    ERRNO.as_ptr()
}

pub fn set_errno(e: c_int) {
    ERRNO.store(e, Ordering::Relaxed);
}
