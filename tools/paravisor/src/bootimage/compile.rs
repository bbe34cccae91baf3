//! system.xml + PD program images -> the kernel's system image.
//!
//! Everything the kernel would otherwise have to decide is decided here: channel
//! ends become capability slots naming PD indices, `setvar_vaddr`s become info-page
//! entries, physical-address variables become patches, and every address range is
//! checked against the PD address-space layout so that the kernel's mapping cannot
//! fail on a valid image. A guest's owner becomes its VMM's PD index, its maps
//! region indices at guest-physical addresses; `--region-data` bytes become the
//! regions' initial contents.

use kernel_abi::image::build::{encode_with_devices, PdSpec, RegionSpec, VmSpec};
use kernel_abi::image::{
    perms, CapDesc, MapDesc, PatchDesc, PdDesc, RegionDesc, SegmentDesc, SystemImage, VmDesc,
    VmMapDesc, CHANNELS, GPA_LIMIT, GUEST_PORT_RANGES, MAX_MAPS, MAX_SEGMENTS, MAX_VCPUS,
    MAX_VCPU_ID, MAX_VM_MAPS, NO_PARENT,
};
use kernel_abi::info::{self, InfoHeader, InfoRegion, InfoVariable};
use kernel_abi::layout;

use super::elf::{self, PF_R, PF_W, PF_X};
use crate::region_data::{self, RegionData};

const PAGE: u64 = layout::PAGE_SIZE;

/// One PD's program image bytes, in `system.all_pds()` order.
pub type Programs = Vec<Vec<u8>>;

fn mr_perms(p: sdf::Perms) -> u32 {
    p.bits(perms::R, perms::W, perms::X)
}

fn name(s: &str, what: &str) -> Result<kernel_abi::Name, String> {
    kernel_abi::name(s).ok_or_else(|| format!("{what} {s:?} is longer than 63 bytes"))
}

/// Compiles the system; errors name the PD, VM or region and what is wrong.
pub fn compile(
    system: &sdf::System,
    programs: &Programs,
    data: &[RegionData],
) -> Result<Vec<u8>, String> {
    let pds = system.all_pds();
    if programs.len() != pds.len() {
        return Err("one program image per PD is needed".into());
    }
    let regions = system
        .memory_regions
        .iter()
        .map(|mr| {
            Ok(RegionDesc::new(
                name(&mr.name, "memory region name")?,
                mr.size.next_multiple_of(PAGE),
                mr.phys_addr,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    for d in data {
        let Some(r) = system
            .memory_regions
            .iter()
            .position(|m| m.name == d.region)
        else {
            return Err(format!(
                "region data for {}: no such memory region",
                d.region
            ));
        };
        if d.bytes.len() as u64 > regions[r].size || regions[r].phys_addr != RegionDesc::ALLOCATE {
            return Err(format!(
                "region data for {}: {} bytes do not fit an allocated region of {:#x} bytes",
                d.region,
                d.bytes.len(),
                regions[r].size
            ));
        }
    }
    let index_of = |n: &str| pds.iter().position(|p| p.name == n);
    let region_of = |n: &str| system.memory_regions.iter().position(|m| m.name == n);

    let mut specs = Vec::new();
    let mut devices = Vec::new();
    for (index, (pd, program)) in pds.iter().zip(programs).enumerate() {
        let fail = |what: String| format!("PD {}: {what}", pd.name);
        let elf = elf::parse(program).map_err(|e| fail(format!("program image: {e}")))?;
        let mut desc = PdDesc::empty();
        desc.name = name(&pd.name, "PD name").map_err(fail)?;
        desc.priority = pd.priority;
        desc.passive = u8::from(pd.passive);
        desc.debug = debug_grants(pd.debug_console, pd.debug_halt);
        desc.budget_us = pd.budget;
        desc.period_us = pd.period;
        desc.entry = elf.header.entry;
        desc.stack_size = pd.stack_size.max(PAGE).next_multiple_of(PAGE);
        if desc.stack_size > layout::MAX_STACK_SIZE {
            return Err(fail(format!(
                "stack_size {:#x} is over the limit {:#x}",
                pd.stack_size,
                layout::MAX_STACK_SIZE
            )));
        }
        if let Some(parent) = pds
            .iter()
            .position(|p| p.children.iter().any(|c| c.name == pd.name))
        {
            desc.parent = parent as u8;
            desc.child_id = pd.child_id.unwrap_or(0);
        } else {
            desc.parent = NO_PARENT;
        }

        // Page ranges in use, to refuse overlaps here rather than at boot.
        let mut used: Vec<(u64, u64, String)> = Vec::new();
        let mut claim = |start: u64, end: u64, what: String| -> Result<(), String> {
            if !layout::is_pd_range(start, end - start) {
                return Err(format!("{what} at {start:#x}..{end:#x} is outside the PD's part of the address space (page 1 up to {:#x})", layout::RESERVED_BASE));
            }
            if let Some((_, _, other)) = used.iter().find(|(s, e, _)| start < *e && *s < end) {
                return Err(format!("{what} at {start:#x}..{end:#x} overlaps {other}"));
            }
            used.push((start, end, what));
            Ok(())
        };

        let mut segments = Vec::new();
        for p in elf.loads().filter(|p| p.memsz > 0) {
            let start = p.vaddr & !(PAGE - 1);
            let end = (p.vaddr + p.memsz).next_multiple_of(PAGE);
            claim(start, end, format!("program segment {:#x}", p.vaddr)).map_err(fail)?;
            let mut perms_bits = 0;
            if p.flags & PF_R != 0 {
                perms_bits |= perms::R;
            }
            if p.flags & PF_W != 0 {
                perms_bits |= perms::W;
            }
            if p.flags & PF_X != 0 {
                perms_bits |= perms::X;
            }
            // W^X: a page a PD can both write and run turns any write bug into code
            // execution.
            if perms_bits & (perms::W | perms::X) == perms::W | perms::X {
                return Err(fail(format!(
                    "program segment {:#x} is writable and executable (W^X: link it with separate text and data segments)",
                    p.vaddr
                )));
            }
            segments.push(SegmentDesc {
                vaddr: p.vaddr,
                file_off: p.offset,
                file_size: p.filesz,
                mem_size: p.memsz,
                perms: perms_bits,
                _reserved: 0,
            });
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(fail(format!(
                "{} loadable segments (at most {MAX_SEGMENTS})",
                segments.len()
            )));
        }
        if !segments.iter().any(|s| {
            s.perms & perms::X != 0 && (s.vaddr..s.vaddr + s.mem_size).contains(&desc.entry)
        }) {
            return Err(fail(format!(
                "entry point {:#x} is not in an executable segment",
                desc.entry
            )));
        }

        let mut maps = Vec::new();
        let mut info_regions = Vec::new();
        let mut variables = Vec::new();
        for m in &pd.maps {
            let r =
                region_of(&m.mr).ok_or_else(|| fail(format!("unknown memory region {}", m.mr)))?;
            let size = regions[r].size;
            if m.vaddr % PAGE != 0 {
                return Err(fail(format!(
                    "map of {} at {:#x} is not page aligned",
                    m.mr, m.vaddr
                )));
            }
            claim(m.vaddr, m.vaddr + size, format!("map of {}", m.mr)).map_err(fail)?;
            maps.push(MapDesc {
                vaddr: m.vaddr,
                region: r as u32,
                perms: mr_perms(m.perms),
                cached: u32::from(m.cached),
                _reserved: 0,
            });
            if let Some(var) = &m.setvar_vaddr {
                info_regions.push(InfoRegion {
                    name: name(var, "setvar_vaddr").map_err(fail)?,
                    vaddr: m.vaddr,
                    size,
                    perms: u64::from(mr_perms(m.perms)),
                });
                variables.push(InfoVariable {
                    name: name(var, "setvar_vaddr").map_err(fail)?,
                    value: m.vaddr,
                });
            }
        }
        if maps.len() > MAX_MAPS {
            return Err(fail(format!("{} maps (at most {MAX_MAPS})", maps.len())));
        }
        let granted = super::pci::grants(pd, index).map_err(fail)?;
        for (start, end, what) in granted.windows {
            claim(start, end, what).map_err(fail)?;
        }
        info_regions.extend(granted.regions);
        variables.extend(granted.variables);
        for v in pd.virtual_machine.iter().flat_map(|vm| &vm.vcpus) {
            if let Some(sym) = &v.setvar_id {
                variables.push(InfoVariable {
                    name: name(sym, "setvar_id").map_err(fail)?,
                    value: u64::from(v.id),
                });
            }
        }
        let mut paddr_vars = Vec::new();
        for s in &pd.setvars {
            let r = region_of(&s.region_paddr).ok_or_else(|| {
                fail(format!(
                    "setvar {}: unknown memory region {}",
                    s.symbol, s.region_paddr
                ))
            })?;
            paddr_vars.push((variables.len(), r as u32));
            variables.push(InfoVariable {
                name: name(&s.symbol, "setvar symbol").map_err(fail)?,
                value: 0,
            });
        }

        let mut header = InfoHeader {
            magic: info::MAGIC,
            name: desc.name,
            region_count: 0,
            variable_count: 0,
            notify_mask: 0,
            pp_mask: 0,
            irq_mask: 0,
        };
        for (me, peer) in system.channel_ends_of(&pd.name) {
            let peer_index =
                index_of(&peer.pd).ok_or_else(|| fail(format!("unknown peer {}", peer.pd)))?;
            let slot = desc
                .caps
                .get_mut(usize::from(me.id))
                .ok_or_else(|| fail(format!("channel id {} out of range", me.id)))?;
            if me.notify {
                slot.flags |= CapDesc::NOTIFY;
                slot.notify_pd = peer_index as u8;
                slot.notify_bit = peer.id;
                header.notify_mask |= 1 << me.id;
            }
            if me.pp {
                slot.flags |= CapDesc::PPC;
                slot.ppc_pd = peer_index as u8;
                slot.ppc_badge = peer.id;
                header.pp_mask |= 1 << me.id;
            }
        }
        for irq in &pd.irqs {
            let line = u8::try_from(irq.irq)
                .ok()
                .filter(|l| (CapDesc::MIN_IRQ..=CapDesc::MAX_IRQ).contains(l))
                .ok_or_else(|| {
                    fail(format!(
                        "irq {} is not supported: PDs may hold legacy PIC lines 1..=15 (line 0 is the kernel's timer)",
                        irq.irq
                    ))
                })?;
            let slot = desc
                .caps
                .get_mut(usize::from(irq.id))
                .ok_or_else(|| fail(format!("irq id {} out of range", irq.id)))?;
            slot.flags |= CapDesc::IRQ;
            slot.irq = line;
            header.irq_mask |= 1 << irq.id;
        }
        // The kernel puts the function's INTx line on the grant's channel at boot.
        for d in &granted.descs {
            header.irq_mask |= 1 << d.channel;
        }
        devices.extend(granted.descs);
        let (info_page, patches) =
            info::build::encode(header, &info_regions, &variables, &paddr_vars).map_err(|e| {
                fail(format!(
                    "{} regions and {} variables do not fit in the info page",
                    e.regions, e.variables
                ))
            })?;
        specs.push(PdSpec {
            desc,
            segments,
            maps,
            patches: patches
                .into_iter()
                .map(|(offset, region)| PatchDesc { offset, region })
                .collect(),
            info_page,
            elf: program.clone(),
        });
    }
    debug_assert!(specs.iter().all(|s| s.desc.caps.len() == CHANNELS));
    let mut vms = Vec::new();
    for (owner, pd) in pds.iter().enumerate() {
        if let Some(vm) = &pd.virtual_machine {
            vms.push(vm_spec(vm, owner, &regions, &region_of)?);
        }
    }
    let region_specs: Vec<RegionSpec> = system
        .memory_regions
        .iter()
        .zip(&regions)
        .map(|(mr, &desc)| RegionSpec {
            desc,
            data: region_data::find(data, &mr.name)
                .map(|d| d.bytes.clone())
                .unwrap_or_default(),
        })
        .collect();
    let bytes = encode_with_devices(&region_specs, &specs, &vms, &devices);
    // The kernel refuses what `parse` refuses: check here so a bad image never boots.
    SystemImage::parse(&bytes)
        .map_err(|e| format!("internal: the encoded image does not parse: {e}"))?;
    Ok(bytes)
}

/// A guest: its VMM is PD `owner` (in `all_pds` order); maps name region indices.
fn vm_spec(
    vm: &sdf::VirtualMachine,
    owner: usize,
    regions: &[RegionDesc],
    region_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<VmSpec, String> {
    let fail = |what: String| format!("virtual machine {}: {what}", vm.name);
    let mut desc = VmDesc::empty();
    desc.name = name(&vm.name, "virtual machine name")?;
    desc.owner_pd = u8::try_from(owner).map_err(|_| fail("VMM index past 255".into()))?;
    desc.priority = vm.priority;
    desc.budget_us = vm.budget;
    desc.period_us = vm.period;
    if vm.vcpus.is_empty() || vm.vcpus.len() > MAX_VCPUS {
        return Err(fail(format!(
            "{} vCPUs (1..={MAX_VCPUS} are supported)",
            vm.vcpus.len()
        )));
    }
    desc.vcpu_count = vm.vcpus.len() as u8;
    for (slot, v) in desc.vcpu_ids.iter_mut().zip(&vm.vcpus) {
        if v.id > MAX_VCPU_ID {
            return Err(fail(format!("vCPU id {} is past {MAX_VCPU_ID}", v.id)));
        }
        *slot = v.id;
    }
    (desc.io_base, desc.io_count) = guest_ports(vm).map_err(fail)?;
    if vm.maps.len() > MAX_VM_MAPS {
        return Err(fail(format!(
            "{} maps (at most {MAX_VM_MAPS})",
            vm.maps.len()
        )));
    }
    let mut maps = Vec::new();
    for m in &vm.maps {
        let r = region_of(&m.mr).ok_or_else(|| fail(format!("unknown memory region {}", m.mr)))?;
        let size = regions[r].size;
        if m.vaddr % PAGE != 0 || m.vaddr.checked_add(size).is_none_or(|e| e > GPA_LIMIT) {
            return Err(fail(format!(
                "map of {} at guest-physical {:#x} (+{size:#x}) is unaligned or past {GPA_LIMIT:#x}",
                m.mr, m.vaddr
            )));
        }
        maps.push(VmMapDesc {
            gpa: m.vaddr,
            region: r as u32,
            perms: mr_perms(m.perms),
        });
    }
    Ok(VmSpec { desc, maps })
}

/// The VM's one `<ioport>` grant as (base, count), (0, 0) without one: only a
/// whole range the kernel allows ([`GUEST_PORT_RANGES`]).
fn guest_ports(vm: &sdf::VirtualMachine) -> Result<(u16, u8), String> {
    let grant = match vm.ioports.as_slice() {
        [] => return Ok((0, 0)),
        [p] => (p.addr, p.size),
        more => {
            return Err(format!(
                "{} <ioport> grants (the kernel gives a VM one)",
                more.len()
            ))
        }
    };
    GUEST_PORT_RANGES
        .into_iter()
        .find(|&(base, count)| (u64::from(base), u64::from(count)) == grant)
        .ok_or_else(|| {
            let allowed: Vec<String> = GUEST_PORT_RANGES
                .iter()
                .map(|(b, c)| format!("{b:#x}+{c}"))
                .collect();
            format!(
                "ports {:#x}+{} are not a range a VM may be granted ({})",
                grant.0,
                grant.1,
                allowed.join(", ")
            )
        })
}

/// The image's debug-grant bits for a PD's `debug_console`/`debug_halt`.
pub fn debug_grants(console: bool, halt: bool) -> u8 {
    (if console { PdDesc::DEBUG_CONSOLE } else { 0 }) | (if halt { PdDesc::DEBUG_HALT } else { 0 })
}
