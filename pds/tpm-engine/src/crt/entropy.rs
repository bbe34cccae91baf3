//! Entropy for OpenSSL's DRBG seed (`getentropy`, which its getrandom seed
//! source calls first) from RDRAND. A CPU without RDRAND, or one whose RDRAND
//! keeps failing, gets -1/EIO: the DRBG then refuses to instantiate and the
//! TPM reports failure, rather than running on guessable seeds.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_long, c_void};

use super::errno::{set_errno, EIO};

/// Intel's guidance for RDRAND: retry a few times on CF=0 (a transient underflow).
const RETRIES: usize = 10;
/// What `getentropy` serves per call (POSIX's limit).
const MAX: usize = 256;
const ENOSYS: c_int = 38;

#[cfg(target_arch = "x86_64")]
fn has_rdrand() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0
}

#[cfg(target_arch = "x86_64")]
fn rdrand() -> Option<u64> {
    for _ in 0..RETRIES {
        let (v, ok): (u64, u8);
        // SAFETY: RDRAND exists (has_rdrand was checked by the only caller) and
        // only writes the output register and flags.
        unsafe {
            core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok,
                options(nomem, nostack));
        }
        if ok == 1 {
            return Some(v);
        }
    }
    None
}

/// Fills `out` from RDRAND; false if the CPU cannot.
pub fn fill(out: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if !has_rdrand() {
            return false;
        }
        for chunk in out.chunks_mut(8) {
            let Some(v) = rdrand() else {
                return false;
            };
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = out;
        false
    }
}

/// # Safety
/// `buf` is writable for `len` bytes.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn getentropy(buf: *mut c_void, len: usize) -> c_int {
    if len > MAX || (buf.is_null() && len != 0) {
        set_errno(EIO);
        return -1;
    }
    if len == 0 {
        return 0;
    }
    // SAFETY: writable for `len` bytes per the contract.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    if fill(out) {
        0
    } else {
        out.fill(0);
        set_errno(EIO);
        -1
    }
}

/// OpenSSL's getrandom fallback calls `syscall(SYS_getrandom, ...)` when
/// getentropy failed; there are no system calls of that kind here.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn syscall(_number: c_long) -> c_long {
    set_errno(ENOSYS);
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getentropy_fills_or_fails_cleanly() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        // SAFETY: live buffers of the lengths passed.
        let (ra, rb) = unsafe {
            (
                getentropy(a.as_mut_ptr().cast(), a.len()),
                getentropy(b.as_mut_ptr().cast(), b.len()),
            )
        };
        assert_eq!(ra, rb);
        if ra == 0 {
            assert_ne!(a, b, "two RDRAND draws of 64 bytes collided");
        } else {
            assert_eq!(a, [0; 64]);
        }
        let mut big = [0u8; MAX + 1];
        // SAFETY: a live buffer; the length is refused before any write.
        let refused = unsafe { getentropy(big.as_mut_ptr().cast(), big.len()) };
        assert_eq!(refused, -1);
    }
}
