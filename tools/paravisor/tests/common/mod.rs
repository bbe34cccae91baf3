//! What every CLI test does: run the built `paravisor` binary in a directory.

use std::path::Path;
use std::process::{Command, Output};

#[allow(clippy::unwrap_used)] // a test that cannot start the binary has nothing to check
pub fn paravisor(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paravisor"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}
