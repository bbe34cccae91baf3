//! Reads the system descriptions through `sdf` and writes the constants they decide
//! to `$OUT_DIR/system_constants.rs`. A description that fails to load, or two that
//! give one PD's channel to one peer different ids, fail the build with the reason.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sdf::constants::{self, Labelled};
use sdf::System;

/// (module, path from this crate): every description whose PDs run the PD crates'
/// images. Their channel ids must agree; each also gets its region sizes.
/// A PD is known by its name, so a description whose PD of a shared name runs a
/// different image (tests/systems/ioapic.xml's `guest`) stays out.
const DESCRIPTIONS: [(&str, &str); 4] = [
    ("host", "../system.xml"),
    ("metal_vmbus", "../kernel/metal-pds/vmbus.xml"),
    ("metal_linux", "../kernel/metal-pds/linux.xml"),
    ("test_hvcall_synic", "../tests/systems/hvcall_synic.xml"),
];

/// The description, and the region, whose virtual machine places guest memory:
/// the lowest GPA of `guest_ram` is guest RAM, the next its host-visible alias at
/// the vTOM. (The guest stand-in of the other descriptions has no virtual machine
/// element; it uses these constants.)
const PARTITION: (&str, &str) = ("metal_linux", "guest_ram");

fn main() {
    if let Err(e) = generate() {
        eprintln!("error: system-constants: {e}");
        std::process::exit(1);
    }
}

fn generate() -> Result<(), String> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    println!("cargo:rerun-if-changed=build.rs");
    let mut loaded: Vec<(&str, String, System)> = Vec::new();
    for (module, rel) in DESCRIPTIONS {
        let path = dir.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        let system = sdf::load(&path).map_err(|d| format!("{}: {d}", path.display()))?;
        loaded.push((module, shown(rel), system));
    }
    let labelled: Vec<Labelled> = loaded
        .iter()
        .map(|(_, label, system)| Labelled { label, system })
        .collect();

    let mut out = String::new();
    partition(&mut out, &loaded)?;
    channels(&mut out, &labelled)?;
    for (module, label, system) in &loaded {
        region_sizes(&mut out, module, label, system)?;
    }
    let target = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?)
        .join("system_constants.rs");
    std::fs::write(&target, out).map_err(|e| format!("{}: {e}", target.display()))
}

/// `rel` as messages and docs show it: the path from the repository root.
fn shown(rel: &str) -> String {
    Path::new(rel)
        .strip_prefix("..")
        .unwrap_or(Path::new(rel))
        .display()
        .to_string()
}

fn partition(out: &mut String, loaded: &[(&str, String, System)]) -> Result<(), String> {
    let (module, mr) = PARTITION;
    let (_, label, system) = loaded
        .iter()
        .find(|(m, _, _)| *m == module)
        .ok_or_else(|| format!("no description {module}"))?;
    let (ram, shared) = match constants::guest_addresses(system, mr).as_slice() {
        &[ram, shared] if shared.is_power_of_two() && shared > ram => (ram, shared),
        other => {
            return Err(format!(
                "{label}: its virtual machine must map {mr} twice, as RAM and as the alias \
                 at the vTOM (a power of two above it); it maps it at {other:x?}"
            ))
        }
    };
    let _ = writeln!(
        out,
        "/// Where guest RAM starts in the guest's physical space ({label}: the \
         lowest GPA its virtual machine maps `{mr}` at).\n\
         pub const GUEST_RAM_GPA: u64 = {ram:#x};\n\
         /// The vTOM: where the host-visible alias of guest RAM starts ({label}: \
         the other GPA its virtual machine maps `{mr}` at).\n\
         pub const GUEST_SHARED_GPA: u64 = {shared:#x};\n\
         /// The vTOM as a bit (`GUEST_SHARED_GPA == 1 << GUEST_SHARED_BIT`): what \
         the SNP VMSA's VIRTUAL_TOM and the IGVM platform header carry.\n\
         pub const GUEST_SHARED_BIT: u8 = {bit};\n",
        bit = shared.trailing_zeros()
    );
    Ok(())
}

fn channels(out: &mut String, systems: &[Labelled]) -> Result<(), String> {
    out.push_str(
        "/// Each PD's channel ids, by PD name and then by the peer's name, as every \
         description that has a PD of that name gives them.\npub mod channel {\n",
    );
    for pd in constants::pd_names(systems) {
        let ids = constants::agreed_channel_ids(systems, &pd)?;
        if ids.is_empty() {
            continue;
        }
        let in_files: Vec<&str> = systems
            .iter()
            .filter(|s| s.system.pd(&pd).is_some())
            .map(|s| s.label)
            .collect();
        let module = rust(&pd, false)?;
        let _ = writeln!(
            out,
            "    /// `{pd}`'s ends ({}).\n    pub mod {module} {{\n        use ipc::Channel;",
            in_files.join(", ")
        );
        for (peer, id) in ids {
            let name = rust(&peer, true)?;
            let _ = writeln!(
                out,
                "        /// To `{peer}`.\n        pub const {name}: Channel = Channel::new({id});"
            );
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n\n");
    Ok(())
}

fn region_sizes(
    out: &mut String,
    module: &str,
    label: &str,
    system: &System,
) -> Result<(), String> {
    let _ = writeln!(
        out,
        "/// What {label} decides for itself.\npub mod {module} {{\n    \
         /// Memory region sizes in bytes, by region name.\n    pub mod region_size {{"
    );
    for mr in &system.memory_regions {
        let _ = writeln!(
            out,
            "        pub const {}: u64 = {:#x};",
            rust(&mr.name, true)?,
            mr.size
        );
    }
    out.push_str("    }\n}\n\n");
    Ok(())
}

fn rust(name: &str, upper: bool) -> Result<String, String> {
    constants::rust_name(name, upper).ok_or_else(|| format!("`{name}` cannot be a Rust name"))
}
