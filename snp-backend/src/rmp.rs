//! The reverse map table as the guest's instructions see it (APM vol. 2 §15.36.3-5).
//!
//! One entry per 4 KiB system page: whether it is assigned to the guest, whether
//! the guest validated it, the VMSA bit, the page size it was assigned with, and the
//! permission masks of VMPL1..3 (VMPL0 always has every permission). This module
//! holds the rules of PVALIDATE, RMPADJUST and the access check; the hypervisor side
//! (RMPUPDATE) is in `model`.

/// VMPL permission bits as RMPADJUST's attribute byte carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms(pub u8);

impl Perms {
    pub const READ: Perms = Perms(1 << 0);
    pub const WRITE: Perms = Perms(1 << 1);
    pub const EXEC_USER: Perms = Perms(1 << 2);
    pub const EXEC_SUPER: Perms = Perms(1 << 3);
    pub const ALL: Perms = Perms(0xf);
    pub const NONE: Perms = Perms(0);

    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
}

impl core::ops::BitOr for Perms {
    type Output = Perms;

    fn bitor(self, other: Perms) -> Perms {
        self.union(other)
    }
}

/// PVALIDATE / RMPADJUST page size operand (rCX bit 0 / rCX bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 0x1000,
            PageSize::Size2M => 0x20_0000,
        }
    }
}

/// rAX results of PVALIDATE and RMPADJUST (APM vol. 3, instruction reference).
pub mod code {
    pub const SUCCESS: u32 = 0;
    pub const FAIL_INPUT: u32 = 1;
    pub const FAIL_PERMISSION: u32 = 2;
    pub const FAIL_SIZEMISMATCH: u32 = 6;
}

/// An exception an instruction or access raises instead of returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// #GP(0): e.g. PVALIDATE outside VMPL0.
    Gp,
    /// A nested page fault taken to the hypervisor with this error code.
    Npf { error_code: u64 },
    /// #VC raised in the guest: private access to a page it has not validated.
    VcNotValidated,
}

/// #NPF error code bits the RMP checks set: the svm platform's NPF EXITINFO1.
pub use isolation::svm::npf;

/// PVALIDATE's result when it does not fault: rAX and rFLAGS.CF (CF=1 means the
/// page was already in the requested state and the RMP was not updated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvalidateResult {
    pub rax: u32,
    pub no_update: bool,
}

/// One RMP entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RmpEntry {
    pub assigned: bool,
    pub validated: bool,
    pub vmsa: bool,
    /// Assigned as part of a 2 MiB page (RMPUPDATE with the large-page size).
    pub large: bool,
    /// Permissions of VMPL1, VMPL2, VMPL3.
    pub perms: [Perms; 3],
}

impl RmpEntry {
    /// VMPL0 has every permission; the others what RMPADJUST gave them.
    pub fn perms_of(&self, vmpl: u8) -> Perms {
        match vmpl {
            0 => Perms::ALL,
            1..=3 => self.perms[usize::from(vmpl - 1)],
            _ => Perms::NONE,
        }
    }
}

/// How a memory access reaches the RMP check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    Write,
    ExecUser,
    ExecSuper,
}

impl AccessKind {
    fn needs(self) -> Perms {
        match self {
            AccessKind::Read => Perms::READ,
            AccessKind::Write => Perms::WRITE,
            AccessKind::ExecUser => Perms::EXEC_USER,
            AccessKind::ExecSuper => Perms::EXEC_SUPER,
        }
    }

    fn npf_bits(self) -> u64 {
        match self {
            AccessKind::Read => 0,
            AccessKind::Write => npf::WRITE,
            AccessKind::ExecUser => npf::FETCH | npf::USER,
            AccessKind::ExecSuper => npf::FETCH,
        }
    }
}

/// RMPADJUST's rDX: target VMPL (bits 7:0), permission mask (15:8), VMSA (16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmpAdjust {
    pub target_vmpl: u8,
    pub perms: Perms,
    pub vmsa: bool,
}

impl RmpAdjust {
    pub const fn to_rdx(self) -> u64 {
        self.target_vmpl as u64 | (self.perms.0 as u64) << 8 | (self.vmsa as u64) << 16
    }

    /// Bits of rDX that must be zero.
    pub const RESERVED: u64 = !0x1_ffff;
}

/// The RMP for `N` pages starting at frame `base_gfn` (the model's whole RAM).
#[derive(Clone, Debug)]
pub struct Rmp<const N: usize> {
    base_gfn: u64,
    entries: [RmpEntry; N],
}

impl<const N: usize> Rmp<N> {
    pub fn new(base_gfn: u64) -> Self {
        Self {
            base_gfn,
            entries: [RmpEntry::default(); N],
        }
    }

    fn index(&self, spa: u64) -> Option<usize> {
        let i = usize::try_from((spa / 0x1000).checked_sub(self.base_gfn)?).ok()?;
        (i < N).then_some(i)
    }

    pub fn entry(&self, spa: u64) -> Option<&RmpEntry> {
        self.index(spa).map(|i| &self.entries[i])
    }

    pub fn entry_mut(&mut self, spa: u64) -> Option<&mut RmpEntry> {
        self.index(spa).map(|i| &mut self.entries[i])
    }

    /// The indices of the 4 KiB entries an operation of `size` at `spa` covers.
    fn span(&self, spa: u64, size: PageSize) -> Option<core::ops::Range<usize>> {
        let first = self.index(spa)?;
        let n = usize::try_from(size.bytes() / 0x1000).ok()?;
        let end = first.checked_add(n)?;
        (end <= N).then_some(first..end)
    }

    /// PVALIDATE executed at `vmpl` (rAX = `spa`, rCX = size, rDX = validate).
    pub fn pvalidate(
        &mut self,
        vmpl: u8,
        spa: u64,
        size: PageSize,
        validate: bool,
    ) -> Result<PvalidateResult, Fault> {
        if vmpl != 0 {
            // Only VMPL0 may change the validated state.
            return Err(Fault::Gp);
        }
        let ret = |rax, no_update| Ok(PvalidateResult { rax, no_update });
        if !spa.is_multiple_of(size.bytes()) {
            return ret(code::FAIL_INPUT, false);
        }
        let Some(span) = self.span(spa, size) else {
            return ret(code::FAIL_INPUT, false);
        };
        let first = self.entries[span.start];
        if !first.assigned {
            // The hypervisor still owns the page: an RMP nested page fault.
            return Err(Fault::Npf {
                error_code: npf::RMP | npf::PRESENT | npf::WRITE,
            });
        }
        let large_op = size == PageSize::Size2M;
        if first.large != large_op {
            return ret(code::FAIL_SIZEMISMATCH, false);
        }
        if self.entries[span.clone()]
            .iter()
            .all(|e| e.validated == validate)
        {
            return ret(code::SUCCESS, true);
        }
        for e in &mut self.entries[span] {
            e.validated = validate;
        }
        ret(code::SUCCESS, false)
    }

    /// RMPADJUST executed at `vmpl` (rAX = `spa`, rCX = size, rDX = `rdx`).
    pub fn rmpadjust(
        &mut self,
        vmpl: u8,
        spa: u64,
        size: PageSize,
        rdx: u64,
    ) -> Result<u32, Fault> {
        if !spa.is_multiple_of(size.bytes()) || rdx & RmpAdjust::RESERVED != 0 {
            return Ok(code::FAIL_INPUT);
        }
        let target = (rdx & 0xff) as u8;
        let perms = Perms(((rdx >> 8) & 0xff) as u8);
        let vmsa = rdx & (1 << 16) != 0;
        if target > 3 || perms.0 & !Perms::ALL.0 != 0 {
            return Ok(code::FAIL_INPUT);
        }
        let Some(span) = self.span(spa, size) else {
            return Ok(code::FAIL_INPUT);
        };
        let first = self.entries[span.start];
        if !first.assigned {
            return Err(Fault::Npf {
                error_code: npf::RMP | npf::PRESENT | npf::WRITE,
            });
        }
        if first.large != (size == PageSize::Size2M) {
            return Ok(code::FAIL_SIZEMISMATCH);
        }
        // Only a more privileged VMPL adjusts a less privileged one, never beyond
        // its own rights; only VMPL0 makes VMSAs; and only on pages the guest
        // validated (an unvalidated page has no guest-owned contents to share).
        let own = first.perms_of(vmpl);
        if target <= vmpl || !own.contains(perms) || (vmsa && vmpl != 0) || !first.validated {
            return Ok(code::FAIL_PERMISSION);
        }
        for e in &mut self.entries[span] {
            e.perms[usize::from(target - 1)] = perms;
            e.vmsa = vmsa;
        }
        Ok(code::SUCCESS)
    }

    /// The RMP check of a guest access at `vmpl` to system page `spa`, through a
    /// private (`private` = below vTOM / C-bit set) or shared mapping.
    pub fn check_access(
        &self,
        vmpl: u8,
        spa: u64,
        private: bool,
        kind: AccessKind,
    ) -> Result<(), Fault> {
        let base = npf::PRESENT | kind.npf_bits();
        let Some(e) = self.entry(spa) else {
            return Err(Fault::Npf { error_code: base });
        };
        if !private {
            // A shared mapping must not reach guest-owned memory.
            return if e.assigned {
                Err(Fault::Npf {
                    error_code: base | npf::RMP,
                })
            } else {
                Ok(())
            };
        }
        if !e.assigned {
            return Err(Fault::Npf {
                error_code: base | npf::RMP,
            });
        }
        if !e.validated {
            return Err(Fault::VcNotValidated);
        }
        // A VMSA page is the CPU's; no VMPL writes it through a mapping.
        if e.vmsa && kind == AccessKind::Write {
            return Err(Fault::Npf {
                error_code: base | npf::RMP,
            });
        }
        if !e.perms_of(vmpl).contains(kind.needs()) {
            return Err(Fault::Npf {
                error_code: base | npf::RMP | npf::VMPL,
            });
        }
        Ok(())
    }
}

/// The paravisor runs at VMPL0, so its instructions are the model's at VMPL0.
impl<const N: usize> crate::cpu::RmpInstructions for Rmp<N> {
    fn pvalidate(
        &mut self,
        gpa: u64,
        size: PageSize,
        validate: bool,
    ) -> Result<PvalidateResult, Fault> {
        Rmp::pvalidate(self, 0, gpa, size, validate)
    }

    fn rmpadjust(&mut self, gpa: u64, size: PageSize, rdx: u64) -> Result<u32, Fault> {
        Rmp::rmpadjust(self, 0, gpa, size, rdx)
    }
}
