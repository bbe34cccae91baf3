//! Private vs shared classification of guest-physical addresses.
//!
//! Every platform splits the guest's physical address space in two by one address
//! bit `B`: addresses below `2^B` are private (encrypted / TD-private) and the same
//! RAM seen at `2^B + x` is the host-visible ("shared") twin of private page `x`.
//! - SNP in vTOM mode: `B` is the virtual top of memory (VMSA `VIRTUAL_TOM`).
//! - TDX: `B` is the GPAW shared bit (47 with GPAW 48, 51 with GPAW 52).
//! - svm (software isolation): there is no hardware boundary, so the VMM presents
//!   one like an SNP vTOM at `2^36` (what pds/vmm's CPUID isolation leaf reports),
//!   letting the guest and every PD use a single code path. Nothing stops the host
//!   reading "private" pages there; the class says what the guest was promised.
//!
//! Only RAM is classified: a GPA whose private twin is not in a RAM range, or that
//! has bits at or above `B + 1`, is refused rather than guessed about.

/// Size of the pages every platform changes visibility and permissions in.
pub const PAGE_SIZE: u64 = 4096;

/// A guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gpa(pub u64);

impl Gpa {
    /// The 4 KiB frame number.
    pub const fn gfn(self) -> u64 {
        self.0 / PAGE_SIZE
    }

    /// Whether the address is 4 KiB aligned.
    pub const fn is_page_aligned(self) -> bool {
        self.0.is_multiple_of(PAGE_SIZE)
    }
}

/// Which side of the isolation boundary a GPA is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GpaClass {
    /// Only the guest (and the paravisor) can read it.
    Private,
    /// The host can read and write it.
    Shared,
}

/// The platform and where its boundary bit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// Software isolation on nested SVM; boundary at [`SVM_VTOM_BIT`].
    Svm,
    /// SEV-SNP with the vTOM feature; `vtom_bit` is log2 of the VIRTUAL_TOM value.
    Snp { vtom_bit: u8 },
    /// TDX; `shared_bit` is the GPA shared bit (GPAW - 1).
    Tdx { shared_bit: u8 },
}

/// The vTOM the VMM presents for software isolation (pds/vmm reports 36 in the
/// Hyper-V isolation-configuration CPUID leaf).
pub const SVM_VTOM_BIT: u8 = 36;

/// The TDX shared bit of a TD launched with GPAW 48 (TD_PARAMS.CONFIG_FLAGS.GPAW
/// clear), the width the IGVM files this tree builds ask for: a property of the
/// TD's launch parameters, not of a system description.
pub const TDX_GPAW48_SHARED_BIT: u8 = 47;

impl PartitionKind {
    /// The boundary bit `B`.
    pub const fn boundary_bit(self) -> u8 {
        match self {
            PartitionKind::Svm => SVM_VTOM_BIT,
            PartitionKind::Snp { vtom_bit } => vtom_bit,
            PartitionKind::Tdx { shared_bit } => shared_bit,
        }
    }
}

/// A half-open range of guest RAM in private (alias-free) addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    pub start: u64,
    pub end: u64,
}

/// A page-aligned, non-empty run of pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRange {
    pub start: Gpa,
    pub pages: u64,
}

impl PageRange {
    /// A range of `pages` pages from `start`; refused when unaligned, empty or wrapping.
    pub fn new(start: Gpa, pages: u64) -> Result<Self, GpaError> {
        if !start.is_page_aligned() {
            return Err(GpaError::Unaligned(start));
        }
        if pages == 0 {
            return Err(GpaError::Empty);
        }
        pages
            .checked_mul(PAGE_SIZE)
            .and_then(|len| start.0.checked_add(len))
            .ok_or(GpaError::OutOfRange(start))?;
        Ok(Self { start, pages })
    }

    /// The pages' addresses in order.
    pub fn iter(self) -> impl Iterator<Item = Gpa> {
        (0..self.pages).map(move |i| Gpa(self.start.0 + i * PAGE_SIZE))
    }
}

/// Why a GPA has no class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpaError {
    /// Bits at or above `B + 1` are set, or the private twin is not guest RAM.
    OutOfRange(Gpa),
    /// A page operation was given an unaligned address.
    Unaligned(Gpa),
    /// A page range of zero pages.
    Empty,
    /// The partition description itself is unusable.
    BadPartition,
}

/// The guest partition as the paravisor sees it (from system.xml).
#[derive(Clone, Copy, Debug)]
pub struct Partition<'a> {
    kind: PartitionKind,
    ram: &'a [RamRange],
}

impl<'a> Partition<'a> {
    /// Refuses a boundary bit outside 12..=62 (pages must not straddle it, and the
    /// shared alias must fit in 64 bits), and RAM ranges that are empty, unaligned,
    /// overlapping or reaching the boundary (RAM must have a private address).
    pub fn new(kind: PartitionKind, ram: &'a [RamRange]) -> Result<Self, GpaError> {
        let bit = kind.boundary_bit();
        if !(12..=62).contains(&bit) {
            return Err(GpaError::BadPartition);
        }
        let boundary = 1u64 << bit;
        for (i, r) in ram.iter().enumerate() {
            let aligned = r.start.is_multiple_of(PAGE_SIZE) && r.end.is_multiple_of(PAGE_SIZE);
            if !aligned || r.start >= r.end || r.end > boundary {
                return Err(GpaError::BadPartition);
            }
            let overlaps = ram[..i].iter().any(|o| r.start < o.end && o.start < r.end);
            if overlaps {
                return Err(GpaError::BadPartition);
            }
        }
        Ok(Self { kind, ram })
    }

    pub const fn kind(&self) -> PartitionKind {
        self.kind
    }

    /// `2^B`: the first shared address, and the distance between twins.
    pub const fn boundary(&self) -> u64 {
        1u64 << self.kind.boundary_bit()
    }

    fn is_ram(&self, private: u64) -> bool {
        self.ram
            .iter()
            .any(|r| r.start <= private && private < r.end)
    }

    /// The class of `gpa`, or why it has none.
    pub fn classify(&self, gpa: Gpa) -> Result<GpaClass, GpaError> {
        let b = self.boundary();
        if gpa.0 >= b << 1 {
            return Err(GpaError::OutOfRange(gpa));
        }
        let (class, private) = if gpa.0 & b != 0 {
            (GpaClass::Shared, gpa.0 & !b)
        } else {
            (GpaClass::Private, gpa.0)
        };
        if self.is_ram(private) {
            Ok(class)
        } else {
            Err(GpaError::OutOfRange(gpa))
        }
    }

    /// The same RAM seen with class `class`.
    pub fn alias(&self, gpa: Gpa, class: GpaClass) -> Result<Gpa, GpaError> {
        self.classify(gpa)?;
        let b = self.boundary();
        Ok(Gpa(match class {
            GpaClass::Private => gpa.0 & !b,
            GpaClass::Shared => gpa.0 | b,
        }))
    }

    /// Whether every page of `range` is RAM of class `class` (a range never
    /// straddles the boundary: both ends are checked and the RAM between them is
    /// walked range by range, so this is cheap for any length).
    pub fn range_is(&self, range: PageRange, class: GpaClass) -> Result<bool, GpaError> {
        let last = Gpa(range.start.0 + (range.pages - 1) * PAGE_SIZE);
        let first_class = self.classify(range.start)?;
        let last_class = self.classify(last)?;
        if first_class != class || last_class != class {
            return Ok(false);
        }
        let b = self.boundary();
        let mut cursor = range.start.0 & !b;
        let end = (last.0 & !b) + PAGE_SIZE;
        while cursor < end {
            match self
                .ram
                .iter()
                .find(|r| r.start <= cursor && cursor < r.end)
            {
                Some(r) => cursor = r.end,
                None => return Err(GpaError::OutOfRange(Gpa(cursor | (range.start.0 & b)))),
            }
        }
        Ok(true)
    }
}

/// Whether the host may be handed `gpa..gpa+len` in a partition whose host-visible
/// range starts at `shared_boundary` (`None`: the guest is not isolated and the host
/// sees everything). For a PD that knows only the boundary, not the RAM layout
/// (hvcall-pd relaying a guest's buffers): the same rule as [`Partition::classify`]
/// for addresses below `2 * boundary`, and a range that wraps is never visible.
pub fn host_visible(shared_boundary: Option<u64>, gpa: u64, len: u64) -> bool {
    if gpa.checked_add(len).is_none() {
        return false;
    }
    shared_boundary.is_none_or(|boundary| gpa >= boundary)
}

#[cfg(test)]
mod tests;
