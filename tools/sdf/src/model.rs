//! The checked, typed form of a system description. Every element keeps the
//! [`Span`] it came from so later passes can point at the source.

use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column in the source file.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A mapping's rights: the same type a PD's `Region` carries at run time, so
/// the description and the PD spell `perms` one way.
pub use ipc::Perms;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    /// The file it was read from, for messages and for resolving program images.
    pub file: PathBuf,
    pub memory_regions: Vec<MemoryRegion>,
    /// Top-level PDs; children hang off their parent.
    pub protection_domains: Vec<ProtectionDomain>,
    pub channels: Vec<Channel>,
    /// `<io_address_space>`: a device's IOMMU view (parsed; `build` refuses it).
    pub io_address_spaces: Vec<IoAddressSpace>,
    /// `<domains>`: seL4's domain scheduler (parsed; `build` refuses it).
    pub domains: Option<Domains>,
}

impl System {
    /// Every PD, parents before their children, depth first.
    pub fn all_pds(&self) -> Vec<&ProtectionDomain> {
        fn walk<'a>(pd: &'a ProtectionDomain, out: &mut Vec<&'a ProtectionDomain>) {
            out.push(pd);
            for child in &pd.children {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        for pd in &self.protection_domains {
            walk(pd, &mut out);
        }
        out
    }

    pub fn pd(&self, name: &str) -> Option<&ProtectionDomain> {
        self.all_pds().into_iter().find(|pd| pd.name == name)
    }

    /// Every virtual machine with its VMM (the PD it belongs to), in `all_pds` order.
    pub fn virtual_machines(&self) -> Vec<(&ProtectionDomain, &VirtualMachine)> {
        self.all_pds()
            .into_iter()
            .filter_map(|pd| pd.virtual_machine.as_ref().map(|vm| (pd, vm)))
            .collect()
    }

    pub fn memory_region(&self, name: &str) -> Option<&MemoryRegion> {
        self.memory_regions.iter().find(|mr| mr.name == name)
    }

    /// The channel ends that belong to `pd`, each with the peer's end.
    pub fn channel_ends_of<'a>(
        &'a self,
        pd: &'a str,
    ) -> impl Iterator<Item = (&'a ChannelEnd, &'a ChannelEnd)> + 'a {
        self.channels.iter().filter_map(move |ch| {
            let [a, b] = &ch.ends;
            if a.pd == pd {
                Some((a, b))
            } else if b.pd == pd {
                Some((b, a))
            } else {
                None
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub name: String,
    pub size: u64,
    pub page_size: u64,
    /// Fixed physical placement (device memory, the guest RAM window); None lets the
    /// builder allocate it.
    pub phys_addr: Option<u64>,
    /// Initial contents. Without `size=`, a bootinfo region is one page and a file
    /// region is the file's length rounded up to a page, known only when the file is
    /// read at build time; `size` then holds one page as a placeholder.
    pub prefill: Option<Prefill>,
    /// `size=` was written (false only for prefilled regions).
    pub size_written: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prefill {
    /// `prefill_path=`: a file found next to the system description or on the search path.
    Path(PathBuf),
    /// `prefill_bootinfo=`: one of Microkit's boot-info blobs, e.g. `x86_acpi_rsdp`.
    BootInfo(String),
}

/// The `prefill_bootinfo` values Microkit knows.
pub const BOOTINFO_KINDS: &[&str] = &[
    "x86_vbe",
    "x86_mbmmap",
    "x86_acpi_rsdp",
    "x86_framebuffer",
    "x86_tsc_freq",
    "fdt",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectionDomain {
    pub name: String,
    /// 0..=254; higher runs first and may be called by lower ones.
    pub priority: u8,
    /// Microseconds of CPU per period.
    pub budget: u64,
    pub period: u64,
    /// A passive PD has no scheduling context of its own and runs only on calls.
    pub passive: bool,
    pub stack_size: u64,
    pub cpu: u8,
    pub program_image: ProgramImage,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub setvars: Vec<SetVar>,
    /// The `id` a parent knows this PD by; set only for children.
    pub child_id: Option<u8>,
    pub children: Vec<ProtectionDomain>,
    /// The guest this PD is the VMM of (at most one, as in Microkit).
    pub virtual_machine: Option<VirtualMachine>,
    /// `smc="true"`: ARM SMC forwarding (parsed; `build` refuses it on x86).
    pub smc: bool,
    /// `fpu=`, default true. PDs here always get FPU state, so false only saves work.
    pub fpu: bool,
    /// `debug_console="true"`: may print on the kernel console (`DEBUG_PUTS`),
    /// each line prefixed with the PD's name. Not in Microkit; default false.
    pub debug_console: bool,
    /// `debug_halt="true"`: may stop the whole machine with a status
    /// (`DEBUG_HALT`, the boot tests' verdict). Not in Microkit; default false.
    pub debug_halt: bool,
    /// `domain=`: the scheduling domain named in `<domains>`.
    pub domain: Option<String>,
    /// `setvar_id=` on a child: a parent variable set to `child_id`.
    pub setvar_id: Option<String>,
    /// `<ioport>` grants (x86 port I/O).
    pub ioports: Vec<IoPort>,
    /// `<pci_device>` grants: one PCI function each. Not in Microkit.
    pub pci_devices: Vec<PciDeviceGrant>,
    /// `<cspace>` cap maps; `cspace` is the element's position when one was written.
    pub cap_maps: Vec<CapMap>,
    pub cspace: Option<Span>,
    pub span: Span,
}

/// `<ioport id= addr= size=/>`: ports [addr, addr+size) signalled as id `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoPort {
    pub id: u8,
    pub addr: u64,
    pub size: u64,
    pub setvar_id: Option<String>,
    pub setvar_addr: Option<String>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CapKind {
    Tcb,
    Sc,
    VSpace,
}

/// `<cap_tcb|cap_sc|cap_vspace slot= pd=/>` inside `<cspace>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapMap {
    pub kind: CapKind,
    pub slot: u64,
    pub pd: String,
    pub span: Span,
}

/// A PCI bus:device.function, written in hex as Microkit does (`0:4.0`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PciDevice {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl fmt::Display for PciDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}.{:x}", self.bus, self.device, self.function)
    }
}

/// `<pci_device id= bdf= vendor= device=>` with `<bar index= vaddr= size=/>`
/// children: the PD drives this one function. The kernel finds it at boot, checks
/// its ids, maps the listed memory BARs uncached at `vaddr` (with room for `size`
/// bytes; a larger BAR stops the boot), hands its INTx line to channel `id` as an
/// irq, and answers config-space accesses on `id` for this function only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDeviceGrant {
    /// Channel id: shares the PD's channel and irq id space.
    pub id: u8,
    pub bdf: PciDevice,
    pub vendor: u16,
    pub device: u16,
    pub bars: Vec<PciBar>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciBar {
    /// 0..=5.
    pub index: u8,
    pub vaddr: u64,
    pub size: u64,
    /// The PD variable that receives `vaddr`.
    pub setvar_vaddr: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoAddressSpace {
    pub name: String,
    pub peripheral_id: PciDevice,
    pub domain_id: u64,
    pub iomaps: Vec<IoMap>,
    pub span: Span,
}

/// `<iomap mr= iovaddr= perms=/>`: perms are r and/or w only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoMap {
    pub mr: String,
    pub iovaddr: u64,
    pub perms: Perms,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domains {
    /// Declaration order; `id` None = Microkit assigns the smallest free one.
    pub domains: Vec<Domain>,
    pub schedule: Vec<ScheduleEntry>,
    pub start_index: Option<u64>,
    pub index_shift: Option<u64>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub id: Option<u64>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub domain: String,
    /// Non-zero.
    pub duration: u64,
    /// `us` or `ticks`.
    pub unit: DurationUnit,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DurationUnit {
    Us,
    Ticks,
}

/// `<virtual_machine>` inside its VMM's `<protection_domain>`. The vCPUs run on the
/// VMM's thread (seL4-style VM_ENTER), so `priority` may not exceed the VMM's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMachine {
    pub name: String,
    /// 0..=254, defaults to 0.
    pub priority: u8,
    /// Microseconds; defaults as for a PD (budget 1000, period = budget).
    pub budget: u64,
    pub period: u64,
    pub vcpus: Vec<Vcpu>,
    /// `vaddr` is the guest-physical address; `setvar_vaddr` is never set.
    pub maps: Vec<Map>,
    /// `<ioport addr= size=/>`: ports the guest reaches without exits. Not in
    /// Microkit (its `<ioport>` is a PD's); which ranges a kernel grants is its own
    /// rule (this one: `kernel_abi::image::GUEST_PORT_RANGES`, checked by build).
    pub ioports: Vec<GuestIoPort>,
    pub span: Span,
}

/// `<ioport addr= size=/>` inside a `<virtual_machine>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestIoPort {
    pub addr: u64,
    pub size: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vcpu {
    /// 0..=61: the VMM names the vCPU by it; shares the VMM's child-id space.
    pub id: u8,
    /// The physical core, as `cpu` on a PD; None = the VMM's.
    pub cpu: Option<u8>,
    /// A VMM variable set to `id`.
    pub setvar_id: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramImage {
    /// As written in system.xml; resolved against the search path by the tools.
    pub path: PathBuf,
    /// `path_for_symbols=`: an unstripped copy for debuggers; not loaded.
    pub path_for_symbols: Option<PathBuf>,
    /// Position of the `path` attribute, so "image not found" points at it.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    pub mr: String,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
    /// The PD variable that receives `vaddr`; also the name PD code asks its runtime for.
    pub setvar_vaddr: Option<String>,
    /// A PD variable set to the region's size.
    pub setvar_size: Option<String>,
    /// A PD variable set to the length of the region's prefill file.
    pub setvar_prefill_size: Option<String>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IrqTrigger {
    Level,
    Edge,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The line for `irq=`; the vector for the x86 IOAPIC and MSI forms (what
    /// Microkit compares to find an irq claimed twice).
    pub irq: u64,
    pub id: u8,
    pub trigger: IrqTrigger,
    pub source: IrqSource,
    /// A PD variable set to `id`.
    pub setvar_id: Option<String>,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IrqSource {
    /// `irq=`: an interrupt line number.
    Line,
    /// `pin=` (x86 IOAPIC): `ioapic` defaults to 0, polarity to high.
    Ioapic {
        ioapic: u64,
        pin: u64,
        polarity_low: bool,
        vector: u64,
    },
    /// `pcidev=` (x86 MSI).
    Msi {
        pcidev: PciDevice,
        handle: u64,
        vector: u64,
    },
}

/// `<setvar symbol= region_paddr=/>`: a PD variable set to a region's physical address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetVar {
    pub symbol: String,
    pub region_paddr: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub ends: [ChannelEnd; 2],
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEnd {
    pub pd: String,
    pub id: u8,
    /// This end may make protected calls to the other end.
    pub pp: bool,
    /// This end may notify the other end.
    pub notify: bool,
    /// A variable of this end's PD set to `id`.
    pub setvar_id: Option<String>,
    pub span: Span,
}
