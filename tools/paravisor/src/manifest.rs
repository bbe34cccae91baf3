//! `paravisor manifest <system.xml> [-o FILE] [--search-path DIR]...`: the JSON audit
//! manifest. Everything is computed before anything is written, and a file output is
//! written to a temporary file in the same directory and renamed into place, so an
//! error never leaves a partial manifest behind.

pub mod schema;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::failure::{output_error, Failure};
use crate::image;
use crate::inputs::Inputs;
use crate::region_data::RegionData;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
    /// Write the manifest here instead of to stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also build the boot image with this kernel and record the hash of every
    /// part of it (what `build --manifest` records), so `verify` needs nothing else.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: Inputs,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let system = sdf::load(&args.system)?;
    let data = args.inputs.region_data(&system)?;
    let boot = match &args.kernel {
        Some(k) => Some(crate::build::build_loaded(
            &system,
            k,
            &args.inputs.search_path,
            &data,
        )?),
        None => None,
    };
    let manifest = generate_loaded(
        &system,
        &args.system,
        &args.inputs.search_path,
        &data,
        boot.as_deref(),
    )?;
    let mut json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Failure::msg(format!("cannot encode the manifest: {e}")))?;
    json.push('\n');
    match &args.output {
        Some(path) => crate::build::write_file(path, json.as_bytes()),
        None => std::io::stdout()
            .lock()
            .write_all(json.as_bytes())
            .map_err(output_error),
    }
}

/// The manifest of a loaded system and its region data, or every reason there is
/// none; with the built `boot` image, the hashes binding its bytes.
pub fn generate_loaded(
    system: &sdf::System,
    system_path: &Path,
    search_paths: &[PathBuf],
    data: &[RegionData],
    boot: Option<&[u8]>,
) -> Result<schema::Manifest, Failure> {
    let images = image::locate_all(system, search_paths)?;
    let (sha256, _) = image::hash_file(system_path)
        .map_err(|e| Failure::msg(format!("cannot read {}: {e}", system_path.display())))?;
    let source = schema::SourceFile {
        path: system_path.display().to_string(),
        sha256,
    };
    let mut manifest = schema::build(system, source, &images, data);
    manifest.measured_boot = data
        .iter()
        .find(|d| d.measured)
        .map(|d| {
            let list = tpm::measured_boot::parse(&d.bytes)
                .map_err(|e| format!("the measurement list does not parse: {e:?}"))?;
            crate::measured::entry(&d.region, &list)
        })
        .transpose()
        .map_err(Failure::Message)?;
    if let Some(boot) = boot {
        manifest.boot_image = Some(schema::boot_image(boot).map_err(Failure::Message)?);
    }
    Ok(manifest)
}
