//! What keeps a PD process to its grants beyond the descriptors it holds: the
//! supervisor is not dumpable; each PD runs under its own uid when the supervisor is
//! root, with no_new_privs, a Landlock domain of its own (crate::landlock) and the
//! seccomp filter (crate::seccomp), and is not
//! dumpable from its first instruction because it is executed from a copy of its
//! image that it may not read.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{landlock, seccomp};

/// A non-dumpable process's /proc/PID entries belong to root and refuse ptrace
/// access to anyone without CAP_SYS_PTRACE, so a PD cannot open the supervisor's
/// mem, or reopen the supervisor's memfds through /proc/PID/fd with other rights.
/// Inherited by every fork, so each PD is non-dumpable from fork to exec too.
pub fn harden_supervisor() -> io::Result<()> {
    // SAFETY: prctl with constant arguments only changes this process's flag.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// First uid/gid handed to PDs. High enough to belong to no account; PDs of one
/// supervisor process get consecutive ids below `base + ID_SPAN`.
const ID_BASE: u32 = 0x4000_0000;
/// Ids per supervisor process (taken round-robin by its launches).
const ID_SPAN: u32 = 1 << 10;
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// One uid (equal to its gid) per PD when the supervisor is root; `None` when it is
/// not, and PDs share its uid (then seccomp and non-dumpability carry the load).
pub fn pd_identities(count: usize) -> Option<Vec<u32>> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let start = NEXT_ID.fetch_add(count.min(ID_SPAN), Ordering::Relaxed);
    // Distinct per supervisor process as well, so two simulations running at once
    // on one machine do not share ids.
    let process = std::process::id() & 0xf_ffff;
    let base = ID_BASE + process * ID_SPAN;
    if !ids_mapped(base, ID_SPAN) {
        // Root of a user namespace that maps too few ids (a container): every PD
        // shares the overflow id rather than keeping root, and the other measures
        // separate them.
        return ids_mapped(OVERFLOW_ID, 1).then(|| vec![OVERFLOW_ID; count as usize]);
    }
    Some(
        (0..count)
            .map(|i| base + (start.wrapping_add(i) % ID_SPAN))
            .collect(),
    )
}

/// "nobody".
const OVERFLOW_ID: u32 = 65534;

/// Whether ids `first..first + len` are valid uids and gids here (mapped into this
/// user namespace).
fn ids_mapped(first: u32, len: u32) -> bool {
    ["/proc/self/uid_map", "/proc/self/gid_map"]
        .iter()
        .all(|file| std::fs::read_to_string(file).is_ok_and(|map| map_covers(&map, first, len)))
}

/// Whether one line of a uid_map/gid_map ("inside outside count") covers the range.
fn map_covers(map: &str, first: u32, len: u32) -> bool {
    map.lines().any(|line| {
        let mut f = line.split_whitespace().map(|w| w.parse::<u64>().ok());
        match (f.next().flatten(), f.next().flatten(), f.next().flatten()) {
            (Some(inside), Some(_), Some(count)) => {
                inside <= u64::from(first) && u64::from(first) + u64::from(len) <= inside + count
            }
            _ => false,
        }
    })
}

/// A sealed, execute-only copy of the program image at `path`. exec makes a
/// process non-dumpable when it may not read its image, and the PD may not read
/// this one (mode 0111, owned by the supervisor), so the PD is non-dumpable before
/// its first instruction: a sibling cannot open its /proc/PID/mem in the window
/// before the runtime's own PR_SET_DUMPABLE. Executed as /proc/self/fd/N.
///
/// `None` where the host forbids executable memfds (vm.memfd_noexec=2): the image
/// is then executed from its path and the PD is dumpable until its runtime's
/// first call.
pub fn sealed_image(path: &Path) -> io::Result<Option<OwnedFd>> {
    use std::os::unix::fs::PermissionsExt;
    let mut source = File::open(path)?;
    // The copy is always executable; the original must be, as exec would demand.
    if source.metadata()?.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    let name = c"hostsim-image";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: name is NUL-terminated; MFD_EXEC asks for an executable memfd where
    // vm.memfd_noexec would otherwise make it non-executable.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | libc::MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 know no MFD_EXEC; their memfds are executable.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EACCES) {
            return Ok(None);
        }
        return Err(err);
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut copy = File::from(fd);
    io::copy(&mut source, &mut copy)?;
    let fd = OwnedFd::from(copy);
    // SAFETY: fchmod on a descriptor we own.
    if unsafe { libc::fchmod(fd.as_raw_fd(), 0o111) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a memfd we own, created with MFD_ALLOW_SEALING.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(fd))
}

/// Runs in the child between fork and exec (after std has switched to the PD's
/// uid, if any): only async-signal-safe system calls, and writes to memory
/// allocated before the fork.
pub fn restrict_child(granted: &[RawFd], filter: &mut seccomp::Program) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; marking every descriptor
    // above stdio close-on-exec means the PD inherits nothing by accident (not even
    // a descriptor some library in the supervisor left inheritable).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    for &fd in granted {
        // SAFETY: clears FD_CLOEXEC on a descriptor that is open in this child.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: plain prctl/setrlimit calls with valid arguments.
    unsafe {
        // A PD must not outlive its supervisor. Set after the uid change, which
        // clears it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(io::Error::last_os_error());
        }
        // A faulting PD is reported by name; a core file would only litter.
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    seccomp::set_no_new_privs()?;
    // Before the filter, which does not allow Landlock's calls.
    landlock::restrict_self()?;
    // SAFETY: getpid cannot fail; it is the PD's pid, which exec keeps.
    let pid = unsafe { libc::getpid() };
    filter.install(pid as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_pd_of_every_launch_gets_an_unprivileged_id_of_its_own() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(pd_identities(3), None);
            return;
        }
        let a = pd_identities(5).unwrap();
        let b = pd_identities(5).unwrap();
        let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
        assert!(all.iter().all(|&id| id >= ID_BASE));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10, "{a:?} {b:?}");
        // More PDs than ids per process still leaves none running as root.
        let many = pd_identities(ID_SPAN as usize + 3).unwrap();
        assert_eq!(many.len(), ID_SPAN as usize + 3);
        assert!(many.iter().all(|&id| id >= ID_BASE));
    }

    #[test]
    fn id_maps_are_read_as_the_kernel_writes_them() {
        let full = "         0          0 4294967295\n";
        assert!(map_covers(full, ID_BASE, ID_SPAN));
        let container = "         0     100000      65536\n";
        assert!(!map_covers(container, ID_BASE, ID_SPAN));
        assert!(map_covers(container, OVERFLOW_ID, 1));
        assert!(!map_covers(container, 65536, 1));
        assert!(!map_covers("", 0, 1));
        assert!(!map_covers("garbage\n0 0\n", 0, 1));
    }

    #[test]
    fn the_sealed_image_is_execute_only_and_immutable() {
        let exe = std::env::current_exe().unwrap();
        let fd = sealed_image(&exe).unwrap().expect("executable memfds here");
        let meta = File::from(fd.try_clone().unwrap()).metadata().unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o111);
        assert_eq!(meta.len(), std::fs::metadata(&exe).unwrap().len());
        // SAFETY: F_GET_SEALS on a descriptor we own.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(
            seals & libc::F_SEAL_WRITE,
            libc::F_SEAL_WRITE,
            "seals {seals:#x}"
        );
        // A file that is not executable stays so.
        let plain = std::env::temp_dir().join(format!("hostsim-plain-{}", std::process::id()));
        std::fs::write(&plain, b"\x7fELF").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = sealed_image(&plain).err().unwrap();
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
