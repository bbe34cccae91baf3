//! The info page: a read-only page in every PD (at [`crate::layout::INFO_VADDR`])
//! that tells the PD runtime what system.xml granted: its name, the regions it may
//! ask for by `setvar_vaddr` name, its variables, and which channel ids it holds.
//! The builder writes it; the kernel only patches region physical addresses in.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::Name;

pub const PAGE_LEN: usize = 4096;
pub const MAGIC: [u8; 8] = *b"PDINFO01";

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct InfoHeader {
    pub magic: [u8; 8],
    pub name: Name,
    pub region_count: u32,
    pub variable_count: u32,
    /// Channel ids this PD may notify / call over / ack as irqs (bit per id).
    pub notify_mask: u64,
    pub pp_mask: u64,
    pub irq_mask: u64,
}

/// A region the PD can ask for with `Init::region(name)`.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct InfoRegion {
    pub name: Name,
    pub vaddr: u64,
    pub size: u64,
    /// [`crate::image::perms`] bits.
    pub perms: u64,
}

/// A value the PD can ask for with `Init::variable(name)`.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct InfoVariable {
    pub name: Name,
    pub value: u64,
}

const _: () = {
    assert!(core::mem::size_of::<InfoHeader>() == 104);
    assert!(core::mem::size_of::<InfoRegion>() == 88);
    assert!(core::mem::size_of::<InfoVariable>() == 72);
};

/// A checked view of an info page.
#[derive(Copy, Clone, Debug)]
pub struct InfoPage<'a> {
    pub header: &'a InfoHeader,
    pub regions: &'a [InfoRegion],
    pub variables: &'a [InfoVariable],
}

impl<'a> InfoPage<'a> {
    pub fn parse(page: &'a [u8]) -> Option<Self> {
        let (header, rest) = InfoHeader::ref_from_prefix(page).ok()?;
        if header.magic != MAGIC {
            return None;
        }
        let (regions, rest) =
            <[InfoRegion]>::ref_from_prefix_with_elems(rest, header.region_count as usize).ok()?;
        let (variables, _) =
            <[InfoVariable]>::ref_from_prefix_with_elems(rest, header.variable_count as usize)
                .ok()?;
        Some(Self {
            header,
            regions,
            variables,
        })
    }

    pub fn region(&self, name: &str) -> Option<&'a InfoRegion> {
        self.regions
            .iter()
            .find(|r| crate::name_str(&r.name) == Some(name))
    }

    pub fn variable(&self, name: &str) -> Option<u64> {
        self.variables
            .iter()
            .find(|v| crate::name_str(&v.name) == Some(name))
            .map(|v| v.value)
    }
}

#[cfg(any(feature = "alloc", test))]
pub mod build {
    use alloc::vec::Vec;

    use super::*;

    /// Variables whose value the kernel fills in: (variable index, region index).
    pub type PaddrVariable = (usize, u32);

    /// Why a description does not fit in one info page.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct TooLarge {
        pub regions: usize,
        pub variables: usize,
    }

    /// An encoded page and its patches: (byte offset of a value, region index).
    pub type Encoded = (Vec<u8>, Vec<(u32, u32)>);

    /// Lays out the page; returns it and, per `paddr` variable, the byte offset of its
    /// value for a [`crate::image::PatchDesc`].
    pub fn encode(
        header: InfoHeader,
        regions: &[InfoRegion],
        variables: &[InfoVariable],
        paddr_variables: &[PaddrVariable],
    ) -> Result<Encoded, TooLarge> {
        let len = core::mem::size_of::<InfoHeader>()
            + core::mem::size_of_val(regions)
            + core::mem::size_of_val(variables);
        if len > PAGE_LEN {
            return Err(TooLarge {
                regions: regions.len(),
                variables: variables.len(),
            });
        }
        let mut header = header;
        header.magic = MAGIC;
        header.region_count = regions.len() as u32;
        header.variable_count = variables.len() as u32;
        let mut page = Vec::with_capacity(PAGE_LEN);
        page.extend_from_slice(header.as_bytes());
        page.extend_from_slice(regions.as_bytes());
        let vars_at = page.len();
        page.extend_from_slice(variables.as_bytes());
        page.resize(PAGE_LEN, 0);
        let value_at = core::mem::offset_of!(InfoVariable, value);
        let patches = paddr_variables
            .iter()
            .filter(|(i, _)| *i < variables.len())
            .map(|&(i, region)| {
                let off = vars_at + i * core::mem::size_of::<InfoVariable>() + value_at;
                (off as u32, region)
            })
            .collect();
        Ok((page, patches))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::build::encode;
    use super::*;

    fn header(name: &str) -> InfoHeader {
        InfoHeader {
            magic: [0; 8],
            name: crate::name(name).unwrap(),
            region_count: 0,
            variable_count: 0,
            notify_mask: 1,
            pp_mask: 2,
            irq_mask: 0,
        }
    }

    #[test]
    fn regions_and_variables_are_found_by_name() {
        let regions = [InfoRegion {
            name: crate::name("ring").unwrap(),
            vaddr: 0x2000_0000,
            size: 0x4000,
            perms: 3,
        }];
        let vars = [
            InfoVariable {
                name: crate::name("ring").unwrap(),
                value: 0x2000_0000,
            },
            InfoVariable {
                name: crate::name("ring_paddr").unwrap(),
                value: 0,
            },
        ];
        let (page, patches) = encode(header("pd"), &regions, &vars, &[(1, 0)]).unwrap();
        let info = InfoPage::parse(&page).unwrap();
        assert_eq!(crate::name_str(&info.header.name), Some("pd"));
        assert_eq!(info.region("ring").unwrap().size, 0x4000);
        assert!(info.region("rin").is_none());
        assert_eq!(info.variable("ring"), Some(0x2000_0000));
        // The patch points exactly at ring_paddr's value.
        let mut page = page;
        let off = patches[0].0 as usize;
        page[off..off + 8].copy_from_slice(&0x1234_5000u64.to_le_bytes());
        assert_eq!(
            InfoPage::parse(&page).unwrap().variable("ring_paddr"),
            Some(0x1234_5000)
        );
    }

    #[test]
    fn a_description_larger_than_a_page_is_refused() {
        let var = InfoVariable {
            name: crate::name("v").unwrap(),
            value: 0,
        };
        let vars = std::vec![var; 60];
        assert!(encode(header("pd"), &[], &vars, &[]).is_err());
    }

    #[test]
    fn counts_beyond_the_page_do_not_parse() {
        let (mut page, _) = encode(header("pd"), &[], &[], &[]).unwrap();
        let at = core::mem::offset_of!(InfoHeader, region_count);
        page[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(InfoPage::parse(&page).is_none());
        page[0] = b'X';
        assert!(InfoPage::parse(&page).is_none());
    }
}
