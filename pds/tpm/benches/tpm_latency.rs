//! TPM2_PCR_Extend and TPM2_Quote latency through the tpm PD (libtpms behind the
//! CRB, each command driven as Linux's tpm_crb drives it: register calls into
//! the PD's handler, the command and response through the shared buffer) against
//! swtpm (the same libtpms behind a Unix socket), in the same run.
//! `QUICK=1` runs a few iterations as a smoke test.
//!
//! The PD side here runs in the bench's process (no host-sim IPC); swtpm's
//! includes a socket round trip, which is the transport a QEMU guest's TPM has.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{libtpms_turn, rc, Guest, Swtpm};
use tpm::commands::{self, handle_of};
use tpm::libtpms::LibtpmsEngine;

fn time(iterations: u32, mut f: impl FnMut(u32)) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        f(i);
    }
    start.elapsed() / iterations
}

fn measure(mut tpm: impl FnMut(&[u8]) -> Vec<u8>, iterations: u32) -> (Duration, Duration) {
    for c in [commands::startup_clear(), commands::self_test()] {
        assert_eq!(rc(&tpm(&c)), 0);
    }
    let key = handle_of(&tpm(&commands::create_primary(true))).expect("signing key");
    let extend = time(iterations, |i| {
        let mut d = [0u8; 32];
        d[..4].copy_from_slice(&i.to_le_bytes());
        assert_eq!(rc(&tpm(&commands::pcr_extend(16, &d))), 0);
    });
    let quote = time(iterations.div_ceil(4), |_| {
        assert_eq!(rc(&tpm(&commands::quote(key, b"nonce", 1 << 16))), 0);
    });
    (extend, quote)
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let iterations = if quick { 20 } else { 2000 };
    let _turn = libtpms_turn();
    let Some(mut swtpm) = Swtpm::start() else {
        eprintln!("tpm_latency: swtpm is not installed; nothing to compare against");
        std::process::exit(1);
    };
    let mut guest = Guest::new(LibtpmsEngine::start(None).expect("libtpms starts"));
    let (pd_extend, pd_quote) = measure(|c| guest.transact(c), iterations);
    let (sw_extend, sw_quote) = measure(|c| swtpm.transact(c), iterations);
    println!(
        "tpm_latency ({iterations} extends, {} quotes each)",
        iterations.div_ceil(4)
    );
    for (what, pd, sw) in [
        ("TPM2_PCR_Extend", pd_extend, sw_extend),
        ("TPM2_Quote", pd_quote, sw_quote),
    ] {
        println!(
            "  {what:16} tpm PD {:>9.1} us   swtpm {:>9.1} us   ratio PD/swtpm {:.2}",
            pd.as_secs_f64() * 1e6,
            sw.as_secs_f64() * 1e6,
            pd.as_secs_f64() / sw.as_secs_f64()
        );
    }
}
