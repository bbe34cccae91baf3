//! host-sim round-trip latency against the raw kernel primitive it is built on,
//! measured in the same run on the same machine:
//! - notify: two PDs ping-ponging notifications through the runtime (epoll loop,
//!   capability checks, handler dispatch) vs. two processes ping-ponging an eventfd
//!   pair with blocking reads;
//! - PPC: a PD calling a higher-priority PD through `pp_call` vs. two processes
//!   ping-ponging packets over a SOCK_SEQPACKET pair.
//!
//! `cargo bench -p hostsim --bench notify_rtt`; `QUICK=1` for a ~1-2 s smoke run.
//! The bench binary is also every process it measures: it re-executes itself as
//! the PDs (host-sim sets their config variable) and as the raw peers.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostsim::{SimExit, SimOptions, Simulation};
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, HandlerReply, Kernel, MessageInfo,
    MessageRegisters, PpCall,
};

const RAW_ROLE: &str = "NOTIFY_RTT_RAW_ROLE";
const ROUNDS: &str = "NOTIFY_RTT_ROUNDS";
const CH: Channel = Channel::new(0);

fn rounds_from_env() -> u64 {
    std::env::var(ROUNDS)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

// ---- host-sim PDs -------------------------------------------------------------

struct Ping {
    left: u64,
    rounds: u64,
    started: Instant,
}

impl Handler for Ping {
    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        self.left -= 1;
        if self.left == 0 {
            let ns = self.started.elapsed().as_nanos();
            println!("rounds={} ns={ns}", self.rounds);
            std::process::exit(0);
        }
        k.notify(CH)?;
        Ok(())
    }
}

struct Echo;

impl Handler for Echo {
    fn notified(&mut self, k: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        k.notify(CH)?;
        Ok(())
    }

    fn protected(&mut self, _: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        Ok(call.msg)
    }
}

fn run_pd() -> ! {
    let rounds = rounds_from_env();
    hostsim::run(
        move |init, k| -> Result<Box<dyn HandlerBox>, ipc::InitError> {
            match init.pd_name() {
                "ping" => {
                    let started = Instant::now();
                    k.notify(CH)
                        .map_err(|_| ipc::InitError::MissingChannel(CH))?;
                    Ok(Box::new(Ping {
                        left: rounds,
                        rounds,
                        started,
                    }))
                }
                "caller" => {
                    let mut mrs = MessageRegisters::new();
                    let started = Instant::now();
                    for _ in 0..rounds {
                        if CH.pp_call(k, MessageInfo::new(1, 1), &mut mrs).is_err() {
                            std::process::exit(1);
                        }
                    }
                    println!("rounds={rounds} ns={}", started.elapsed().as_nanos());
                    std::process::exit(0)
                }
                _ => Ok(Box::new(Echo)),
            }
        },
    )
}

/// `Handler` is not object safe through `run`'s generic, so box behind a shim.
trait HandlerBox: Handler {}
impl<T: Handler> HandlerBox for T {}

impl Handler for Box<dyn HandlerBox> {
    fn notified(&mut self, k: &mut dyn Kernel, c: ChannelSet) -> Result<(), HandlerError> {
        (**self).notified(k, c)
    }

    fn protected(&mut self, k: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        (**self).protected(k, call)
    }
}

fn hostsim_rtt(xml: &str, timer_pd: &str, rounds: u64) -> Duration {
    let system = sdf::parse_and_check(xml, Path::new("bench/system.xml"))
        .unwrap_or_else(|d| panic!("bench system: {d}"));
    let opts = SimOptions {
        search_paths: vec![],
        timeout: Some(Duration::from_secs(120)),
        echo: false,
        env: vec![(ROUNDS.into(), rounds.to_string().into())],
        region_files: vec![],
    };
    let outcome = Simulation::launch(&system, &opts)
        .and_then(Simulation::wait)
        .unwrap_or_else(|e| panic!("bench sim: {e}"));
    assert_eq!(
        outcome.exit,
        SimExit::Exited {
            pd: timer_pd.into(),
            code: 0
        },
        "{:#?}",
        outcome.log
    );
    let line = outcome
        .stdout_of(timer_pd)
        .next()
        .unwrap_or_else(|| panic!("no result from {timer_pd}"));
    let ns: u64 = line
        .split("ns=")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad result line {line:?}"));
    Duration::from_nanos(ns / rounds)
}

/// Two PDs of this executable, `first` at priority 10 and `second` at `priority`,
/// joined by one channel whose ends carry `first_end` and `second_end` attributes.
fn two_pd_system(exe: &Path, first: &str, second: &str, priority: u8, ends: [&str; 2]) -> String {
    let exe = exe.display();
    let [first_end, second_end] = ends;
    format!(
        r#"<system>
            <protection_domain name="{first}" priority="10"><program_image path="{exe}" /></protection_domain>
            <protection_domain name="{second}" priority="{priority}"><program_image path="{exe}" /></protection_domain>
            <channel><end pd="{first}" id="0" {first_end} /><end pd="{second}" id="0" {second_end} /></channel>
        </system>"#
    )
}

fn notify_system(exe: &Path) -> String {
    two_pd_system(exe, "ping", "pong", 10, ["", ""])
}

fn ppc_system(exe: &Path) -> String {
    let ends = [r#"pp="true" notify="false""#, r#"notify="false""#];
    two_pd_system(exe, "caller", "callee", 20, ends)
}

// ---- raw baselines ------------------------------------------------------------

fn read8(fd: RawFd) -> bool {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a valid u64.
    unsafe { libc::read(fd, (&raw mut v).cast(), 8) == 8 }
}

fn write8(fd: RawFd) -> bool {
    let v = 1u64;
    // SAFETY: writes 8 bytes from a valid u64.
    unsafe { libc::write(fd, (&raw const v).cast(), 8) == 8 }
}

fn send16(fd: RawFd) -> bool {
    let buf = [0u8; 16];
    // SAFETY: sends from a valid 16-byte buffer.
    unsafe { libc::send(fd, buf.as_ptr().cast(), 16, libc::MSG_NOSIGNAL) == 16 }
}

fn recv16(fd: RawFd) -> bool {
    let mut buf = [0u8; 16];
    // SAFETY: receives into a valid 16-byte buffer.
    unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), 16, 0) == 16 }
}

/// The raw peer: echoes `rounds` times on the descriptors named in its role.
fn run_raw_peer(role: &str) -> ! {
    let rounds = rounds_from_env();
    let fds: Vec<RawFd> = role
        .split(':')
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let ok = match (role.split(':').next(), fds.as_slice()) {
        (Some("eventfd"), &[inc, out]) => (0..rounds).all(|_| read8(inc) && write8(out)),
        (Some("socket"), &[sock]) => (0..rounds).all(|_| recv16(sock) && send16(sock)),
        _ => false,
    };
    std::process::exit(if ok { 0 } else { 1 })
}

fn inheritable(fd: RawFd) {
    // SAFETY: clears FD_CLOEXEC on a descriptor we own, so the peer inherits it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

fn spawn_raw_peer(exe: &Path, role: String, rounds: u64) -> std::process::Child {
    Command::new(exe)
        .env(RAW_ROLE, role)
        .env(ROUNDS, rounds.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn raw peer")
}

fn raw_eventfd_rtt(exe: &Path, rounds: u64) -> Duration {
    // SAFETY: plain eventfd creation; blocking, close-on-exec.
    let (to_peer, from_peer) = unsafe {
        (
            libc::eventfd(0, libc::EFD_CLOEXEC),
            libc::eventfd(0, libc::EFD_CLOEXEC),
        )
    };
    assert!(to_peer >= 0 && from_peer >= 0, "eventfd");
    inheritable(to_peer);
    inheritable(from_peer);
    let mut child = spawn_raw_peer(exe, format!("eventfd:{to_peer}:{from_peer}"), rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(write8(to_peer) && read8(from_peer), "raw eventfd ping-pong");
    }
    let elapsed = started.elapsed();
    assert!(child.wait().expect("raw peer").success());
    // SAFETY: closing descriptors we own and no longer use.
    unsafe {
        libc::close(to_peer);
        libc::close(from_peer);
    }
    elapsed / rounds as u32
}

fn raw_socket_rtt(exe: &Path, rounds: u64) -> Duration {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for two descriptors.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(ret, 0, "socketpair");
    inheritable(fds[1]);
    let mut child = spawn_raw_peer(exe, format!("socket:{}", fds[1]), rounds);
    // SAFETY: the peer has its copy; ours would only keep the socket alive.
    unsafe { libc::close(fds[1]) };
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(send16(fds[0]) && recv16(fds[0]), "raw socket ping-pong");
    }
    let elapsed = started.elapsed();
    assert!(child.wait().expect("raw peer").success());
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fds[0]) };
    elapsed / rounds as u32
}

// ---- driver -------------------------------------------------------------------

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if hostsim::is_pd() {
        run_pd();
    }
    if let Ok(role) = std::env::var(RAW_ROLE) {
        run_raw_peer(&role);
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let quick = std::env::var("QUICK").is_ok_and(|v| v == "1");
    let (rounds, reps) = if quick { (5_000, 1) } else { (100_000, 3) };
    let exe = std::env::current_exe().expect("bench executable");
    let notify_xml = notify_system(&exe);
    let ppc_xml = ppc_system(&exe);

    // Wall-clock figures on a shared machine mean little without the load.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("notify_rtt: load average {}", load.trim());
    let mut results = Vec::new();
    for (what, baseline, sim) in [
        (
            "notify round trip",
            "raw eventfd pair",
            (
                &notify_xml,
                "ping",
                raw_eventfd_rtt as fn(&Path, u64) -> Duration,
            ),
        ),
        (
            "PPC round trip",
            "raw seqpacket pair",
            (
                &ppc_xml,
                "caller",
                raw_socket_rtt as fn(&Path, u64) -> Duration,
            ),
        ),
    ] {
        let (xml, timer_pd, raw) = sim;
        let mut hs = Vec::new();
        let mut rw = Vec::new();
        // Interleaved, so drift in machine load hits both sides alike.
        for _ in 0..reps {
            rw.push(raw(&exe, rounds));
            hs.push(hostsim_rtt(xml, timer_pd, rounds));
        }
        let (hs, rw) = (median(hs), median(rw));
        results.push((what, baseline, hs, rw));
    }
    println!("host-sim round trips, {rounds} rounds, median of {reps}:");
    for (what, baseline, hs, rw) in results {
        println!(
            "  {what:<18} host-sim {:>8.2} us   {baseline:<18} {:>8.2} us   ratio {:.2}",
            hs.as_secs_f64() * 1e6,
            rw.as_secs_f64() * 1e6,
            hs.as_secs_f64() / rw.as_secs_f64().max(1e-12)
        );
    }
}
