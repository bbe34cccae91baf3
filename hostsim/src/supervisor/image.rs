//! Where a PD's program image is: `program_image path=` is taken relative to the
//! system.xml directory, then to each search path in order.

use std::path::{Path, PathBuf};

/// The directory of the running executable, so that `target/release/paravisor sim`
/// finds the PD binaries built next to it.
pub fn default_search_paths() -> Vec<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .into_iter()
        .collect()
}

/// The first existing file among the candidates, or every place that was tried.
pub fn resolve_image(
    system_dir: &Path,
    image: &Path,
    search_paths: &[PathBuf],
) -> Result<PathBuf, Vec<PathBuf>> {
    let candidates: Vec<PathBuf> = if image.is_absolute() {
        vec![image.to_path_buf()]
    } else {
        std::iter::once(system_dir)
            .chain(search_paths.iter().map(PathBuf::as_path))
            .map(|dir| dir.join(image))
            .collect()
    };
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_dir_wins_then_search_paths_in_order() {
        let root = std::env::temp_dir().join(format!("hostsim-image-{}", std::process::id()));
        let (a, b) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("pd"), b"").unwrap();
        let found = resolve_image(&root, Path::new("pd"), &[a.clone(), b.clone()]).unwrap();
        assert_eq!(found, b.join("pd"));
        std::fs::write(root.join("pd"), b"").unwrap();
        assert_eq!(
            resolve_image(&root, Path::new("pd"), std::slice::from_ref(&b)).unwrap(),
            root.join("pd")
        );
        let missing =
            resolve_image(&root, Path::new("nope"), std::slice::from_ref(&a)).unwrap_err();
        assert_eq!(missing, [root.join("nope"), a.join("nope")]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
