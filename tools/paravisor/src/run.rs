//! `paravisor run IMAGE`: boots a bare-metal image in QEMU (TCG, one CPU), the
//! serial console on stdout, and exits with the status the system halted with
//! (isa-debug-exit), 124 on `--timeout`. `--icount` makes the time-stamp counter
//! count guest instructions, for the kernel's instruction-count measurements.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The boot image written by `paravisor build`.
    pub image: PathBuf,
    /// Kill QEMU after this many seconds (exit status 124).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Deterministic instruction counting (`-icount shift=0`): rdtsc counts instructions.
    #[arg(long)]
    pub icount: bool,
    /// RAM for QEMU's `-m`. The kernel uses the range it is loaded into (up to
    /// 3 GiB, below the PCI hole); memory regions, guest RAM included, come out
    /// of that.
    #[arg(long, default_value = "1G")]
    pub memory: String,
    /// The QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: String,
    /// One more QEMU argument (repeatable), e.g. the disk scripts/boot attaches:
    /// `--qemu-arg=-drive --qemu-arg=file=disk.img,if=none,format=raw,id=d0`.
    #[arg(long = "qemu-arg", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
}

/// QEMU's isa-debug-exit status `(s << 1) | 1` back to `s`.
pub fn guest_status(qemu_status: i32) -> Option<i32> {
    (qemu_status & 1 == 1).then_some(qemu_status >> 1)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let mut cmd = Command::new(&args.qemu);
    cmd.args(["-accel", "tcg", "-cpu", "max", "-smp", "1"])
        .args(["-m", &args.memory])
        .args([
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-monitor",
            "none",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        // Lets the debug kernel raise ISA irq lines for the boot test's irq checks.
        .args(["-device", "pc-testdev"])
        .args(&args.qemu_args)
        .arg("-kernel")
        .arg(&args.image)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    if args.icount {
        cmd.args(["-icount", "shift=0"]);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::msg(format!("cannot start {}: {e}", args.qemu)))?;
    let deadline = started + Duration::from_secs(args.timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("paravisor run: timed out after {} s", args.timeout);
                std::process::exit(124);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Failure::msg(format!("waiting for QEMU: {e}"))),
        }
    };
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let code = status.code().unwrap_or(-1);
    let system_status = guest_status(code);
    eprintln!(
        "paravisor run: QEMU exited with {code} after {:.2} s{}",
        started.elapsed().as_secs_f64(),
        match system_status {
            Some(s) => format!(" (system halted with status {s})"),
            None => String::new(),
        }
    );
    match system_status {
        Some(0) => Ok(()),
        Some(s) => {
            if !err.is_empty() {
                eprint!("{err}");
            }
            std::process::exit(s.clamp(1, 123))
        }
        None => {
            Err(Failure::msg(format!(
            "QEMU exited with {code} without a status from the system (no isa-debug-exit write){}",
            if err.is_empty() { String::new() } else { format!(": {}", err.trim()) }
        )))
        }
    }
}
