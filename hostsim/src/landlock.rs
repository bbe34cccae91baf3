//! A Landlock domain of its own for every PD, where the host kernel has Landlock.
//! What it adds to the uid and seccomp measures: a process in a Landlock domain may
//! not ptrace, nor open /proc/PID/mem of, any process outside its domain, even one
//! of the same uid that is dumpable (an unprivileged supervisor's other processes,
//! the user's shell); with ABI 6 it may not signal them or reach their abstract unix
//! sockets either. It also refuses every file-system change (writing, creating,
//! removing, truncating files opened from then on) and TCP bind/connect, with no
//! rule granting any back. Reading and executing are not restricted.
#![allow(unsafe_code)]

use std::io;

const CREATE_RULESET_VERSION: libc::c_uint = 1;

const FS_WRITE_FILE: u64 = 1 << 1;
const FS_REMOVE_DIR: u64 = 1 << 4;
const FS_REMOVE_FILE: u64 = 1 << 5;
const FS_MAKE_CHAR: u64 = 1 << 6;
const FS_MAKE_DIR: u64 = 1 << 7;
const FS_MAKE_REG: u64 = 1 << 8;
const FS_MAKE_SOCK: u64 = 1 << 9;
const FS_MAKE_FIFO: u64 = 1 << 10;
const FS_MAKE_BLOCK: u64 = 1 << 11;
const FS_MAKE_SYM: u64 = 1 << 12;
/// ABI 2.
const FS_REFER: u64 = 1 << 13;
/// ABI 3.
const FS_TRUNCATE: u64 = 1 << 14;
/// ABI 4.
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
/// ABI 6.
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// The ruleset for the running kernel's ABI version, and the attribute size that
/// version understands.
fn ruleset_for(abi: i64) -> (RulesetAttr, usize) {
    let mut fs = FS_WRITE_FILE
        | FS_REMOVE_DIR
        | FS_REMOVE_FILE
        | FS_MAKE_CHAR
        | FS_MAKE_DIR
        | FS_MAKE_REG
        | FS_MAKE_SOCK
        | FS_MAKE_FIFO
        | FS_MAKE_BLOCK
        | FS_MAKE_SYM;
    if abi >= 2 {
        fs |= FS_REFER;
    }
    if abi >= 3 {
        fs |= FS_TRUNCATE;
    }
    let net = if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    };
    let scoped = if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    let size = match abi {
        ..=3 => 8,
        4..=5 => 16,
        _ => 24,
    };
    (
        RulesetAttr {
            handled_access_fs: fs,
            handled_access_net: net,
            scoped,
        },
        size,
    )
}

/// Puts the calling process in a new Landlock domain. Only system calls on stack
/// data, so safe between fork and exec; no_new_privs must be set already. Returns
/// the ABI version used, 0 when the kernel has no Landlock.
pub fn restrict_self() -> io::Result<i64> {
    // SAFETY: the version query takes no attribute.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if abi < 1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOSYS | libc::EOPNOTSUPP) => Ok(0),
            _ => Err(err),
        };
    }
    let (attr, size) = ruleset_for(abi);
    // SAFETY: attr is a valid ruleset attribute of at least `size` bytes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &raw const attr,
            size,
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = fd as libc::c_int;
    // SAFETY: fd is the ruleset just created; no flags are defined.
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) };
    let err = io::Error::last_os_error();
    // SAFETY: closing the ruleset descriptor we own; the domain stays.
    unsafe { libc::close(fd) };
    if ret != 0 {
        return Err(err);
    }
    Ok(abi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_abi_gets_only_what_it_knows() {
        let (a1, s1) = ruleset_for(1);
        assert_eq!((s1, a1.handled_access_fs & FS_REFER, a1.scoped), (8, 0, 0));
        let (a3, s3) = ruleset_for(3);
        assert_eq!((s3, a3.handled_access_fs & FS_TRUNCATE), (8, FS_TRUNCATE));
        let (a4, s4) = ruleset_for(4);
        assert_eq!((s4, a4.handled_access_net, a4.scoped), (16, 3, 0));
        let (a7, s7) = ruleset_for(7);
        assert_eq!((s7, a7.scoped), (24, 3));
        // Reading and executing are never handled, so never refused.
        for abi in 1..=7 {
            assert_eq!(ruleset_for(abi).0.handled_access_fs & 0b1101, 0);
        }
    }
}
