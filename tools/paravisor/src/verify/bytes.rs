//! Binding the image's bytes: against the per-part hashes the manifest recorded, and
//! against a rebuild byte for byte. Each differing part is one line, named by the
//! trusted layout (the manifest's, or the rebuild's), never by the hostile image.

use sha2::{Digest, Sha256};

use crate::bootimage::layout;
use crate::image::hex;
use crate::manifest::schema::BootImageEntry;

/// Parts with a difference listed before the rest are summed up.
const MAX_PARTS_SHOWN: usize = 24;

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn summed_up(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_PARTS_SHOWN {
        let more = lines.len() - MAX_PARTS_SHOWN;
        lines.truncate(MAX_PARTS_SHOWN);
        lines.push(format!("... and {more} more parts differ"));
    }
    lines
}

/// The image against the hashes the manifest recorded for each part of it.
pub fn hash_differences(boot: &[u8], entry: &BootImageEntry) -> Vec<String> {
    if boot.len() as u64 == entry.size && sha(boot) == entry.sha256 {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for p in &entry.parts {
        let bytes = usize::try_from(p.offset)
            .ok()
            .zip(usize::try_from(p.offset.saturating_add(p.size)).ok())
            .and_then(|(a, b)| boot.get(a..b));
        match bytes {
            None => lines.push(format!(
                "{} is missing: the file ends at {:#x}",
                p.name,
                boot.len()
            )),
            Some(b) if sha(b) != p.sha256 => lines.push(format!(
                "{} (file offset {:#x}, {} bytes) differs from the manifest's hash",
                p.name, p.offset, p.size
            )),
            Some(_) => {}
        }
    }
    let mut out = summed_up(lines);
    if boot.len() as u64 != entry.size {
        out.push(format!(
            "the image is {} bytes, the manifest says {}",
            boot.len(),
            entry.size
        ));
    }
    if out.is_empty() {
        out.push(format!(
            "the image's sha256 is {}, the manifest says {}",
            sha(boot),
            entry.sha256
        ));
    }
    out
}

/// The image against a rebuild, byte for byte, naming the part and field of the
/// first differing byte in each part.
pub fn byte_differences(boot: &[u8], rebuilt: &[u8]) -> Vec<String> {
    if boot == rebuilt {
        return Vec::new();
    }
    let parts = match layout::layout(rebuilt) {
        Ok(p) => p,
        Err(e) => {
            return vec![format!(
                "internal: the rebuilt image cannot be taken apart: {e}"
            )]
        }
    };
    let mut lines = Vec::new();
    for p in &parts {
        let want = rebuilt.get(p.range.clone()).unwrap_or_default();
        let got = boot.get(p.range.start.min(boot.len())..p.range.end.min(boot.len()));
        let first = want
            .iter()
            .zip(got.unwrap_or_default())
            .position(|(a, b)| a != b)
            .or_else(|| {
                (got.map_or(0, <[u8]>::len) < want.len()).then_some(got.map_or(0, <[u8]>::len))
            });
        if let Some(k) = first {
            let at = p.range.start + k;
            lines.push(format!(
                "{} differs from the rebuild (first at file offset {at:#x})",
                p.describe(at)
            ));
        }
    }
    let mut out = summed_up(lines);
    if boot.len() != rebuilt.len() {
        out.push(format!(
            "the image is {} bytes, the rebuild {}",
            boot.len(),
            rebuilt.len()
        ));
    }
    out
}
