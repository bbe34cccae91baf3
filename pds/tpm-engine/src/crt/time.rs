//! Time for libtpms's TPM clock and OpenSSL's DRBG nonces: the TSC since the PD
//! started, as a monotonic clock. There is no wall clock in a PD (the TPM needs
//! none: its Clock is time since manufacture, carried in its state), so
//! CLOCK_REALTIME is the same count from the epoch.
#![allow(unsafe_code)]

use core::ffi::{c_int, c_long, c_void};
use core::sync::atomic::{AtomicU64, Ordering};

use super::errno::{set_errno, EINVAL};

/// TSC ticks per second; set by the PD ([`set_tsc_hz`]) when it knows the rate,
/// else what CPUID reports, else 1 GHz (time then runs at the wrong rate but
/// stays monotonic, which is what libtpms relies on).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_START: AtomicU64 = AtomicU64::new(0);

pub fn set_tsc_hz(hz: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
}

fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc only reads the counter (CR4.TSD is clear for PDs).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

fn cpuid_hz() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // Leaves above the maximum are not queried.
        let max = __cpuid(0).eax;
        if max >= 0x15 {
            let l = __cpuid(0x15);
            if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
                return Some(u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax));
            }
        }
        if max >= 0x16 {
            let mhz = __cpuid(0x16).eax & 0xffff;
            if mhz != 0 {
                return Some(u64::from(mhz) * 1_000_000);
            }
        }
    }
    None
}

fn hz() -> u64 {
    match TSC_HZ.load(Ordering::Relaxed) {
        0 => {
            let hz = cpuid_hz().unwrap_or(1_000_000_000);
            TSC_HZ.store(hz, Ordering::Relaxed);
            hz
        }
        hz => hz,
    }
}

/// Nanoseconds since the first call.
pub fn now_ns() -> u64 {
    let t = tsc();
    let start = match TSC_START.compare_exchange(0, t, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => t,
        Err(s) => s,
    };
    let ticks = u128::from(t.wrapping_sub(start));
    (ticks * 1_000_000_000 / u128::from(hz())) as u64
}

#[repr(C)]
#[derive(Debug)]
pub struct Timespec {
    pub tv_sec: c_long,
    pub tv_nsec: c_long,
}

fn split(ns: u64) -> (c_long, c_long) {
    (
        (ns / 1_000_000_000) as c_long,
        (ns % 1_000_000_000) as c_long,
    )
}

/// # Safety
/// `ts` is null or writable.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn clock_gettime(_clock: c_int, ts: *mut Timespec) -> c_int {
    if ts.is_null() {
        set_errno(EINVAL);
        return -1;
    }
    let (tv_sec, tv_nsec) = split(now_ns());
    // SAFETY: non-null and writable per the contract.
    unsafe { ts.write(Timespec { tv_sec, tv_nsec }) };
    0
}

/// # Safety
/// `tv` is null or writable (a `struct timeval`: two longs).
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut Timespec, _tz: *mut c_void) -> c_int {
    let (s, ns) = split(now_ns());
    if !tv.is_null() {
        // SAFETY: writable per the contract; the second field is microseconds.
        unsafe {
            tv.write(Timespec {
                tv_sec: s,
                tv_nsec: ns / 1000,
            })
        };
    }
    0
}

/// Processor time in CLOCKS_PER_SEC (10^6) units: the PD's time since start.
#[cfg_attr(target_os = "none", no_mangle)]
pub extern "C" fn clock() -> c_long {
    (now_ns() / 1000) as c_long
}

/// # Safety
/// `t` is null or writable.
#[cfg_attr(target_os = "none", no_mangle)]
pub unsafe extern "C" fn time(t: *mut c_long) -> c_long {
    let s = split(now_ns()).0;
    if !t.is_null() {
        // SAFETY: writable per the contract.
        unsafe { t.write(s) };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_split_is_exact() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(split(3_000_000_007), (3, 7));
        let mut ts = Timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        // SAFETY: a live out-parameter, then null (refused).
        unsafe {
            assert_eq!(clock_gettime(1, &mut ts), 0);
            assert!(ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec));
            assert_eq!(clock_gettime(1, core::ptr::null_mut()), -1);
        }
    }
}
