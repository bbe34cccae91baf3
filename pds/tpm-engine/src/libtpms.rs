//! libtpms through its C API: Debian's on the host (feature `system`), the one
//! `build.sh` cross-builds in bare-metal PDs. Its NV "files" are kept in memory
//! by the callbacks below, never written anywhere: the permanent state leaves
//! only through [`LibtpmsEngine::take_permanent_state`], for the caller to seal.
//!
//! libtpms keeps one TPM in global state, so one [`LibtpmsEngine`] lives at a
//! time ([`StartError::InUse`] otherwise).
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::cell::RefCell;
use core::ffi::{c_char, c_int, c_uchar, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::{ProcessError, StartError};

// libtpms frees what the load callback hands it with the C library's free.
#[cfg(target_os = "none")]
use crate::crt::heap::{free, malloc};
#[cfg(not(target_os = "none"))]
extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
}

type Rc = u32;
const OK: Rc = 0;
/// What a load callback answers for a name it has never stored.
const NOT_STORED: Rc = 0x800;
const FAIL: Rc = 9;
const VERSION_TPM2: c_int = 1;
const PERMANENT: &[u8] = b"permall";

type LoadFn = extern "C" fn(*mut *mut c_uchar, *mut u32, u32, *const c_char) -> Rc;
type StoreFn = extern "C" fn(*const c_uchar, u32, u32, *const c_char) -> Rc;
type DeleteFn = extern "C" fn(u32, *const c_char, c_uchar) -> Rc;

/// `struct libtpms_callbacks` (libtpms/tpm_library.h).
#[repr(C)]
struct CallbackTable {
    size: c_int,
    nv_init: Option<extern "C" fn() -> Rc>,
    nv_load: Option<LoadFn>,
    nv_store: Option<StoreFn>,
    nv_delete: Option<DeleteFn>,
    io_init: Option<extern "C" fn() -> Rc>,
    io_locality: Option<extern "C" fn(*mut u32, u32) -> Rc>,
    io_presence: Option<extern "C" fn(*mut c_uchar, u32) -> Rc>,
}

extern "C" {
    fn TPMLIB_ChooseTPMVersion(version: c_int) -> Rc;
    fn TPMLIB_RegisterCallbacks(callbacks: *mut CallbackTable) -> Rc;
    fn TPMLIB_MainInit() -> Rc;
    fn TPMLIB_Terminate();
    fn TPMLIB_Process(
        resp: *mut *mut c_uchar,
        resp_size: *mut u32,
        resp_capacity: *mut u32,
        command: *mut c_uchar,
        command_size: u32,
    ) -> Rc;
}

/// The NV files libtpms stored, by name.
#[derive(Default)]
struct Files {
    named: Vec<(Vec<u8>, Vec<u8>)>,
    permanent_changed: bool,
}

struct OneThread(RefCell<Files>);
// SAFETY: only the holder of RUNNING touches the files: `start` after taking it,
// `drop` before releasing it, and libtpms's callbacks from inside that engine's
// calls; the engine is not Send (a raw pointer), so all of it is one thread.
unsafe impl Sync for OneThread {}

static FILES: OneThread = OneThread(RefCell::new(Files {
    named: Vec::new(),
    permanent_changed: false,
}));
static RUNNING: AtomicBool = AtomicBool::new(false);
static LOCALITY: AtomicU8 = AtomicU8::new(0);

/// The name libtpms passed (always a literal), without its NUL.
fn name<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: libtpms passes NUL-terminated literals or null.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

extern "C" fn nv_init() -> Rc {
    OK
}

extern "C" fn nv_load(out: *mut *mut c_uchar, len: *mut u32, _tpm: u32, n: *const c_char) -> Rc {
    let Some(n) = name(n) else { return FAIL };
    let files = FILES.0.borrow();
    let Some((_, bytes)) = files.named.iter().find(|(k, _)| k == n) else {
        return NOT_STORED;
    };
    let Ok(size) = u32::try_from(bytes.len()) else {
        return FAIL;
    };
    // libtpms takes the buffer and frees it with free().
    // SAFETY: malloc'd room for the copy (at least 1 byte, so never null on
    // success); `out` and `len` are libtpms's valid out-parameters.
    unsafe {
        let p = malloc(bytes.len().max(1)).cast::<c_uchar>();
        if p.is_null() {
            return FAIL;
        }
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        out.write(p);
        len.write(size);
    }
    OK
}

extern "C" fn nv_store(data: *const c_uchar, len: u32, _tpm: u32, n: *const c_char) -> Rc {
    let Some(n) = name(n) else { return FAIL };
    let bytes = match (data.is_null(), len) {
        (true, _) | (_, 0) => Vec::new(),
        // SAFETY: libtpms passes `len` readable bytes at `data`.
        _ => unsafe { core::slice::from_raw_parts(data, len as usize) }.to_vec(),
    };
    let mut files = FILES.0.borrow_mut();
    files.permanent_changed |= n == PERMANENT;
    if let Some(slot) = files.named.iter_mut().find(|(k, _)| k == n) {
        slot.1 = bytes;
    } else {
        files.named.push((n.to_vec(), bytes));
    }
    OK
}

extern "C" fn nv_delete(_tpm: u32, n: *const c_char, must_exist: c_uchar) -> Rc {
    let Some(n) = name(n) else { return FAIL };
    let mut files = FILES.0.borrow_mut();
    let had = files.named.len();
    files.named.retain(|(k, _)| k != n);
    if must_exist != 0 && had == files.named.len() {
        FAIL
    } else {
        OK
    }
}

extern "C" fn io_locality(out: *mut u32, _tpm: u32) -> Rc {
    // SAFETY: libtpms passes a valid out-parameter.
    unsafe { out.write(u32::from(LOCALITY.load(Ordering::Relaxed))) };
    OK
}

extern "C" fn io_presence(out: *mut c_uchar, _tpm: u32) -> Rc {
    // A VM has no physical presence to assert.
    // SAFETY: libtpms passes a valid out-parameter.
    unsafe { out.write(0) };
    OK
}

/// The process's (or PD's) TPM 2.0: libtpms, started from unsealed permanent
/// state or freshly manufactured.
#[derive(Debug)]
pub struct LibtpmsEngine {
    response: *mut c_uchar,
    capacity: u32,
}

impl LibtpmsEngine {
    /// Starts libtpms from `permanent` (its "permall" bytes) or, without, a TPM
    /// manufactured now (new seeds from the DRBG, seeded by RDRAND).
    pub fn start(permanent: Option<Vec<u8>>) -> Result<Self, StartError> {
        if RUNNING.swap(true, Ordering::AcqRel) {
            return Err(StartError::InUse);
        }
        *FILES.0.borrow_mut() = Files {
            named: permanent
                .map(|p| (PERMANENT.to_vec(), p))
                .into_iter()
                .collect(),
            permanent_changed: false,
        };
        let mut table = CallbackTable {
            size: core::mem::size_of::<CallbackTable>() as c_int,
            nv_init: Some(nv_init),
            nv_load: Some(nv_load),
            nv_store: Some(nv_store),
            nv_delete: Some(nv_delete),
            io_init: Some(nv_init),
            io_locality: Some(io_locality),
            io_presence: Some(io_presence),
        };
        // From here Drop undoes whatever part of the start happened.
        let engine = Self {
            response: core::ptr::null_mut(),
            capacity: 0,
        };
        // SAFETY: plain C calls in libtpms's documented order; the table is
        // copied by RegisterCallbacks.
        let rc = unsafe {
            let mut rc = TPMLIB_ChooseTPMVersion(VERSION_TPM2);
            if rc == OK {
                rc = TPMLIB_RegisterCallbacks(&mut table);
            }
            if rc == OK {
                rc = TPMLIB_MainInit();
            }
            rc
        };
        match rc {
            OK => Ok(engine),
            rc => Err(StartError::Libtpms(rc)),
        }
    }
}

impl Drop for LibtpmsEngine {
    fn drop(&mut self) {
        // SAFETY: Terminate is valid after any init outcome; the response buffer
        // is libtpms's malloc'd one or null.
        unsafe {
            TPMLIB_Terminate();
            free(self.response.cast::<c_void>());
        }
        *FILES.0.borrow_mut() = Files::default();
        RUNNING.store(false, Ordering::Release);
    }
}

impl LibtpmsEngine {
    /// Runs one command (its header already checked by the caller) for
    /// `locality` and copies the response into `response`; returns its length.
    pub fn process(
        &mut self,
        locality: u8,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, ProcessError> {
        // libtpms wants a mutable command buffer.
        let mut cmd = command.to_vec();
        let Ok(cmd_len) = u32::try_from(cmd.len()) else {
            return Err(ProcessError::Fatal);
        };
        LOCALITY.store(locality, Ordering::Relaxed);
        let mut used = 0u32;
        // SAFETY: `cmd` is live for its length; libtpms (re)allocates the response
        // buffer with malloc and reports its capacity and the bytes used.
        let rc = unsafe {
            TPMLIB_Process(
                &mut self.response,
                &mut used,
                &mut self.capacity,
                cmd.as_mut_ptr(),
                cmd_len,
            )
        };
        if rc != OK || self.response.is_null() || used > self.capacity {
            return Err(ProcessError::Fatal);
        }
        let out = response
            .get_mut(..used as usize)
            .ok_or(ProcessError::ResponseTooLarge)?;
        // SAFETY: libtpms wrote `used` bytes, within its buffer's capacity.
        out.copy_from_slice(unsafe { core::slice::from_raw_parts(self.response, used as usize) });
        Ok(used as usize)
    }

    /// Whether libtpms stored its permanent state since the last take.
    pub fn permanent_state_changed(&self) -> bool {
        FILES.0.borrow().permanent_changed
    }

    /// The permanent state ("permall": NV, seeds, hierarchies) if it changed
    /// since the last call.
    pub fn take_permanent_state(&mut self) -> Option<Vec<u8>> {
        let mut files = FILES.0.borrow_mut();
        if !core::mem::take(&mut files.permanent_changed) {
            return None;
        }
        files
            .named
            .iter()
            .find(|(k, _)| k == PERMANENT)
            .map(|(_, v)| v.clone())
    }
}
