//! A hostile PD: tries every way out of its grants that host-sim's sandbox is meant
//! to close, and prints one `check <attempt>: refused` (or `ESCAPED ...`) line per
//! attempt; tests/tests/sandbox.rs compares the lines exactly. The first attempts run
//! before `hostsim::run`, from the binary's first instructions, as a PD that was
//! malicious from the start would; the rest run with its regions mapped.
//!
//! Expects (see tests/tests/sandbox.rs): region `shared` granted `r` at
//! `shared_ro`, and a sibling PD started after it. Every signal it sends is signal 0
//! (a permission check that delivers nothing), so a failing sandbox is reported, not
//! exploited.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::time::{Duration, Instant};

use ipc::{ChannelSet, Handler, HandlerError, Kernel};

fn open(path: &str, flags: libc::c_int) -> Result<libc::c_int, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: c is NUL-terminated and lives across the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(fd)
    }
}

fn close(fd: libc::c_int) {
    // SAFETY: fd was returned by open above and is closed once.
    unsafe { libc::close(fd) };
}

fn report(what: &str, escaped: Option<String>) {
    match escaped {
        None => println!("check {what}: refused"),
        Some(how) => println!("check {what}: ESCAPED {how}"),
    }
}

/// Opens `path` with `flags`; an escape when it opens.
fn try_open(what: &str, path: &str, flags: libc::c_int) {
    let result = open(path, flags);
    if let Ok(fd) = result {
        close(fd);
    }
    report(what, result.ok().map(|_| format!("opened {path}")));
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Process ids near this one: where the supervisor's other children are, and a
/// bystander of the supervisor's uid that the test started just before it.
fn neighbours() -> Vec<libc::pid_t> {
    let me = std::process::id() as libc::pid_t;
    (me.saturating_sub(256)..me.saturating_add(256))
        .filter(|&p| p > 1 && p != me)
        .collect()
}

fn before_run() {
    // Before the runtime's own PR_SET_DUMPABLE: what a sibling sees while this PD
    // starts.
    // SAFETY: prctl with constant arguments.
    println!("check dumpable at start: {}", unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE)
    });
    // SAFETY: getppid cannot fail.
    let sup = unsafe { libc::getppid() };
    try_open(
        "supervisor /proc/PID/mem rw",
        &format!("/proc/{sup}/mem"),
        libc::O_RDWR,
    );
    try_open(
        "supervisor /proc/PID/mem r",
        &format!("/proc/{sup}/mem"),
        libc::O_RDONLY,
    );
    // The supervisor holds every region's memfd while it launches; reopening one
    // would grant any region with any rights.
    let mut reopened = Vec::new();
    for n in 0..512 {
        for flags in [libc::O_RDWR, libc::O_RDONLY] {
            if let Ok(fd) = open(&format!("/proc/{sup}/fd/{n}"), flags) {
                close(fd);
                reopened.push(n);
            }
        }
    }
    report(
        "supervisor /proc/PID/fd reopen",
        (!reopened.is_empty()).then(|| format!("fds {reopened:?}")),
    );
    report(
        "supervisor /proc/PID/fd list",
        std::fs::read_dir(format!("/proc/{sup}/fd"))
            .ok()
            .map(|_| "listed".into()),
    );

    // Siblings are started right after this PD: keep trying their /proc/PID/mem
    // through the window between their exec and their runtime's first call.
    let mut opened = Vec::new();
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        for p in neighbours() {
            let mem = format!("/proc/{p}/mem");
            if let Ok(fd) = open(&mem, libc::O_RDONLY) {
                close(fd);
                if !opened.contains(&mem) {
                    opened.push(mem);
                }
            }
            // The directory itself opens for its owner uid; what would leak is
            // its listing (the target's mappings).
            let files = format!("/proc/{p}/map_files");
            let listed = std::fs::read_dir(&files)
                .map(|d| d.flatten().count() > 0)
                .unwrap_or(false);
            if listed && !opened.contains(&files) {
                opened.push(files);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    report(
        "sibling or bystander /proc/PID/mem",
        (!opened.is_empty()).then(|| format!("{opened:?}")),
    );

    // SAFETY: signal 0 delivers nothing; it only checks permission.
    let ok = |pid: libc::pid_t| unsafe { libc::kill(pid, 0) } == 0;
    report(
        "signal supervisor",
        ok(sup).then(|| "kill(supervisor, 0)".into()),
    );
    report("signal own group", ok(0).then(|| "kill(0, 0)".into()));
    report("signal everyone", ok(-1).then(|| "kill(-1, 0)".into()));
    let signalled: Vec<_> = neighbours().into_iter().filter(|&p| ok(p)).collect();
    report(
        "signal siblings",
        (!signalled.is_empty()).then(|| format!("{signalled:?}")),
    );
    println!(
        "check signal self: {}",
        if ok(std::process::id() as libc::pid_t) {
            "allowed"
        } else {
            "refused"
        }
    );

    // SAFETY: PTRACE_SEIZE does not stop the target; on success we detach at once.
    let seized = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            sup,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    } == 0;
    if seized {
        // SAFETY: detaching from the tracee we just seized.
        unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                sup,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
    }
    report("ptrace supervisor", seized.then(|| "PTRACE_SEIZE".into()));

    let mut word = 0u64;
    let local = libc::iovec {
        iov_base: (&raw mut word).cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: (&raw mut word).cast(),
        iov_len: 8,
    };
    // SAFETY: local describes a valid u64; remote is only an address in the target.
    let n = unsafe { libc::process_vm_readv(sup, &local, 1, &remote, 1, 0) };
    // EFAULT would mean the permission check passed and only the address was bad.
    let e = errno();
    report(
        "process_vm_readv supervisor",
        (n >= 0 || e != libc::EPERM).then(|| format!("returned {n}, errno {e}")),
    );

    // SAFETY: pidfd_open takes a pid and flags.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, sup, 0) };
    let mut stolen = Vec::new();
    if pidfd >= 0 {
        for n in 0..64 {
            // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, n, 0) };
            if fd >= 0 {
                close(fd as libc::c_int);
                stolen.push(n);
            }
        }
        close(pidfd as libc::c_int);
    }
    report(
        "pidfd_getfd supervisor",
        (!stolen.is_empty()).then(|| format!("fds {stolen:?}")),
    );

    // SAFETY: F_SETOWN on our own stdout only records the owner.
    let owned = unsafe { libc::fcntl(1, libc::F_SETOWN, sup) } == 0;
    report(
        "F_SETOWN to supervisor",
        owned.then(|| "fcntl(1, F_SETOWN)".into()),
    );

    // SAFETY: plain socket call.
    let sock = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if sock >= 0 {
        close(sock);
    }
    report("new socket", (sock >= 0).then(|| "socket(AF_UNIX)".into()));

    try_open("host file rw", "/dev/null", libc::O_RDWR);
    let created = format!("/tmp/escape_probe.{}", std::process::id());
    let made = open(&created, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL);
    if let Ok(fd) = made {
        close(fd);
        let _ = std::fs::remove_file(&created);
    }
    report(
        "create a host file",
        made.ok().map(|_| format!("created {created}")),
    );

    // SAFETY: fork in a single-threaded process; the child only calls _exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: leaving the forked child at once.
        unsafe { libc::_exit(0) };
    }
    if child > 0 {
        let mut status = 0;
        // SAFETY: reaping the child we forked.
        unsafe { libc::waitpid(child, &mut status, 0) };
    }
    report("fork", (child >= 0).then(|| format!("child {child}")));

    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    println!(
        "check uid: {}",
        if uid >= 0x4000_0000 { "own" } else { "shared" }
    );
}

struct Done;

impl Handler for Done {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn after_run(base: usize, len: usize) {
    try_open(
        "/proc/self/map_files of the r grant, rw",
        &format!("/proc/self/map_files/{base:x}-{:x}", base + len),
        libc::O_RDWR,
    );
    let wrote = match open("/proc/self/mem", libc::O_RDWR) {
        Err(_) => false,
        Ok(fd) => {
            let word = 0x5eed_u64;
            // SAFETY: writes 8 bytes from a valid u64 through our own mem file.
            let n = unsafe { libc::pwrite(fd, (&raw const word).cast(), 8, base as i64) };
            close(fd);
            n == 8
        }
    };
    report(
        "/proc/self/mem write into the r grant",
        wrote.then(|| "pwrite".into()),
    );
    // SAFETY: asks to make our own mapping writable; the mapping stays ours.
    let made_writable = unsafe {
        libc::mprotect(
            base as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    } == 0;
    report(
        "mprotect the r grant rw",
        made_writable.then(|| "mprotect".into()),
    );
    // SAFETY: prctl with constant arguments.
    let dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) } == 0;
    report(
        "make itself dumpable",
        dumpable.then(|| "PR_SET_DUMPABLE 1".into()),
    );
    // SAFETY: prctl with constant arguments.
    println!("check dumpable: {}", unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE)
    });
    let prog = c"/proc/self/exe";
    let argv = [prog.as_ptr(), std::ptr::null()];
    // SAFETY: execv with a NUL-terminated path and a NULL-terminated argv; it
    // returns only on failure.
    unsafe { libc::execv(prog.as_ptr(), argv.as_ptr()) };
    report("exec", None);
}

fn main() {
    before_run();
    hostsim::run(|init, _| -> Result<Done, ipc::InitError> {
        let r = init.region("shared_ro")?;
        after_run(r.base_address(), r.len());
        println!("check done");
        std::process::exit(0)
    })
}
