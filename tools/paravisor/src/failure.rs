//! How a subcommand fails: with the description's diagnostics (printed as
//! `file:line:col: error: ...` plus a hint) or with a one-line message.

use std::fmt;

#[derive(Debug)]
pub enum Failure {
    Diagnostics(sdf::Diagnostics),
    Message(String),
}

impl Failure {
    pub fn msg(text: impl Into<String>) -> Self {
        Failure::Message(text.into())
    }

    /// Prints to stderr. Errors writing stderr itself cannot be reported anywhere.
    pub fn report(&self) {
        eprintln!("{self}");
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Diagnostics(d) => {
                let n = d.len();
                write!(
                    f,
                    "{d}\nparavisor: {n} error{}",
                    if n == 1 { "" } else { "s" }
                )
            }
            Failure::Message(m) => write!(f, "paravisor: error: {m}"),
        }
    }
}

impl From<sdf::Diagnostics> for Failure {
    fn from(d: sdf::Diagnostics) -> Self {
        Failure::Diagnostics(d)
    }
}

/// Writing our own output failed (closed pipe, full disk).
pub fn output_error(e: std::io::Error) -> Failure {
    Failure::msg(format!("cannot write output: {e}"))
}
