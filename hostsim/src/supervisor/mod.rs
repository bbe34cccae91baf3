//! The supervisor: creates the objects system.xml describes, spawns every PD as its
//! own process holding only its grants, relays and prefixes their output, reports
//! faults by PD name while the rest keep running, and stops the system when a PD
//! exits (its status is the system's) or the timeout passes.
#![allow(unsafe_code)]

mod image;
mod output;
mod plan;
mod sandbox;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::config::ENV_VAR;
use crate::pd::signal_name;
use crate::seccomp;
use crate::sys;
use crate::wire::FaultRecord;
use crate::{EXIT_NO_PD_EXITED, EXIT_TIMEOUT};
pub use image::{default_search_paths, resolve_image};
use output::LineSplitter;
use plan::PdPlanParts;

/// Output lines kept in [`SimOutcome::log`]; older ones are dropped.
pub const LOG_CAPACITY: usize = 100_000;

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Directories searched for a relative program image after the system.xml
    /// directory, in order.
    pub search_paths: Vec<PathBuf>,
    /// Kill everything and report after this long.
    pub timeout: Option<Duration>,
    /// Print PD output (prefixed with the PD name) and reports as they happen.
    pub echo: bool,
    /// Environment for every PD; PDs otherwise start with an empty environment.
    pub env: Vec<(OsString, OsString)>,
    /// Memory regions backed by a host file instead of a fresh memfd, by region
    /// name: a disk image stays on the host after the run. The file must exist with
    /// exactly the region's size; PDs get it with the perms their maps grant.
    pub region_files: Vec<(String, PathBuf)>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            search_paths: default_search_paths(),
            timeout: None,
            echo: true,
            env: Vec::new(),
            region_files: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub enum SimError {
    /// The description uses something host-sim cannot run yet.
    Unsupported {
        what: String,
    },
    /// A guest VM: host-sim has no VM_ENTER; only the bare-metal kernel runs guests.
    VirtualMachine {
        name: String,
    },
    /// The description is inconsistent (the checker should have caught it).
    Invalid {
        what: String,
    },
    ImageNotFound {
        pd: String,
        image: PathBuf,
        searched: Vec<PathBuf>,
    },
    Spawn {
        pd: String,
        path: PathBuf,
        err: io::Error,
    },
    Os {
        what: String,
        err: io::Error,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { what } => write!(f, "host-sim does not support {what} yet"),
            Self::VirtualMachine { name } => write!(
                f,
                "not supported in host-sim: virtual_machine {name} (guests run on the bare-metal kernel)"
            ),
            Self::Invalid { what } => write!(f, "invalid system: {what}"),
            Self::ImageNotFound {
                pd,
                image,
                searched,
            } => {
                write!(
                    f,
                    "PD '{pd}': program image '{}' not found; looked in:",
                    image.display()
                )?;
                for p in searched {
                    write!(f, " {}", p.display())?;
                }
                write!(f, " (build it, or pass its directory as a search path)")
            }
            Self::Spawn { pd, path, err } => {
                write!(f, "PD '{pd}': cannot start {}: {err}", path.display())
            }
            Self::Os { what, err } => write!(f, "{what}: {err}"),
        }
    }
}

impl std::error::Error for SimError {}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// A line the supervisor itself reported about the PD.
    Supervisor,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub pd: String,
    pub stream: Stream,
    pub text: String,
}

/// A PD that died by a fault (or a panic, or a fatal signal) while the rest ran on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultReport {
    pub pd: String,
    /// "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "panic" or "signal N".
    pub kind: String,
    /// The faulting address, when the runtime could report one.
    pub address: Option<u64>,
    pub ip: Option<u64>,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PD '{}' faulted: {}", self.pd, self.kind)?;
        if let Some(a) = self.address {
            write!(f, " at address {a:#x}")?;
        }
        if let Some(ip) = self.ip {
            write!(f, " (ip {ip:#x})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimExit {
    /// A PD exited on its own; the others were stopped.
    Exited { pd: String, code: i32 },
    /// Every PD faulted; none exited.
    AllFaulted,
    /// The timeout passed with these PDs still running; all were killed.
    TimedOut { still_running: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct SimOutcome {
    pub exit: SimExit,
    pub faults: Vec<FaultReport>,
    pub log: VecDeque<LogLine>,
}

impl SimOutcome {
    /// The status `paravisor sim` exits with.
    pub fn exit_code(&self) -> i32 {
        match &self.exit {
            SimExit::Exited { code, .. } => *code,
            SimExit::AllFaulted => EXIT_NO_PD_EXITED,
            SimExit::TimedOut { .. } => EXIT_TIMEOUT,
        }
    }

    /// Lines `pd` wrote to stdout.
    pub fn stdout_of<'a>(&'a self, pd: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.log
            .iter()
            .filter(move |l| l.pd == pd && l.stream == Stream::Stdout)
            .map(|l| l.text.as_str())
    }

    pub fn lines_of<'a>(&'a self, pd: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.log
            .iter()
            .filter(move |l| l.pd == pd)
            .map(|l| l.text.as_str())
    }
}

struct Pipe<R> {
    reader: Option<R>,
    splitter: LineSplitter,
}

struct RunningPd {
    name: String,
    child: Child,
    running: bool,
    /// Readable once the process has exited; without one we fall back to polling.
    pidfd: Option<OwnedFd>,
    stdout: Pipe<ChildStdout>,
    stderr: Pipe<ChildStderr>,
    fault_read: Option<OwnedFd>,
    fault_bytes: Vec<u8>,
}

#[derive(Debug)]
pub struct Simulation {
    pds: Vec<RunningPd>,
    echo: bool,
    deadline: Option<Instant>,
    log: VecDeque<LogLine>,
    faults: Vec<FaultReport>,
}

impl fmt::Debug for RunningPd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningPd")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl Simulation {
    /// Creates the system's objects and starts every PD. The PDs are stopped when
    /// the returned value is dropped; call it from the thread that will outlive them
    /// (a PD is killed when the thread that spawned it exits).
    pub fn launch(system: &sdf::System, opts: &SimOptions) -> Result<Self, SimError> {
        sandbox::harden_supervisor().map_err(|err| SimError::Os {
            what: "making the supervisor non-dumpable".into(),
            err,
        })?;
        let plans = plan::plan(system, &opts.region_files)?;
        let system_dir = system
            .file
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut sim = Simulation {
            pds: Vec::new(),
            echo: opts.echo,
            deadline: opts.timeout.map(|t| Instant::now() + t),
            log: VecDeque::new(),
            faults: Vec::new(),
        };
        // Resolve every image before starting anything, so a typo starts nothing.
        let mut images = Vec::new();
        for (pd, plan) in system.all_pds().iter().zip(&plans) {
            debug_assert_eq!(pd.name, plan.config.name);
            let path = resolve_image(&system_dir, &pd.program_image.path, &opts.search_paths)
                .map_err(|searched| SimError::ImageNotFound {
                    pd: pd.name.clone(),
                    image: pd.program_image.path.clone(),
                    searched,
                })?;
            images.push(path);
        }
        let identities = sandbox::pd_identities(plans.len());
        // One sealed copy per distinct image, dropped once every PD is running.
        let mut sealed: HashMap<PathBuf, Option<OwnedFd>> = HashMap::new();
        for (index, (plan, path)) in plans.into_iter().zip(images).enumerate() {
            let spawn_err = |err| SimError::Spawn {
                pd: plan.config.name.clone(),
                path: path.clone(),
                err,
            };
            let image = match sealed.get(&path) {
                Some(fd) => fd.as_ref().map(AsRawFd::as_raw_fd),
                None => {
                    let fd = sandbox::sealed_image(&path).map_err(spawn_err)?;
                    let raw = fd.as_ref().map(AsRawFd::as_raw_fd);
                    sealed.insert(path.clone(), fd);
                    raw
                }
            };
            let granted = plan.granted_fds();
            let mut filter = seccomp::Program::pd();
            let mut cmd = match image {
                Some(fd) => Command::new(format!("/proc/self/fd/{fd}")),
                None => Command::new(&path),
            };
            cmd.arg0(&path)
                .env_clear()
                .envs(opts.env.iter().map(|(k, v)| (k, v)))
                .env(ENV_VAR, plan.config.encode())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(id) = identities.as_ref().and_then(|ids| ids.get(index)) {
                // std drops supplementary groups, then sets gid and uid, before
                // running restrict_child.
                cmd.uid(*id).gid(*id);
            }
            // SAFETY: restrict_child only makes async-signal-safe system calls and
            // writes into the filter and vector allocated before the fork.
            unsafe {
                cmd.pre_exec(move || sandbox::restrict_child(&granted, &mut filter));
            }
            let mut child = cmd.spawn().map_err(spawn_err)?;
            let PdPlanParts {
                name,
                grants,
                fault_read,
            } = plan.into_parts();
            // The PD holds its grants now; the supervisor keeps none of them.
            drop(grants);
            let pidfd = sys::pidfd_open(child.id() as libc::pid_t).ok();
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            for fd in [
                stdout.as_ref().map(AsFd::as_fd),
                stderr.as_ref().map(AsFd::as_fd),
            ]
            .into_iter()
            .flatten()
            {
                sys::set_nonblocking(fd).map_err(|err| SimError::Os {
                    what: "configuring a PD output pipe".into(),
                    err,
                })?;
            }
            sim.pds.push(RunningPd {
                name,
                child,
                running: true,
                pidfd,
                stdout: Pipe {
                    reader: stdout,
                    splitter: LineSplitter::default(),
                },
                stderr: Pipe {
                    reader: stderr,
                    splitter: LineSplitter::default(),
                },
                fault_read: Some(fault_read),
                fault_bytes: Vec::new(),
            });
        }
        Ok(sim)
    }

    /// Relays output and watches the PDs until one exits, all have faulted, or the
    /// timeout passes. Every PD is gone when this returns.
    pub fn wait(mut self) -> Result<SimOutcome, SimError> {
        let exit = self.run_until_done()?;
        self.settle_the_rest();
        self.stop_all();
        Ok(SimOutcome {
            exit,
            faults: std::mem::take(&mut self.faults),
            log: std::mem::take(&mut self.log),
        })
    }

    fn run_until_done(&mut self) -> Result<SimExit, SimError> {
        loop {
            if self.pds.iter().all(|p| !p.running) {
                return Ok(SimExit::AllFaulted);
            }
            let timeout_ms = match self.deadline {
                None => 200,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let still_running = self
                            .pds
                            .iter()
                            .filter(|p| p.running)
                            .map(|p| p.name.clone())
                            .collect::<Vec<_>>();
                        self.report_all(&format!(
                            "timeout: still running: {}",
                            still_running.join(", ")
                        ));
                        return Ok(SimExit::TimedOut { still_running });
                    }
                    left.as_millis().clamp(1, 200) as i32
                }
            };
            let mut fds = Vec::new();
            for pd in &self.pds {
                if let Some(fd) = pd.pidfd.as_ref().filter(|_| pd.running) {
                    fds.push(fd.as_fd());
                }
                if let Some(r) = &pd.stdout.reader {
                    fds.push(r.as_fd());
                }
                if let Some(r) = &pd.stderr.reader {
                    fds.push(r.as_fd());
                }
                if let Some(r) = &pd.fault_read {
                    fds.push(r.as_fd());
                }
            }
            sys::poll_readable(&fds, timeout_ms).map_err(|err| SimError::Os {
                what: "poll".into(),
                err,
            })?;
            drop(fds);
            for i in 0..self.pds.len() {
                self.drain_output(i);
                if !self.pds[i].running {
                    continue;
                }
                let status = self.pds[i].child.try_wait().map_err(|err| SimError::Os {
                    what: format!("waiting for PD '{}'", self.pds[i].name),
                    err,
                })?;
                if let Some(status) = status {
                    if let Some(exit) = self.on_exit(i, status) {
                        return Ok(exit);
                    }
                }
            }
        }
    }

    /// A PD's process ended: a fault is reported and contained, a plain exit ends
    /// the system.
    fn on_exit(&mut self, i: usize, status: ExitStatus) -> Option<SimExit> {
        self.pds[i].running = false;
        self.pds[i].pidfd = None;
        self.drain_to_eof(i);
        let name = self.pds[i].name.clone();
        let record = FaultRecord::decode(self.pds[i].fault_bytes.get(..24).unwrap_or_default());
        let fault = match (record, status.code(), status.signal()) {
            (Some(rec), _, _) => Some(fault_report(name.clone(), rec)),
            (None, _, Some(sig)) => Some(FaultReport {
                pd: name.clone(),
                kind: signal_name(sig as u32),
                address: None,
                ip: None,
            }),
            (None, Some(code), _) => {
                self.report(&name, &format!("PD '{name}' exited with status {code}"));
                return Some(SimExit::Exited { pd: name, code });
            }
            (None, None, None) => None,
        };
        if let Some(f) = fault {
            self.report(&name, &f.to_string());
            self.faults.push(f);
        }
        None
    }

    /// The system is ending: account for PDs that ended meanwhile. A PD that wrote a
    /// fault record faulted even if it has not finished dying: the record is written
    /// before its descriptors close, so before any peer could have noticed the death
    /// (say, as PeerGone) and exited in reaction.
    fn settle_the_rest(&mut self) {
        for i in 0..self.pds.len() {
            if !self.pds[i].running {
                continue;
            }
            self.drain_output(i);
            if let Ok(Some(status)) = self.pds[i].child.try_wait() {
                // A second exit does not change the system's status; it is reported.
                let _ = self.on_exit(i, status);
                continue;
            }
            let bytes = self.pds[i].fault_bytes.get(..24).unwrap_or_default();
            if let Some(rec) = FaultRecord::decode(bytes) {
                let pd = &mut self.pds[i];
                pd.running = false;
                let _ = pd.child.kill();
                let _ = pd.child.wait();
                self.drain_to_eof(i);
                let f = fault_report(self.pds[i].name.clone(), rec);
                self.report(&f.pd.clone(), &f.to_string());
                self.faults.push(f);
            }
        }
    }

    fn report(&mut self, pd: &str, text: &str) {
        if self.echo {
            eprintln!("hostsim: {text}");
        }
        self.push_log(LogLine {
            pd: pd.to_string(),
            stream: Stream::Supervisor,
            text: text.to_string(),
        });
    }

    fn report_all(&mut self, text: &str) {
        self.report("", text);
    }

    fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Reads whatever the PD has written so far without blocking.
    fn drain_output(&mut self, i: usize) {
        let mut lines = Vec::new();
        let pd = &mut self.pds[i];
        let mut buf = [0u8; 8192];
        drain_pipe(&mut pd.stdout, Stream::Stdout, &mut buf, &mut lines);
        drain_pipe(&mut pd.stderr, Stream::Stderr, &mut buf, &mut lines);
        if let Some(fd) = &pd.fault_read {
            loop {
                match sys::read_nonblocking(fd.as_fd(), &mut buf) {
                    Ok(Some(0)) | Err(_) => {
                        pd.fault_read = None;
                        break;
                    }
                    Ok(Some(n)) => {
                        // One record is all a PD writes; ignore anything beyond it.
                        let room = 24usize.saturating_sub(pd.fault_bytes.len());
                        pd.fault_bytes.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Ok(None) => break,
                }
            }
        }
        let name = pd.name.clone();
        for (stream, text) in lines {
            if self.echo {
                match stream {
                    Stream::Stdout => println!("[{name}] {text}"),
                    _ => eprintln!("[{name}] {text}"),
                }
            }
            self.push_log(LogLine {
                pd: name.clone(),
                stream,
                text,
            });
        }
    }

    /// After a PD's process is gone its pipes reach end of file promptly, unless it
    /// handed them to a process of its own; wait a bounded time for that.
    fn drain_to_eof(&mut self, i: usize) {
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            self.drain_output(i);
            let pd = &self.pds[i];
            let open: Vec<_> = [
                pd.stdout.reader.as_ref().map(AsFd::as_fd),
                pd.stderr.reader.as_ref().map(AsFd::as_fd),
                pd.fault_read.as_ref().map(AsFd::as_fd),
            ]
            .into_iter()
            .flatten()
            .collect();
            if open.is_empty() || Instant::now() >= until {
                return;
            }
            let _ = sys::poll_readable(&open, 50);
        }
    }

    fn stop_all(&mut self) {
        for pd in &mut self.pds {
            if std::mem::take(&mut pd.running) {
                let _ = pd.child.kill();
                let _ = pd.child.wait();
            }
        }
        for i in 0..self.pds.len() {
            self.drain_to_eof(i);
        }
    }

    /// The PDs' process ids, by name (for tests that look at /proc).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.pds
            .iter()
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }
}

fn fault_report(pd: String, rec: FaultRecord) -> FaultReport {
    let has_address = rec.kind != FaultRecord::PANIC;
    FaultReport {
        pd,
        kind: signal_name(rec.kind),
        address: has_address.then_some(rec.address),
        ip: has_address.then_some(rec.ip),
    }
}

fn drain_pipe<R: AsFd>(
    pipe: &mut Pipe<R>,
    stream: Stream,
    buf: &mut [u8],
    lines: &mut Vec<(Stream, String)>,
) {
    let Some(reader) = &pipe.reader else { return };
    loop {
        match sys::read_nonblocking(reader.as_fd(), buf) {
            Ok(Some(0)) | Err(_) => {
                pipe.splitter.finish(&mut |l| lines.push((stream, l)));
                pipe.reader = None;
                return;
            }
            Ok(Some(n)) => {
                let chunk = buf.get(..n).unwrap_or_default();
                pipe.splitter.feed(chunk, &mut |l| lines.push((stream, l)));
            }
            Ok(None) => return,
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        for pd in &mut self.pds {
            if std::mem::take(&mut pd.running) {
                let _ = pd.child.kill();
                let _ = pd.child.wait();
            }
        }
    }
}
