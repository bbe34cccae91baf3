//! `paravisor check <system.xml>`: parse and check, print a one-line summary or every error.

use std::io::Write;
use std::path::PathBuf;

use crate::failure::{output_error, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
    /// Accept exactly what Microkit's tool accepts: our audit policy findings
    /// (names, identifiers, readable maps, guest memory) become warnings.
    #[arg(long)]
    pub microkit: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let mode = if args.microkit {
        sdf::Mode::Microkit
    } else {
        sdf::Mode::Strict
    };
    let sdf::Checked { system, warnings } = sdf::load_with(&args.system, mode)?;
    for w in &warnings {
        eprintln!("{}", w.as_warning());
    }
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
