//! The system-call filter every PD runs under, as classic BPF for seccomp. The
//! supervisor installs it between fork and exec (after no_new_privs), so it binds
//! the PD from its first instruction and across any exec it makes; filters only
//! ever add restrictions, so nothing the PD does later can lift it.
//!
//! It allows what the PD runtime and Rust's std (startup, the dynamic loader, file
//! I/O on a granted host file, sleeping, yielding) were seen to use, and refuses the
//! rest with EPERM: above all anything that reaches another process (signals to
//! anyone but itself, ptrace, process_vm_*, pidfds, fork), new sockets, and fcntl or
//! ioctl commands that would route signals elsewhere (F_SETOWN, FIOSETOWN). Opening
//! files cannot be filtered by path, so /proc is guarded by the per-PD uid and by
//! every process being non-dumpable, not here.
#![allow(unsafe_code)]

use std::io;

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Syscall numbers with this bit are the x32 ABI, which this filter does not model.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (little endian). Every argument compared here is an
/// int or unsigned int in the kernel's prototype, so the high half is ignored by
/// the kernel too and comparing the low half is exact.
const fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

pub const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
pub const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
pub const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// Placeholder for the PD's own pid, patched in the child (see [`Program::install`]).
const PID_PLACEHOLDER: u32 = u32::MAX;

/// open flags that could change a file: write access, creation, truncation.
/// (O_TMPFILE needs write access, and contains O_DIRECTORY, which read_dir uses.)
const OPEN_WRITE_FLAGS: u32 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

/// System calls allowed whatever their arguments.
const PLAIN: &[libc::c_long] = &[
    // I/O on descriptors the PD holds.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fallocate,
    libc::SYS_ftruncate,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_eventfd2,
    libc::SYS_pipe2,
    // Files (open/openat below, read-only): the loader opens libraries, std reads
    // /proc/self/maps.
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_getdents64,
    libc::SYS_getcwd,
    // Memory.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_msync,
    libc::SYS_brk,
    // Signals delivered to itself, and its handlers.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    // Time, scheduling of itself, identity.
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_uname,
    libc::SYS_getrandom,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getgroups,
    libc::SYS_getpgrp,
    libc::SYS_getsid,
    libc::SYS_getcpu,
    libc::SYS_getrusage,
    libc::SYS_times,
    libc::SYS_sysinfo,
    libc::SYS_membarrier,
    // Waiting, timers and signals aimed at itself.
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_sigpending,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    libc::SYS_getitimer,
    libc::SYS_setitimer,
    libc::SYS_alarm,
    // Descriptor-only file operations on what it holds.
    libc::SYS_fstatfs,
    libc::SYS_fadvise64,
    libc::SYS_readahead,
    libc::SYS_sync_file_range,
    libc::SYS_flock,
    libc::SYS_copy_file_range,
    libc::SYS_sendfile,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    // Process and thread start-up (glibc, ld.so) and exit.
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_arch_prctl,
    libc::SYS_set_tid_address,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_futex,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Only ever adds restrictions (the runtime's own stage-two filter).
    libc::SYS_seccomp,
];

/// fcntl commands that touch only the descriptor (not F_SETOWN/F_SETSIG/leases,
/// which would send signals to a process of the PD's choosing).
const FCNTL_CMDS: &[libc::c_int] = &[
    libc::F_GETFD,
    libc::F_SETFD,
    libc::F_GETFL,
    libc::F_SETFL,
    libc::F_DUPFD,
    libc::F_DUPFD_CLOEXEC,
    libc::F_GET_SEALS,
];

/// ioctl requests std makes (non-blocking, close-on-exec, isatty); not FIOSETOWN
/// or TIOCSTI.
const IOCTL_CMDS: &[libc::c_ulong] = &[
    libc::FIONBIO,
    libc::FIOCLEX,
    libc::FIONCLEX,
    libc::FIONREAD,
    libc::TCGETS,
];

/// prctl options that only read or only restrict the calling process.
const PRCTL_OPTIONS: &[libc::c_int] = &[
    libc::PR_GET_DUMPABLE,
    libc::PR_SET_NAME,
    libc::PR_GET_NAME,
    libc::PR_SET_NO_NEW_PRIVS,
    libc::PR_GET_NO_NEW_PRIVS,
];

/// A filter program, with the places that must hold the PD's own pid.
#[derive(Clone, Debug)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
    pid_slots: Vec<usize>,
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Program {
    fn new() -> Self {
        let mut p = Self {
            insns: Vec::new(),
            pid_slots: Vec::new(),
        };
        // Another architecture's numbers mean other calls: never guess.
        p.insns.push(stmt(LD_ABS, OFF_ARCH));
        p.insns.push(jump(JEQ, AUDIT_ARCH_X86_64, 1, 0));
        p.insns.push(stmt(RET, KILL));
        p.insns.push(stmt(LD_ABS, OFF_NR));
        p.insns.push(jump(JGE, X32_SYSCALL_BIT, 0, 1));
        p.insns.push(stmt(RET, EPERM));
        p
    }

    /// `nr` gets `action` whatever its arguments. The accumulator holds nr here.
    fn plain(&mut self, nr: libc::c_long, action: u32) {
        self.insns.push(jump(JEQ, nr as u32, 0, 1));
        self.insns.push(stmt(RET, action));
    }

    /// `nr` is allowed when argument `arg` is one of `values` (`None` standing for
    /// the PD's pid), refused otherwise. The block ends in a return, so the
    /// accumulator still holds nr for whatever follows it.
    fn arg_in(&mut self, nr: libc::c_long, arg: u32, values: &[Option<u32>]) {
        let len = 2 + 2 * values.len();
        self.insns.push(jump(
            JEQ,
            nr as u32,
            0,
            u8::try_from(len).unwrap_or(u8::MAX),
        ));
        self.insns.push(stmt(LD_ABS, off_arg(arg)));
        for v in values {
            if v.is_none() {
                self.pid_slots.push(self.insns.len());
            }
            self.insns
                .push(jump(JEQ, v.unwrap_or(PID_PLACEHOLDER), 0, 1));
            self.insns.push(stmt(RET, ALLOW));
        }
        self.insns.push(stmt(RET, EPERM));
        debug_assert!(len < 256);
    }

    /// `nr` is allowed when argument `arg` has none of the bits in `mask`.
    fn flags_clear(&mut self, nr: libc::c_long, arg: u32, mask: u32) {
        self.insns.push(jump(JEQ, nr as u32, 0, 4));
        self.insns.push(stmt(LD_ABS, off_arg(arg)));
        self.insns.push(jump(JSET, mask, 0, 1));
        self.insns.push(stmt(RET, EPERM));
        self.insns.push(stmt(RET, ALLOW));
    }

    /// The filter every PD process runs under.
    pub fn pd() -> Self {
        let mut p = Self::new();
        for &nr in PLAIN {
            p.plain(nr, ALLOW);
        }
        // Read-only opens only: the host's files are no grant to write. Other
        // processes' /proc entries are out of reach by uid and non-dumpability, as
        // a path cannot be filtered here. (openat2 hides its flags: refused.)
        p.flags_clear(libc::SYS_open, 1, OPEN_WRITE_FLAGS);
        p.flags_clear(libc::SYS_openat, 2, OPEN_WRITE_FLAGS);
        // glibc falls back to clone when clone3 is missing; clone is then checked.
        p.plain(libc::SYS_clone3, ENOSYS);
        // Threads only: a forked child would be a process nobody supervises.
        p.insns.push(jump(JEQ, libc::SYS_clone as u32, 0, 4));
        p.insns.push(stmt(LD_ABS, off_arg(0)));
        p.insns.push(jump(JSET, libc::CLONE_THREAD as u32, 0, 1));
        p.insns.push(stmt(RET, ALLOW));
        p.insns.push(stmt(RET, EPERM));
        // Signals to itself only (abort() raises SIGABRT with tgkill).
        p.arg_in(libc::SYS_kill, 0, &[None]);
        p.arg_in(libc::SYS_tgkill, 0, &[None]);
        p.arg_in(libc::SYS_rt_sigqueueinfo, 0, &[None]);
        p.arg_in(libc::SYS_rt_tgsigqueueinfo, 0, &[None]);
        // Its own limits only (0 is the caller).
        p.arg_in(libc::SYS_prlimit64, 0, &[Some(0), None]);
        let fcntl: Vec<_> = FCNTL_CMDS.iter().map(|&c| Some(c as u32)).collect();
        p.arg_in(libc::SYS_fcntl, 1, &fcntl);
        let ioctl: Vec<_> = IOCTL_CMDS.iter().map(|&c| Some(c as u32)).collect();
        p.arg_in(libc::SYS_ioctl, 1, &ioctl);
        // prctl: the listed options, and PR_SET_DUMPABLE only to turn it off.
        let opts = PRCTL_OPTIONS.len();
        p.insns.push(jump(
            JEQ,
            libc::SYS_prctl as u32,
            0,
            u8::try_from(2 + 2 * opts + 4).unwrap_or(u8::MAX),
        ));
        p.insns.push(stmt(LD_ABS, off_arg(0)));
        for &o in PRCTL_OPTIONS {
            p.insns.push(jump(JEQ, o as u32, 0, 1));
            p.insns.push(stmt(RET, ALLOW));
        }
        p.insns.push(jump(JEQ, libc::PR_SET_DUMPABLE as u32, 0, 3));
        p.insns.push(stmt(LD_ABS, off_arg(1)));
        p.insns.push(jump(JEQ, 0, 0, 1));
        p.insns.push(stmt(RET, ALLOW));
        p.insns.push(stmt(RET, EPERM));
        // Everything not listed.
        p.insns.push(stmt(RET, EPERM));
        p
    }

    /// Stacked by the PD runtime once it runs: the one exec the supervisor made was
    /// the last.
    pub fn no_exec() -> Self {
        let mut p = Self::new();
        p.plain(libc::SYS_execve, EPERM);
        p.plain(libc::SYS_execveat, EPERM);
        p.insns.push(stmt(RET, ALLOW));
        p
    }

    /// Installs the filter on the calling thread (and the threads it creates), with
    /// `pid` wherever the filter compares against the PD's own pid. Only writes to
    /// memory allocated beforehand and makes system calls, so it is safe between
    /// fork and exec. no_new_privs must be set already (it is what lets an
    /// unprivileged process install a filter).
    pub fn install(&mut self, pid: u32) -> io::Result<()> {
        for &i in &self.pid_slots {
            if let Some(insn) = self.insns.get_mut(i) {
                insn.k = pid;
            }
        }
        let prog = libc::sock_fprog {
            len: u16::try_from(self.insns.len())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            filter: self.insns.as_mut_ptr(),
        };
        // SAFETY: prog points at `len` initialised instructions that outlive the call;
        // the kernel copies the program.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0u32,
                &raw const prog,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs the program on one system call the way the kernel would (for tests).
    #[cfg(test)]
    fn eval(&self, pid: u32, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let mut insn = self.insns[pc];
            if self.pid_slots.contains(&pc) {
                insn.k = pid;
            }
            pc += 1;
            match insn.code {
                LD_ABS => {
                    let o = insn.k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                JEQ | JGE | JSET => {
                    let taken = match insn.code {
                        JEQ => acc == insn.k,
                        JGE => acc >= insn.k,
                        _ => acc & insn.k != 0,
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                RET => return insn.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }
}

/// Sets no_new_privs on the calling process: exec can then never gain privileges,
/// and a seccomp filter may be installed without CAP_SYS_ADMIN.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with constant arguments only changes this process's flag.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PID: u32 = 4242;
    /// Not in the libc crate (asm-generic/fcntl.h and asm-generic/sockios.h).
    const F_SETSIG: u64 = 10;
    const FIOSETOWN: u64 = 0x8901;

    /// The PD filter's verdict on call `nr` with `args` (the rest zero).
    fn verdict(nr: i64, args: &[u64]) -> u32 {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        Program::pd().eval(PID, AUDIT_ARCH_X86_64, nr, all)
    }

    #[test]
    fn the_pd_filter_allows_the_runtime_and_refuses_reaching_out() {
        use libc::*;
        // Our verdicts, not libc's errno values of the same names.
        use super::{ALLOW, ENOSYS, EPERM};
        let pid = u64::from(PID);
        let dir = (O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_DIRECTORY) as u64;
        let thread = CLONE_THREAD as u64 | CLONE_VM as u64;
        let (dumpable, name, ptracer) = (
            PR_SET_DUMPABLE as u64,
            PR_SET_NAME as u64,
            PR_SET_PTRACER as u64,
        );
        let x32_read = i64::from(X32_SYSCALL_BIT) | SYS_read;
        let cases: &[(&str, i64, &[u64], u32)] = &[
            ("read", SYS_read, &[], ALLOW),
            ("epoll_wait", SYS_epoll_wait, &[3, 0, 1], ALLOW),
            (
                "openat r",
                SYS_openat,
                &[0, 0, (O_RDONLY | O_CLOEXEC) as u64],
                ALLOW,
            ),
            ("openat w", SYS_openat, &[0, 0, O_WRONLY as u64], EPERM),
            ("openat rw", SYS_openat, &[0, 0, O_RDWR as u64], EPERM),
            (
                "openat creat",
                SYS_openat,
                &[0, 0, O_CREAT as u64, 0o644],
                EPERM,
            ),
            ("read_dir", SYS_openat, &[0, 0, dir], ALLOW),
            (
                "openat tmpfile",
                SYS_openat,
                &[0, 0, (O_TMPFILE | O_RDWR) as u64],
                EPERM,
            ),
            ("openat trunc", SYS_openat, &[0, 0, O_TRUNC as u64], EPERM),
            ("open r", SYS_open, &[0, O_RDONLY as u64], ALLOW),
            ("open rw", SYS_open, &[0, O_RDWR as u64], EPERM),
            ("openat2", SYS_openat2, &[], EPERM),
            ("unlink", SYS_unlink, &[], EPERM),
            ("rename", SYS_renameat2, &[], EPERM),
            ("truncate", SYS_truncate, &[], EPERM),
            ("kill self", SYS_kill, &[pid], ALLOW),
            ("kill other", SYS_kill, &[pid + 1, 9], EPERM),
            ("kill group", SYS_kill, &[0, 9], EPERM),
            ("kill all", SYS_kill, &[u64::MAX, 9], EPERM),
            ("tgkill self", SYS_tgkill, &[pid, pid, 6], ALLOW),
            ("tgkill other", SYS_tgkill, &[1, 1, 6], EPERM),
            ("tkill", SYS_tkill, &[pid, 6], EPERM),
            ("ptrace", SYS_ptrace, &[16, 1], EPERM),
            ("process_vm_readv", SYS_process_vm_readv, &[1; 6], EPERM),
            ("process_vm_writev", SYS_process_vm_writev, &[1; 6], EPERM),
            ("pidfd_open", SYS_pidfd_open, &[1], EPERM),
            ("pidfd_getfd", SYS_pidfd_getfd, &[3, 3], EPERM),
            ("socket", SYS_socket, &[1, 1], EPERM),
            ("fork", SYS_fork, &[], EPERM),
            ("clone process", SYS_clone, &[17], EPERM),
            ("clone thread", SYS_clone, &[thread], ALLOW),
            ("clone3", SYS_clone3, &[], ENOSYS),
            ("prlimit self", SYS_prlimit64, &[], ALLOW),
            ("prlimit other", SYS_prlimit64, &[1], EPERM),
            ("F_SETFD", SYS_fcntl, &[3, F_SETFD as u64, 1], ALLOW),
            ("F_SETOWN", SYS_fcntl, &[3, F_SETOWN as u64, 1], EPERM),
            ("F_SETSIG", SYS_fcntl, &[3, F_SETSIG, 9], EPERM),
            ("FIONBIO", SYS_ioctl, &[3, FIONBIO], ALLOW),
            ("FIOSETOWN", SYS_ioctl, &[3, FIOSETOWN], EPERM),
            ("TIOCSTI", SYS_ioctl, &[0, TIOCSTI], EPERM),
            ("dumpable off", SYS_prctl, &[dumpable, 0], ALLOW),
            ("dumpable on", SYS_prctl, &[dumpable, 1], EPERM),
            ("set name", SYS_prctl, &[name, 1], ALLOW),
            ("ptracer", SYS_prctl, &[ptracer, 1], EPERM),
            ("x32", x32_read, &[], EPERM),
            ("unshare", SYS_unshare, &[], EPERM),
            ("mount", SYS_mount, &[], EPERM),
        ];
        for &(what, nr, args, want) in cases {
            assert_eq!(verdict(nr, args), want, "{what}");
        }
        // Another architecture's call numbers are never interpreted.
        assert_eq!(
            Program::pd().eval(PID, 0x4000_0003, libc::SYS_read, [0; 6]),
            KILL
        );
    }

    #[test]
    fn every_runtime_call_seen_under_strace_is_allowed() {
        // What the PDs of the whole-system tests made after exec (strace -f).
        for nr in [
            libc::SYS_recvfrom,
            libc::SYS_sendto,
            libc::SYS_epoll_wait,
            libc::SYS_write,
            libc::SYS_sched_yield,
            libc::SYS_clock_nanosleep,
            libc::SYS_mmap,
            libc::SYS_rt_sigaction,
            libc::SYS_pwritev,
            libc::SYS_preadv,
            libc::SYS_newfstatat,
            libc::SYS_sigaltstack,
            libc::SYS_brk,
            libc::SYS_epoll_ctl,
            libc::SYS_pread64,
            libc::SYS_munmap,
            libc::SYS_set_tid_address,
            libc::SYS_set_robust_list,
            libc::SYS_sched_getaffinity,
            libc::SYS_rseq,
            libc::SYS_poll,
            libc::SYS_getrandom,
            libc::SYS_arch_prctl,
            libc::SYS_access,
            libc::SYS_epoll_create1,
            libc::SYS_exit_group,
            libc::SYS_readlink,
            libc::SYS_statx,
            libc::SYS_mremap,
            libc::SYS_getdents64,
            libc::SYS_fdatasync,
            libc::SYS_execve,
        ] {
            assert_eq!(verdict(nr, &[]), ALLOW, "syscall {nr}");
        }
        let fcntl = |cmd, arg| verdict(libc::SYS_fcntl, &[3, cmd as u64, arg]);
        assert_eq!(fcntl(libc::F_GETFD, 0), ALLOW);
        assert_eq!(fcntl(libc::F_DUPFD_CLOEXEC, 3), ALLOW);
    }

    #[test]
    fn the_stage_two_filter_refuses_exec_only() {
        let p = Program::no_exec();
        assert_eq!(
            p.eval(0, AUDIT_ARCH_X86_64, libc::SYS_execve, [0; 6]),
            EPERM
        );
        assert_eq!(
            p.eval(0, AUDIT_ARCH_X86_64, libc::SYS_execveat, [0; 6]),
            EPERM
        );
        assert_eq!(p.eval(0, AUDIT_ARCH_X86_64, libc::SYS_read, [0; 6]), ALLOW);
    }
}
