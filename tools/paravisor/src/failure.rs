//! How a subcommand fails: with the description's diagnostics (printed as
//! `file:line:col: error: ...` plus a hint) or with a one-line message.

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}\nparavisor: {n} error{s}", n = .0.len(), s = if .0.len() == 1 { "" } else { "s" })]
    Diagnostics(#[from] sdf::Diagnostics),
    #[error("paravisor: error: {0}")]
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

/// Writing our own output failed (closed pipe, full disk).
pub fn output_error(e: std::io::Error) -> Failure {
    Failure::msg(format!("cannot write output: {e}"))
}
