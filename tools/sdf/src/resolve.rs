//! Where a `<program_image path=>` lives: relative paths are looked up next to the
//! system description first, then in each search directory, in order.

use std::path::PathBuf;

use crate::diag::{Diagnostic, Diagnostics, ErrorKind};
use crate::model::{ProtectionDomain, System};

/// The directories a relative image path is tried against, in order.
pub fn image_search_dirs(system: &System, search_paths: &[PathBuf]) -> Vec<PathBuf> {
    let base = match system.file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::iter::once(base)
        .chain(search_paths.iter().cloned())
        .collect()
}

/// The first existing regular file for `pd`'s program image; an error at the
/// `path` attribute, listing where it looked, when there is none.
pub fn resolve_program_image(
    system: &System,
    pd: &ProtectionDomain,
    search_paths: &[PathBuf],
) -> Result<PathBuf, Diagnostics> {
    let image = &pd.program_image;
    let searched = if image.path.is_absolute() {
        vec![PathBuf::from("/")]
    } else {
        image_search_dirs(system, search_paths)
    };
    searched
        .iter()
        .map(|dir| dir.join(&image.path))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            let kind = ErrorKind::ProgramImageNotFound {
                path: image.path.clone(),
                searched: searched.clone(),
            };
            Diagnostic::new(&system.file, image.span, kind).into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dir_of_bare_file_name_is_cwd() {
        let sys = System {
            file: PathBuf::from("system.xml"),
            memory_regions: vec![],
            protection_domains: vec![],
            channels: vec![],
            io_address_spaces: vec![],
            domains: None,
        };
        assert_eq!(
            image_search_dirs(&sys, &[PathBuf::from("out")]),
            vec![PathBuf::from("."), PathBuf::from("out")]
        );
    }
}
