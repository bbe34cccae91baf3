//! Turns an MMU or arithmetic fault (and a Rust panic) into a report for the
//! supervisor, then ends this PD's process. The handler runs on an alternate stack so
//! a stack overflow is reported too, and does only async-signal-safe work: atomic
//! loads, write(2) and _exit(2).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use zerocopy::IntoBytes;

use crate::wire::FaultRecord;
use crate::FAULT_EXIT_STATUS;

static FAULT_FD: AtomicI32 = AtomicI32::new(-1);

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL];
const ALT_STACK: usize = 64 * 1024;

/// Installs the fault handlers and the panic hook. Call once, before PD code runs.
pub fn install(fault_fd: RawFd) -> io::Result<()> {
    FAULT_FD.store(fault_fd, Ordering::SeqCst);
    install_alt_stack()?;
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid starting point; we fill in the handler,
        // flags and an empty mask before passing it to the kernel.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: sa_mask is a valid sigset_t inside action.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: action is fully initialised; the old action is not wanted.
        if unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The default hook prints the message, which the supervisor prefixes.
        default_hook(info);
        report(FaultRecord::PANIC, 0, 0);
    }));
    Ok(())
}

fn install_alt_stack() -> io::Result<()> {
    // SAFETY: an anonymous private mapping that this process owns for its lifetime.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ALT_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ss = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: ALT_STACK,
    };
    // SAFETY: ss describes the mapping above, which is never unmapped.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes the record and exits without running destructors or atexit handlers.
fn report(kind: u32, address: u64, ip: u64) -> ! {
    let rec = FaultRecord {
        magic: FaultRecord::MAGIC,
        kind,
        address,
        ip,
    };
    let bytes = rec.as_bytes();
    let fd = FAULT_FD.load(Ordering::SeqCst);
    // SAFETY: write(2) and _exit(2) are async-signal-safe; bytes is a valid buffer.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(FAULT_EXIT_STATUS)
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is
    // meaningful for the four fault signals we install this for.
    let address = unsafe { (*info).si_addr() } as u64;
    report(sig as u32, address, instruction_pointer(ctx))
}

#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
fn instruction_pointer(ctx: *mut libc::c_void) -> u64 {
    let uc = ctx.cast::<libc::ucontext_t>();
    if uc.is_null() {
        return 0;
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted context.
    unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

#[cfg(not(all(target_arch = "x86_64", target_env = "gnu")))]
fn instruction_pointer(_ctx: *mut libc::c_void) -> u64 {
    0
}

/// The signal's conventional name, for reports.
pub fn signal_name(kind: u32) -> String {
    match kind as libc::c_int {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGILL => "SIGILL".into(),
        _ if kind == FaultRecord::PANIC => "panic".into(),
        other => format!("signal {other}"),
    }
}
