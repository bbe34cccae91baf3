//! Thin, checked wrappers over the Linux calls host-sim needs. Every descriptor is
//! created close-on-exec; the supervisor clears that flag only in the child that was
//! granted it.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A sealed-size anonymous shared memory object of `size` bytes.
pub fn memfd(name: &str, size: u64) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name.replace('\0', "?"))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: cname is a valid NUL-terminated string for the duration of the call.
    let fd = owned(unsafe {
        libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    let len =
        libc::off_t::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fd is a valid memfd we own.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) })?;
    // Sealed so no PD holding a writable descriptor can shrink the object under the
    // others' mappings (which would turn their accesses into SIGBUS).
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fd is a valid memfd created with MFD_ALLOW_SEALING.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(fd)
}

/// A new read-only open file description of the same memfd: a PD granted `r` gets
/// this one, so it cannot later map or mprotect the object writable.
pub fn reopen_read_only(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    // SAFETY: path is NUL-terminated and lives across the call.
    owned(unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) })
}

pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant flags.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

/// Adds one to an eventfd's counter.
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
    match n {
        8 => Ok(()),
        // The counter is saturated: the peer has a signal pending already.
        _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Reads and clears a non-blocking eventfd; `Ok(false)` when nothing was pending.
pub fn eventfd_drain(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a valid u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), 8) };
    match n {
        8 => Ok(value != 0),
        _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => Ok(false),
        _ => Err(io::Error::last_os_error()),
    }
}

pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors socketpair writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just returned by the kernel and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one packet, `WouldBlock` at once when the peer's queue is full; a closed
/// peer is `BrokenPipe`, never SIGPIPE.
pub fn try_send_packet(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
    retry_interrupted(|| {
        // SAFETY: data is a valid slice for the length passed.
        unsafe {
            libc::send(
                fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        }
    })
    .map(drop)
}

/// Makes a system call again for as long as a signal interrupts it; its result,
/// which is not negative.
fn retry_interrupted(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        if let Ok(n) = usize::try_from(call()) {
            return Ok(n);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one packet into `buf`; returns its length, 0 when the peer closed.
/// A packet longer than `buf` is reported as `InvalidData` rather than truncated.
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    recv_with(fd, buf, 0)
}

/// As `recv_packet`, but `None` at once when no packet is queued.
pub fn try_recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match recv_with(fd, buf, libc::MSG_DONTWAIT) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

fn recv_with(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    let n = retry_interrupted(|| {
        // SAFETY: buf is a valid mutable slice for the length passed.
        unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC | flags,
            )
        }
    })?;
    if n > buf.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    Ok(n)
}

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just returned by the kernel and are ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Reads what is available without blocking; `Ok(None)` when nothing is, `Ok(Some(0))`
/// at end of file.
pub fn read_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: buf is a valid mutable slice for the length passed.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
        _ => Err(err),
    }
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    owned(fd)
}

/// Waits for any of `fds` to become readable (or hung up), for at most `timeout_ms`
/// (-1: forever). Returns the readiness per descriptor.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pfds is a valid array of pollfd of the length passed.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(err);
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// Maps `fd` shared at exactly `vaddr`, refusing to replace anything already there.
pub fn map_fixed(vaddr: u64, size: u64, prot: libc::c_int, fd: BorrowedFd<'_>) -> io::Result<()> {
    let addr = usize::try_from(vaddr).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let len = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so no memory
    // this process already uses can be clobbered; on success the pages are ours.
    let ptr = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if ptr as usize != addr {
        // Kernels before 4.17 treat the flag as a hint; never accept another place.
        // SAFETY: ptr/len is the mapping just created and nothing refers to it yet.
        unsafe { libc::munmap(ptr, len) };
        return Err(io::Error::from(io::ErrorKind::AddrInUse));
    }
    Ok(())
}

/// Maps `len` bytes of `fd` shared and read-write wherever the kernel finds room
/// (never over a mapping this process has), for memory outside system.xml's
/// address space.
pub fn map_shared(len: usize, fd: BorrowedFd<'_>) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: without MAP_FIXED the kernel picks unused addresses, so no existing
    // mapping is touched; on success the pages are ours.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| io::Error::from(io::ErrorKind::AddrInUse))
}

pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

pub fn epoll_add(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: ev is a valid epoll_event for the call.
    cvt(unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            &mut ev,
        )
    })?;
    Ok(())
}

pub fn epoll_del(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null event is allowed for EPOLL_CTL_DEL.
    cvt(unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd.as_raw_fd(),
            std::ptr::null_mut(),
        )
    })?;
    Ok(())
}

/// Waits up to `timeout_ms` (-1: for ever, 0: not at all) for registered descriptors
/// to be ready; returns their tokens (none on timeout).
pub fn epoll_wait(
    epoll: BorrowedFd<'_>,
    tokens: &mut Vec<u64>,
    timeout_ms: libc::c_int,
) -> io::Result<()> {
    const MAX: usize = 64;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX];
    tokens.clear();
    let n = retry_interrupted(|| {
        // SAFETY: events is a valid array of MAX epoll_event.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                MAX as i32,
                timeout_ms,
            )
        };
        n as isize
    })?;
    tokens.extend(events.iter().take(n).map(|e| e.u64));
    Ok(())
}

/// Tasks runnable right now, host-wide, the caller included: the fourth field of
/// /proc/loadavg (`running/total`). The file stays open and is read again from
/// its start, one system call per look.
pub fn runnable_tasks() -> io::Result<u32> {
    use std::os::unix::fs::FileExt;
    static FILE: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let file = FILE
        .get_or_init(|| std::fs::File::open("/proc/loadavg").ok())
        .as_ref()
        .ok_or(io::ErrorKind::NotFound)?;
    let mut buf = [0u8; 128];
    let n = file.read_at(&mut buf, 0)?;
    parse_runnable(buf.get(..n).unwrap_or_default())
        .ok_or_else(|| io::ErrorKind::InvalidData.into())
}

/// `running` out of /proc/loadavg's "1.00 0.50 0.25 running/total last_pid".
fn parse_runnable(text: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(text).ok()?;
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split_once('/')?.0.parse().ok()
}

/// The one-minute load average (runnable tasks, averaged).
pub fn load_average() -> io::Result<f64> {
    // SAFETY: sysinfo fills the struct it is given and nothing else.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid, writable sysinfo struct.
    cvt(unsafe { libc::sysinfo(&mut info) })?;
    Ok(info.loads[0] as f64 / f64::from(1u32 << libc::SI_LOAD_SHIFT))
}

#[cfg(test)]
mod loadavg_tests {
    use super::*;

    #[test]
    fn runnable_tasks_come_from_the_fourth_field() {
        let table: [(&[u8], Option<u32>); 5] = [
            (b"0.18 0.64 1.09 3/234 5678\n", Some(3)),
            (b"12.00 1.00 1.00 17/900 1", Some(17)),
            (b"0.18 0.64 1.09", None),
            (b"0.18 0.64 1.09 x/234 5", None),
            (b"\xff\xfe", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_runnable(text), want, "{text:?}");
        }
        // This process is running while it looks.
        assert!(runnable_tasks().is_ok_and(|n| n >= 1));
    }
}
