//! The image's checks of PCI device grants: each names an existing PD and an
//! empty channel slot of it (the kernel puts the irq there), each function is
//! granted once, and every BAR window is page aligned, a power of two of at least
//! a page, in the PD's part of the address space and clear of its maps and other
//! BAR windows, so the loader's mapping cannot collide.

use super::{page_aligned, ImageError, SystemImage, CHANNELS};
use crate::layout;
use crate::pci::{PciDesc, MAX_BARS};

impl SystemImage<'_> {
    pub(super) fn check_pcis(&self) -> Result<(), ImageError> {
        for (i, d) in self.pcis.iter().enumerate() {
            let owner = self
                .pds
                .get(usize::from(d.owner_pd))
                .ok_or(ImageError::BadReference("PCI device owner"))?;
            let slot = owner
                .caps
                .get(usize::from(d.channel))
                .ok_or(ImageError::BadReference("PCI device channel"))?;
            if slot.flags != 0 || d.channel as usize >= CHANNELS {
                return Err(ImageError::BadReference("PCI device channel"));
            }
            if !d.bdf().is_valid() {
                return Err(ImageError::BadReference("PCI device address"));
            }
            let earlier = &self.pcis[..i];
            if earlier.iter().any(|o| o.bdf() == d.bdf())
                || earlier
                    .iter()
                    .any(|o| o.owner_pd == d.owner_pd && o.channel == d.channel)
            {
                return Err(ImageError::BadReference("PCI device granted twice"));
            }
            self.check_bars(d, earlier)?;
        }
        Ok(())
    }

    fn check_bars(&self, d: &PciDesc, earlier: &[PciDesc]) -> Result<(), ImageError> {
        if usize::from(d.bar_count) > MAX_BARS {
            return Err(ImageError::TooMany("PCI BARs"));
        }
        let bars = d.bars();
        let owner = usize::from(d.owner_pd);
        let maps = self.pd(owner).map(|p| p.maps).unwrap_or(&[]);
        let overlaps_taken = |start: u64, end: u64| {
            let in_maps = maps.iter().any(|m| {
                let size = self.regions.get(m.region as usize).map_or(0, |r| r.size);
                start < m.vaddr.saturating_add(size) && m.vaddr < end
            });
            let in_bars = earlier
                .iter()
                .filter(|o| o.owner_pd == d.owner_pd)
                .flat_map(|o| o.bars())
                .any(|o| start < o.vaddr.saturating_add(o.size) && o.vaddr < end);
            in_maps || in_bars
        };
        for (k, b) in bars.iter().enumerate() {
            if usize::from(b.index) >= MAX_BARS || bars[..k].iter().any(|o| o.index == b.index) {
                return Err(ImageError::BadReference("PCI BAR index"));
            }
            if !b.size.is_power_of_two()
                || b.size < layout::PAGE_SIZE
                || !page_aligned(b.vaddr)
                || !layout::is_pd_range(b.vaddr, b.size)
            {
                return Err(ImageError::BadAddress("PCI BAR window"));
            }
            let end = b.vaddr + b.size;
            let mine = bars[..k]
                .iter()
                .any(|o| b.vaddr < o.vaddr.saturating_add(o.size) && o.vaddr < end);
            if mine || overlaps_taken(b.vaddr, end) {
                return Err(ImageError::BadAddress("overlapping PCI BAR window"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::vec;

    use super::super::build::{encode_with_devices, PdSpec, RegionSpec};
    use super::super::*;
    use crate::pci::PciBarDesc;

    /// A driver PD (index 0, a 16 KiB map at 0x2000_0000, a notify cap on
    /// channel 1) and a second PD, with `devices` granted.
    fn image(devices: &[PciDesc]) -> Result<(), ImageError> {
        let spec = |name: &str| {
            let mut desc = PdDesc::empty();
            desc.name = crate::name(name).unwrap();
            (desc.entry, desc.stack_size) = (0x40_1000, 0x1000);
            PdSpec {
                desc,
                segments: vec![],
                maps: vec![MapDesc {
                    vaddr: 0x2000_0000,
                    region: 0,
                    perms: perms::R,
                    cached: 1,
                    _reserved: 0,
                }],
                patches: vec![],
                info_page: vec![],
                elf: vec![],
            }
        };
        let mut driver = spec("driver");
        driver.desc.caps[1].flags = CapDesc::NOTIFY;
        driver.desc.caps[1].notify_pd = 1;
        let region = RegionSpec {
            desc: RegionDesc::new(crate::name("dma").unwrap(), 0x4000, None),
            data: vec![],
        };
        let bytes = encode_with_devices(&[region], &[driver, spec("other")], &[], devices);
        SystemImage::parse(&bytes).map(|i| assert_eq!(i.pcis(), devices))
    }

    fn blk() -> PciDesc {
        let mut d = PciDesc {
            channel: 5,
            device: 5,
            vendor_id: 0x1af4,
            device_id: 0x1042,
            bar_count: 1,
            ..PciDesc::default()
        };
        d.bars[0] = PciBarDesc {
            vaddr: 0x3000_0000,
            size: 0x4000,
            index: 4,
            _reserved: [0; 7],
        };
        d
    }

    #[test]
    fn device_grants_round_trip_and_bad_ones_are_refused() {
        let second = PciDesc {
            device: 6,
            channel: 6,
            bar_count: 0,
            ..blk()
        };
        for (what, mutate, want) in cases() {
            let mut devices = [blk(), second];
            mutate(&mut devices);
            assert_eq!(image(&devices), want, "{what}");
        }
    }

    type Case = (&'static str, fn(&mut [PciDesc; 2]), Result<(), ImageError>);

    #[rustfmt::skip]
    fn cases() -> vec::Vec<Case> {
        let bad_ref = |what| Err(ImageError::BadReference(what));
        let bad_addr = |what| Err(ImageError::BadAddress(what));
        let overlap = bad_addr("overlapping PCI BAR window");
        vec![
            ("two grants", |_| {}, Ok(())),
            ("owner past the PDs", |d| d[0].owner_pd = 2, bad_ref("PCI device owner")),
            ("channel past 61", |d| d[0].channel = 62, bad_ref("PCI device channel")),
            ("channel in use", |d| d[0].channel = 1, bad_ref("PCI device channel")),
            ("device 32", |d| d[0].device = 32, bad_ref("PCI device address")),
            ("function 8", |d| d[0].function = 8, bad_ref("PCI device address")),
            ("same function twice", |d| d[1].device = 5, bad_ref("PCI device granted twice")),
            ("same channel twice", |d| d[1].channel = 5, bad_ref("PCI device granted twice")),
            ("seven BARs", |d| d[0].bar_count = 7, Err(ImageError::TooMany("PCI BARs"))),
            ("BAR 6", |d| d[0].bars[0].index = 6, bad_ref("PCI BAR index")),
            ("BAR listed twice", |d| { d[0].bars[1] = d[0].bars[0]; d[0].bars[1].vaddr += 0x4000; d[0].bar_count = 2; }, bad_ref("PCI BAR index")),
            ("window not a power of two", |d| d[0].bars[0].size = 0x3000, bad_addr("PCI BAR window")),
            ("window below a page", |d| d[0].bars[0].size = 0x800, bad_addr("PCI BAR window")),
            ("window unaligned", |d| d[0].bars[0].vaddr += 0x10, bad_addr("PCI BAR window")),
            ("window in the kernel half", |d| d[0].bars[0].vaddr = 1 << 63, bad_addr("PCI BAR window")),
            ("window on page 0", |d| d[0].bars[0].vaddr = 0, bad_addr("PCI BAR window")),
            ("window over a map", |d| d[0].bars[0].vaddr = 0x2000_2000, overlap),
            ("windows of one PD overlap", |d| { d[1].bars[0] = d[0].bars[0]; d[1].bar_count = 1; }, overlap),
            ("another PD's window may reuse the address", |d| { d[1].bars[0] = d[0].bars[0]; d[1].bar_count = 1; d[1].owner_pd = 1; }, Ok(())),
        ]
    }

    #[test]
    fn too_many_grants_are_refused() {
        let many: vec::Vec<PciDesc> = (0..17u8)
            .map(|i| PciDesc {
                device: i,
                channel: 10 + i,
                bar_count: 0,
                ..blk()
            })
            .collect();
        assert_eq!(image(&many[..16]), Ok(()));
        assert_eq!(image(&many), Err(ImageError::TooMany("PCI devices")));
    }
}
