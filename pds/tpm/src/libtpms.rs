//! The host engine: Debian's libtpms (the TPM 2.0 reference implementation swtpm
//! also runs), called through its C API.
//!
//! libtpms keeps its TPM in process-global state, so there is one
//! [`LibtpmsEngine`] per process at a time (a PD process has one TPM; tests take
//! turns). Its NV storage goes through callbacks into memory here, never to
//! files: the PD has no file system to write, and the permanent state leaves
//! only sealed (`crate::seal`).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_uchar, c_void, CStr};
use std::string::String;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::vec::Vec;

use tpm_crb::command::Command;

use crate::engine::{Engine, EngineError};

type TpmResult = u32;
const TPM_SUCCESS: TpmResult = 0;
/// libtpms' "not found" answer from an NV load callback.
const TPM_RETRY: TpmResult = 0x800;
const TPM_FAIL: TpmResult = 9;
const TPMLIB_TPM_VERSION_2: c_int = 1;
/// The name libtpms stores its permanent state (NV, seeds, hierarchies) under.
const PERMANENT: &str = "permall";

#[repr(C)]
struct Callbacks {
    size_of_struct: c_int,
    nvram_init: Option<extern "C" fn() -> TpmResult>,
    nvram_loaddata:
        Option<extern "C" fn(*mut *mut c_uchar, *mut u32, u32, *const c_char) -> TpmResult>,
    nvram_storedata: Option<extern "C" fn(*const c_uchar, u32, u32, *const c_char) -> TpmResult>,
    nvram_deletename: Option<extern "C" fn(u32, *const c_char, c_uchar) -> TpmResult>,
    io_init: Option<extern "C" fn() -> TpmResult>,
    io_getlocality: Option<extern "C" fn(*mut u32, u32) -> TpmResult>,
    io_getphysicalpresence: Option<extern "C" fn(*mut c_uchar, u32) -> TpmResult>,
}

extern "C" {
    fn TPMLIB_ChooseTPMVersion(version: c_int) -> TpmResult;
    fn TPMLIB_RegisterCallbacks(callbacks: *mut Callbacks) -> TpmResult;
    fn TPMLIB_MainInit() -> TpmResult;
    fn TPMLIB_Terminate();
    fn TPMLIB_Process(
        resp: *mut *mut c_uchar,
        resp_size: *mut u32,
        resp_buf_size: *mut u32,
        command: *mut c_uchar,
        command_size: u32,
    ) -> TpmResult;
    fn malloc(size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
}

/// The in-memory NV store behind the callbacks.
struct Nv {
    files: Vec<(String, Vec<u8>)>,
    permanent_dirty: bool,
}

static NV: Mutex<Nv> = Mutex::new(Nv {
    files: Vec::new(),
    permanent_dirty: false,
});
static IN_USE: AtomicBool = AtomicBool::new(false);
static LOCALITY: AtomicU8 = AtomicU8::new(0);

fn nv() -> std::sync::MutexGuard<'static, Nv> {
    // A panic while holding it leaves plain data behind; keep using it.
    NV.lock().unwrap_or_else(|e| e.into_inner())
}

/// # Safety
/// `name` must be null or a NUL-terminated string (libtpms passes literals).
unsafe fn name_of(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(name) };
    Some(s.to_string_lossy().into_owned())
}

extern "C" fn nvram_init() -> TpmResult {
    TPM_SUCCESS
}

extern "C" fn nvram_loaddata(
    data: *mut *mut c_uchar,
    length: *mut u32,
    _tpm_number: u32,
    name: *const c_char,
) -> TpmResult {
    // SAFETY: libtpms passes a literal name.
    let Some(name) = (unsafe { name_of(name) }) else {
        return TPM_FAIL;
    };
    let nv = nv();
    let Some((_, bytes)) = nv.files.iter().find(|(n, _)| *n == name) else {
        return TPM_RETRY;
    };
    let Ok(len) = u32::try_from(bytes.len()) else {
        return TPM_FAIL;
    };
    // SAFETY: libtpms takes ownership of a malloc'd buffer and frees it; we copy
    // exactly `len` bytes into a buffer of that size (at least 1 to avoid a null).
    unsafe {
        let p = malloc(bytes.len().max(1)).cast::<c_uchar>();
        if p.is_null() {
            return TPM_FAIL;
        }
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *data = p;
        *length = len;
    }
    TPM_SUCCESS
}

extern "C" fn nvram_storedata(
    data: *const c_uchar,
    length: u32,
    _tpm_number: u32,
    name: *const c_char,
) -> TpmResult {
    // SAFETY: libtpms passes a literal name.
    let Some(name) = (unsafe { name_of(name) }) else {
        return TPM_FAIL;
    };
    let bytes = if length == 0 || data.is_null() {
        Vec::new()
    } else {
        // SAFETY: libtpms passes `length` readable bytes at `data`.
        unsafe { core::slice::from_raw_parts(data, length as usize) }.to_vec()
    };
    let mut nv = nv();
    if name == PERMANENT {
        nv.permanent_dirty = true;
    }
    match nv.files.iter_mut().find(|(n, _)| *n == name) {
        Some((_, old)) => *old = bytes,
        None => nv.files.push((name, bytes)),
    }
    TPM_SUCCESS
}

extern "C" fn nvram_deletename(
    _tpm_number: u32,
    name: *const c_char,
    must_exist: c_uchar,
) -> TpmResult {
    // SAFETY: libtpms passes a literal name.
    let Some(name) = (unsafe { name_of(name) }) else {
        return TPM_FAIL;
    };
    let mut nv = nv();
    let before = nv.files.len();
    nv.files.retain(|(n, _)| *n != name);
    if must_exist != 0 && nv.files.len() == before {
        return TPM_FAIL;
    }
    TPM_SUCCESS
}

extern "C" fn io_init() -> TpmResult {
    TPM_SUCCESS
}

extern "C" fn io_getlocality(locality: *mut u32, _tpm_number: u32) -> TpmResult {
    // SAFETY: libtpms passes a valid out-pointer.
    unsafe { *locality = u32::from(LOCALITY.load(Ordering::Relaxed)) };
    TPM_SUCCESS
}

extern "C" fn io_getphysicalpresence(present: *mut c_uchar, _tpm_number: u32) -> TpmResult {
    // No physical presence in a VM.
    // SAFETY: libtpms passes a valid out-pointer.
    unsafe { *present = 0 };
    TPM_SUCCESS
}

/// Why libtpms could not be started.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LibtpmsError {
    /// Another engine of this process is alive.
    InUse,
    /// A libtpms call failed with this TPM result (state not loadable, ...).
    Init(u32),
}

impl core::fmt::Display for LibtpmsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InUse => f.write_str("libtpms already runs a TPM in this process"),
            Self::Init(rc) => write!(f, "libtpms did not start: TPM result {rc:#x}"),
        }
    }
}

/// The process's libtpms TPM.
#[derive(Debug)]
pub struct LibtpmsEngine {
    response: *mut c_uchar,
    response_capacity: u32,
}

impl LibtpmsEngine {
    /// Starts a TPM 2.0 from `permanent` state (the bytes libtpms stored under
    /// "permall", unsealed), or a freshly manufactured one (new seeds) when none.
    pub fn start(permanent: Option<Vec<u8>>) -> Result<Self, LibtpmsError> {
        if IN_USE.swap(true, Ordering::AcqRel) {
            return Err(LibtpmsError::InUse);
        }
        {
            let mut nv = nv();
            nv.files.clear();
            nv.permanent_dirty = false;
            if let Some(p) = permanent {
                nv.files.push((PERMANENT.into(), p));
            }
        }
        let mut callbacks = Callbacks {
            size_of_struct: core::mem::size_of::<Callbacks>() as c_int,
            nvram_init: Some(nvram_init),
            nvram_loaddata: Some(nvram_loaddata),
            nvram_storedata: Some(nvram_storedata),
            nvram_deletename: Some(nvram_deletename),
            io_init: Some(io_init),
            io_getlocality: Some(io_getlocality),
            io_getphysicalpresence: Some(io_getphysicalpresence),
        };
        let engine = Self {
            response: core::ptr::null_mut(),
            response_capacity: 0,
        };
        // SAFETY: plain C calls; libtpms copies the callback table.
        let rc = unsafe {
            let rc = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
            if rc != TPM_SUCCESS {
                rc
            } else {
                let rc = TPMLIB_RegisterCallbacks(&mut callbacks);
                if rc != TPM_SUCCESS {
                    rc
                } else {
                    TPMLIB_MainInit()
                }
            }
        };
        if rc != TPM_SUCCESS {
            // Drop terminates and releases the singleton.
            drop(engine);
            return Err(LibtpmsError::Init(rc));
        }
        Ok(engine)
    }
}

impl Drop for LibtpmsEngine {
    fn drop(&mut self) {
        // SAFETY: the response buffer was allocated by libtpms with malloc (or is
        // null); Terminate is safe after a failed or successful MainInit.
        unsafe {
            TPMLIB_Terminate();
            free(self.response.cast());
        }
        nv().files.clear();
        IN_USE.store(false, Ordering::Release);
    }
}

impl Engine for LibtpmsEngine {
    fn execute(
        &mut self,
        locality: u8,
        command: Command<'_>,
        response: &mut [u8],
    ) -> Result<usize, EngineError> {
        // libtpms takes a mutable command pointer; give it a copy.
        let mut cmd = command.bytes.to_vec();
        let mut size = 0u32;
        LOCALITY.store(locality, Ordering::Relaxed);
        // SAFETY: `cmd` is a live buffer of the length passed; libtpms (re)allocates
        // `self.response` with malloc and reports its capacity and the size used.
        let rc = unsafe {
            TPMLIB_Process(
                &mut self.response,
                &mut size,
                &mut self.response_capacity,
                cmd.as_mut_ptr(),
                cmd.len() as u32,
            )
        };
        if rc != TPM_SUCCESS || self.response.is_null() || size > self.response_capacity {
            return Err(EngineError::Fatal);
        }
        let size = size as usize;
        let out = response
            .get_mut(..size)
            .ok_or(EngineError::ResponseTooLarge)?;
        // SAFETY: libtpms wrote `size` bytes (within its capacity) at `response`.
        out.copy_from_slice(unsafe { core::slice::from_raw_parts(self.response, size) });
        Ok(size)
    }

    fn has_dirty_state(&self) -> bool {
        nv().permanent_dirty
    }

    fn take_dirty_state(&mut self) -> Option<Vec<u8>> {
        let mut nv = nv();
        if !core::mem::take(&mut nv.permanent_dirty) {
            return None;
        }
        nv.files
            .iter()
            .find(|(n, _)| n == PERMANENT)
            .map(|(_, b)| b.clone())
    }
}
