//! Packs a guest kernel, initrd and command line into the payload region the VMM
//! boots from (see `vmm::boot::payload`).
//!
//! guest-payload --kernel K [--initrd I] [--cmdline S] --vmbus confidential|plain
//!               -o OUT [--size BYTES]

use std::process::ExitCode;

use vmm::boot::{BzImage, GuestPayload, PayloadFlags};

const USAGE: &str = "usage: guest-payload --kernel K [--initrd I] [--cmdline S] \
--vmbus confidential|plain -o OUT [--size BYTES]";

struct Args {
    kernel: String,
    initrd: Option<String>,
    cmdline: String,
    flags: PayloadFlags,
    out: String,
    size: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|e| format!("--size {s}: {e}"))?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("--size {s}: too large"))
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut kernel, mut initrd, mut cmdline, mut vmbus, mut out, mut size) =
        (None, None, String::new(), None, None, None);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kernel" => kernel = Some(value()?),
            "--initrd" => initrd = Some(value()?),
            "--cmdline" => cmdline = value()?,
            "--vmbus" => vmbus = Some(value()?),
            "-o" | "--output" => out = Some(value()?),
            "--size" => size = Some(parse_size(&value()?)?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let flags = match vmbus.as_deref() {
        Some("confidential") => PayloadFlags::CONFIDENTIAL_VMBUS,
        Some("plain") => PayloadFlags::empty(),
        Some(other) => return Err(format!("--vmbus {other}: want confidential or plain")),
        None => return Err(format!("--vmbus is required\n{USAGE}")),
    };
    Ok(Args {
        kernel: kernel.ok_or_else(|| format!("--kernel is required\n{USAGE}"))?,
        initrd,
        cmdline,
        flags,
        out: out.ok_or_else(|| format!("-o is required\n{USAGE}"))?,
        size,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    let kernel = read(&args.kernel)?;
    // Refuse a kernel the VMM would refuse, now rather than at guest boot.
    BzImage::parse(&kernel).map_err(|e| format!("{}: {e}", args.kernel))?;
    let initrd = match &args.initrd {
        Some(p) => read(p)?,
        None => Vec::new(),
    };
    let payload = GuestPayload {
        flags: args.flags,
        kernel: &kernel,
        initrd: &initrd,
        cmdline: args.cmdline.as_bytes(),
    };
    let bytes = payload.encode(args.size).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, &bytes).map_err(|e| format!("{}: {e}", args.out))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guest-payload: {e}");
            ExitCode::FAILURE
        }
    }
}
