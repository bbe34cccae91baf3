//! Program images: find them (via `sdf::resolve_program_image`) and fingerprint them.
//! Shared by every subcommand that needs an image's bytes or hash.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A located program image and its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub resolved: PathBuf,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// SHA-256 and length of a file, streamed so image size does not matter.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Locates and hashes every PD's image, collecting one diagnostic per image that is
/// missing or unreadable.
pub fn locate_all(
    system: &sdf::System,
    search_paths: &[PathBuf],
) -> Result<Vec<ImageInfo>, sdf::Diagnostics> {
    let mut infos = Vec::new();
    let mut errors = sdf::Diagnostics::default();
    for pd in system.all_pds() {
        let resolved = match sdf::resolve_program_image(system, pd, search_paths) {
            Ok(p) => p,
            Err(d) => {
                errors.0.extend(d);
                continue;
            }
        };
        match hash_file(&resolved) {
            Ok((sha256, size)) => infos.push(ImageInfo {
                resolved,
                sha256,
                size,
            }),
            Err(e) => {
                let kind = sdf::ErrorKind::ProgramImageUnreadable {
                    path: resolved,
                    message: e.to_string(),
                };
                errors.push(sdf::Diagnostic::new(
                    &system.file,
                    pd.program_image.span,
                    kind,
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(infos)
    } else {
        Err(errors)
    }
}
