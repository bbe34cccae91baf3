//! A boot image cut into named parts that together cover every byte of the file:
//! the kernel's ELF and program headers and segments, and in the system image every
//! descriptor, table entry, info page, program segment and region's initial data.
//! `verify` hashes each part (into the manifest) and compares part by part, so a
//! changed byte is reported by the name of what it belongs to. Computed only for
//! images this tool built (trusted); a hostile image is compared against it.

use core::mem::{offset_of, size_of};
use std::ops::Range;

use kernel_abi::image::{
    CapDesc, Header, MapDesc, PdDesc, RegionDesc, SegmentDesc, SystemImage, VmDesc, VmMapDesc,
};
use kernel_abi::name_str;

use super::elf::{self, Ehdr, Phdr, PF_R, PF_W, PF_X};

/// Which structure a part is, to name the field a byte offset falls in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Bytes,
    ElfHeader,
    ProgramHeader,
    ImageHeader,
    Region,
    Pd,
    Vm,
    Segment,
    Map,
    VmMap,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub range: Range<usize>,
    pub kind: Kind,
}

impl Part {
    /// The part's name, with the field holding byte `offset` (file offset) if known.
    pub fn describe(&self, offset: usize) -> String {
        match field(self.kind, offset.saturating_sub(self.range.start)) {
            Some(f) => format!("{}, field {f}", self.name),
            None => self.name.clone(),
        }
    }
}

fn field(kind: Kind, at: usize) -> Option<String> {
    macro_rules! fields {
        ($t:ty: $($f:ident),*) => {
            [$((offset_of!($t, $f), stringify!($f))),*]
        };
    }
    let table: &[(usize, &str)] = match kind {
        Kind::Bytes => return None,
        Kind::ElfHeader => &fields!(Ehdr: ident, e_type, machine, version, entry, phoff,
            shoff, flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx),
        Kind::ProgramHeader => {
            &fields!(Phdr: p_type, flags, offset, vaddr, paddr, filesz, memsz, align)
        }
        Kind::ImageHeader => &fields!(Header: magic, version, pd_count, region_count,
            vm_count, total_len, regions_off, pds_off, vms_off, pci_count, _reserved, pci_off),
        Kind::Region => &fields!(RegionDesc: name, size, phys_addr, data_off, data_len),
        Kind::Pd => {
            let caps = offset_of!(PdDesc, caps);
            if at >= caps {
                return Some(format!("caps[{}]", (at - caps) / size_of::<CapDesc>()));
            }
            &fields!(PdDesc: name, priority, passive, parent, child_id, debug, _reserved,
                budget_us, period_us, entry, stack_size, elf_off, elf_len, segments_off,
                maps_off, patches_off, info_off, segment_count, map_count, patch_count,
                _reserved2)
        }
        Kind::Vm => &fields!(VmDesc: name, owner_pd, vcpu_count, priority, io_count, io_base,
            _reserved, budget_us, period_us, vcpu_ids, maps_off, map_count, _reserved2),
        Kind::Segment => {
            &fields!(SegmentDesc: vaddr, file_off, file_size, mem_size, perms, _reserved)
        }
        Kind::Map => &fields!(MapDesc: vaddr, region, perms, cached, _reserved),
        Kind::VmMap => &fields!(VmMapDesc: gpa, region, perms),
    };
    table
        .iter()
        .rev()
        .find(|(off, _)| *off <= at)
        .map(|(_, n)| (*n).to_string())
}

pub fn rwx(flags: u32, r: u32, w: u32, x: u32) -> String {
    [(r, 'r'), (w, 'w'), (x, 'x')]
        .iter()
        .map(|&(bit, c)| if flags & bit != 0 { c } else { '-' })
        .collect()
}

/// Cuts `range` into the given parts (clipped where they overlap, earlier start
/// first) and names every byte left over with `gap`.
fn partition(
    range: Range<usize>,
    mut items: Vec<Part>,
    gap: &dyn Fn(&Range<usize>) -> String,
) -> Vec<Part> {
    items.sort_by_key(|p| p.range.start);
    let mut out = Vec::new();
    let mut at = range.start;
    let push_gap = |out: &mut Vec<Part>, r: Range<usize>| {
        if !r.is_empty() {
            out.push(Part {
                name: gap(&r),
                range: r,
                kind: Kind::Bytes,
            });
        }
    };
    for mut p in items {
        p.range.start = p.range.start.max(at);
        p.range.end = p.range.end.min(range.end);
        if p.range.is_empty() {
            continue;
        }
        push_gap(&mut out, at..p.range.start);
        at = p.range.end;
        out.push(p);
    }
    push_gap(&mut out, at..range.end);
    out
}

/// Entry `index` of a table of `T`s that starts at `table`.
fn entry<T>(name: String, table: usize, index: usize, kind: Kind) -> Part {
    let len = size_of::<T>();
    part(name, table + index * len, len, kind)
}

fn part(name: String, start: usize, len: usize, kind: Kind) -> Part {
    Part {
        name,
        range: start..start.saturating_add(len),
        kind,
    }
}

/// Every byte of `boot`, named. Fails only on an image this tool would not build.
pub fn layout(boot: &[u8]) -> Result<Vec<Part>, String> {
    let e = elf::parse(boot)?;
    let parts = super::bootelf::extract(boot)?;
    let image = SystemImage::parse(parts.system_image).map_err(|e| format!("system image: {e}"))?;
    let image_off = parts.system_image.as_ptr() as usize - boot.as_ptr() as usize;
    let mut items = vec![part(
        "kernel ELF header".into(),
        0,
        size_of::<Ehdr>(),
        Kind::ElfHeader,
    )];
    let loads = e.phdrs.iter().filter(|p| p.p_type == elf::PT_LOAD).count();
    let mut load = 0;
    for (i, p) in e.phdrs.iter().enumerate() {
        let is_load = p.p_type == elf::PT_LOAD;
        let what = if !is_load {
            format!("program header {i} (not loaded)")
        } else if load + 1 == loads {
            "program header of the system image segment".into()
        } else {
            format!("program header {i} (kernel segment {load})")
        };
        let phoff = e.header.phoff as usize;
        items.push(entry::<Phdr>(what, phoff, i, Kind::ProgramHeader));
        if is_load && load + 1 < loads {
            items.push(part(
                format!(
                    "kernel segment {load} ({} at paddr {:#x})",
                    rwx(p.flags, PF_R, PF_W, PF_X),
                    p.paddr
                ),
                p.offset as usize,
                p.filesz as usize,
                Kind::Bytes,
            ));
        }
        load += usize::from(is_load);
    }
    items.extend(system_parts(&image, image_off));
    let end = image_off + parts.system_image.len();
    Ok(partition(0..boot.len(), items, &|r| {
        if r.start < image_off {
            format!(
                "kernel file bytes {:#x}..{:#x} (not loaded)",
                r.start, r.end
            )
        } else if r.start < end {
            format!(
                "system image padding at {:#x}..{:#x}",
                r.start - image_off,
                r.end - image_off
            )
        } else {
            format!(
                "padding after the system image at {:#x}..{:#x}",
                r.start, r.end
            )
        }
    }))
}

/// The system image's structures at file offset `base`.
fn system_parts(image: &SystemImage<'_>, base: usize) -> Vec<Part> {
    let h = image.header();
    let mut items = vec![part(
        "system image header".into(),
        base,
        size_of::<Header>(),
        Kind::ImageHeader,
    )];
    let region_name = |i: u32| {
        image
            .regions()
            .get(i as usize)
            .map_or("?".to_string(), |r| {
                name_str(&r.name).unwrap_or("?").to_string()
            })
    };
    for (i, r) in image.regions().iter().enumerate() {
        let name = name_str(&r.name).unwrap_or("?");
        items.push(entry::<RegionDesc>(
            format!("region {name} descriptor"),
            base + h.regions_off as usize,
            i,
            Kind::Region,
        ));
        let data = image.region_data(i);
        if !data.is_empty() {
            items.push(part(
                format!("region {name} initial data"),
                base + r.data_off as usize,
                data.len(),
                Kind::Bytes,
            ));
        }
    }
    for i in 0..image.pd_count() {
        let Some(pd) = image.pd(i) else { continue };
        let d = pd.desc;
        let n = name_str(&d.name).unwrap_or("?");
        items.push(entry::<PdDesc>(
            format!("PD {n} descriptor"),
            base + h.pds_off as usize,
            i,
            Kind::Pd,
        ));
        let elf_start = base + d.elf_off as usize;
        let mut loaded = Vec::new();
        for (k, s) in pd.segments.iter().enumerate() {
            items.push(entry::<SegmentDesc>(
                format!("PD {n} segment table entry {k}"),
                base + d.segments_off as usize,
                k,
                Kind::Segment,
            ));
            loaded.push(part(
                format!(
                    "PD {n} program segment {k} ({} at {:#x})",
                    rwx(s.perms, 1, 2, 4),
                    s.vaddr
                ),
                elf_start + s.file_off as usize,
                s.file_size as usize,
                Kind::Bytes,
            ));
        }
        // The rest of the program file (headers, sections) is not loaded, but it is
        // hashed into the manifest's program image hash.
        items.extend(partition(
            elf_start..elf_start + pd.elf.len(),
            loaded,
            &|r| {
                format!(
                    "PD {n} program image bytes {:#x}..{:#x} (outside its segments)",
                    r.start - elf_start,
                    r.end - elf_start
                )
            },
        ));
        for (k, m) in pd.maps.iter().enumerate() {
            items.push(entry::<MapDesc>(
                format!("PD {n} map {k} (region {})", region_name(m.region)),
                base + d.maps_off as usize,
                k,
                Kind::Map,
            ));
        }
        if !pd.patches.is_empty() {
            items.push(part(
                format!("PD {n} info page patch table"),
                base + d.patches_off as usize,
                core::mem::size_of_val(pd.patches),
                Kind::Bytes,
            ));
        }
        items.push(part(
            format!("PD {n} info page"),
            base + d.info_off as usize,
            pd.info_page.len(),
            Kind::Bytes,
        ));
    }
    for (i, d) in image.pcis().iter().enumerate() {
        let owner = image
            .pd(usize::from(d.owner_pd))
            .map_or("?", |p| name_str(&p.desc.name).unwrap_or("?"));
        items.push(entry::<kernel_abi::pci::PciDesc>(
            format!(
                "PCI {:x}:{:x}.{:x} grant to PD {owner}",
                d.bus, d.device, d.function
            ),
            base + h.pci_off as usize,
            i,
            Kind::Bytes,
        ));
    }
    for (i, vm) in image.vms().enumerate() {
        let n = name_str(&vm.desc.name).unwrap_or("?");
        items.push(entry::<VmDesc>(
            format!("VM {n} descriptor"),
            base + h.vms_off as usize,
            i,
            Kind::Vm,
        ));
        for (k, m) in vm.maps.iter().enumerate() {
            items.push(entry::<VmMapDesc>(
                format!("VM {n} guest map {k} (region {})", region_name(m.region)),
                base + vm.desc.maps_off as usize,
                k,
                Kind::VmMap,
            ));
        }
    }
    items
}
