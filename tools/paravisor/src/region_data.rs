//! `--region-data NAME=PATH`: a memory region's initial contents from a file (a guest
//! kernel, an initramfs), and `--measurements NAME`: the tpm PD's measurement list
//! ([`crate::measured`]). Shared by `build`, `manifest` and `verify`, so all three
//! read the same bytes the same way and refuse the same mistakes.

use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::failure::Failure;
use crate::image::hex;

#[derive(Clone, Debug, Default, clap::Args)]
// The subcommand's own struct is `Args` too; clap's group ids must differ.
#[group(id = "region_data_args")]
pub struct Args {
    /// Fill memory region NAME with the bytes of file PATH at boot (the rest of the
    /// region stays zero); repeatable, once per region.
    #[arg(long = "region-data", value_name = "NAME=PATH")]
    pub region_data: Vec<String>,
    /// Fill memory region NAME with the tpm PD's measurement list: every PD's name
    /// and program image SHA-256, in manifest order (docs/manifest.md).
    #[arg(long = "measurements", value_name = "NAME")]
    pub measurements: Option<String>,
}

/// One region's initial contents, read and fingerprinted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionData {
    pub region: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Lower-case hex.
    pub sha256: String,
    /// The builder's measurement list (`--measurements`), not a file's bytes.
    pub measured: bool,
}

/// The bytes for `region`, if any were given.
pub fn find<'a>(data: &'a [RegionData], region: &str) -> Option<&'a RegionData> {
    data.iter().find(|d| d.region == region)
}

/// Reads every `NAME=PATH`, refusing an unknown region, a region named twice, a
/// fixed-address region (device memory, which the kernel does not write) and a file
/// larger than its region, each with one line naming the argument; then lays out
/// the measurement list, from the program images found in `search`.
pub fn load(
    system: &sdf::System,
    args: &Args,
    search: &[PathBuf],
) -> Result<Vec<RegionData>, Failure> {
    let mut out = load_files(system, args)?;
    if let Some(name) = &args.measurements {
        if find(&out, name).is_some() {
            return Err(Failure::msg(format!(
                "--measurements {name}: region '{name}' is also given --region-data"
            )));
        }
        let images = crate::image::locate_all(system, search)?;
        out.push(crate::measured::region_data(system, name, &images)?);
    }
    Ok(out)
}

fn load_files(system: &sdf::System, args: &Args) -> Result<Vec<RegionData>, Failure> {
    let mut out: Vec<RegionData> = Vec::new();
    for spec in &args.region_data {
        let Some((name, path)) = spec
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            return Err(Failure::msg(format!(
                "--region-data {spec:?}: expected NAME=PATH"
            )));
        };
        let fail = |what: String| Failure::msg(format!("--region-data {name}={path}: {what}"));
        let mr = system
            .memory_region(name)
            .ok_or_else(|| fail(format!("the system has no memory region '{name}'")))?;
        if find(&out, name).is_some() {
            return Err(fail(format!(
                "region '{name}' is given initial contents more than once"
            )));
        }
        if mr.phys_addr.is_some() {
            return Err(fail(format!(
                "region '{name}' has a fixed phys_addr (device memory); only allocated regions take initial contents"
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| fail(format!("cannot read: {e}")))?
            .len();
        if len > mr.size {
            return Err(fail(format!(
                "the file is {len} bytes, larger than region '{name}' ({} bytes)",
                mr.size
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // One byte past the size catches a file that grew since `metadata`.
        file.take(mr.size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > mr.size {
            return Err(fail(format!(
                "the file grew past region '{name}' ({} bytes) while being read",
                mr.size
            )));
        }
        out.push(RegionData {
            region: name.to_string(),
            path: PathBuf::from(path),
            sha256: hex(&Sha256::digest(&bytes)),
            bytes,
            measured: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;

    fn system() -> sdf::System {
        sdf::parse_and_check(
            r#"<system>
                <memory_region name="ram" size="0x2000" />
                <memory_region name="mmio" size="0x1000" phys_addr="0xfeb0_0000" />
                <protection_domain name="vmm"><program_image path="v"/>
                  <map mr="mmio" vaddr="0x1000_0000" cached="false"/>
                  <virtual_machine name="g"><vcpu id="0"/><map mr="ram" vaddr="0"/></virtual_machine>
                </protection_domain>
            </system>"#,
            Path::new("system.xml"),
        )
        .unwrap()
    }

    fn args(specs: &[String]) -> Args {
        Args {
            region_data: specs.to_vec(),
            measurements: None,
        }
    }

    fn err(specs: &[String]) -> String {
        load(&system(), &args(specs), &[]).unwrap_err().to_string()
    }

    #[test]
    fn a_file_fills_its_region_and_is_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernel");
        std::fs::write(&path, vec![7u8; 0x2000]).unwrap();
        let data = load(&system(), &args(&[format!("ram={}", path.display())]), &[]).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(
            (data[0].region.as_str(), data[0].bytes.len()),
            ("ram", 0x2000)
        );
        assert_eq!(data[0].sha256, hex(&Sha256::digest(vec![7u8; 0x2000])));
        assert!(find(&data, "ram").is_some() && find(&data, "mmio").is_none());
        assert!(load(&system(), &Args::default(), &[]).unwrap().is_empty());
    }

    #[test]
    fn each_mistake_is_one_line_naming_the_argument() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        let big = dir.path().join("big");
        std::fs::write(&small, b"x").unwrap();
        std::fs::write(&big, vec![0u8; 0x2001]).unwrap();
        let small = small.display().to_string();
        let big = big.display().to_string();
        let cases: Vec<(Vec<String>, String)> = vec![
            (vec!["ram".into()], "--region-data \"ram\": expected NAME=PATH".into()),
            (vec!["=x".into()], "--region-data \"=x\": expected NAME=PATH".into()),
            (
                vec![format!("rom={small}")],
                format!("--region-data rom={small}: the system has no memory region 'rom'"),
            ),
            (
                vec![format!("ram={small}"), format!("ram={small}")],
                format!("--region-data ram={small}: region 'ram' is given initial contents more than once"),
            ),
            (
                vec![format!("ram={big}")],
                format!("--region-data ram={big}: the file is 8193 bytes, larger than region 'ram' (8192 bytes)"),
            ),
            (
                vec![format!("mmio={small}")],
                format!("--region-data mmio={small}: region 'mmio' has a fixed phys_addr (device memory); only allocated regions take initial contents"),
            ),
        ];
        for (specs, want) in cases {
            let got = err(&specs);
            assert_eq!(got, format!("paravisor: error: {want}"));
            assert!(!got.contains('\n'));
        }
        let missing = dir.path().join("missing").display().to_string();
        let got = err(&[format!("ram={missing}")]);
        assert!(
            got.starts_with(&format!(
                "paravisor: error: --region-data ram={missing}: cannot read: "
            )),
            "{got}"
        );
    }
}
