//! The rules that relate values to each other: names, references, alignment, overlap,
//! id spaces, priorities. Runs on the model, so a `System` built in code is checked
//! the same way as one read from XML (positions then fall back to element spans).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::ops::RangeInclusive;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics, ErrorKind, MapSpace, NameKind};
use crate::limits::*;
use crate::model::*;
use crate::parse::SpanIndex;

mod extra;
mod pci;

/// Checks a system built in code. Descriptions read from text are checked by
/// [`crate::parse_and_check`] already.
pub fn check(system: &System) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::default();
    check_with(system, &SpanIndex::default(), &mut diags);
    diags.sort();
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

pub(crate) fn check_with(system: &System, index: &SpanIndex, diags: &mut Diagnostics) {
    let pds = system.all_pds();
    let mut pd_by_name = HashMap::new();
    for pd in &pds {
        pd_by_name.entry(pd.name.as_str()).or_insert(*pd);
    }
    let mut mr_by_name = HashMap::new();
    for mr in &system.memory_regions {
        mr_by_name.entry(mr.name.as_str()).or_insert(mr);
    }
    let mut guest_mapped = HashSet::new();
    let mut pd_mapped = HashSet::new();
    for pd in &pds {
        pd_mapped.extend(pd.maps.iter().map(|m| m.mr.as_str()));
        if let Some(vm) = &pd.virtual_machine {
            guest_mapped.extend(vm.maps.iter().map(|m| m.mr.as_str()));
        }
    }
    let mut c = Checker {
        sys: system,
        idx: index,
        file: &system.file,
        diags,
        pds: pds.clone(),
        pd_by_name,
        mr_by_name,
        guest_mapped,
        pd_mapped,
    };
    c.pd_count();
    c.names();
    c.memory_regions();
    for pd in pds {
        c.pd_values(pd);
        c.children(pd);
        c.address_space(&pd.maps, MapSpace::Pd(pd.name.clone()));
        c.setvars(pd);
        if let Some(vm) = &pd.virtual_machine {
            c.vm_values(pd, vm);
            c.vcpus(pd, vm);
            c.vm_maps(vm);
        }
    }
    c.channels();
    c.ids();
    c.irq_numbers();
    c.domains();
    c.cap_maps();
    c.ioports();
    c.pci_devices();
    c.io_address_spaces();
}

/// PD and region names end up in process names, JSON and symbol tables: keep them
/// plain. Device-tree spellings (`serial@9000000`, `/soc/eth@30be0000`, `arm,gic`)
/// are plain enough: sdfgen writes region names that way.
fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.@/,+".contains(&b))
}

/// Setvar symbols name variables in PD code.
fn valid_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
}

/// For each interval (start, end) that overlaps one before it in address order, the
/// pair (later in source, earlier in source). n log n, so a huge description cannot
/// stall the checker; every overlapping cluster yields at least one pair.
fn overlaps(ranges: &[(u64, u64)]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].0, i));
    let mut out = Vec::new();
    let mut widest: Option<usize> = None;
    for i in order {
        if let Some(w) = widest {
            if ranges[i].0 < ranges[w].1 {
                out.push((i.max(w), i.min(w)));
            }
            if ranges[i].1 > ranges[w].1 {
                widest = Some(i);
            }
        } else {
            widest = Some(i);
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|p| p.0);
    out
}

/// Where each key was first seen, to report a later use against it.
struct FirstSeen<K>(HashMap<K, Span>);

impl<K: Eq + Hash> FirstSeen<K> {
    fn new() -> Self {
        FirstSeen(HashMap::new())
    }

    /// None the first time `key` comes (remembering `span`); after that, the first span.
    fn repeat(&mut self, key: K, span: Span) -> Option<Span> {
        match self.0.entry(key) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(span);
                None
            }
        }
    }

    fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }
}

struct Checker<'a> {
    sys: &'a System,
    idx: &'a SpanIndex,
    file: &'a Path,
    diags: &'a mut Diagnostics,
    /// Depth first, source order.
    pds: Vec<&'a ProtectionDomain>,
    /// First definition of each name.
    pd_by_name: HashMap<&'a str, &'a ProtectionDomain>,
    mr_by_name: HashMap<&'a str, &'a MemoryRegion>,
    /// Regions some guest maps, and regions some PD maps.
    guest_mapped: HashSet<&'a str>,
    pd_mapped: HashSet<&'a str>,
}

impl<'a> Checker<'a> {
    fn error(&mut self, span: Span, kind: ErrorKind) {
        self.diags.push(Diagnostic::new(self.file, span, kind));
    }

    fn pd(&self, name: &str) -> Option<&'a ProtectionDomain> {
        self.pd_by_name.get(name).copied()
    }

    fn mr(&self, name: &str) -> Option<&'a MemoryRegion> {
        self.mr_by_name.get(name).copied()
    }

    /// The region a reference at `span` names; an unknown one is reported, unless
    /// its definition is broken (that has its error already).
    fn region(&mut self, name: &str, span: Span) -> Option<&'a MemoryRegion> {
        let mr = self.mr(name);
        if mr.is_none() && !self.idx.broken_mrs.contains(name) {
            let kind = ErrorKind::UnknownName {
                kind: NameKind::MemoryRegion,
                name: name.into(),
            };
            self.error(span, kind);
        }
        mr
    }

    /// [`Self::region`] for a PD reference.
    fn known_pd(&mut self, name: &str, span: Span) -> bool {
        let known = self.pd(name).is_some();
        if !known && !self.idx.broken_pds.contains(name) {
            let kind = ErrorKind::UnknownName {
                kind: NameKind::ProtectionDomain,
                name: name.into(),
            };
            self.error(span, kind);
        }
        known
    }

    /// Whether `value` of `attribute` (at `span`) is in `range`; reported if not.
    fn in_range(
        &mut self,
        span: Span,
        attribute: &str,
        value: u64,
        range: RangeInclusive<u64>,
    ) -> bool {
        if range.contains(&value) {
            return true;
        }
        let kind = ErrorKind::OutOfRange {
            attribute: attribute.into(),
            value,
            min: *range.start(),
            max: *range.end(),
        };
        self.error(span, kind);
        false
    }

    /// Reports `name` (of `kind`, at `span`) if `seen` has it already.
    fn unique_name<'n>(
        &mut self,
        seen: &mut FirstSeen<&'n str>,
        kind: NameKind,
        name: &'n str,
        span: Span,
    ) {
        if let Some(first) = seen.repeat(name, span) {
            let kind = ErrorKind::DuplicateName {
                kind,
                name: name.into(),
                first,
            };
            self.error(span, kind);
        }
    }

    /// Reports a name or symbol that `valid` refuses.
    fn spelling(&mut self, span: Span, attribute: &str, value: &str, valid: fn(&str) -> bool) {
        if !valid(value) {
            let kind = ErrorKind::InvalidName {
                attribute: attribute.into(),
                value: value.into(),
            };
            self.error(span, kind);
        }
    }

    fn pd_count(&mut self) {
        let pds = self.pds.clone();
        if pds.is_empty() && self.idx.broken_pds.is_empty() {
            self.error(self.idx.system, ErrorKind::NoProtectionDomains);
        }
        if let Some(extra) = pds.get(MAX_PDS) {
            let span = extra.span;
            self.error(span, ErrorKind::TooManyPds { count: pds.len() });
        }
    }

    /// PD and VM names: valid, and unique across both (a guest's name is how the
    /// manifest and the kernel's messages tell it from its VMM).
    fn names(&mut self) {
        let mut named: Vec<(&str, NameKind, Span)> = Vec::new();
        for pd in self.pds.clone() {
            let span = self.idx.attr(pd.span, "name");
            named.push((&pd.name, NameKind::ProtectionDomain, span));
            if pd.name == "monitor" && valid_name(&pd.name) {
                self.error(
                    span,
                    ErrorKind::ReservedName {
                        name: pd.name.clone(),
                    },
                );
            }
            if let Some(vm) = &pd.virtual_machine {
                let span = self.idx.attr(vm.span, "name");
                named.push((&vm.name, NameKind::VirtualMachine, span));
            }
        }
        // Stable: a system built in code has no spans and keeps depth-first order.
        named.sort_by_key(|n| n.2);
        let mut seen: HashMap<&str, (Span, NameKind)> = HashMap::new();
        for (name, kind, span) in named {
            self.spelling(span, "name", name, valid_name);
            if let Some(&(first, first_kind)) = seen.get(name) {
                // Microkit keeps PD and VM names apart; one name for both is ours to refuse.
                let kind = if first_kind == kind {
                    ErrorKind::DuplicateName {
                        kind,
                        name: name.into(),
                        first,
                    }
                } else {
                    ErrorKind::GuestNameClashesWithPd {
                        name: name.into(),
                        first,
                    }
                };
                self.error(span, kind);
            } else {
                seen.insert(name, (span, kind));
            }
        }
    }

    fn memory_regions(&mut self) {
        let mut seen = FirstSeen::new();
        let mut placed: Vec<(&MemoryRegion, Span)> = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for mr in &self.sys.memory_regions {
            let name_span = self.idx.attr(mr.span, "name");
            self.spelling(name_span, "name", &mr.name, valid_name);
            self.unique_name(&mut seen, NameKind::MemoryRegion, &mr.name, name_span);

            let page_ok = PAGE_SIZES.contains(&mr.page_size);
            if !page_ok {
                let span = self.idx.attr(mr.span, "page_size");
                self.error(
                    span,
                    ErrorKind::UnsupportedPageSize {
                        page_size: mr.page_size,
                    },
                );
            }
            let size_span = self.idx.attr(mr.span, "size");
            if mr.size == 0 {
                self.error(size_span, ErrorKind::ZeroSize);
            } else if page_ok && !mr.size.is_multiple_of(mr.page_size) {
                self.error(
                    size_span,
                    ErrorKind::SizeNotPageMultiple {
                        size: mr.size,
                        page_size: mr.page_size,
                    },
                );
            }
            let Some(phys) = mr.phys_addr else { continue };
            let phys_span = self.idx.attr(mr.span, "phys_addr");
            if page_ok && !phys.is_multiple_of(mr.page_size) {
                self.error(
                    phys_span,
                    ErrorKind::PhysAddrNotAligned {
                        phys_addr: phys,
                        page_size: mr.page_size,
                    },
                );
            }
            match phys.checked_add(mr.size) {
                Some(end) => {
                    placed.push((mr, phys_span));
                    ranges.push((phys, end));
                }
                None => self.error(
                    phys_span,
                    ErrorKind::PhysRangeOverflow {
                        phys_addr: phys,
                        size: mr.size,
                    },
                ),
            }
        }
        for (later, earlier) in overlaps(&ranges) {
            let (mr, span) = placed[later];
            let (other, first) = placed[earlier];
            // Said as what it would give away when a guest is on one side and only
            // PDs on the other.
            let guest_only_pd = |g: &MemoryRegion, p: &MemoryRegion| {
                self.guest_mapped.contains(g.name.as_str())
                    && !self.guest_mapped.contains(p.name.as_str())
                    && self.pd_mapped.contains(p.name.as_str())
            };
            let guest_side = if guest_only_pd(mr, other) {
                Some((mr, other, first))
            } else if guest_only_pd(other, mr) {
                Some((other, mr, span))
            } else {
                None
            };
            if let Some((guest_mr, pd_mr, pd_span)) = guest_side {
                if let Some((vm, map)) = self.first_guest_map(&guest_mr.name) {
                    let kind = ErrorKind::GuestRegionOverlapsPdRegion {
                        vm: vm.name.clone(),
                        mr: guest_mr.name.clone(),
                        other: pd_mr.name.clone(),
                        first: pd_span,
                    };
                    self.error(self.idx.attr(map.span, "mr"), kind);
                    continue;
                }
            }
            let kind = ErrorKind::PhysOverlap {
                region: mr.name.clone(),
                other: other.name.clone(),
                first,
            };
            self.error(span, kind);
        }
    }

    /// The first map (in source order) of region `mr` into a guest.
    fn first_guest_map(&self, mr: &str) -> Option<(&'a VirtualMachine, &'a Map)> {
        self.pds
            .iter()
            .filter_map(|pd| pd.virtual_machine.as_ref())
            .flat_map(|vm| vm.maps.iter().map(move |m| (vm, m)))
            .filter(|(_, m)| m.mr == mr)
            .min_by_key(|(_, m)| m.span)
    }

    fn vm_values(&mut self, pd: &ProtectionDomain, vm: &VirtualMachine) {
        self.budget_within_period(vm.span, vm.budget, vm.period);
        if self.priority_in_range(vm.span, vm.priority) && vm.priority > pd.priority {
            let kind = ErrorKind::VmPriorityAboveVmm {
                vm: vm.name.clone(),
                priority: vm.priority,
                pd: pd.name.clone(),
                pd_priority: pd.priority,
            };
            self.error(self.idx.attr(vm.span, "priority"), kind);
        }
    }

    /// vCPU ids: 1..=MAX_VCPUS of them, in 0..=61, distinct from each other and from
    /// the VMM's child ids (Microkit: both are the VMM's `microkit_child`).
    fn vcpus(&mut self, pd: &ProtectionDomain, vm: &VirtualMachine) {
        if vm.vcpus.is_empty() {
            self.error(
                vm.span,
                ErrorKind::MissingVcpu {
                    vm: vm.name.clone(),
                },
            );
        }
        if let Some(extra) = vm.vcpus.get(MAX_VCPUS) {
            let kind = ErrorKind::TooManyVcpus {
                vm: vm.name.clone(),
                count: vm.vcpus.len(),
            };
            self.error(extra.span, kind);
        }
        let mut ids: Vec<(u8, Span, bool)> = pd
            .children
            .iter()
            .filter_map(|c| Some((c.child_id?, self.idx.attr(c.span, "id"), false)))
            .collect();
        for v in &vm.vcpus {
            let span = self.idx.attr(v.span, "id");
            self.in_range(span, "id", v.id.into(), 0..=MAX_VCPU_ID);
            ids.push((v.id, span, true));
        }
        ids.sort_by_key(|i| i.1);
        let mut seen: HashMap<u8, (Span, bool)> = HashMap::new();
        for (id, span, is_vcpu) in ids {
            match seen.get(&id) {
                // Two children: `children` reports it.
                Some(&(first, first_is_vcpu)) if is_vcpu || first_is_vcpu => {
                    let kind = ErrorKind::DuplicateVcpuId {
                        vm: vm.name.clone(),
                        id: id.into(),
                        first,
                    };
                    self.error(span, kind);
                }
                Some(_) => {}
                None => {
                    seen.insert(id, (span, is_vcpu));
                }
            }
        }
    }

    fn vm_maps(&mut self, vm: &VirtualMachine) {
        for map in vm.maps.iter().filter(|m| m.setvar_vaddr.is_some()) {
            let span = self.idx.attr(map.span, "setvar_vaddr");
            let kind = ErrorKind::SetVarVaddrInVm {
                vm: vm.name.clone(),
            };
            self.error(span, kind);
        }
        self.address_space(&vm.maps, MapSpace::Vm(vm.name.clone()));
    }

    /// Places each map of one address space, then reports the overlaps.
    fn address_space(&mut self, maps: &[Map], space: MapSpace) {
        let mut placed: Vec<&Map> = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for map in maps {
            if let Some(range) = self.place_map(map, &space) {
                placed.push(map);
                ranges.push(range);
            }
        }
        for (later, earlier) in overlaps(&ranges) {
            let ((start, end), (other_start, other_end)) = (ranges[later], ranges[earlier]);
            let kind = ErrorKind::MapOverlap {
                space: space.clone(),
                mr: placed[later].mr.clone(),
                other: placed[earlier].mr.clone(),
                start,
                end,
                other_start,
                other_end,
                first: placed[earlier].span,
            };
            self.error(placed[later].span, kind);
        }
    }

    /// The checks every map gets, in a PD's address space or a VM's: readable, a
    /// known region, aligned to the region's page size and inside the space. The
    /// range it takes if it can be placed at all.
    fn place_map(&mut self, map: &Map, space: &MapSpace) -> Option<(u64, u64)> {
        if !map.perms.read {
            let span = self.idx.attr(map.span, "perms");
            self.error(
                span,
                ErrorKind::PermsWithoutRead {
                    value: map.perms.to_string(),
                },
            );
        }
        let mr = self.region(&map.mr, self.idx.attr(map.span, "mr"))?;
        if let MapSpace::Pd(pd) = space {
            if map.perms.execute && self.guest_mapped.contains(map.mr.as_str()) {
                if let Some((vm, _)) = self.first_guest_map(&map.mr) {
                    let kind = ErrorKind::GuestRegionExecutableByPd {
                        pd: pd.clone(),
                        mr: map.mr.clone(),
                        vm: vm.name.clone(),
                    };
                    self.error(self.idx.attr(map.span, "perms"), kind);
                }
            }
        }
        let vaddr_span = self.idx.attr(map.span, "vaddr");
        if PAGE_SIZES.contains(&mr.page_size) && !map.vaddr.is_multiple_of(mr.page_size) {
            self.error(
                vaddr_span,
                ErrorKind::VaddrNotAligned {
                    vaddr: map.vaddr,
                    page_size: mr.page_size,
                },
            );
        }
        let (vaddr, size) = (map.vaddr, mr.size);
        let (limit, out_of_range) = match space {
            MapSpace::Pd(_) => (USER_VADDR_END, ErrorKind::VaddrOutOfRange { vaddr, size }),
            MapSpace::Vm(_) => (GPA_END, ErrorKind::GpaOutOfRange { gpa: vaddr, size }),
        };
        match vaddr.checked_add(size) {
            Some(end) if end <= limit => Some((vaddr, end)),
            _ => {
                self.error(vaddr_span, out_of_range);
                None
            }
        }
    }

    /// Whether `priority` (of the element at `span`) is one the kernel has.
    fn priority_in_range(&mut self, span: Span, priority: u8) -> bool {
        let at = self.idx.attr(span, "priority");
        self.in_range(at, "priority", priority.into(), 0..=MAX_PRIORITY)
    }

    fn budget_within_period(&mut self, span: Span, budget: u64, period: u64) {
        if budget > period {
            // Point at whichever of the two was written; budget wins when both were.
            let at = match self.idx.written(span, "budget") {
                Some(at) => at,
                None => self.idx.attr(span, "period"),
            };
            self.error(at, ErrorKind::BudgetExceedsPeriod { budget, period });
        }
    }

    fn pd_values(&mut self, pd: &ProtectionDomain) {
        self.priority_in_range(pd.span, pd.priority);
        self.budget_within_period(pd.span, pd.budget, pd.period);
        let span = self.idx.attr(pd.span, "stack_size");
        let range = MIN_STACK_SIZE..=MAX_STACK_SIZE;
        if self.in_range(span, "stack_size", pd.stack_size, range)
            && !pd.stack_size.is_multiple_of(DEFAULT_PAGE_SIZE)
        {
            self.error(
                span,
                ErrorKind::StackSizeNotAligned {
                    stack_size: pd.stack_size,
                },
            );
        }
    }

    fn children(&mut self, pd: &ProtectionDomain) {
        let mut seen = FirstSeen::new();
        for child in &pd.children {
            let Some(id) = child.child_id else { continue };
            let span = self.idx.attr(child.span, "id");
            self.in_range(span, "id", id.into(), 0..=MAX_CHILD_ID);
            if let Some(first) = seen.repeat(id, span) {
                let kind = ErrorKind::DuplicateChildId {
                    parent: pd.name.clone(),
                    id: id.into(),
                    first,
                };
                self.error(span, kind);
            }
        }
    }

    fn setvars(&mut self, pd: &ProtectionDomain) {
        for map in &pd.maps {
            if map.setvar_prefill_size.is_some() {
                let prefilled = self
                    .mr(&map.mr)
                    .is_none_or(|mr| matches!(mr.prefill, Some(Prefill::Path(_))));
                if !prefilled {
                    let span = self.idx.attr(map.span, "setvar_prefill_size");
                    let kind = ErrorKind::SetVarPrefillWithoutPrefill { mr: map.mr.clone() };
                    self.error(span, kind);
                }
            }
        }
        for sv in &pd.setvars {
            self.region(&sv.region_paddr, self.idx.attr(sv.span, "region_paddr"));
        }
        // Every setvar attribute this PD's elements may carry: (value, attribute, element).
        let ends = self.sys.channels.iter().flat_map(|ch| &ch.ends);
        let optional = pd
            .maps
            .iter()
            .flat_map(|m| {
                [
                    (&m.setvar_vaddr, "setvar_vaddr", m.span),
                    (&m.setvar_size, "setvar_size", m.span),
                    (&m.setvar_prefill_size, "setvar_prefill_size", m.span),
                ]
            })
            .chain(pd.irqs.iter().map(|i| (&i.setvar_id, "setvar_id", i.span)))
            .chain(
                pd.pci_devices
                    .iter()
                    .flat_map(|d| &d.bars)
                    .map(|b| (&b.setvar_vaddr, "setvar_vaddr", b.span)),
            )
            .chain(pd.ioports.iter().flat_map(|p| {
                [
                    (&p.setvar_id, "setvar_id", p.span),
                    (&p.setvar_addr, "setvar_addr", p.span),
                ]
            }))
            .chain(
                pd.children
                    .iter()
                    .map(|c| (&c.setvar_id, "setvar_id", c.span)),
            )
            .chain(
                ends.filter(|e| e.pd == pd.name)
                    .map(|e| (&e.setvar_id, "setvar_id", e.span)),
            )
            .chain(
                pd.virtual_machine
                    .iter()
                    .flat_map(|vm| &vm.vcpus)
                    .map(|v| (&v.setvar_id, "setvar_id", v.span)),
            );
        let mut symbols: Vec<(&str, &'static str, Span)> = optional
            .filter_map(|(sym, attribute, element)| {
                Some((
                    sym.as_deref()?,
                    attribute,
                    self.idx.attr(element, attribute),
                ))
            })
            .chain(pd.setvars.iter().map(|sv| {
                (
                    sv.symbol.as_str(),
                    "symbol",
                    self.idx.attr(sv.span, "symbol"),
                )
            }))
            .collect();
        symbols.sort_by_key(|s| s.2);
        let mut seen = FirstSeen::new();
        for (sym, attribute, span) in symbols {
            self.spelling(span, attribute, sym, valid_identifier);
            if let Some(first) = seen.repeat(sym, span) {
                let kind = ErrorKind::DuplicateSetVar {
                    pd: pd.name.clone(),
                    symbol: sym.into(),
                    first,
                };
                self.error(span, kind);
            }
        }
    }

    /// Both ends name existing PDs (the same one for a self-channel, which Microkit allows).
    fn connects(&self, ch: &Channel) -> bool {
        let [a, b] = &ch.ends;
        self.pd(&a.pd).is_some() && self.pd(&b.pd).is_some()
    }

    fn channels(&mut self) {
        for ch in &self.sys.channels {
            let [a, b] = &ch.ends;
            let mut known = true;
            for end in [a, b] {
                let span = self.idx.attr(end.span, "id");
                self.in_range(span, "id", end.id.into(), 0..=MAX_CHANNEL_ID);
                known &= self.known_pd(&end.pd, self.idx.attr(end.span, "pd"));
            }
            // An unknown name is already reported at both ends. Microkit allows a
            // self-channel, so the pp rules below still apply to it.
            if a.pd == b.pd && known {
                let span = self.idx.attr(b.span, "pd");
                self.error(span, ErrorKind::SelfChannel { pd: a.pd.clone() });
            }
            if a.pp && b.pp {
                self.error(self.idx.attr(b.span, "pp"), ErrorKind::PpBothEnds);
                continue;
            }
            if !known {
                continue;
            }
            for (caller, callee) in [(a, b), (b, a)] {
                if !caller.pp {
                    continue;
                }
                let (Some(from), Some(to)) = (self.pd(&caller.pd), self.pd(&callee.pd)) else {
                    continue;
                };
                if from.priority >= to.priority {
                    let kind = ErrorKind::PpNotToHigherPriority {
                        from: from.name.clone(),
                        from_priority: from.priority,
                        to: to.name.clone(),
                        to_priority: to.priority,
                    };
                    self.error(self.idx.attr(caller.span, "pp"), kind);
                }
            }
        }
    }

    /// Channel and irq ids of one PD share one badge space.
    fn ids(&mut self) {
        let mut per_pd: HashMap<&str, Vec<(u8, Span)>> = HashMap::new();
        for pd in self.pds.clone() {
            let ids = per_pd.entry(&pd.name).or_default();
            for irq in &pd.irqs {
                let span = self.idx.attr(irq.span, "id");
                self.in_range(span, "id", irq.id.into(), 0..=MAX_CHANNEL_ID);
                ids.push((irq.id, span));
            }
            for dev in &pd.pci_devices {
                ids.push((dev.id, self.idx.attr(dev.span, "id")));
            }
        }
        for ch in self.sys.channels.iter().filter(|ch| self.connects(ch)) {
            for end in &ch.ends {
                per_pd
                    .entry(&end.pd)
                    .or_default()
                    .push((end.id, self.idx.attr(end.span, "id")));
            }
        }
        // Report in PD order, each at the later use of an id.
        for pd in self.pds.clone() {
            let Some(mut ids) = per_pd.remove(pd.name.as_str()) else {
                continue;
            };
            ids.sort_by_key(|&(_, span)| span);
            let mut seen = FirstSeen::new();
            for (id, span) in ids {
                if let Some(first) = seen.repeat(id, span) {
                    let kind = ErrorKind::DuplicateId {
                        pd: pd.name.clone(),
                        id: id.into(),
                        first,
                    };
                    self.error(span, kind);
                }
            }
        }
    }

    fn irq_numbers(&mut self) {
        let mut all: Vec<(u64, Span)> = Vec::new();
        for pd in self.pds.clone() {
            all.extend(
                pd.irqs
                    .iter()
                    .map(|irq| (irq.irq, self.idx.attr(irq.span, "irq"))),
            );
        }
        all.sort_by_key(|&(_, span)| span);
        let mut seen = FirstSeen::new();
        for (irq, span) in all {
            if let Some(first) = seen.repeat(irq, span) {
                self.error(span, ErrorKind::DuplicateIrq { irq, first });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn overlaps_pairs_later_with_earlier_in_source_order() {
        // A big map first, two small ones inside it, one disjoint, one touching (no overlap).
        let ranges = [(0, 100), (10, 20), (30, 40), (200, 300), (100, 150)];
        assert_eq!(overlaps(&ranges), vec![(1, 0), (2, 0)]);
        // Reported at the later source entry even when it sorts first by address.
        assert_eq!(overlaps(&[(50, 60), (0, 55)]), vec![(1, 0)]);
        assert_eq!(overlaps(&[(0, 10), (0, 10), (0, 10)]), vec![(1, 0), (2, 0)]);
        assert!(overlaps(&[]).is_empty());
        assert!(overlaps(&[(0, 1), (1, 2), (2, 3)]).is_empty());
    }
}
