//! `paravisor sim <system.xml>`: runs the system on the host, each PD its own
//! process (crate `hostsim`). Exits with the status of the first PD that exits,
//! 124 on `--timeout`, 70 when every PD faulted.

use std::path::PathBuf;
use std::time::Duration;

use hostsim::{SimExit, SimOptions, Simulation};

use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
    /// Stop every PD and fail (status 124) after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// A directory to look for program images in, after the system.xml directory
    /// and before the directory of this executable. Repeatable.
    #[arg(long = "search-path", value_name = "DIR")]
    pub search_paths: Vec<PathBuf>,
    /// Back memory region NAME with the host file PATH (which must have exactly
    /// the region's size) instead of fresh memory, e.g. a disk image:
    /// `--region-file disk0=disk.img`. Repeatable.
    #[arg(long = "region-file", value_name = "NAME=PATH", value_parser = parse_region_file)]
    pub region_files: Vec<(String, PathBuf)>,
}

fn parse_region_file(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("{s:?}: expected NAME=PATH, e.g. disk0=disk.img")),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let system = sdf::load(&args.system)?;
    let mut search_paths = args.search_paths;
    search_paths.extend(hostsim::default_search_paths());
    let opts = SimOptions {
        search_paths,
        timeout: args.timeout.map(Duration::from_secs),
        region_files: args.region_files,
        ..SimOptions::default()
    };
    let sim = Simulation::launch(&system, &opts).map_err(|e| Failure::msg(e.to_string()))?;
    let outcome = sim.wait().map_err(|e| Failure::msg(e.to_string()))?;
    let faults = outcome.faults.len();
    match &outcome.exit {
        SimExit::Exited { pd, code } => {
            eprintln!("paravisor: sim: PD '{pd}' exited with status {code}; {faults} PD fault(s)")
        }
        SimExit::AllFaulted => eprintln!("paravisor: sim: every PD faulted"),
        SimExit::TimedOut { still_running } => eprintln!(
            "paravisor: sim: timed out; still running: {}",
            still_running.join(", ")
        ),
    }
    match outcome.exit_code() {
        0 => Ok(()),
        // The system's status is the command's, not the generic failure status.
        code => std::process::exit(code),
    }
}
