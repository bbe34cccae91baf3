//! The system image: the compiled system description plus every PD's program,
//! which the builder appends to the kernel ELF as one more loadable segment at the
//! first page after the kernel. Layout (little-endian, 8-byte aligned tables):
//!
//! ```text
//! Header | RegionDesc[region_count] | PdDesc[pd_count] | VmDesc[vm_count] |
//! PciDesc[pci_count] |
//! per PD: SegmentDesc[], MapDesc[], PatchDesc[], info page (4 KiB, page aligned),
//! program ELF bytes | per VM: VmMapDesc[] | per region with initial contents:
//! its bytes (page aligned)
//! ```
//!
//! The builder resolves everything (channel ends to PD indices, setvars to info-page
//! offsets, a VM's owner to its VMM PD's index); the kernel allocates frames, copies
//! and maps, and decides nothing. [`SystemImage::parse`] checks every offset, count
//! and index it hands out.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::pci::PciDesc;
use crate::{layout, Name};

pub const MAGIC: [u8; 8] = *b"PVSYSIMG";
/// 2: virtual machines ([`VmDesc`]) and region initial contents.
/// 3: PCI device grants ([`PciDesc`]).
/// 4: a VM's I/O port grant ([`VmDesc::io_base`], [`GUEST_PORT_RANGES`]).
pub const VERSION: u32 = 4;
/// Channel and irq ids per PD (0..=61), as in Microkit.
pub const CHANNELS: usize = 62;
pub const MAX_PDS: usize = 63;
pub const MAX_REGIONS: usize = 256;
pub const MAX_SEGMENTS: usize = 16;
pub const MAX_MAPS: usize = 64;
pub const NO_PARENT: u8 = 0xff;
/// A PD owns at most one VM (it is that VM's VMM), as in Microkit.
pub const MAX_VMS: usize = MAX_PDS;
pub const MAX_VCPUS: usize = 16;
/// vCPU ids share the VMM's child-id space (0..=61), as in Microkit.
pub const MAX_VCPU_ID: u8 = 61;
pub const MAX_VM_MAPS: usize = 64;
/// Guest-physical addresses end below 2^48: four levels of nested page tables.
pub const GPA_LIMIT: u64 = 1 << 48;

/// Permission bits of segments and maps.
pub mod perms {
    pub const R: u32 = 1;
    pub const W: u32 = 2;
    pub const X: u32 = 4;
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub pd_count: u32,
    pub region_count: u32,
    pub vm_count: u32,
    pub total_len: u64,
    pub regions_off: u64,
    pub pds_off: u64,
    pub vms_off: u64,
    pub pci_count: u32,
    pub _reserved: u32,
    pub pci_off: u64,
}

/// A memory region. `phys_addr` is [`RegionDesc::ALLOCATE`] unless system.xml fixed it.
/// Its first `data_len` bytes start as the image bytes at `data_off`, the rest as
/// zero; `(0, 0)` means all zero. Only allocated regions have initial contents (a
/// fixed `phys_addr` is device memory, which the loader must not write).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RegionDesc {
    pub name: Name,
    pub size: u64,
    pub phys_addr: u64,
    pub data_off: u64,
    pub data_len: u64,
}

impl RegionDesc {
    pub const ALLOCATE: u64 = u64::MAX;
}

/// One channel id's capability. `flags` says which parts are present.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CapDesc {
    pub flags: u8,
    /// NOTIFY: PD index to signal and the bit (its channel id) to set there.
    pub notify_pd: u8,
    pub notify_bit: u8,
    /// PPC: PD index to call and the channel id the callee sees the call on.
    pub ppc_pd: u8,
    pub ppc_badge: u8,
    /// IRQ: the interrupt line (legacy PIC numbering, 1..=15).
    pub irq: u8,
    pub _reserved: [u8; 2],
}

impl CapDesc {
    pub const NOTIFY: u8 = 1;
    pub const PPC: u8 = 2;
    pub const IRQ: u8 = 4;
    /// Line 0 (the PIT) is the kernel's timer.
    pub const MIN_IRQ: u8 = 1;
    pub const MAX_IRQ: u8 = 15;
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PdDesc {
    pub name: Name,
    pub priority: u8,
    pub passive: u8,
    /// Index of the parent PD (its fault handler), or [`NO_PARENT`].
    pub parent: u8,
    /// The id the parent knows this PD by.
    pub child_id: u8,
    /// The debug system calls this PD may make ([`PdDesc::DEBUG_CONSOLE`],
    /// [`PdDesc::DEBUG_HALT`]): system.xml's `debug_console`/`debug_halt`.
    pub debug: u8,
    pub _reserved: [u8; 3],
    pub budget_us: u64,
    pub period_us: u64,
    pub entry: u64,
    pub stack_size: u64,
    /// The program image as it was given to the builder, for hashing and audit.
    pub elf_off: u64,
    pub elf_len: u64,
    pub segments_off: u64,
    pub maps_off: u64,
    pub patches_off: u64,
    pub info_off: u64,
    pub segment_count: u32,
    pub map_count: u32,
    pub patch_count: u32,
    pub _reserved2: u32,
    pub caps: [CapDesc; CHANNELS],
}

impl PdDesc {
    /// `DEBUG_PUTS`: lines on the kernel console, prefixed with the PD's name.
    pub const DEBUG_CONSOLE: u8 = 1;
    /// `DEBUG_HALT`: stop the machine with a status (the boot tests' verdict).
    pub const DEBUG_HALT: u8 = 2;
}

/// A loadable segment, with offsets relative to the PD's ELF bytes.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SegmentDesc {
    pub vaddr: u64,
    pub file_off: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub perms: u32,
    pub _reserved: u32,
}

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MapDesc {
    pub vaddr: u64,
    pub region: u32,
    pub perms: u32,
    pub cached: u32,
    pub _reserved: u32,
}

/// A guest virtual machine. Its vCPUs run on the thread of its VMM, PD
/// `owner_pd` (seL4-style `VM_ENTER`, see [`crate::vcpu`]), at most at that PD's
/// priority; `priority`, `budget_us` and `period_us` bound the guest's share.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VmDesc {
    pub name: Name,
    pub owner_pd: u8,
    /// How many entries of `vcpu_ids` are used (1..=[`MAX_VCPUS`]).
    pub vcpu_count: u8,
    pub priority: u8,
    /// Ports `io_base..io_base + io_count` the guest reaches without exits; 0: none.
    /// Only a whole range of [`GUEST_PORT_RANGES`].
    pub io_count: u8,
    pub io_base: u16,
    pub _reserved: [u8; 2],
    pub budget_us: u64,
    pub period_us: u64,
    /// The ids the VMM names its vCPUs by (each 0..=[`MAX_VCPU_ID`], distinct).
    pub vcpu_ids: [u8; MAX_VCPUS],
    pub maps_off: u64,
    pub map_count: u32,
    pub _reserved2: u32,
}

/// The port ranges a VM may be granted (base, count): the PC's serial ports other
/// than COM1, which is the kernel's console. An allow-list, not a deny-list: the
/// board has ports that reset or power off the machine (0xCF9, the ACPI PM block)
/// or reach the kernel's devices (PIC, PIT, PCI configuration), and only these
/// are known to hold nothing but a 16550 (or nothing): a UART has no DMA, so a
/// guest driving it reaches its own byte stream and its interrupt line only.
pub const GUEST_PORT_RANGES: [(u16, u8); 3] = [(0x2f8, 8), (0x3e8, 8), (0x2e8, 8)];

/// Region `region` appears in the guest at guest-physical address `gpa`.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VmMapDesc {
    pub gpa: u64,
    pub region: u32,
    /// [`perms`] bits.
    pub perms: u32,
}

/// At boot, write region `region`'s physical address into the info page at `offset`.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PatchDesc {
    pub offset: u32,
    pub region: u32,
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == 72);
    assert!(core::mem::size_of::<RegionDesc>() == 96);
    assert!(core::mem::size_of::<VmDesc>() == 120);
    assert!(core::mem::size_of::<VmMapDesc>() == 16);
    assert!(core::mem::size_of::<CapDesc>() == 8);
    assert!(core::mem::size_of::<PdDesc>() == 64 + 8 + 80 + 16 + CHANNELS * 8);
    assert!(core::mem::size_of::<SegmentDesc>() == 40);
    assert!(core::mem::size_of::<MapDesc>() == 24);
    assert!(core::mem::size_of::<PatchDesc>() == 8);
};

/// Why an image was refused. The kernel prints it and stops; the builder and
/// `verify` report it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("shorter than its header")]
    TooShort,
    #[error("no system image magic")]
    BadMagic,
    #[error("unsupported image version {0}")]
    BadVersion(u32),
    /// A table or blob lies outside the image or is misaligned.
    #[error("{0} lies outside the image")]
    OutOfBounds(&'static str),
    #[error("too many {0}")]
    TooMany(&'static str),
    /// A PD index, region index or irq number that does not exist.
    #[error("{0} refers to something that does not exist")]
    BadReference(&'static str),
    /// An address range that is unaligned, overlaps the kernel's reserved area or
    /// is otherwise unusable.
    #[error("{0} has an unusable address or size")]
    BadAddress(&'static str),
}

/// A checked view of an image: every accessor's result is in bounds.
#[derive(Copy, Clone, Debug)]
pub struct SystemImage<'a> {
    bytes: &'a [u8],
    header: &'a Header,
    regions: &'a [RegionDesc],
    pds: &'a [PdDesc],
    vms: &'a [VmDesc],
    pcis: &'a [PciDesc],
}

/// One PD's parts, checked.
#[derive(Copy, Clone, Debug)]
pub struct PdView<'a> {
    pub desc: &'a PdDesc,
    pub segments: &'a [SegmentDesc],
    pub maps: &'a [MapDesc],
    pub patches: &'a [PatchDesc],
    pub info_page: &'a [u8],
    pub elf: &'a [u8],
}

/// One VM's parts, checked: `desc.owner_pd` is a PD index, every map's region
/// exists, GPA ranges are page aligned, below [`GPA_LIMIT`] and disjoint.
#[derive(Copy, Clone, Debug)]
pub struct VmView<'a> {
    pub desc: &'a VmDesc,
    pub maps: &'a [VmMapDesc],
}

impl VmView<'_> {
    /// The vCPU ids in use.
    pub fn vcpu_ids(&self) -> &[u8] {
        let n = usize::from(self.desc.vcpu_count).min(MAX_VCPUS);
        &self.desc.vcpu_ids[..n]
    }
}

fn slice_at<'a, T: FromBytes + Immutable + KnownLayout>(
    bytes: &'a [u8],
    off: u64,
    count: usize,
    what: &'static str,
) -> Result<&'a [T], ImageError> {
    let start = usize::try_from(off).map_err(|_| ImageError::OutOfBounds(what))?;
    let tail = bytes.get(start..).ok_or(ImageError::OutOfBounds(what))?;
    <[T]>::ref_from_prefix_with_elems(tail, count)
        .map(|(s, _)| s)
        .map_err(|_| ImageError::OutOfBounds(what))
}

fn bytes_at<'a>(
    bytes: &'a [u8],
    off: u64,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8], ImageError> {
    let start = usize::try_from(off).map_err(|_| ImageError::OutOfBounds(what))?;
    let len = usize::try_from(len).map_err(|_| ImageError::OutOfBounds(what))?;
    let end = start
        .checked_add(len)
        .ok_or(ImageError::OutOfBounds(what))?;
    bytes.get(start..end).ok_or(ImageError::OutOfBounds(what))
}

fn page_aligned(x: u64) -> bool {
    x.is_multiple_of(layout::PAGE_SIZE)
}

fn check_region_data(bytes: &[u8], r: &RegionDesc) -> Result<(), ImageError> {
    if r.data_len == 0 {
        if r.data_off != 0 {
            return Err(ImageError::OutOfBounds("region data"));
        }
        return Ok(());
    }
    if r.data_len > r.size || r.phys_addr != RegionDesc::ALLOCATE {
        return Err(ImageError::BadAddress("region data"));
    }
    bytes_at(bytes, r.data_off, r.data_len, "region data").map(|_| ())
}

impl<'a> SystemImage<'a> {
    /// Checks the whole image: tables in bounds and aligned, every cross reference
    /// valid, every user address range page aligned and below the reserved area.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        let (header, _) = Header::ref_from_prefix(bytes).map_err(|_| ImageError::TooShort)?;
        if header.magic != MAGIC {
            return Err(ImageError::BadMagic);
        }
        if header.version != VERSION {
            return Err(ImageError::BadVersion(header.version));
        }
        let total = usize::try_from(header.total_len).map_err(|_| ImageError::TooShort)?;
        let bytes = bytes.get(..total).ok_or(ImageError::TooShort)?;
        let pd_count = header.pd_count as usize;
        let region_count = header.region_count as usize;
        if pd_count > MAX_PDS {
            return Err(ImageError::TooMany("protection domains"));
        }
        if region_count > MAX_REGIONS {
            return Err(ImageError::TooMany("memory regions"));
        }
        let regions: &[RegionDesc] =
            slice_at(bytes, header.regions_off, region_count, "region table")?;
        let pds: &[PdDesc] = slice_at(bytes, header.pds_off, pd_count, "PD table")?;
        let vm_count = header.vm_count as usize;
        if vm_count > MAX_VMS {
            return Err(ImageError::TooMany("virtual machines"));
        }
        let vms: &[VmDesc] = slice_at(bytes, header.vms_off, vm_count, "VM table")?;
        let pci_count = header.pci_count as usize;
        if pci_count > crate::pci::MAX_DEVICES {
            return Err(ImageError::TooMany("PCI devices"));
        }
        let pcis: &[PciDesc] = slice_at(bytes, header.pci_off, pci_count, "PCI table")?;
        for r in regions {
            if r.size == 0 || !page_aligned(r.size) {
                return Err(ImageError::BadAddress("memory region size"));
            }
            if r.phys_addr != RegionDesc::ALLOCATE
                && (!page_aligned(r.phys_addr) || r.phys_addr.checked_add(r.size).is_none())
            {
                return Err(ImageError::BadAddress("memory region phys_addr"));
            }
            check_region_data(bytes, r)?;
        }
        let image = Self {
            bytes,
            header,
            regions,
            pds,
            vms,
            pcis,
        };
        for i in 0..pd_count {
            image.check_pd(i)?;
        }
        for i in 0..vm_count {
            image.check_vm(i)?;
        }
        image.check_pcis()?;
        Ok(image)
    }

    pub fn header(&self) -> &'a Header {
        self.header
    }

    pub fn regions(&self) -> &'a [RegionDesc] {
        self.regions
    }

    pub fn pd_count(&self) -> usize {
        self.pds.len()
    }

    /// Region `index`'s initial contents (empty: all zero, or no such region). The
    /// rest of the region up to its size is zero.
    pub fn region_data(&self, index: usize) -> &'a [u8] {
        self.regions
            .get(index)
            .filter(|r| r.data_len != 0)
            .and_then(|r| bytes_at(self.bytes, r.data_off, r.data_len, "region data").ok())
            .unwrap_or(&[])
    }

    /// The PCI device grants, checked by [`Self::parse`] (see `image/pci.rs`).
    pub fn pcis(&self) -> &'a [PciDesc] {
        self.pcis
    }

    pub fn vm_count(&self) -> usize {
        self.vms.len()
    }

    /// Every VM, in image order. Parts were checked by [`Self::parse`].
    pub fn vms(&self) -> impl Iterator<Item = VmView<'a>> + 'a {
        let image = *self;
        (0..self.vms.len()).filter_map(move |i| image.vm_view(i).ok())
    }

    /// The VM whose VMM is PD `pd_index`, if it has one.
    pub fn vm_of(&self, pd_index: usize) -> Option<VmView<'a>> {
        self.vms()
            .find(|vm| usize::from(vm.desc.owner_pd) == pd_index)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// PD `i`, or `None` past the end. Parts were checked by [`Self::parse`].
    pub fn pd(&self, i: usize) -> Option<PdView<'a>> {
        self.pd_view(i).ok()
    }

    fn pd_view(&self, i: usize) -> Result<PdView<'a>, ImageError> {
        let desc = self
            .pds
            .get(i)
            .ok_or(ImageError::BadReference("PD index"))?;
        let segment_count = desc.segment_count as usize;
        let map_count = desc.map_count as usize;
        if segment_count > MAX_SEGMENTS {
            return Err(ImageError::TooMany("segments"));
        }
        if map_count > MAX_MAPS {
            return Err(ImageError::TooMany("maps"));
        }
        let patch_count = desc.patch_count as usize;
        if patch_count > crate::info::PAGE_LEN / 8 {
            return Err(ImageError::TooMany("info page patches"));
        }
        if !page_aligned(desc.info_off) {
            return Err(ImageError::OutOfBounds("info page"));
        }
        Ok(PdView {
            desc,
            segments: slice_at(
                self.bytes,
                desc.segments_off,
                segment_count,
                "segment table",
            )?,
            maps: slice_at(self.bytes, desc.maps_off, map_count, "map table")?,
            patches: slice_at(self.bytes, desc.patches_off, patch_count, "patch table")?,
            info_page: bytes_at(
                self.bytes,
                desc.info_off,
                crate::info::PAGE_LEN as u64,
                "info page",
            )?,
            elf: bytes_at(self.bytes, desc.elf_off, desc.elf_len, "program image")?,
        })
    }

    fn vm_view(&self, i: usize) -> Result<VmView<'a>, ImageError> {
        let desc = self
            .vms
            .get(i)
            .ok_or(ImageError::BadReference("VM index"))?;
        let map_count = desc.map_count as usize;
        if map_count > MAX_VM_MAPS {
            return Err(ImageError::TooMany("VM maps"));
        }
        Ok(VmView {
            desc,
            maps: slice_at(self.bytes, desc.maps_off, map_count, "VM map table")?,
        })
    }

    fn check_vm(&self, i: usize) -> Result<(), ImageError> {
        let vm = self.vm_view(i)?;
        let d = vm.desc;
        if usize::from(d.owner_pd) >= self.pds.len() {
            return Err(ImageError::BadReference("VM owner"));
        }
        // One VM per VMM: the kernel finds a PD's guest by its owner index.
        if self.vms[..i].iter().any(|o| o.owner_pd == d.owner_pd) {
            return Err(ImageError::BadReference("VM owner"));
        }
        let count = usize::from(d.vcpu_count);
        if count > MAX_VCPUS {
            return Err(ImageError::TooMany("vCPUs"));
        }
        let ids = &d.vcpu_ids[..count];
        if count == 0
            || ids.iter().any(|&id| id > MAX_VCPU_ID)
            || ids.iter().enumerate().any(|(k, id)| ids[..k].contains(id))
        {
            return Err(ImageError::BadReference("vCPU id"));
        }
        let grant = (d.io_base, d.io_count);
        if d.io_count != 0 && !GUEST_PORT_RANGES.contains(&grant) {
            return Err(ImageError::BadAddress("VM I/O ports"));
        }
        // A port range is one VM's: two guests on one UART would see each other's bytes.
        if d.io_count != 0
            && self.vms[..i]
                .iter()
                .any(|o| (o.io_base, o.io_count) == grant)
        {
            return Err(ImageError::BadAddress("VM I/O ports"));
        }
        for (k, m) in vm.maps.iter().enumerate() {
            let region = self
                .regions
                .get(m.region as usize)
                .ok_or(ImageError::BadReference("VM map"))?;
            let end = m.gpa.checked_add(region.size);
            if !page_aligned(m.gpa)
                || end.is_none_or(|e| e > GPA_LIMIT)
                || m.perms & !(perms::R | perms::W | perms::X) != 0
            {
                return Err(ImageError::BadAddress("VM map"));
            }
            let end = m.gpa + region.size;
            let overlaps = vm.maps[..k].iter().any(|o| {
                let o_size = self.regions.get(o.region as usize).map_or(0, |r| r.size);
                m.gpa < o.gpa.saturating_add(o_size) && o.gpa < end
            });
            if overlaps {
                return Err(ImageError::BadAddress("overlapping VM maps"));
            }
        }
        Ok(())
    }

    fn check_pd(&self, i: usize) -> Result<(), ImageError> {
        let pd = self.pd_view(i)?;
        let d = pd.desc;
        if usize::from(d.parent) >= self.pds.len() && d.parent != NO_PARENT {
            return Err(ImageError::BadReference("parent"));
        }
        if usize::from(d.parent) == i {
            return Err(ImageError::BadReference("parent"));
        }
        if d.debug & !(PdDesc::DEBUG_CONSOLE | PdDesc::DEBUG_HALT) != 0 {
            return Err(ImageError::BadReference("debug grant"));
        }
        if d.stack_size == 0 || !page_aligned(d.stack_size) || d.stack_size > layout::MAX_STACK_SIZE
        {
            return Err(ImageError::BadAddress("stack size"));
        }
        if !layout::is_pd_range(d.entry, 1) {
            return Err(ImageError::BadAddress("entry point"));
        }
        for s in pd.segments {
            let start = s.vaddr & !(layout::PAGE_SIZE - 1);
            let span = (s.vaddr - start).checked_add(s.mem_size);
            if s.file_size > s.mem_size || !span.is_some_and(|n| layout::is_pd_range(start, n)) {
                return Err(ImageError::BadAddress("segment"));
            }
            let end = s.file_off.checked_add(s.file_size);
            if end.is_none_or(|e| e > pd.elf.len() as u64) {
                return Err(ImageError::OutOfBounds("segment bytes"));
            }
        }
        for m in pd.maps {
            let region = self
                .regions
                .get(m.region as usize)
                .ok_or(ImageError::BadReference("map"))?;
            if !page_aligned(m.vaddr) || !layout::is_pd_range(m.vaddr, region.size) {
                return Err(ImageError::BadAddress("map"));
            }
        }
        for p in pd.patches {
            if p.offset % 8 != 0 || p.offset as usize + 8 > crate::info::PAGE_LEN {
                return Err(ImageError::OutOfBounds("patch"));
            }
            if p.region as usize >= self.regions.len() {
                return Err(ImageError::BadReference("patch"));
            }
        }
        for cap in &d.caps {
            let n = self.pds.len();
            if cap.flags & CapDesc::NOTIFY != 0
                && (usize::from(cap.notify_pd) >= n || usize::from(cap.notify_bit) >= CHANNELS)
            {
                return Err(ImageError::BadReference("notification capability"));
            }
            if cap.flags & CapDesc::PPC != 0
                && (usize::from(cap.ppc_pd) >= n || usize::from(cap.ppc_badge) >= CHANNELS)
            {
                return Err(ImageError::BadReference("call capability"));
            }
            if cap.flags & CapDesc::IRQ != 0
                && !(CapDesc::MIN_IRQ..=CapDesc::MAX_IRQ).contains(&cap.irq)
            {
                return Err(ImageError::BadReference("irq capability"));
            }
        }
        Ok(())
    }
}

/// Builds images; the builder fills in the descriptors, this lays out the bytes.
#[cfg(any(feature = "alloc", test))]
pub mod build {
    use alloc::vec::Vec;

    use zerocopy::FromZeros;

    use super::*;

    /// A PD as the builder describes it; offsets are filled in by [`encode`].
    #[derive(Clone, Debug)]
    pub struct PdSpec {
        pub desc: PdDesc,
        pub segments: Vec<SegmentDesc>,
        pub maps: Vec<MapDesc>,
        pub patches: Vec<PatchDesc>,
        pub info_page: Vec<u8>,
        pub elf: Vec<u8>,
    }

    /// A region and its initial contents (empty: all zero); [`encode`] fills in
    /// `data_off` and `data_len`.
    #[derive(Clone, Debug)]
    pub struct RegionSpec {
        pub desc: RegionDesc,
        pub data: Vec<u8>,
    }

    /// A VM; [`encode`] fills in `maps_off` and `map_count`.
    #[derive(Clone, Debug)]
    pub struct VmSpec {
        pub desc: VmDesc,
        pub maps: Vec<VmMapDesc>,
    }

    impl RegionDesc {
        /// An all-zero region of `size` bytes, allocated by the kernel unless
        /// `phys_addr` is given.
        pub fn new(name: Name, size: u64, phys_addr: Option<u64>) -> Self {
            Self {
                name,
                size,
                phys_addr: phys_addr.unwrap_or(Self::ALLOCATE),
                data_off: 0,
                data_len: 0,
            }
        }
    }

    impl VmDesc {
        /// A descriptor with everything zero, for the builder to fill in.
        pub fn empty() -> Self {
            Self::new_zeroed()
        }
    }

    impl PdDesc {
        /// A descriptor with everything zero or absent, for the builder to fill in.
        pub fn empty() -> Self {
            Self {
                parent: NO_PARENT,
                ..Self::new_zeroed()
            }
        }
    }

    fn pad_to(out: &mut Vec<u8>, align: usize) {
        out.resize(out.len().next_multiple_of(align), 0);
    }

    /// Lays out an image without PCI device grants.
    pub fn encode(regions: &[RegionSpec], pds: &[PdSpec], vms: &[VmSpec]) -> Vec<u8> {
        encode_with_devices(regions, pds, vms, &[])
    }

    /// Lays out the image. Deterministic: the same specs give the same bytes.
    pub fn encode_with_devices(
        regions: &[RegionSpec],
        pds: &[PdSpec],
        vms: &[VmSpec],
        pcis: &[PciDesc],
    ) -> Vec<u8> {
        let header_len = core::mem::size_of::<Header>();
        let regions_off = header_len;
        let pds_off = regions_off + regions.len() * core::mem::size_of::<RegionDesc>();
        let vms_off = pds_off + pds.len() * core::mem::size_of::<PdDesc>();
        let pci_off = vms_off + vms.len() * core::mem::size_of::<VmDesc>();
        let tables_end = pci_off + core::mem::size_of_val(pcis);
        let mut out = alloc::vec![0; tables_end];
        let mut pd_descs = Vec::new();
        for spec in pds {
            let mut d = spec.desc;
            pad_to(&mut out, 8);
            d.segments_off = out.len() as u64;
            d.segment_count = spec.segments.len() as u32;
            out.extend_from_slice(spec.segments.as_bytes());
            d.maps_off = out.len() as u64;
            d.map_count = spec.maps.len() as u32;
            out.extend_from_slice(spec.maps.as_bytes());
            d.patches_off = out.len() as u64;
            d.patch_count = spec.patches.len() as u32;
            out.extend_from_slice(spec.patches.as_bytes());
            pad_to(&mut out, layout::PAGE_SIZE as usize);
            d.info_off = out.len() as u64;
            let mut page = spec.info_page.clone();
            page.resize(crate::info::PAGE_LEN, 0);
            out.extend_from_slice(&page);
            d.elf_off = out.len() as u64;
            d.elf_len = spec.elf.len() as u64;
            out.extend_from_slice(&spec.elf);
            pd_descs.push(d);
        }
        let mut vm_descs = Vec::new();
        for spec in vms {
            let mut d = spec.desc;
            pad_to(&mut out, 8);
            d.maps_off = out.len() as u64;
            d.map_count = spec.maps.len() as u32;
            out.extend_from_slice(spec.maps.as_bytes());
            vm_descs.push(d);
        }
        let mut region_descs = Vec::new();
        for spec in regions {
            let mut d = spec.desc;
            if spec.data.is_empty() {
                d.data_off = 0;
                d.data_len = 0;
            } else {
                // Page aligned, so a loader may one day map the bytes instead of copying.
                pad_to(&mut out, layout::PAGE_SIZE as usize);
                d.data_off = out.len() as u64;
                d.data_len = spec.data.len() as u64;
                out.extend_from_slice(&spec.data);
            }
            region_descs.push(d);
        }
        pad_to(&mut out, layout::PAGE_SIZE as usize);
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            pd_count: pds.len() as u32,
            region_count: regions.len() as u32,
            vm_count: vms.len() as u32,
            total_len: out.len() as u64,
            regions_off: regions_off as u64,
            pds_off: pds_off as u64,
            vms_off: vms_off as u64,
            pci_count: pcis.len() as u32,
            _reserved: 0,
            pci_off: pci_off as u64,
        };
        out[..header_len].copy_from_slice(header.as_bytes());
        out[regions_off..pds_off].copy_from_slice(region_descs.as_slice().as_bytes());
        out[pds_off..vms_off].copy_from_slice(pd_descs.as_slice().as_bytes());
        out[vms_off..pci_off].copy_from_slice(vm_descs.as_slice().as_bytes());
        out[pci_off..tables_end].copy_from_slice(pcis.as_bytes());
        out
    }
}

mod pci;

#[cfg(test)]
mod tests;
