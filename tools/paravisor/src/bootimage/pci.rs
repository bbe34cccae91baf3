//! `<pci_device>` grants -> the image's [`PciDesc`] table. The builder knows
//! each BAR window's size (the grant says it), so it claims the windows in the
//! PD's address space like maps; the kernel finds the BARs themselves at boot.

use kernel_abi::image::perms;
use kernel_abi::info::{InfoRegion, InfoVariable};
use kernel_abi::pci::{PciBarDesc, PciDesc, MAX_BARS};

/// One PD's grants, and for each BAR with `setvar_vaddr` the info-page region
/// and variable, as a map gets.
pub struct Granted {
    pub descs: Vec<PciDesc>,
    pub regions: Vec<InfoRegion>,
    pub variables: Vec<InfoVariable>,
    /// (start, end, what) for the builder's overlap check.
    pub windows: Vec<(u64, u64, String)>,
}

pub fn grants(pd: &sdf::ProtectionDomain, owner: usize) -> Result<Granted, String> {
    let mut out = Granted {
        descs: Vec::new(),
        regions: Vec::new(),
        variables: Vec::new(),
        windows: Vec::new(),
    };
    let owner = u8::try_from(owner).map_err(|_| "PD index past 255".to_string())?;
    for dev in &pd.pci_devices {
        if dev.bars.len() > MAX_BARS {
            return Err(format!("PCI {}: more than {MAX_BARS} BARs", dev.bdf));
        }
        let mut d = PciDesc {
            owner_pd: owner,
            channel: dev.id,
            bus: dev.bdf.bus,
            device: dev.bdf.device,
            function: dev.bdf.function,
            bar_count: dev.bars.len() as u8,
            vendor_id: dev.vendor,
            device_id: dev.device,
            ..PciDesc::default()
        };
        for (slot, bar) in d.bars.iter_mut().zip(&dev.bars) {
            *slot = PciBarDesc {
                vaddr: bar.vaddr,
                size: bar.size,
                index: bar.index,
                _reserved: [0; 7],
            };
            let what = format!("BAR {} of PCI {}", bar.index, dev.bdf);
            let end = bar
                .vaddr
                .checked_add(bar.size)
                .ok_or_else(|| format!("{what}: window wraps"))?;
            out.windows.push((bar.vaddr, end, what));
            if let Some(var) = &bar.setvar_vaddr {
                let name = kernel_abi::name(var)
                    .ok_or_else(|| format!("setvar_vaddr {var:?} is longer than 63 bytes"))?;
                out.regions.push(InfoRegion {
                    name,
                    vaddr: bar.vaddr,
                    size: bar.size,
                    perms: u64::from(perms::R | perms::W),
                });
                out.variables.push(InfoVariable {
                    name,
                    value: bar.vaddr,
                });
            }
        }
        out.descs.push(d);
    }
    Ok(out)
}
