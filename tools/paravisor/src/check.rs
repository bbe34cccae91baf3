//! `paravisor check <system.xml>`: parse and check, print a one-line summary or every error.

use std::io::Write;
use std::path::PathBuf;

use crate::failure::{output_error, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let system = sdf::load(&args.system)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ok: {} protection domains, {} memory regions, {} channels",
        system.all_pds().len(),
        system.memory_regions.len(),
        system.channels.len()
    )
    .map_err(output_error)
}
