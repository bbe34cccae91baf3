//! `paravisor`: the system builder/verifier CLI. One module per subcommand; add a
//! subcommand by adding a module with `Args` + `run` and one line in each of
//! [`Command`] and [`dispatch`].

mod bootimage;
mod build;
mod check;
mod failure;
mod graph;
mod igvm;
mod image;
mod inputs;
mod manifest;
mod measured;
mod region_data;
mod run;
mod sim;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use failure::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "paravisor",
    version,
    about = "Check, describe and build a componentized paravisor system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a system description against the Microkit rules; print every error.
    Check(check::Args),
    /// Write the JSON audit manifest: per PD its image hash, regions, channels, irqs.
    Manifest(manifest::Args),
    /// Run the system on the host: every PD its own process, isolated as granted.
    Sim(sim::Args),
    /// Build the bootable image: the kernel with the compiled system and PD programs.
    Build(build::Args),
    /// Check a boot image against its audit manifest.
    Verify(verify::Args),
    /// Draw the system as Graphviz DOT (and SVG when `dot` is installed).
    Graph(graph::Args),
    /// Boot an image in QEMU (TCG); exit with the status the system halted with.
    Run(run::Args),
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Check(args) => check::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Build(args) => build::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Run(args) => run::run(args),
    }
}

/// Exit status for an internal bug, distinct from "your input is wrong" (1) and
/// "your command line is wrong" (2, from clap).
const EXIT_INTERNAL: u8 = 70;

fn main() -> ExitCode {
    // Whatever goes wrong inside, the user sees one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "paravisor: internal error: {}{at}; please report it",
            what.replace('\n', " ")
        );
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(move || dispatch(cli.command)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => {
            failure.report();
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::from(EXIT_INTERNAL),
    }
}
