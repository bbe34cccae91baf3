//! XML -> model. This pass owns the syntax: element nesting, attribute names, number,
//! bool and enum grammar, required attributes. Rules that relate values to each other
//! live in `check`, which runs on the model and gets attribute positions from the
//! [`SpanIndex`] built here.
//!
//! An element with a syntax error is left out of the model, and its name (if it had
//! one) is remembered as "broken" so `check` does not pile a second error on every
//! reference to it.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use roxmltree::{Node, NodeType};

use crate::diag::{Diagnostic, Diagnostics, ErrorKind, NumberError};
use crate::limits::*;
use crate::model::*;
use crate::num::{parse_decimal, parse_quantity};

pub(crate) mod extra;
mod pci;

/// Positions that the model does not keep, for `check`'s messages.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    /// (element span, attribute name) -> attribute span.
    attrs: HashMap<(Span, &'static str), Span>,
    pub broken_pds: HashSet<String>,
    pub broken_mrs: HashSet<String>,
    pub system: Span,
}

impl SpanIndex {
    /// The attribute's position, or the element's when it was not written (a default).
    pub fn attr(&self, element: Span, name: &'static str) -> Span {
        self.written(element, name).unwrap_or(element)
    }

    /// The attribute's position if it was written.
    pub fn written(&self, element: Span, name: &'static str) -> Option<Span> {
        self.attrs.get(&(element, name)).copied()
    }
}

/// Byte offset -> line:col. Columns count characters, as editors do.
struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn span(&self, offset: usize) -> Span {
        let offset = offset.min(self.text.len());
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        Span {
            line: to_u32(line + 1),
            col: to_u32(col + 1),
        }
    }
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The attributes each element accepts (Microkit's names); `<system>` accepts any.
pub(crate) fn allowed_attributes(element: &str) -> &'static [&'static str] {
    match element {
        "memory_region" => MR_ATTRS,
        "protection_domain" => CHILD_PD_ATTRS,
        "program_image" => &["path", "path_for_symbols"],
        "map" => PD_MAP_ATTRS,
        "irq" => &[
            "irq",
            "id",
            "setvar_id",
            "trigger",
            "ioapic",
            "pin",
            "polarity",
            "vector",
            "pcidev",
            "handle",
        ],
        "setvar" => &["symbol", "region_paddr"],
        "channel" => &[],
        "end" => END_ATTRS,
        "virtual_machine" => VM_ATTRS,
        "vcpu" => VCPU_ATTRS,
        "ioport" => extra::IOPORT_ATTRS,
        "pci_device" => pci::DEVICE_ATTRS,
        "bar" => pci::BAR_ATTRS,
        "cap_tcb" | "cap_sc" | "cap_vspace" => &["slot", "pd"],
        "io_address_space" => extra::IO_SPACE_ATTRS,
        "iomap" => extra::IOMAP_ATTRS,
        "domain" => &["name", "id"],
        "domain_schedule" => &["index_shift", "start_index"],
        "schedule_entry" => &["domain", "duration"],
        _ => &[],
    }
}

const MR_ATTRS: &[&str] = &[
    "name",
    "size",
    "page_size",
    "phys_addr",
    "prefill_path",
    "prefill_bootinfo",
];
/// A child PD also takes the id its parent knows it by: the last two.
const CHILD_PD_ATTRS: &[&str] = &[
    "name",
    "priority",
    "budget",
    "period",
    "passive",
    "stack_size",
    "smc",
    "cpu",
    "domain",
    "fpu",
    "debug_console",
    "debug_halt",
    "id",
    "setvar_id",
];
const PD_ATTRS: &[&str] = CHILD_PD_ATTRS.split_at(CHILD_PD_ATTRS.len() - 2).0;
const PD_MAP_ATTRS: &[&str] = &[
    "mr",
    "vaddr",
    "perms",
    "cached",
    "setvar_vaddr",
    "setvar_size",
    "setvar_prefill_size",
];
/// What a `perms=` attribute may say on one kind of element.
struct PermsGrammar {
    letters: &'static str,
    /// `perms=""`: a map without rights is Microkit's to take (`check` words it).
    empty_ok: bool,
    invalid: fn(&str) -> ErrorKind,
}

const MAP_PERMS: PermsGrammar = PermsGrammar {
    letters: "rwx",
    empty_ok: true,
    invalid: |value| ErrorKind::InvalidPerms {
        value: value.into(),
    },
};

/// setvar_vaddr stays parseable on a guest map so `check` can say why it is wrong.
const VM_MAP_ATTRS: &[&str] = &["mr", "vaddr", "perms", "cached", "setvar_vaddr"];
const END_ATTRS: &[&str] = &["pd", "id", "pp", "notify", "setvar_id"];

/// As Microkit's (its ARM form: x86 Microkit shares the VMM's scheduling parameters;
/// here the guest may be given less than its VMM).
const VM_ATTRS: &[&str] = &["name", "priority", "budget", "period"];
const VCPU_ATTRS: &[&str] = &["id", "cpu", "setvar_id"];
const GUEST_IOPORT_ATTRS: &[&str] = &["addr", "size"];

const KNOWN_ELEMENTS: &[&str] = &[
    "virtual_machine",
    "vcpu",
    "system",
    "memory_region",
    "protection_domain",
    "program_image",
    "map",
    "irq",
    "setvar",
    "channel",
    "end",
    "ioport",
    "pci_device",
    "bar",
    "cspace",
    "cap_tcb",
    "cap_sc",
    "cap_vspace",
    "io_address_space",
    "iomap",
    "domains",
    "domain",
    "domain_schedule",
    "schedule_entry",
    "schedule_end_marker",
];

pub(crate) struct Parsed {
    pub system: System,
    pub index: SpanIndex,
    pub diags: Diagnostics,
    /// The XML was well formed and its root was `<system>`.
    pub document_ok: bool,
}

/// The line:col of byte `offset` in `text`.
pub(crate) fn span_at(text: &str, offset: usize) -> Span {
    LineIndex::new(text).span(offset)
}

pub(crate) fn parse(text: &str, file: &Path) -> Parsed {
    let mut p = Parser {
        file: file.to_path_buf(),
        lines: LineIndex::new(text),
        diags: Diagnostics::default(),
        index: SpanIndex::default(),
    };
    let mut system = System {
        file: file.to_path_buf(),
        memory_regions: Vec::new(),
        protection_domains: Vec::new(),
        channels: Vec::new(),
        io_address_spaces: Vec::new(),
        domains: None,
    };
    // DTDs stay off (the default): no entity expansion games.
    let document_ok = match roxmltree::Document::parse(text) {
        Ok(doc) => p.system(doc.root_element(), &mut system),
        Err(e) => {
            let pos = e.pos();
            let message = e.to_string().replace(&format!(" at {pos}"), "");
            let span = Span {
                line: pos.row,
                col: pos.col,
            };
            p.diags.push(Diagnostic::new(
                file,
                span,
                ErrorKind::MalformedXml { message },
            ));
            false
        }
    };
    Parsed {
        system,
        index: p.index,
        diags: p.diags,
        document_ok,
    }
}

struct Parser<'t> {
    file: PathBuf,
    lines: LineIndex<'t>,
    diags: Diagnostics,
    index: SpanIndex,
}

/// One element's attributes, checked against its allowed set; records positions and
/// whether anything was wrong.
struct Attrs<'a, 'input> {
    node: Node<'a, 'input>,
    span: Span,
    ok: bool,
}

impl<'t> Parser<'t> {
    fn error(&mut self, span: Span, kind: ErrorKind) {
        self.diags.push(Diagnostic::new(&self.file, span, kind));
    }

    fn node_span(&self, node: Node) -> Span {
        self.lines.span(node.range().start)
    }

    fn name_of(node: Node) -> String {
        let tag = node.tag_name();
        match tag.namespace() {
            Some(ns) => format!("{{{ns}}}{}", tag.name()),
            None => tag.name().to_string(),
        }
    }

    /// The element children of `node`, reporting stray text on the way. Comments and
    /// processing instructions are fine.
    fn elements<'a, 'input>(&mut self, node: Node<'a, 'input>) -> Vec<Node<'a, 'input>> {
        let mut out = Vec::new();
        for child in node.children() {
            match child.node_type() {
                NodeType::Element => out.push(child),
                NodeType::Text => {
                    let text = child.text().unwrap_or("");
                    if !text.trim().is_empty() {
                        // Point at the first visible character, not at the newline before it.
                        let raw = &self.lines.text.get(child.range()).unwrap_or("");
                        let skip = raw.len() - raw.trim_start().len();
                        let span = self.lines.span(child.range().start + skip);
                        self.error(
                            span,
                            ErrorKind::UnexpectedText {
                                element: Self::name_of(node),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Reports an element that may not appear under `parent`.
    fn unexpected_element(&mut self, child: Node, parent: Node) {
        let element = Self::name_of(child);
        let parent = Self::name_of(parent);
        let span = self.node_span(child);
        let kind = if KNOWN_ELEMENTS.contains(&element.as_str()) {
            ErrorKind::MisplacedElement { element, parent }
        } else {
            ErrorKind::UnknownElement { element, parent }
        };
        self.error(span, kind);
    }

    /// A leaf element's value: `build` runs only if its attributes were fine and no
    /// child element stands in it (each one is reported).
    fn leaf<T>(&mut self, node: Node, ok: bool, build: impl FnOnce() -> Option<T>) -> Option<T> {
        let leaf = self.no_children(node);
        if ok && leaf {
            build()
        } else {
            None
        }
    }

    /// For leaf elements: any child element is an error.
    fn no_children(&mut self, node: Node) -> bool {
        let children = self.elements(node);
        for child in &children {
            self.unexpected_element(*child, node);
        }
        children.is_empty()
    }

    fn attrs<'a, 'input>(
        &mut self,
        node: Node<'a, 'input>,
        allowed: &[&'static str],
    ) -> Attrs<'a, 'input> {
        let span = self.node_span(node);
        let mut ok = true;
        for a in node.attributes() {
            let aspan = self.lines.span(a.range().start);
            let known = allowed
                .iter()
                .find(|&&n| a.namespace().is_none() && n == a.name());
            match known {
                Some(&name) => {
                    self.index.attrs.insert((span, name), aspan);
                }
                None => {
                    ok = false;
                    let attribute = match a.namespace() {
                        Some(ns) => format!("{{{ns}}}{}", a.name()),
                        None => a.name().to_string(),
                    };
                    self.error(
                        aspan,
                        ErrorKind::UnknownAttribute {
                            attribute,
                            element: Self::name_of(node),
                        },
                    );
                }
            }
        }
        Attrs { node, span, ok }
    }

    /// Whether `child` is the first of an element that may stand once here (`seen`
    /// holds where the first one is); a later one is reported against the first.
    fn first_of(
        &mut self,
        seen: &mut Option<Span>,
        child: Node,
        duplicate: impl FnOnce(Span) -> ErrorKind,
    ) -> bool {
        let span = self.node_span(child);
        match *seen {
            Some(first) => {
                self.error(span, duplicate(first));
                false
            }
            None => {
                *seen = Some(span);
                true
            }
        }
    }

    /// [`Self::first_of`] for the elements whose duplicate has no error of its own.
    fn single(&mut self, seen: &mut Option<Span>, child: Node) -> bool {
        let element = Self::name_of(child);
        self.first_of(seen, child, |first| ErrorKind::DuplicateElement {
            element,
            first,
        })
    }

    /// Marks the element broken and reports `kind` at attribute `name`.
    fn reject(&mut self, at: &mut Attrs, name: &'static str, kind: ErrorKind) {
        at.ok = false;
        let span = self.attr_span(at, name);
        self.error(span, kind);
    }

    /// `perms=` in `grammar`; read-write when absent, None on error.
    fn perms(&mut self, at: &mut Attrs, grammar: &PermsGrammar) -> Option<Perms> {
        let Some(s) = self.optional(at, "perms") else {
            return Some(Perms::RW);
        };
        let mut p = Perms::default();
        let letters_ok = s.chars().all(|c| {
            let flag = match c {
                'r' => &mut p.read,
                'w' => &mut p.write,
                'x' => &mut p.execute,
                _ => return false,
            };
            *flag = true;
            grammar.letters.contains(c)
        });
        if letters_ok && (grammar.empty_ok || !s.is_empty()) {
            Some(p)
        } else {
            self.reject(at, "perms", (grammar.invalid)(s));
            None
        }
    }

    fn attr_span(&self, at: &Attrs, name: &'static str) -> Span {
        self.index.attr(at.span, name)
    }

    fn optional<'a>(&self, at: &Attrs<'a, '_>, name: &'static str) -> Option<&'a str> {
        at.node
            .attributes()
            .find(|a| a.namespace().is_none() && a.name() == name)
            .map(|a| a.value())
    }

    fn required<'a>(&mut self, at: &mut Attrs<'a, '_>, name: &'static str) -> Option<&'a str> {
        let v = self.optional(at, name);
        if v.is_none() {
            at.ok = false;
            let element = Self::name_of(at.node);
            self.error(
                at.span,
                ErrorKind::MissingAttribute {
                    attribute: name.into(),
                    element,
                },
            );
        }
        v
    }

    fn number(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        value: &str,
        parse: fn(&str) -> Result<u64, NumberError>,
        range: RangeInclusive<u64>,
    ) -> Option<u64> {
        match parse(value) {
            Ok(v) if range.contains(&v) => Some(v),
            Ok(v) => {
                let kind = ErrorKind::OutOfRange {
                    attribute: name.into(),
                    value: v,
                    min: *range.start(),
                    max: *range.end(),
                };
                self.reject(at, name, kind);
                None
            }
            Err(reason) => {
                let kind = ErrorKind::InvalidNumber {
                    attribute: name.into(),
                    value: value.into(),
                    reason,
                };
                self.reject(at, name, kind);
                None
            }
        }
    }

    /// A decimal attribute bounded by `max`; `default` when absent, None on error.
    fn decimal(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        max: u64,
        default: Option<u64>,
    ) -> Option<u64> {
        self.numeric(at, name, parse_decimal, 0..=max, default)
    }

    /// A numeric attribute in the syntax `parse` accepts, within `range`;
    /// `default` when absent (an error if there is none), None on error.
    fn numeric(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        parse: fn(&str) -> Result<u64, NumberError>,
        range: RangeInclusive<u64>,
        default: Option<u64>,
    ) -> Option<u64> {
        match self.optional(at, name) {
            Some(v) => self.number(at, name, v, parse, range),
            None if default.is_some() => default,
            None => {
                self.required(at, name);
                None
            }
        }
    }

    /// An attribute that may be left out: `Some(None)` when absent, None on error.
    fn optional_number(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        parse: fn(&str) -> Result<u64, NumberError>,
        max: u64,
    ) -> Option<Option<u64>> {
        match self.optional(at, name) {
            Some(v) => self.number(at, name, v, parse, 0..=max).map(Some),
            None => Some(None),
        }
    }

    /// A size or address (Microkit number, any u64).
    fn quantity(
        &mut self,
        at: &mut Attrs,
        name: &'static str,
        default: Option<u64>,
    ) -> Option<u64> {
        self.numeric(at, name, parse_quantity, 0..=u64::MAX, default)
    }

    fn boolean(&mut self, at: &mut Attrs, name: &'static str, default: bool) -> bool {
        match self.optional(at, name) {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                let kind = ErrorKind::InvalidBool {
                    attribute: name.into(),
                    value: other.into(),
                };
                self.reject(at, name, kind);
                default
            }
        }
    }

    fn system(&mut self, root: Node, system: &mut System) -> bool {
        self.index.system = self.node_span(root);
        if Self::name_of(root) != "system" {
            let span = self.node_span(root);
            self.error(
                span,
                ErrorKind::RootNotSystem {
                    found: Self::name_of(root),
                },
            );
            return false;
        }
        for child in self.elements(root) {
            match Self::name_of(child).as_str() {
                "memory_region" => system.memory_regions.extend(self.memory_region(child)),
                "protection_domain" => system
                    .protection_domains
                    .extend(self.protection_domain(child, false)),
                "channel" => system.channels.extend(self.channel(child)),
                "io_address_space" => system
                    .io_address_spaces
                    .extend(self.io_address_space(child)),
                "domains" => {
                    let mut first = system.domains.as_ref().map(|d| d.span);
                    if self.single(&mut first, child) {
                        system.domains = self.domains(child);
                    }
                }
                _ => self.unexpected_element(child, root),
            }
        }
        true
    }

    fn memory_region(&mut self, node: Node) -> Option<MemoryRegion> {
        let mut at = self.attrs(node, MR_ATTRS);
        let name = self.required(&mut at, "name");
        let page_size = self.quantity(&mut at, "page_size", Some(DEFAULT_PAGE_SIZE));
        let prefill_path = self.optional(&at, "prefill_path");
        let prefill_bootinfo = self.optional(&at, "prefill_bootinfo");
        let prefill = match (prefill_path, prefill_bootinfo) {
            (Some(_), Some(_)) => {
                self.reject(&mut at, "prefill_bootinfo", ErrorKind::PrefillConflict);
                None
            }
            (Some(path), None) => Some(Prefill::Path(PathBuf::from(path))),
            (None, Some(kind)) if BOOTINFO_KINDS.contains(&kind) => {
                Some(Prefill::BootInfo(kind.into()))
            }
            (None, Some(kind)) => {
                let kind = ErrorKind::InvalidValue {
                    attribute: "prefill_bootinfo".into(),
                    value: kind.into(),
                    expected: format!("one of {}", BOOTINFO_KINDS.join(", ")),
                };
                self.reject(&mut at, "prefill_bootinfo", kind);
                None
            }
            (None, None) => None,
        };
        let size_written = self.optional(&at, "size").is_some();
        let size = if size_written {
            self.quantity(&mut at, "size", None)
        } else if prefill_path.is_some() || prefill_bootinfo.is_some() {
            // Bootinfo regions are one page; a file's length is known at build time.
            page_size
        } else {
            at.ok = false;
            self.error(at.span, ErrorKind::MissingSize);
            None
        };
        let phys_addr = self.optional_number(&mut at, "phys_addr", parse_quantity, u64::MAX);
        let mr = self.leaf(node, at.ok, || {
            Some(MemoryRegion {
                name: name?.into(),
                size: size?,
                page_size: page_size?,
                phys_addr: phys_addr?,
                prefill,
                size_written,
                span: at.span,
            })
        });
        if let (None, Some(name)) = (&mr, name) {
            self.index.broken_mrs.insert(name.into());
        }
        mr
    }

    /// Records the names of a PD subtree that could not be parsed.
    fn mark_broken(&mut self, node: Node) {
        for pd in node
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "protection_domain")
        {
            if let Some(name) = pd.attribute("name") {
                self.index.broken_pds.insert(name.into());
            }
        }
    }

    fn protection_domain(&mut self, node: Node, is_child: bool) -> Option<ProtectionDomain> {
        let mut at = self.attrs(node, if is_child { CHILD_PD_ATTRS } else { PD_ATTRS });
        let name = self.required(&mut at, "name");
        let (priority, budget, period) = self.scheduling(&mut at);
        let passive = self.boolean(&mut at, "passive", false);
        let smc = self.boolean(&mut at, "smc", false);
        let fpu = self.boolean(&mut at, "fpu", true);
        let debug_console = self.boolean(&mut at, "debug_console", false);
        let debug_halt = self.boolean(&mut at, "debug_halt", false);
        let domain = self.optional(&at, "domain").map(String::from);
        let stack_size = self.quantity(&mut at, "stack_size", Some(DEFAULT_STACK_SIZE));
        let cpu = self.numeric(&mut at, "cpu", parse_quantity, 0..=MAX_CPU, Some(0));
        let child_id = if is_child {
            self.numeric(&mut at, "id", parse_quantity, 0..=MAX_CHILD_ID, None)
                .map(Some)
        } else {
            Some(None)
        };
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);

        let mut program_image: Option<ProgramImage> = None;
        let mut image_element: Option<Span> = None;
        let mut maps = Vec::new();
        let mut irqs = Vec::new();
        let mut setvars = Vec::new();
        let mut ioports = Vec::new();
        let mut pci_devices = Vec::new();
        let mut cap_maps = Vec::new();
        let mut cspace: Option<Span> = None;
        let mut children = Vec::new();
        let mut virtual_machine: Option<VirtualMachine> = None;
        let mut vm_element: Option<Span> = None;
        let mut ok = at.ok;
        for child in self.elements(node) {
            let child_ok = match Self::name_of(child).as_str() {
                "program_image" => {
                    let pd = name.unwrap_or("").to_string();
                    let duplicate = |first| ErrorKind::DuplicateProgramImage { pd, first };
                    if self.first_of(&mut image_element, child, duplicate) {
                        program_image = self.program_image(child);
                        program_image.is_some()
                    } else {
                        false
                    }
                }
                "map" => self
                    .map(child, PD_MAP_ATTRS)
                    .map(|m| maps.push(m))
                    .is_some(),
                "irq" => self.irq(child).map(|i| irqs.push(i)).is_some(),
                "ioport" => self.ioport(child).map(|i| ioports.push(i)).is_some(),
                "pci_device" => self
                    .pci_device(child)
                    .map(|d| pci_devices.push(d))
                    .is_some(),
                "cspace" => self.single(&mut cspace, child) && self.cspace(child, &mut cap_maps),
                "setvar" => self.setvar(child).map(|s| setvars.push(s)).is_some(),
                "protection_domain" => match self.protection_domain(child, true) {
                    Some(pd) => {
                        children.push(pd);
                        true
                    }
                    // The child is dropped on its own; the parent stays usable.
                    None => true,
                },
                "virtual_machine" => {
                    let pd = name.unwrap_or("").to_string();
                    let duplicate = |first| ErrorKind::DuplicateVirtualMachine { pd, first };
                    let first = self.first_of(&mut vm_element, child, duplicate);
                    if first {
                        // A broken guest is dropped on its own, like a broken child:
                        // nothing refers to a guest by name, so nothing cascades.
                        virtual_machine = self.virtual_machine(child);
                    }
                    first
                }
                _ => {
                    self.unexpected_element(child, node);
                    false
                }
            };
            ok &= child_ok;
        }
        if image_element.is_none() {
            if let Some(name) = name {
                self.error(at.span, ErrorKind::MissingProgramImage { pd: name.into() });
            }
            ok = false;
        }

        match (
            name,
            priority,
            budget,
            period,
            stack_size,
            cpu,
            child_id,
            program_image,
        ) {
            (
                Some(name),
                Some(priority),
                Some(budget),
                Some(period),
                Some(stack_size),
                Some(cpu),
                Some(child_id),
                Some(program_image),
            ) if ok => Some(ProtectionDomain {
                name: name.into(),
                priority: narrow(priority),
                budget,
                period,
                passive,
                stack_size,
                cpu: narrow(cpu),
                smc,
                fpu,
                debug_console,
                debug_halt,
                domain,
                setvar_id,
                ioports,
                pci_devices,
                cap_maps,
                cspace,
                program_image,
                maps,
                irqs,
                setvars,
                child_id: child_id.map(narrow),
                children,
                virtual_machine,
                span: at.span,
            }),
            _ => {
                self.mark_broken(node);
                None
            }
        }
    }

    /// Priority, budget and period, which PDs and guests share (the period defaults
    /// to the budget).
    fn scheduling(&mut self, at: &mut Attrs) -> (Option<u64>, Option<u64>, Option<u64>) {
        let range = 0..=MAX_PRIORITY;
        let priority = self.numeric(at, "priority", parse_quantity, range, Some(0));
        let budget = self.quantity(at, "budget", Some(DEFAULT_BUDGET));
        let period = self.quantity(at, "period", Some(budget.unwrap_or(DEFAULT_BUDGET)));
        (priority, budget, period)
    }

    fn virtual_machine(&mut self, node: Node) -> Option<VirtualMachine> {
        let mut at = self.attrs(node, VM_ATTRS);
        let name = self.required(&mut at, "name");
        let (priority, budget, period) = self.scheduling(&mut at);
        let mut vcpus = Vec::new();
        let mut maps = Vec::new();
        let mut ioports = Vec::new();
        let mut ok = at.ok;
        for child in self.elements(node) {
            ok &= match Self::name_of(child).as_str() {
                "vcpu" => self.vcpu(child).map(|v| vcpus.push(v)).is_some(),
                "ioport" => self.guest_ioport(child).map(|p| ioports.push(p)).is_some(),
                "map" => self
                    .map(child, VM_MAP_ATTRS)
                    .map(|m| maps.push(m))
                    .is_some(),
                _ => {
                    self.unexpected_element(child, node);
                    false
                }
            };
        }
        if !ok {
            return None;
        }
        Some(VirtualMachine {
            name: name?.into(),
            priority: narrow(priority?),
            budget: budget?,
            period: period?,
            vcpus,
            maps,
            ioports,
            span: at.span,
        })
    }

    fn guest_ioport(&mut self, node: Node) -> Option<GuestIoPort> {
        let mut at = self.attrs(node, GUEST_IOPORT_ATTRS);
        let addr = self.numeric(&mut at, "addr", parse_quantity, 0..=0xffff, None);
        let size = self.numeric(&mut at, "size", parse_decimal, 1..=0x1_0000, None);
        self.leaf(node, at.ok, || {
            Some(GuestIoPort {
                addr: addr?,
                size: size?,
                span: at.span,
            })
        })
    }

    fn vcpu(&mut self, node: Node) -> Option<Vcpu> {
        let mut at = self.attrs(node, VCPU_ATTRS);
        let id = self.decimal(&mut at, "id", MAX_VCPU_ID, None);
        let cpu = self
            .optional_number(&mut at, "cpu", parse_quantity, MAX_CPU)
            .map(|c| c.map(narrow));
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);
        self.leaf(node, at.ok, || {
            Some(Vcpu {
                id: narrow(id?),
                cpu: cpu?,
                setvar_id,
                span: at.span,
            })
        })
    }

    fn program_image(&mut self, node: Node) -> Option<ProgramImage> {
        let mut at = self.attrs(node, &["path", "path_for_symbols"]);
        let path = self.required(&mut at, "path");
        let path_for_symbols = self.optional(&at, "path_for_symbols").map(PathBuf::from);
        let span = self.attr_span(&at, "path");
        self.leaf(node, at.ok, || {
            Some(ProgramImage {
                path: PathBuf::from(path?),
                path_for_symbols,
                span,
            })
        })
    }

    fn map(&mut self, node: Node, allowed: &[&'static str]) -> Option<Map> {
        let mut at = self.attrs(node, allowed);
        let mr = self.required(&mut at, "mr");
        let vaddr = self.quantity(&mut at, "vaddr", None);
        let perms = self.perms(&mut at, &MAP_PERMS);
        let cached = self.boolean(&mut at, "cached", true);
        let setvar_vaddr = self.optional(&at, "setvar_vaddr").map(String::from);
        let setvar_size = self.optional(&at, "setvar_size").map(String::from);
        let setvar_prefill_size = self.optional(&at, "setvar_prefill_size").map(String::from);
        self.leaf(node, at.ok, || {
            Some(Map {
                mr: mr?.into(),
                vaddr: vaddr?,
                perms: perms?,
                cached,
                setvar_vaddr,
                setvar_size,
                setvar_prefill_size,
                span: at.span,
            })
        })
    }

    fn setvar(&mut self, node: Node) -> Option<SetVar> {
        let mut at = self.attrs(node, &["symbol", "region_paddr"]);
        let symbol = self.required(&mut at, "symbol");
        let region = self.required(&mut at, "region_paddr");
        self.leaf(node, at.ok, || {
            Some(SetVar {
                symbol: symbol?.into(),
                region_paddr: region?.into(),
                span: at.span,
            })
        })
    }

    fn channel(&mut self, node: Node) -> Option<Channel> {
        let at = self.attrs(node, &[]);
        let mut ends = Vec::new();
        let mut ok = at.ok;
        let mut count = 0;
        for child in self.elements(node) {
            if Self::name_of(child) == "end" {
                count += 1;
                match self.end(child) {
                    Some(end) => ends.push(end),
                    None => ok = false,
                }
            } else {
                self.unexpected_element(child, node);
                ok = false;
            }
        }
        if count != 2 {
            self.error(at.span, ErrorKind::WrongEndCount { count });
            return None;
        }
        let [a, b]: [ChannelEnd; 2] = ends.try_into().ok()?;
        // An end naming a PD that failed to parse already has its error.
        let broken = |e: &ChannelEnd| self.index.broken_pds.contains(&e.pd);
        if !ok || broken(&a) || broken(&b) {
            return None;
        }
        Some(Channel {
            ends: [a, b],
            span: at.span,
        })
    }

    fn end(&mut self, node: Node) -> Option<ChannelEnd> {
        let mut at = self.attrs(node, END_ATTRS);
        let pd = self.required(&mut at, "pd");
        let id = self.decimal(&mut at, "id", MAX_CHANNEL_ID, None);
        let pp = self.boolean(&mut at, "pp", false);
        let notify = self.boolean(&mut at, "notify", true);
        let setvar_id = self.optional(&at, "setvar_id").map(String::from);
        self.leaf(node, at.ok, || {
            Some(ChannelEnd {
                pd: pd?.into(),
                id: narrow(id?),
                pp,
                notify,
                setvar_id,
                span: at.span,
            })
        })
    }
}

/// The parser range-checked the value against a bound below 256.
fn narrow(v: u64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}
