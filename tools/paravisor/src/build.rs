//! `paravisor build <system.xml> --kernel KERNEL -o IMAGE`: compiles the system
//! description and every PD's program into the kernel's system image and appends it
//! to the kernel ELF, giving one file QEMU boots with `-kernel` (PVH). With
//! `--manifest`, also writes the audit manifest that `verify` checks the image
//! against. `--region-data NAME=PATH` gives a region its initial contents (a guest
//! kernel and initramfs). Deterministic: the same inputs give the same bytes.

use std::path::{Path, PathBuf};

use crate::bootimage::{bootelf, compile};
use crate::failure::Failure;
use crate::image;
use crate::inputs::Inputs;
use crate::region_data;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
    /// The kernel ELF (kernel/metal, built for x86_64-unknown-none).
    #[arg(long, value_name = "FILE")]
    pub kernel: PathBuf,
    /// Where to write the bootable image.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Also write the audit manifest (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Also write the image as an IGVM file here, and print its launch measurement.
    #[arg(long, value_name = "FILE")]
    pub igvm: Option<PathBuf>,
    /// The platform the IGVM file is for (SNP and TDX files are measured).
    #[arg(long, value_name = "PLATFORM", requires = "igvm", default_value = "native",
          value_parser = clap::builder::PossibleValuesParser::new(crate::igvm::Platform::NAMES))]
    pub platform: String,
    #[command(flatten)]
    pub inputs: Inputs,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::msg(format!("cannot read {what} {}: {e}", path.display())))
}

/// The boot image's bytes, from the same inputs `build` takes.
pub fn build_bytes(system_path: &Path, kernel: &Path, inputs: &Inputs) -> Result<Vec<u8>, Failure> {
    let system = sdf::load(system_path)?;
    let data = inputs.region_data(&system)?;
    build_loaded(&system, kernel, &inputs.search_path, &data)
}

pub fn build_loaded(
    system: &sdf::System,
    kernel: &Path,
    search: &[PathBuf],
    data: &[region_data::RegionData],
) -> Result<Vec<u8>, Failure> {
    // Valid Microkit that this target cannot build (ioports, IOMMU, domains, ...).
    sdf::build_refusals(system)?;
    let images = image::locate_all(system, search)?;
    let programs = images
        .iter()
        .map(|i| read(&i.resolved, "program image"))
        .collect::<Result<Vec<_>, _>>()?;
    let system_image = compile::compile(system, &programs, data).map_err(Failure::Message)?;
    let kernel_bytes = read(kernel, "kernel")?;
    let boot = bootelf::append(&kernel_bytes, &system_image).map_err(Failure::Message)?;
    // A fixed-address region must not alias the image itself (the kernel refuses,
    // at boot, any overlap with the RAM it manages as well).
    let parts = bootelf::extract(&boot).map_err(Failure::Message)?;
    let image_end = parts.image_paddr + system_image.len() as u64;
    let kernel_start = crate::bootimage::elf::parse(&kernel_bytes)
        .map_err(Failure::Message)?
        .loads()
        .map(|p| p.paddr)
        .min()
        .unwrap_or(0);
    for mr in &system.memory_regions {
        if let Some(pa) = mr.phys_addr {
            if pa < image_end && pa.saturating_add(mr.size) > kernel_start {
                return Err(Failure::msg(format!(
                    "memory region {} at {pa:#x} overlaps the boot image ({kernel_start:#x}..{image_end:#x})",
                    mr.name
                )));
            }
        }
    }
    Ok(boot)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let system = sdf::load(&args.system)?;
    // Read once: the image and the manifest describe the same bytes.
    let data = args.inputs.region_data(&system)?;
    let boot = build_loaded(&system, &args.kernel, &args.inputs.search_path, &data)?;
    write_file(&args.output, &boot)?;
    if let Some(path) = &args.manifest {
        let manifest = crate::manifest::generate_loaded(
            &system,
            &args.system,
            &args.inputs.search_path,
            &data,
            Some(&boot),
        )?;
        let mut json = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Failure::msg(format!("cannot encode the manifest: {e}")))?;
        json.push('\n');
        write_file(path, json.as_bytes())?;
    }
    println!(
        "built {}: {} bytes, sha256 {}",
        args.output.display(),
        boot.len(),
        image::hex(&sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&boot)
        ))
    );
    if let Some(path) = &args.igvm {
        crate::igvm::write(&boot, &args.platform, path)?;
    }
    Ok(())
}

/// Writes through a temporary file in the same directory, so the target holds either
/// the old content or the whole new file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let fail =
        |e: &dyn std::fmt::Display| Failure::msg(format!("cannot write {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".paravisor-")
        .tempfile_in(dir)
        .map_err(|e| fail(&e))?;
    tmp.write_all(bytes).map_err(|e| fail(&e))?;
    let mut perms = tmp
        .as_file()
        .metadata()
        .map_err(|e| fail(&e))?
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    tmp.as_file().set_permissions(perms).map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}
