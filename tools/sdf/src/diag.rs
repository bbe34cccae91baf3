//! Errors found in a system description: each names the file and position, says what
//! is wrong (a typed [`ErrorKind`], so tests and tools match on the variant rather
//! than on text) and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::limits::*;
use crate::model::Span;

/// Why a number attribute did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("it is empty")]
    Empty,
    /// `0x..` where only decimal is accepted (ids, priorities, irq numbers, cpu).
    #[error("this attribute takes a decimal number")]
    HexNotAllowed,
    /// `_` where only plain decimal digits are accepted.
    #[error("this attribute takes plain decimal digits")]
    SeparatorNotAllowed,
    #[error("it contains a character that is not a digit")]
    InvalidDigit,
    /// Larger than 2^64 - 1.
    #[error("it does not fit in 64 bits")]
    TooLarge,
}

/// Which kind of named thing a duplicate or a dangling reference is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NameKind {
    ProtectionDomain,
    MemoryRegion,
    VirtualMachine,
    Domain,
    IoAddressSpace,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::ProtectionDomain => "protection domain",
            NameKind::MemoryRegion => "memory region",
            NameKind::VirtualMachine => "virtual machine",
            NameKind::Domain => "domain",
            NameKind::IoAddressSpace => "io address space",
        })
    }
}

/// The address space a map is in, by its owner's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapSpace {
    /// A PD's virtual address space.
    Pd(String),
    /// A guest's physical address space.
    Vm(String),
}

impl fmt::Display for MapSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = match self {
            MapSpace::Pd(pd) => (NameKind::ProtectionDomain, pd),
            MapSpace::Vm(vm) => (NameKind::VirtualMachine, vm),
        };
        write!(f, "{kind} '{name}'")
    }
}

/// Everything `check` and `load` can reject. `first` fields point at the earlier
/// occurrence a duplicate clashes with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read (missing, a directory, no permission, too large).
    #[error("cannot read the system description: {message}")]
    Io { message: String },
    /// The bytes are not UTF-8; the span points at the first bad byte.
    #[error("the file is not valid UTF-8")]
    NotUtf8,
    /// The XML itself is malformed; `message` is the XML parser's.
    #[error("malformed XML: {message}")]
    MalformedXml { message: String },
    #[error("the root element is <{found}>, expected <system>")]
    RootNotSystem { found: String },
    #[error("unknown element <{element}> in <{parent}>")]
    UnknownElement { element: String, parent: String },
    /// A known element in a place where it does not belong, e.g. `<end>` in a PD.
    #[error("<{element}> is not allowed in <{parent}>")]
    MisplacedElement { element: String, parent: String },
    #[error("unknown attribute '{attribute}' on <{element}>")]
    UnknownAttribute { attribute: String, element: String },
    #[error("unexpected text in <{element}>")]
    UnexpectedText { element: String },
    #[error("<{element}> is missing the required attribute '{attribute}'")]
    MissingAttribute { attribute: String, element: String },
    #[error("{attribute}=\"{value}\" is not a valid number: {reason}")]
    InvalidNumber {
        attribute: String,
        value: String,
        reason: NumberError,
    },
    #[error("{attribute}={value} is out of range {min}..={max}")]
    OutOfRange {
        attribute: String,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{attribute}=\"{value}\" must be \"true\" or \"false\"")]
    InvalidBool { attribute: String, value: String },
    #[error("perms=\"{value}\" may only contain 'r', 'w' and 'x'")]
    InvalidPerms { value: String },
    /// seL4 has no write-only or execute-only mappings.
    #[error("perms=\"{value}\" lacks 'r'; mappings must be readable")]
    PermsWithoutRead { value: String },
    #[error("trigger=\"{value}\" must be \"level\" or \"edge\"")]
    InvalidTrigger { value: String },
    #[error("{attribute}=\"{value}\" is not a valid name")]
    InvalidName { attribute: String, value: String },
    #[error("the system has no protection domains")]
    NoProtectionDomains,
    #[error("too many protection domains: {count}, the maximum is {MAX_PDS}")]
    TooManyPds { count: usize },
    #[error("budget ({budget} us) is larger than period ({period} us)")]
    BudgetExceedsPeriod { budget: u64, period: u64 },
    #[error(
        "stack_size {stack_size:#x} is not a multiple of the page size {DEFAULT_PAGE_SIZE:#x}"
    )]
    StackSizeNotAligned { stack_size: u64 },
    #[error("page_size {page_size:#x} is not supported on x86_64")]
    UnsupportedPageSize { page_size: u64 },
    #[error("memory region size is 0")]
    ZeroSize,
    #[error("size {size:#x} is not a multiple of page_size {page_size:#x}")]
    SizeNotPageMultiple { size: u64, page_size: u64 },
    #[error("phys_addr {phys_addr:#x} is not aligned to page_size {page_size:#x}")]
    PhysAddrNotAligned { phys_addr: u64, page_size: u64 },
    /// phys_addr + size wraps past 2^64.
    #[error("phys_addr {phys_addr:#x} + size {size:#x} overflows the physical address space")]
    PhysRangeOverflow { phys_addr: u64, size: u64 },
    #[error("memory region '{region}' overlaps the physical range of '{other}'")]
    PhysOverlap {
        region: String,
        other: String,
        first: Span,
    },
    #[error("vaddr {vaddr:#x} is not aligned to the region's page_size {page_size:#x}")]
    VaddrNotAligned { vaddr: u64, page_size: u64 },
    /// The map would reach past the user half of the address space.
    #[error("map at vaddr {vaddr:#x} of size {size:#x} reaches past the user address space end {USER_VADDR_END:#x}")]
    VaddrOutOfRange { vaddr: u64, size: u64 },
    /// Two maps of one address space (a PD's virtual or a guest's physical one) overlap.
    #[error("in {space}, map of '{mr}' [{start:#x}..{end:#x}) overlaps map of '{other}' [{other_start:#x}..{other_end:#x})")]
    MapOverlap {
        space: MapSpace,
        mr: String,
        other: String,
        start: u64,
        end: u64,
        other_start: u64,
        other_end: u64,
        first: Span,
    },
    #[error("no {kind} named '{name}'")]
    UnknownName { kind: NameKind, name: String },
    #[error("duplicate {kind} name '{name}' (first defined at {first})")]
    DuplicateName {
        kind: NameKind,
        name: String,
        first: Span,
    },
    #[error("the protection domain name '{name}' is reserved")]
    ReservedName { name: String },
    #[error("a channel needs exactly two <end> elements, found {count}")]
    WrongEndCount { count: usize },
    #[error("channel connects protection domain '{pd}' to itself")]
    SelfChannel { pd: String },
    /// A channel or irq id used twice within one PD.
    #[error("id {id} is used twice in protection domain '{pd}' (first at {first})")]
    DuplicateId { pd: String, id: u64, first: Span },
    /// The same hardware irq number claimed twice.
    #[error("irq {irq} is claimed twice (first at {first})")]
    DuplicateIrq { irq: u64, first: Span },
    #[error("pp=\"true\" is set on both ends; protected calls go one way only")]
    PpBothEnds,
    #[error("protected call from '{from}' (priority {from_priority}) to '{to}' (priority {to_priority}) does not go to a strictly higher priority")]
    PpNotToHigherPriority {
        from: String,
        from_priority: u8,
        to: String,
        to_priority: u8,
    },
    #[error("symbol '{symbol}' is set twice in protection domain '{pd}' (first at {first})")]
    DuplicateSetVar {
        pd: String,
        symbol: String,
        first: Span,
    },
    #[error("child id {id} is used twice in protection domain '{parent}' (first at {first})")]
    DuplicateChildId {
        parent: String,
        id: u64,
        first: Span,
    },
    #[error("protection domain '{pd}' has no <program_image>")]
    MissingProgramImage { pd: String },
    #[error("protection domain '{pd}' has a second <program_image> (first at {first})")]
    DuplicateProgramImage { pd: String, first: Span },
    /// The image named by `<program_image path=>` is not in any searched directory.
    #[error("program image '{}' not found", .path.display())]
    ProgramImageNotFound {
        path: PathBuf,
        searched: Vec<PathBuf>,
    },
    /// The image exists but could not be read.
    #[error("cannot read program image '{}': {message}", .path.display())]
    ProgramImageUnreadable { path: PathBuf, message: String },
    /// A PD is the VMM of one guest at most.
    #[error("protection domain '{pd}' has a second <virtual_machine> (first at {first})")]
    DuplicateVirtualMachine { pd: String, first: Span },
    #[error("virtual machine '{vm}' has no <vcpu>")]
    MissingVcpu { vm: String },
    #[error("virtual machine '{vm}' has {count} vCPUs, the maximum is {MAX_VCPUS}")]
    TooManyVcpus { vm: String, count: usize },
    /// A vCPU id used twice, or clashing with a child PD id of the VMM.
    #[error(
        "vCPU id {id} of virtual machine '{vm}' is already used in its VMM (first at {first})"
    )]
    DuplicateVcpuId { vm: String, id: u64, first: Span },
    /// The guest runs on its VMM's thread: it cannot be scheduled above it.
    #[error("virtual machine '{vm}' (priority {priority}) is above its VMM '{pd}' (priority {pd_priority})")]
    VmPriorityAboveVmm {
        vm: String,
        priority: u8,
        pd: String,
        pd_priority: u8,
    },
    /// A guest has no program image whose variable could be set.
    #[error("setvar_vaddr is not allowed on a map of virtual machine '{vm}'")]
    SetVarVaddrInVm { vm: String },
    /// The guest-physical range reaches past what nested paging can map.
    #[error("guest-physical range {gpa:#x}..+{size:#x} reaches past {GPA_END:#x}")]
    GpaOutOfRange { gpa: u64, size: u64 },
    /// The guest would reach (part of) the physical memory of a region only PDs map.
    #[error("virtual machine '{vm}' maps '{mr}', whose physical range overlaps '{other}', a region only protection domains map")]
    GuestRegionOverlapsPdRegion {
        vm: String,
        mr: String,
        other: String,
        first: Span,
    },
    /// A PD would execute bytes a guest can write.
    #[error(
        "protection domain '{pd}' maps '{mr}' executable, but virtual machine '{vm}' maps it too"
    )]
    GuestRegionExecutableByPd { pd: String, mr: String, vm: String },
    /// An enumerated or structured value outside what the attribute takes.
    #[error("{attribute}=\"{value}\" is not {expected}")]
    InvalidValue {
        attribute: String,
        value: String,
        expected: String,
    },
    /// `prefill_path` and `prefill_bootinfo` on one region.
    #[error("prefill_path and prefill_bootinfo cannot both be given")]
    PrefillConflict,
    /// A region with neither `size` nor a prefill to take it from.
    #[error("memory region has no size and is not prefilled")]
    MissingSize,
    /// `setvar_prefill_size` on a map of a region without `prefill_path`.
    #[error("setvar_prefill_size on a map of '{mr}', which has no prefill_path")]
    SetVarPrefillWithoutPrefill { mr: String },
    /// `domain=` on a PD while the system declares no `<domains>`.
    #[error("domain=\"{domain}\" but the system declares no <domains>")]
    DomainWithoutDomains { domain: String },
    /// A second element that may appear once, e.g. `<cspace>` in one PD.
    #[error("a second <{element}> (first at {first})")]
    DuplicateElement { element: String, first: Span },
    /// A value that must be unique in its scope, e.g. an ioport id in one PD.
    #[error("{attribute}=\"{value}\" on <{element}> is already used (first at {first})")]
    DuplicateValue {
        element: String,
        attribute: String,
        value: String,
        first: Span,
    },
    /// Two `<ioport>` grants (anywhere in the system) share ports.
    #[error("I/O ports of '{pd}' overlap those granted to '{other_pd}' (at {first})")]
    IoportOverlap {
        pd: String,
        other_pd: String,
        first: Span,
    },
    /// Two iomaps of one device's address space overlap.
    #[error(
        "in io address space '{space}', iomap of '{mr}' overlaps iomap of '{other}' (at {first})"
    )]
    IoMapOverlap {
        space: String,
        mr: String,
        other: String,
        first: Span,
    },
    /// seL4's IOMMU code maps small pages only.
    #[error("iomap of '{mr}', a region with large pages; the IOMMU maps 4 KiB pages only")]
    IoMapLargePage { mr: String },
    /// A PD and a VM share a name (Microkit keeps the two name spaces apart).
    #[error("virtual machine name '{name}' is also a protection domain's (at {first})")]
    GuestNameClashesWithPd { name: String, first: Span },
    /// Valid Microkit that `paravisor build` cannot turn into an image here.
    #[error("{construct} cannot be built here: {reason}")]
    NotBuildable { construct: String, reason: String },
}

/// Audit rules of ours that Microkit does not have. By default they are errors like
/// any other; `paravisor check --microkit` reports them as warnings, so it accepts
/// exactly what Microkit's own tool accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// PD, VM and region names of 1-64 letters, digits, '_', '-', '.'.
    PlainNames,
    /// setvar symbols are C identifiers.
    Identifiers,
    /// Every map is readable (Microkit refuses only write-only ones).
    ReadableMaps,
    /// No PD executes memory a guest can write.
    GuestCodeNotExecutable,
    /// A guest never outranks its VMM.
    GuestPriorityWithinVmm,
    /// A guest's name is not also a PD's (manifest and kernel messages name both).
    DistinctGuestNames,
    /// A channel connects two different PDs.
    NoSelfChannels,
    /// A memory region has at least one page (Microkit takes size="0").
    NonEmptyRegions,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::PlainNames => "plain-names",
            Policy::Identifiers => "identifiers",
            Policy::ReadableMaps => "readable-maps",
            Policy::GuestCodeNotExecutable => "guest-code-not-executable",
            Policy::GuestPriorityWithinVmm => "guest-priority-within-vmm",
            Policy::DistinctGuestNames => "distinct-guest-names",
            Policy::NoSelfChannels => "no-self-channels",
            Policy::NonEmptyRegions => "non-empty-regions",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

impl ErrorKind {
    /// How to fix it, in one line.
    pub fn hint(&self) -> String {
        use ErrorKind::*;
        match self {
            Io { .. } => "check the path and that the file is readable".into(),
            NotUtf8 => "save the file as UTF-8".into(),
            MalformedXml { .. } => "fix the XML syntax at this position (unclosed tag, stray '<' or '&', bad quoting)".into(),
            RootNotSystem { .. } => "wrap the description in <system> ... </system>".into(),
            UnknownElement { .. } => "allowed: <memory_region>, <protection_domain>, <channel>, <io_address_space>, <domains> in <system>; <program_image>, <map>, <irq>, <ioport>, <setvar>, <cspace>, <protection_domain>, <virtual_machine> in a PD; <vcpu>, <map>, <ioport> in <virtual_machine>; <end> in <channel>; <cap_tcb>, <cap_sc>, <cap_vspace> in <cspace>; <iomap> in <io_address_space>; <domain>, <domain_schedule> in <domains>".into(),
            MisplacedElement { element, .. } => match element.as_str() {
                "end" => "<end> belongs inside <channel>".into(),
                "memory_region" | "channel" => format!("move <{element}> directly under <system>"),
                "protection_domain" => "a <protection_domain> goes under <system> or, as a child, inside another one".into(),
                "system" => "<system> is only the root element".into(),
                "virtual_machine" => "a <virtual_machine> goes inside the <protection_domain> that is its VMM".into(),
                "vcpu" => "<vcpu> belongs inside <virtual_machine>".into(),
                "io_address_space" | "domains" => format!("move <{element}> directly under <system>"),
                "iomap" => "<iomap> belongs inside <io_address_space>".into(),
                "cap_tcb" | "cap_sc" | "cap_vspace" => format!("<{element}> belongs inside <cspace>"),
                "domain" | "domain_schedule" => format!("<{element}> belongs inside <domains>"),
                "schedule_entry" | "schedule_end_marker" => format!("<{element}> belongs inside <domain_schedule>"),
                _ => format!("move <{element}> into a <protection_domain>"),
            },
            UnknownAttribute { element, .. } => match crate::parse::allowed_attributes(element) {
                [] => format!("remove it; <{element}> takes no attributes"),
                allowed => format!("remove it; allowed on <{element}>: {}", allowed.join(", ")),
            },
            UnexpectedText { .. } => "remove the text or turn it into a <!-- comment -->".into(),
            MissingAttribute { attribute, .. } => format!("add {attribute}=\"...\""),
            InvalidNumber { reason: NumberError::HexNotAllowed | NumberError::SeparatorNotAllowed, .. } => "write it in plain decimal, e.g. 3".into(),
            InvalidNumber { .. } => "write a decimal number, or for sizes and addresses 0x-prefixed hex; '_' may separate digits".into(),
            OutOfRange { min, max, .. } => format!("use a value between {min} and {max}"),
            InvalidBool { .. } => "write \"true\" or \"false\"".into(),
            InvalidPerms { .. } | PermsWithoutRead { .. } => "use one of \"r\", \"rw\", \"rx\", \"rwx\"".into(),
            InvalidTrigger { .. } => "write trigger=\"level\" or trigger=\"edge\"".into(),
            InvalidName { attribute, .. } => {
                if attribute.starts_with("setvar") || attribute == "symbol" {
                    "use an identifier: a letter or '_' followed by letters, digits or '_' (or run check --microkit)".into()
                } else {
                    format!("use 1-{MAX_NAME_LEN} characters from letters, digits and _ - . @ / , + (or run check --microkit)")
                }
            }
            NoProtectionDomains => "add at least one <protection_domain>".into(),
            TooManyPds { .. } => "merge protection domains or drop unused ones".into(),
            BudgetExceedsPeriod { .. } => "lower budget or raise period (period defaults to budget)".into(),
            StackSizeNotAligned { .. } => "round stack_size up to a multiple of 0x1000".into(),
            UnsupportedPageSize { .. } => "use page_size=\"0x1000\" or page_size=\"0x200000\"".into(),
            ZeroSize => "give the region a size of at least one page".into(),
            SizeNotPageMultiple { page_size, .. } => format!("round size up to a multiple of {}", hex(*page_size)),
            PhysAddrNotAligned { page_size, .. } => format!("align phys_addr to {}", hex(*page_size)),
            PhysRangeOverflow { .. } => "lower phys_addr or size".into(),
            PhysOverlap { .. } => "give the regions disjoint physical ranges".into(),
            VaddrNotAligned { page_size, .. } => format!("align vaddr to {}", hex(*page_size)),
            VaddrOutOfRange { .. } => format!("map below {}", hex(USER_VADDR_END)),
            MapOverlap { space: MapSpace::Pd(_), other_end, .. } => format!("move this map to a free range, e.g. vaddr=\"{}\" or later", hex(*other_end)),
            MapOverlap { space: MapSpace::Vm(_), other_end, .. } => format!("move this map to a free guest-physical range, e.g. vaddr=\"{}\" or later", hex(*other_end)),
            UnknownName { kind, .. } => format!("define the {kind} or fix the spelling"),
            DuplicateName { .. } => "rename one of them".into(),
            ReservedName { .. } => "'monitor' is the system's own fault handler; pick another name".into(),
            WrongEndCount { .. } => "write <end pd=\"a\" id=\"0\"/> <end pd=\"b\" id=\"0\"/>".into(),
            SelfChannel { .. } => "a channel must connect two different protection domains".into(),
            DuplicateId { .. } => "channel and irq ids of one protection domain share one space; pick a free id in 0..=61".into(),
            DuplicateIrq { .. } => "each hardware irq can be delivered to one protection domain only".into(),
            PpBothEnds => "keep pp=\"true\" only on the end of the caller (the lower priority PD)".into(),
            PpNotToHigherPriority { to, .. } => format!("raise the priority of '{to}' above the caller's, or set pp=\"true\" on the other end instead"),
            DuplicateSetVar { .. } => "give each setvar its own symbol".into(),
            DuplicateChildId { .. } => "give each child protection domain its own id".into(),
            MissingProgramImage { .. } => "add <program_image path=\"...\"/> inside the protection domain".into(),
            DuplicateProgramImage { .. } => "keep a single <program_image>".into(),
            ProgramImageNotFound { searched, .. } => {
                let dirs: Vec<String> = searched.iter().map(|d| format!("'{}'", d.display())).collect();
                format!("build the image or pass --search-path; looked in {}", dirs.join(", "))
            }
            ProgramImageUnreadable { .. } => "check the file's permissions".into(),
            DuplicateVirtualMachine { .. } => "give each guest its own VMM protection domain".into(),
            MissingVcpu { .. } => "add <vcpu id=\"0\"/> inside the <virtual_machine>".into(),
            TooManyVcpus { .. } => format!("keep at most {MAX_VCPUS} <vcpu> elements"),
            DuplicateVcpuId { .. } => "vCPU ids and child PD ids of one VMM share one space; pick a free id in 0..=61".into(),
            VmPriorityAboveVmm { pd_priority, .. } => format!("lower the virtual machine's priority to {pd_priority} or less, or raise its VMM's"),
            SetVarVaddrInVm { .. } => "remove it; a guest has no program image (put setvar_vaddr on the VMM's own <map>)".into(),
            GpaOutOfRange { .. } => format!("place the map so it ends at or below {}", hex(GPA_END)),
            GuestRegionOverlapsPdRegion { .. } => "give the guest's region a physical range no protection-domain-only region uses".into(),
            GuestRegionExecutableByPd { .. } => "drop 'x' from this map: code a guest can write must not run in a protection domain".into(),
            InvalidValue { expected, .. } => format!("write {expected}"),
            PrefillConflict => "keep one of them".into(),
            MissingSize => "add size=\"0x1000\" (a multiple of page_size), or prefill_path=/prefill_bootinfo=".into(),
            SetVarPrefillWithoutPrefill { .. } => "use setvar_size, or give the region a prefill_path".into(),
            DomainWithoutDomains { .. } => "declare the domain in <domains> with a <domain_schedule>, or drop domain=".into(),
            DuplicateElement { .. } => "merge them into one".into(),
            DuplicateValue { .. } => "pick a value not used yet".into(),
            IoportOverlap { .. } => "give each PD its own ports; a port range can be granted once".into(),
            IoMapOverlap { .. } => "move this iomap to a free iovaddr range".into(),
            IoMapLargePage { .. } => "use page_size=\"0x1000\" for regions a device maps".into(),
            NotBuildable { .. } => "remove it for this target, or run only `paravisor check` on this file".into(),
            GuestNameClashesWithPd { .. } => "rename the virtual machine (or run check --microkit)".into(),
        }
    }

    /// The audit rule this error comes from, if it is one of ours and not Microkit's.
    pub fn policy(&self) -> Option<Policy> {
        use ErrorKind::*;
        match self {
            InvalidName { attribute, .. }
                if attribute.starts_with("setvar") || attribute == "symbol" =>
            {
                Some(Policy::Identifiers)
            }
            InvalidName { .. } => Some(Policy::PlainNames),
            // Microkit refuses exactly "w"; "", "x" and "wx" it maps.
            PermsWithoutRead { value } if value != "w" => Some(Policy::ReadableMaps),
            GuestRegionExecutableByPd { .. } => Some(Policy::GuestCodeNotExecutable),
            VmPriorityAboveVmm { .. } => Some(Policy::GuestPriorityWithinVmm),
            GuestNameClashesWithPd { .. } => Some(Policy::DistinctGuestNames),
            SelfChannel { .. } => Some(Policy::NoSelfChannels),
            ZeroSize => Some(Policy::NonEmptyRegions),
            _ => None,
        }
    }
}

/// One error: where, what, how to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; line 0 means the error is about the file as a whole (e.g. unreadable).
    pub span: Span,
    pub kind: ErrorKind,
    pub hint: String,
}

impl Diagnostic {
    pub fn new(file: &Path, span: Span, kind: ErrorKind) -> Self {
        let hint = kind.hint();
        Diagnostic {
            file: file.to_path_buf(),
            span,
            kind,
            hint,
        }
    }
}

impl Diagnostic {
    /// "error", "error[policy plain-names]" or, once demoted, "warning[policy ...]".
    fn label(&self, warning: bool) -> String {
        let level = if warning { "warning" } else { "error" };
        match self.kind.policy() {
            Some(p) => format!("{level}[policy {p}]"),
            None => level.to_string(),
        }
    }

    /// The same diagnostic worded as a warning (for `check --microkit`).
    pub fn as_warning(&self) -> String {
        self.render(true)
    }

    fn render(&self, warning: bool) -> String {
        let label = self.label(warning);
        let head = if self.span.line == 0 {
            format!("{}: {label}: {}", self.file.display(), self.kind)
        } else {
            format!(
                "{}:{}: {label}: {}",
                self.file.display(),
                self.span,
                self.kind
            )
        };
        format!("{head}\n  hint: {}", self.hint)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// All errors found in one description, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Source order, so a reader fixes them top to bottom; stable for equal spans.
    pub(crate) fn sort(&mut self) {
        self.0.sort_by_key(|d| d.span);
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
impl std::error::Error for Diagnostic {}
