//! The PD side of host-sim: map what was granted, build the handler, run its loop.
#![allow(unsafe_code)]

mod call_page;
mod fault;
mod kernel;
mod spin;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use ipc::{Channel, ChannelSet, Handler, Init, InitError, Kernel, MessageRegisters, Region};

use crate::config::{PdConfig, PpRole, RegionGrant, ENV_VAR};
use crate::sys;
use crate::wire::{self, ReplyStatus};
use crate::EXIT_INIT_FAILED;
use kernel::{HostKernel, Pp};

pub use call_page::SIZE as CALL_PAGE_SIZE;
pub use fault::signal_name;
pub use spin::{Poller, POLL_ENV, SPIN_ENV};

/// Whether this process was started by the host-sim supervisor as a PD.
pub fn is_pd() -> bool {
    std::env::var_os(ENV_VAR).is_some()
}

/// Runs this process as the PD the supervisor configured: maps its regions at their
/// system.xml addresses, calls `init` (which may already notify or call, as
/// Microkit's `init()` may), then serves notifications and protected calls forever.
/// The process ends when a handler exits it, on a fault, or when the supervisor
/// stops the system.
pub fn run<H, F>(init: F) -> !
where
    H: Handler,
    F: FnOnce(&dyn Init, &mut dyn Kernel) -> Result<H, InitError>,
{
    let config = match std::env::var(ENV_VAR)
        .map_err(|e| e.to_string())
        .and_then(|text| PdConfig::parse(&text).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => die(
            "?",
            &format!("not started by the host-sim supervisor ({ENV_VAR}: {e})"),
        ),
    };
    // Only the PD's own children (none today) could use it; it is no capability.
    std::env::remove_var(ENV_VAR);
    let name = config.name.clone();
    // The supervisor started this process non-dumpable (from an image it may not
    // read); saying so again keeps it so if it was started some other way.
    // SAFETY: prctl with constant arguments only changes this process's flag.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) } != 0 {
        die(&name, "cannot make the process non-dumpable");
    }
    // exec from the sealed image named the process after its descriptor number;
    // ps and the kernel's own messages should show the PD.
    if let Ok(comm) = std::ffi::CString::new(
        name.as_bytes()
            .iter()
            .copied()
            .take(15)
            .collect::<Vec<u8>>(),
    ) {
        // SAFETY: comm is NUL-terminated and at most 16 bytes with the NUL.
        unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr()) };
    }
    // The supervisor's filter must allow the exec that started this process; from
    // here on no exec is needed (one would reset dumpability and shed the
    // runtime's state), so none is allowed.
    if let Err(e) = crate::seccomp::set_no_new_privs()
        .and_then(|()| crate::seccomp::Program::no_exec().install(0))
    {
        die(&name, &format!("cannot install the exec filter: {e}"));
    }
    if let Err(e) = fault::install(config.fault_fd) {
        die(&name, &format!("cannot install fault handlers: {e}"));
    }
    let (regions, files) = match map_regions(&config.regions) {
        Ok(r) => r,
        Err(e) => die(&name, &e),
    };
    let host_init = HostInit {
        name: name.clone(),
        regions,
    };
    // SAFETY: the supervisor opened these descriptors for this PD alone and cleared
    // close-on-exec on exactly them; nothing else in this process owns them.
    let take = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
    let mut kernel = match HostKernel::new(name.clone(), &config.channels, take) {
        Ok(k) => k,
        Err(e) => die(&name, &e),
    };
    // Raw numbers, not copies: a PD inspecting its descriptors during init sees
    // exactly its grants. The kernel owns them until after init returns.
    let notify_in = kernel
        .slots
        .iter()
        .flatten()
        .filter_map(|s| Some(s.notify_in.as_ref()?.as_raw_fd()))
        .collect();
    set_init_state(Some(InitState { files, notify_in }));
    let handler = init(&host_init, &mut kernel);
    // After init the mappings are all the PD keeps (see region_file).
    set_init_state(None);
    let handler = match handler {
        Ok(h) => h,
        Err(e) => die(&name, &format!("init failed: {e}")),
    };
    match event_loop(handler, kernel) {
        Ok(never) => match never {},
        Err(e) => die(&name, &format!("runtime error: {e}")),
    }
}

/// Ends a test PD with its verdict on stdout, the line the system tests look for
/// (`<who>: all checks passed` or `<who>: FAILED: <what>`), and exit status 0 or 1.
pub fn finish(who: &str, result: Result<(), String>) -> ! {
    match result {
        Ok(()) => {
            println!("{who}: all checks passed");
            std::process::exit(0)
        }
        Err(what) => {
            println!("{who}: FAILED: {what}");
            std::process::exit(1)
        }
    }
}

fn die(name: &str, what: &str) -> ! {
    eprintln!("PD '{name}': {what}");
    std::process::exit(EXIT_INIT_FAILED)
}

struct Mapped {
    grant: RegionGrant,
}

struct HostInit {
    name: String,
    regions: Vec<Mapped>,
}

impl Init for HostInit {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        let m = self
            .regions
            .iter()
            .find(|m| m.grant.setvar.as_deref() == Some(setvar))
            .ok_or(InitError::MissingRegion(setvar))?;
        let base = NonNull::new(m.grant.vaddr as usize as *mut u8)
            .ok_or(InitError::MissingRegion(setvar))?;
        let len = usize::try_from(m.grant.size).map_err(|_| InitError::MissingRegion(setvar))?;
        // SAFETY: map_regions mapped exactly vaddr..vaddr+size with these perms, page
        // aligned, and never unmaps it; other PDs touch it only from other processes.
        Ok(unsafe { Region::from_raw_parts(base, len, m.grant.perms) })
    }

    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        // setvar_vaddr names are variables holding the vaddr, as in Microkit;
        // region_paddr setvars have no meaning without physical memory.
        self.regions
            .iter()
            .find(|m| m.grant.setvar.as_deref() == Some(name))
            .map(|m| m.grant.vaddr)
            .ok_or(InitError::MissingVariable(name))
    }

    fn pd_name(&self) -> &str {
        &self.name
    }
}

fn prot(perms: ipc::Perms) -> libc::c_int {
    // PROT_NONE is 0, the default the fold starts from.
    perms.bits(libc::PROT_READ, libc::PROT_WRITE, libc::PROT_EXEC)
}

/// What only `init` may use: descriptors of the granted regions by `setvar_vaddr`
/// name ([`region_file`]), and the incoming notification descriptors the kernel
/// holds ([`wait_for_notification`]).
struct InitState {
    files: RegionFiles,
    notify_in: Vec<RawFd>,
}

static INIT_STATE: std::sync::Mutex<Option<InitState>> = std::sync::Mutex::new(None);

fn init_state() -> std::sync::MutexGuard<'static, Option<InitState>> {
    INIT_STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_init_state(state: Option<InitState>) {
    *init_state() = state;
}

/// Host-only: for a PD whose `init` runs a loop of its own and never returns (the
/// guest standing in for a vCPU), waits up to `limit` for a notification on any
/// of its channels, as seL4_Wait would block on its notification; true when one
/// came. What it takes here the handler never sees, which is no loss for a PD
/// whose handler never runs. Outside `init` (nothing to wait on) it sleeps `limit`.
pub fn wait_for_notification(limit: Duration) -> bool {
    let state = init_state();
    let Some(state) = state.as_ref().filter(|s| !s.notify_in.is_empty()) else {
        std::thread::sleep(limit);
        return false;
    };
    // SAFETY: these are the HostKernel's incoming eventfds; it outlives `init`, and
    // the state is cleared before `init` returns, so they are open while used here.
    let fds: Vec<_> = state
        .notify_in
        .iter()
        .map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) })
        .collect();
    let ms = i32::try_from(limit.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    let ready = sys::poll_readable(&fds, ms).unwrap_or_default();
    let mut any = false;
    for (fd, ready) in fds.iter().zip(ready) {
        if ready {
            any |= sys::eventfd_drain(*fd).unwrap_or(false);
        }
    }
    any
}

/// Host-only: the file behind the region this PD was granted under `setvar`, for a
/// PD whose host build does file I/O on it (storvsp's disk: pread/pwrite, fsync,
/// hole punching) instead of going through the mapping. It is the same object the
/// mapping shows, opened with the same rights (read-only for an `r` grant), so it
/// grants nothing system.xml did not. Only for regions the supervisor was told to
/// back with a host file (`SimOptions::region_files`); a memfd-backed region gives
/// `None` and the PD uses its mapping.
///
/// Only during the PD's `init` (afterwards `None`): from then on the mappings
/// are all a PD holds, and what it took here is all it keeps.
pub fn region_file(setvar: &str) -> Option<std::fs::File> {
    let state = init_state();
    let (_, fd) = state
        .as_ref()?
        .files
        .iter()
        .find(|(name, _)| name == setvar)?;
    fd.try_clone().ok().map(std::fs::File::from)
}

type RegionFiles = Vec<(String, OwnedFd)>;

/// Maps every granted region; the descriptors are closed except one per named
/// region the supervisor backed with a host file, kept for [`region_file`] until
/// `init` returns. A memfd-backed region leaves nothing behind but its mapping.
fn map_regions(grants: &[RegionGrant]) -> Result<(Vec<Mapped>, RegionFiles), String> {
    // One descriptor may back several maps (a region mapped twice), so ownership is
    // taken once per distinct descriptor.
    let mut fds: Vec<RawFd> = grants.iter().map(|g| g.fd).collect();
    fds.sort_unstable();
    fds.dedup();
    // SAFETY: the supervisor granted these descriptors to this PD alone, and the
    // config parser refused any of them appearing as a channel or fault descriptor.
    let owned: Vec<OwnedFd> = fds
        .iter()
        .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    let mut out = Vec::with_capacity(grants.len());
    let mut files = Vec::new();
    for g in grants {
        let fd = fds
            .binary_search(&g.fd)
            .ok()
            .and_then(|i| owned.get(i))
            .ok_or_else(|| format!("region '{}' has no descriptor", g.mr))?;
        sys::map_fixed(g.vaddr, g.size, prot(g.perms), fd.as_fd()).map_err(|e| {
            format!(
                "cannot map region '{}' at {:#x} (size {:#x}): {e}",
                g.mr, g.vaddr, g.size
            )
        })?;
        if let (Some(setvar), true) = (&g.setvar, g.host_file) {
            let dup = fd
                .try_clone()
                .map_err(|e| format!("region '{}': {e}", g.mr))?;
            files.push((setvar.clone(), dup));
        }
        out.push(Mapped { grant: g.clone() });
    }
    // Once init is done the mappings are all the PD keeps: without the descriptor
    // it cannot map the region again, with other rights or at another place.
    drop(owned);
    Ok((out, files))
}

const PP_TOKEN: u64 = 1 << 32;

enum Never {}

/// A channel end this PD serves calls on.
struct Callee {
    ch: Channel,
    pp: Pp,
}

fn event_loop<H: Handler>(mut handler: H, mut kernel: HostKernel) -> Result<Never, String> {
    let epoll = sys::epoll_create().map_err(|e| format!("epoll: {e}"))?;
    // The loop owns the incoming descriptors; the kernel keeps the outgoing ones.
    let mut incoming_notify: Vec<Option<OwnedFd>> = Vec::new();
    let mut callees: Vec<Callee> = Vec::new();
    for (id, slot) in kernel.slots.iter_mut().enumerate() {
        incoming_notify.push(None);
        let Some(slot) = slot else { continue };
        if let Some(fd) = slot.notify_in.take() {
            sys::epoll_add(epoll.as_fd(), fd.as_fd(), id as u64)
                .map_err(|e| format!("epoll: {e}"))?;
            incoming_notify[id] = Some(fd);
        }
        let serves = matches!(&slot.pp, Some(pp) if pp.role == PpRole::Callee);
        if let (true, Some(ch)) = (serves, Channel::try_new(id as u8)) {
            if let Some(pp) = slot.pp.take() {
                sys::epoll_add(epoll.as_fd(), pp.socket.as_fd(), PP_TOKEN | id as u64)
                    .map_err(|e| format!("epoll: {e}"))?;
                callees.push(Callee { ch, pp });
            }
        }
    }
    let mut tokens = Vec::new();
    let mut buffers = CallBuffers {
        packet: [0; wire::MAX_PACKET],
        reply: Vec::with_capacity(wire::MAX_PACKET),
    };
    // After work, poll before sleeping (see spin.rs).
    let mut adaptive = spin::Adaptive::default();
    let mut spin = adaptive.start();
    // Whether the last wait polled, and whether `spin` started after it.
    let mut polling = false;
    let mut fresh = true;
    // The handler polled (and may have masked its peers' notifications) since it
    // was last parked.
    let mut unparked = false;
    loop {
        let mut worked = serve_calls(&mut handler, &mut kernel, &callees, &mut buffers);
        if polling {
            unparked = true;
            worked |= handler_step(&mut handler, &mut kernel, Handler::poll, "poll");
        }
        if worked {
            // Calls and polled work are found in shared memory, not by the wait:
            // account for them here, and poll afresh after the work.
            if !fresh {
                adaptive.ended(&spin, polling);
            }
            spin = adaptive.start();
        }
        fresh = false;
        polling = spin.again();
        if !polling && unparked {
            // Before sleeping, the handler unmasks what it masked and looks once
            // more; what it found there means polling pays.
            unparked = false;
            if handler_step(&mut handler, &mut kernel, Handler::park, "park") {
                spin = adaptive.start();
                fresh = true;
                continue;
            }
        }
        // Before sleeping, ask callers for doorbells, then look once more.
        if !polling
            && callees
                .iter()
                .fold(false, |p, c| c.pp.page.callee_sleeps() | p)
        {
            callees.iter().for_each(|c| c.pp.page.callee_awake());
            continue;
        }
        // Polled work is in shared memory; notifications (a syscall to look at)
        // are looked for at the pace the clock is, a few polls apart.
        if polling && !spin.checked() {
            continue;
        }
        let waited = sys::epoll_wait(epoll.as_fd(), &mut tokens, if polling { 0 } else { -1 });
        if !polling {
            callees.iter().for_each(|c| c.pp.page.callee_awake());
        }
        waited.map_err(|e| format!("epoll_wait: {e}"))?;
        if tokens.is_empty() {
            continue;
        }
        adaptive.ended(&spin, polling);
        let mut set = ChannelSet::EMPTY;
        for &token in &tokens {
            let Some(ch) = Channel::try_new((token & 0xff) as u8) else {
                continue;
            };
            if token & PP_TOKEN != 0 {
                if let Some(i) = callees.iter().position(|c| c.ch == ch) {
                    if caller_gone(&callees[i].pp) {
                        // Stop watching the socket and the page of a caller whose
                        // process is gone.
                        let gone = callees.swap_remove(i);
                        let _ = sys::epoll_del(epoll.as_fd(), gone.pp.socket.as_fd());
                    }
                }
            } else if let Some(fd) = incoming_notify
                .get(ch.index() as usize)
                .and_then(Option::as_ref)
            {
                match sys::eventfd_drain(fd.as_fd()) {
                    Ok(true) => set.insert(ch),
                    Ok(false) => {}
                    Err(e) => return Err(format!("reading notification on {ch}: {e}")),
                }
            }
        }
        if !set.is_empty() {
            if let Err(e) = handler.notified(&mut kernel, set) {
                eprintln!(
                    "PD '{}': handler error in notified({set:?}): {e}",
                    kernel.name
                );
            }
        }
        // The next poll's budget counts from the end of the work the notification
        // brought, as after polled work. Counted from the wake-up, work longer
        // than the budget (a 64 KiB write, ~10 us) used it up before polling
        // began, the periodic probe's 2 us too: a PD woken for each request never
        // polled again once its budget had shrunk that far.
        spin = adaptive.start();
        fresh = true;
    }
}

/// Runs [`Handler::poll`] or [`Handler::park`]; whether it found work. An error
/// is the handler's to report, as one from `notified` is; the loop goes on.
fn handler_step<H: Handler>(
    handler: &mut H,
    kernel: &mut HostKernel,
    step: fn(&mut H, &mut dyn Kernel) -> Result<bool, ipc::HandlerError>,
    what: &str,
) -> bool {
    step(handler, kernel).unwrap_or_else(|e| {
        eprintln!("PD '{}': handler error in {what}: {e}", kernel.name);
        false
    })
}

/// Takes one doorbell off a caller's socket (the page says what it was for);
/// true when the caller's end is closed.
fn caller_gone(pp: &Pp) -> bool {
    let mut doorbell = [0u8; 8];
    match sys::try_recv_packet(pp.socket.as_fd(), &mut doorbell) {
        Ok(Some(0)) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::InvalidData,
    }
}

/// Where calls are decoded and replies encoded: made once, since the loop looks
/// for calls on every poll (a fresh zeroed packet each time cost a memset).
struct CallBuffers {
    packet: [u8; wire::MAX_PACKET],
    reply: Vec<u8>,
}

/// Serves the call pending on each callee page, at most one each, so one busy
/// caller cannot starve the others; true when any was.
fn serve_calls<H: Handler>(
    handler: &mut H,
    kernel: &mut HostKernel,
    callees: &[Callee],
    buffers: &mut CallBuffers,
) -> bool {
    let mut served = false;
    let CallBuffers { packet, reply } = buffers;
    for Callee { ch, pp } in callees {
        let Some(request) = pp.page.take_call(packet) else {
            continue;
        };
        served = true;
        let mut mrs = MessageRegisters::new();
        let outcome = match wire::decode_call(request, &mut mrs) {
            Some(msg) => handler
                .protected(kernel, ipc::PpCall::new(*ch, msg, &mut mrs))
                .map_err(|e| format!("handler error in protected({ch}): {e}")),
            None => Err(format!("malformed protected call on {ch}")),
        };
        match outcome {
            Ok(info) => wire::encode_reply(ReplyStatus::OK, info, &mrs, reply),
            Err(e) => {
                eprintln!("PD '{}': {e}", kernel.name);
                wire::encode_reply(
                    ReplyStatus::FAILED,
                    ipc::MessageInfo::default(),
                    &mrs,
                    reply,
                );
            }
        }
        // A caller that died mid-call never reads the reply; its closed socket
        // tells the event loop.
        if pp.page.put_reply(reply) {
            let _ = call_page::ring(pp.socket.as_fd());
        }
    }
    served
}
