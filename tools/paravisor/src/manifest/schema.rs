//! The audit manifest's JSON shape (documented in docs/manifest.md). Bump
//! [`SCHEMA_VERSION`] on any change a consumer could notice.

use serde::{Deserialize, Serialize};

use crate::image::ImageInfo;
use crate::region_data::{self, RegionData};

/// 2: `virtual_machines`, and per region `mapped_by_guests` and `initial_data`.
/// 3: `boot_image`: the hash of every byte of the built image, part by part.
/// 4: per PD `pci_devices`: the PCI functions granted to it.
/// 5: `measured_boot`: the tpm PD's measurement list and what it must produce.
/// 6: per VM `io_ports`: the ports its guest reaches without exits.
pub const SCHEMA_VERSION: u32 = 6;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub system: SourceFile,
    pub protection_domains: Vec<PdEntry>,
    /// Guests, each run by its VMM PD.
    pub virtual_machines: Vec<VmEntry>,
    /// Who can reach which memory: every region with every PD and guest that maps it.
    pub regions: Vec<RegionSummary>,
    /// What the tpm PD measures at boot, when built with `--measurements`.
    pub measured_boot: Option<MeasuredBoot>,
    /// The built boot image, when the manifest was written with the kernel (`build
    /// --manifest`, `manifest --kernel`): what binds every byte `verify` is given.
    pub boot_image: Option<BootImageEntry>,
}

/// Measured boot: the list the builder put into `region`, and what the tpm PD's
/// extends of it into `pcr` must produce from a reset TPM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredBoot {
    pub region: String,
    pub pcr: u32,
    /// Every PD's program image, in `protection_domains` order.
    pub images: Vec<MeasuredImage>,
    /// The PCR's SHA-256 bank value after the extends.
    pub pcr_sha256: String,
    /// The TCG2 event log the tpm PD publishes (without the zero padding of its area).
    pub event_log: SizedHash,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredImage {
    pub pd: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizedHash {
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootImageEntry {
    /// Of the whole file.
    pub sha256: String,
    pub size: u64,
    /// Of the system image segment alone.
    pub system_image_sha256: String,
    /// The file cut into named, contiguous parts covering every byte, each hashed,
    /// so a difference is reported by the name of the part it is in.
    pub parts: Vec<PartEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

/// The `boot_image` entry of a boot image this tool built.
pub fn boot_image(boot: &[u8]) -> Result<BootImageEntry, String> {
    use sha2::{Digest, Sha256};
    let sha = |b: &[u8]| crate::image::hex(&Sha256::digest(b));
    let parts = crate::bootimage::layout::layout(boot)?;
    let system = crate::bootimage::bootelf::extract(boot)?;
    Ok(BootImageEntry {
        sha256: sha(boot),
        size: boot.len() as u64,
        system_image_sha256: sha(system.system_image),
        parts: parts
            .iter()
            .map(|p| PartEntry {
                name: p.name.clone(),
                offset: p.range.start as u64,
                size: p.range.len() as u64,
                sha256: sha(boot.get(p.range.clone()).unwrap_or_default()),
            })
            .collect(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmEntry {
    pub name: String,
    /// The PD whose thread runs the vCPUs and receives every exit.
    pub vmm: String,
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    pub vcpu_ids: Vec<u8>,
    pub maps: Vec<VmMapEntry>,
    /// Ports the guest reaches directly (the kernel's I/O permission map lets
    /// them through; every other port exits to the VMM).
    pub io_ports: Vec<IoPortEntry>,
}

/// Ports `base..base + count`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoPortEntry {
    pub base: u16,
    pub count: u16,
}

/// A region as the guest sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmMapEntry {
    pub region: String,
    /// Guest-physical address.
    pub gpa: u64,
    pub size: u64,
    pub perms: String,
    pub cached: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdEntry {
    pub name: String,
    /// Set for child PDs.
    pub parent: Option<String>,
    pub child_id: Option<u8>,
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    pub passive: bool,
    /// The debug system calls granted (system.xml `debug_console`, `debug_halt`).
    #[serde(default)]
    pub debug_console: bool,
    #[serde(default)]
    pub debug_halt: bool,
    pub stack_size: u64,
    pub cpu: u8,
    pub program_image: ImageEntry,
    pub regions: Vec<PdRegion>,
    pub setvars: Vec<SetVarEntry>,
    pub channels: Vec<ChannelEntry>,
    pub irqs: Vec<IrqEntry>,
    /// PCI functions this PD drives: their registers are mapped into it, their
    /// INTx line is its irq, it reaches their config space. Without an IOMMU the
    /// device can DMA anywhere, so such a PD is trusted with all RAM.
    #[serde(default)]
    pub pci_devices: Vec<PciDeviceEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciDeviceEntry {
    /// bus:device.function, hex.
    pub bdf: String,
    pub id: u8,
    pub vendor: u16,
    pub device: u16,
    /// (BAR index, vaddr, window size).
    pub bars: Vec<(u8, u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// As written in system.xml.
    pub path: String,
    /// Where it was found.
    pub resolved: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdRegion {
    pub name: String,
    pub size: u64,
    pub vaddr: u64,
    /// Some of "r", "w", "x" in that order, e.g. "rw".
    pub perms: String,
    pub cached: bool,
    pub phys_addr: Option<u64>,
    pub setvar_vaddr: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVarEntry {
    pub symbol: String,
    pub region_paddr: String,
}

/// One channel as seen from this PD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    /// This PD's id for the channel.
    pub id: u8,
    pub peer: String,
    /// The peer's id for the same channel.
    pub peer_id: u8,
    pub can_notify: bool,
    pub can_be_notified: bool,
    /// This PD may make protected calls to the peer.
    pub can_call: bool,
    pub can_be_called: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrqEntry {
    pub irq: u64,
    pub id: u8,
    pub trigger: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSummary {
    pub name: String,
    pub size: u64,
    pub page_size: u64,
    pub phys_addr: Option<u64>,
    pub mapped_by: Vec<Mapping>,
    /// Guests that see the region, and where in their physical address space.
    pub mapped_by_guests: Vec<GuestMapping>,
    /// What the region holds at boot; None: all zero.
    pub initial_data: Option<InitialData>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestMapping {
    pub vm: String,
    pub gpa: u64,
    pub perms: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialData {
    /// The file it was read from (`--region-data`), for the reader; `verify` checks
    /// the hash and length against the image.
    pub path: String,
    pub sha256: String,
    pub len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub pd: String,
    pub vaddr: u64,
    pub perms: String,
    pub cached: bool,
}

/// Builds the manifest of a checked system. `images` is in `system.all_pds()` order;
/// `data` holds the regions' initial contents.
pub fn build(
    system: &sdf::System,
    source: SourceFile,
    images: &[ImageInfo],
    data: &[RegionData],
) -> Manifest {
    let mut parents: Vec<(&str, &str)> = Vec::new();
    for pd in system.all_pds() {
        parents.extend(
            pd.children
                .iter()
                .map(|c| (c.name.as_str(), pd.name.as_str())),
        );
    }
    let protection_domains = system
        .all_pds()
        .into_iter()
        .zip(images)
        .map(|(pd, image)| PdEntry {
            name: pd.name.clone(),
            parent: parents
                .iter()
                .find(|(c, _)| *c == pd.name)
                .map(|(_, p)| p.to_string()),
            child_id: pd.child_id,
            priority: pd.priority,
            budget_us: pd.budget,
            period_us: pd.period,
            passive: pd.passive,
            debug_console: pd.debug_console,
            debug_halt: pd.debug_halt,
            stack_size: pd.stack_size,
            cpu: pd.cpu,
            program_image: ImageEntry {
                path: pd.program_image.path.display().to_string(),
                resolved: image.resolved.display().to_string(),
                sha256: image.sha256.clone(),
                size: image.size,
            },
            regions: pd
                .maps
                .iter()
                .filter_map(|m| {
                    let mr = system.memory_region(&m.mr)?;
                    Some(PdRegion {
                        name: m.mr.clone(),
                        size: mr.size,
                        vaddr: m.vaddr,
                        perms: m.perms.to_string(),
                        cached: m.cached,
                        phys_addr: mr.phys_addr,
                        setvar_vaddr: m.setvar_vaddr.clone(),
                    })
                })
                .collect(),
            setvars: pd
                .setvars
                .iter()
                .map(|s| SetVarEntry {
                    symbol: s.symbol.clone(),
                    region_paddr: s.region_paddr.clone(),
                })
                .collect(),
            channels: system
                .channel_ends_of(&pd.name)
                .map(|(me, peer)| ChannelEntry {
                    id: me.id,
                    peer: peer.pd.clone(),
                    peer_id: peer.id,
                    can_notify: me.notify,
                    can_be_notified: peer.notify,
                    can_call: me.pp,
                    can_be_called: peer.pp,
                })
                .collect(),
            irqs: pd
                .irqs
                .iter()
                .map(|i| IrqEntry {
                    irq: i.irq,
                    id: i.id,
                    trigger: match i.trigger {
                        sdf::IrqTrigger::Level => "level".into(),
                        sdf::IrqTrigger::Edge => "edge".into(),
                    },
                })
                .collect(),
            pci_devices: pd
                .pci_devices
                .iter()
                .map(|d| PciDeviceEntry {
                    bdf: d.bdf.to_string(),
                    id: d.id,
                    vendor: d.vendor,
                    device: d.device,
                    bars: d.bars.iter().map(|b| (b.index, b.vaddr, b.size)).collect(),
                })
                .collect(),
        })
        .collect();

    let regions = system
        .memory_regions
        .iter()
        .map(|mr| RegionSummary {
            name: mr.name.clone(),
            size: mr.size,
            page_size: mr.page_size,
            phys_addr: mr.phys_addr,
            mapped_by: system
                .all_pds()
                .into_iter()
                .flat_map(|pd| {
                    pd.maps.iter().filter(|m| m.mr == mr.name).map(|m| Mapping {
                        pd: pd.name.clone(),
                        vaddr: m.vaddr,
                        perms: m.perms.to_string(),
                        cached: m.cached,
                    })
                })
                .collect(),
            mapped_by_guests: system
                .virtual_machines()
                .into_iter()
                .flat_map(|(_, vm)| {
                    vm.maps
                        .iter()
                        .filter(|m| m.mr == mr.name)
                        .map(|m| GuestMapping {
                            vm: vm.name.clone(),
                            gpa: m.vaddr,
                            perms: m.perms.to_string(),
                        })
                })
                .collect(),
            initial_data: region_data::find(data, &mr.name).map(|d| InitialData {
                path: d.path.display().to_string(),
                sha256: d.sha256.clone(),
                len: d.bytes.len() as u64,
            }),
        })
        .collect();

    let virtual_machines = system
        .virtual_machines()
        .into_iter()
        .map(|(vmm, vm)| VmEntry {
            name: vm.name.clone(),
            vmm: vmm.name.clone(),
            priority: vm.priority,
            budget_us: vm.budget,
            period_us: vm.period,
            vcpu_ids: vm.vcpus.iter().map(|v| v.id).collect(),
            maps: vm
                .maps
                .iter()
                .filter_map(|m| {
                    let mr = system.memory_region(&m.mr)?;
                    Some(VmMapEntry {
                        region: m.mr.clone(),
                        gpa: m.vaddr,
                        size: mr.size,
                        perms: m.perms.to_string(),
                        cached: m.cached,
                    })
                })
                .collect(),
            io_ports: vm
                .ioports
                .iter()
                .map(|p| IoPortEntry {
                    base: u16::try_from(p.addr).unwrap_or(u16::MAX),
                    count: u16::try_from(p.size).unwrap_or(u16::MAX),
                })
                .collect(),
        })
        .collect();

    Manifest {
        schema_version: SCHEMA_VERSION,
        system: source,
        protection_domains,
        virtual_machines,
        regions,
        measured_boot: None,
        boot_image: None,
    }
}
