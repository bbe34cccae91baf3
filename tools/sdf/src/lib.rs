//! system.xml: the Microkit-style system description that says which protection
//! domains exist, what memory each maps with which rights, and which channels and
//! irqs connect them.
//!
//! [`load`] / [`parse_and_check`] turn text into a checked [`model::System`] or a
//! list of [`Diagnostic`]s, each with a position, a typed [`ErrorKind`] and a hint.
//! Nothing in here panics on any input.
//!
//! Compatibility: everything Microkit's own tool (tool/microkit/src/sdf.rs) accepts
//! is accepted, with its attribute names, number syntax and defaults. Rules of our
//! own that Microkit lacks are [`Policy`] errors: errors under [`Mode::Strict`],
//! warnings under [`Mode::Microkit`] (`paravisor check --microkit`). Constructs that
//! parse and check but cannot be built for this target (ioports, IOMMU spaces,
//! domains, cap maps, IOAPIC/MSI irqs, prefill, newer setvars) are listed, with
//! positions and reasons, by [`build_refusals`], which `paravisor build` calls.

mod buildable;
mod check;
pub mod constants;
pub mod diag;
pub mod limits;
pub mod model;
mod num;
mod parse;
mod resolve;

use std::io::Read;
use std::path::Path;

pub use buildable::build_refusals;
pub use check::check;
pub use diag::{Diagnostic, Diagnostics, ErrorKind, MapSpace, NameKind, NumberError, Policy};
pub use model::*;
pub use resolve::{image_search_dirs, resolve_program_image};

/// How strictly [`load_with`] judges a description.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Microkit's rules and our audit [`Policy`] rules, all errors.
    #[default]
    Strict,
    /// Exactly Microkit's rules; policy findings come back as warnings.
    Microkit,
}

/// A description that passed, with the policy findings `Mode::Microkit` demoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub system: System,
    pub warnings: Diagnostics,
}

/// Reads, parses and checks a system description file.
pub fn load(path: &Path) -> Result<System, Diagnostics> {
    load_with(path, Mode::Strict).map(|c| c.system)
}

/// [`load`] with a choice of [`Mode`].
pub fn load_with(path: &Path, mode: Mode) -> Result<Checked, Diagnostics> {
    let io_error = |message: String| {
        Diagnostics::from(Diagnostic::new(
            path,
            Span::default(),
            ErrorKind::Io { message },
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| io_error(e.to_string()))?;
    let mut bytes = Vec::new();
    // One byte past the limit tells "too large" apart from "exactly at the limit".
    file.take(limits::MAX_SYSTEM_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(e.to_string()))?;
    if bytes.len() as u64 > limits::MAX_SYSTEM_FILE_SIZE {
        return Err(io_error(format!(
            "larger than {} bytes",
            limits::MAX_SYSTEM_FILE_SIZE
        )));
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default();
            let span = parse::span_at(valid, valid.len());
            return Err(Diagnostic::new(path, span, ErrorKind::NotUtf8).into());
        }
    };
    parse_and_check_with(text, path, mode)
}

/// Parses and checks a description held in memory; `file` is used for messages and
/// for resolving relative program image paths.
pub fn parse_and_check(text: &str, file: &Path) -> Result<System, Diagnostics> {
    parse_and_check_with(text, file, Mode::Strict).map(|c| c.system)
}

/// [`parse_and_check`] with a choice of [`Mode`].
pub fn parse_and_check_with(text: &str, file: &Path, mode: Mode) -> Result<Checked, Diagnostics> {
    let parse::Parsed {
        system,
        index,
        mut diags,
        document_ok,
    } = parse::parse(text, file);
    // Without a <system> there is nothing to relate; checking would only add noise.
    if document_ok {
        check::check_with(&system, &index, &mut diags);
    }
    diags.sort();
    let mut warnings = Diagnostics::default();
    if mode == Mode::Microkit {
        let (policy, errors): (Vec<_>, Vec<_>) =
            diags.into_iter().partition(|d| d.kind.policy().is_some());
        warnings = Diagnostics(policy);
        diags = Diagnostics(errors);
    }
    if diags.is_empty() {
        Ok(Checked { system, warnings })
    } else {
        Err(diags)
    }
}
