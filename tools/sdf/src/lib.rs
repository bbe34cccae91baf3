//! system.xml: the Microkit-style system description that says which protection
//! domains exist, what memory each maps with which rights, and which channels and
//! irqs connect them.
//!
//! [`load`] / [`parse_and_check`] turn text into a checked [`model::System`] or a
//! list of [`Diagnostic`]s, each with a position, a typed [`ErrorKind`] and a hint.
//! Nothing in here panics on any input.

mod check;
pub mod diag;
pub mod limits;
pub mod model;
mod num;
mod parse;
mod resolve;

use std::io::Read;
use std::path::Path;

pub use check::check;
pub use diag::{Diagnostic, Diagnostics, ErrorKind, NameKind, NumberError};
pub use model::*;
pub use resolve::{image_search_dirs, resolve_program_image};

/// Reads, parses and checks a system description file.
pub fn load(path: &Path) -> Result<System, Diagnostics> {
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
    parse_and_check(text, path)
}

/// Parses and checks a description held in memory; `file` is used for messages and
/// for resolving relative program image paths.
pub fn parse_and_check(text: &str, file: &Path) -> Result<System, Diagnostics> {
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
    if diags.is_empty() {
        Ok(system)
    } else {
        Err(diags)
    }
}
