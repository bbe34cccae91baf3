//! The CRB register model: what the guest reads and writes in the locality pages
//! at [`crate::api::CRB_BASE`], and when it asks the TPM to run a command.
//!
//! The TPM here is synchronous: a write of START hands the command to the engine
//! (the caller acts on [`Effect::Execute`]) and [`Crb::complete`] runs before the
//! guest's next access, so the guest never sees START set for long and tpmIdle
//! and cmdReady take effect at once, as on a TPM with no latency.
//!
//! Only locality 0 is implemented (CapLocality clear in the interface id, as the
//! PTP allows); the pages of localities 1-4 exist in the address map but any
//! access to them is [`AccessError::Locality`]. Write semantics follow the PTP
//! and where it leaves room, QEMU's tpm-crb (which Linux's tpm_crb is tested
//! against): cmdReady and goIdle are honoured without an assigned locality,
//! because Linux writes cmdReady while probing before it requests one.

use crate::regs::{self, ctrl_req, ctrl_sts, interface_id, loc_ctrl, loc_state, loc_sts};

/// Bytes of one locality's page.
pub const PAGE_SIZE: u64 = 0x1000;
/// Localities the address map has room for (0..=4).
pub const LOCALITIES: u8 = 5;
/// Localities this interface implements.
pub const IMPLEMENTED_LOCALITIES: u8 = 1;
/// PCI-style vendor id the interface id reports (Microsoft's, as Hyper-V's vTPM).
pub const VENDOR_ID: u16 = 0x1414;
pub const DEVICE_ID: u16 = 0x0001;
pub const REVISION_ID: u8 = 1;
/// Interrupt enable bits the PTP defines (global, and four event enables).
const INT_ENABLE_MASK: u32 = 0x8000_000f;

/// Where the command/response buffer is in guest-physical memory and how big it
/// is; the register model only reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BufferLayout {
    pub gpa: u64,
    pub size: u32,
}

/// Why an access was refused. The register file is unchanged; a read gets
/// all-ones from the caller (the value of a floating bus), a write is dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Not 1, 2, 4 or 8 bytes.
    #[error("access size is not 1, 2, 4 or 8 bytes")]
    Size,
    /// Not naturally aligned, or past the end of the page.
    #[error("access is not naturally aligned inside the page")]
    Alignment,
    /// Outside the register block of the page (offset 0x80 and up).
    #[error("offset is outside the CRB register block")]
    Offset,
    /// A locality page this interface does not implement.
    #[error("locality not implemented (locality 0 only)")]
    Locality,
    /// A write to a read-only register.
    #[error("register is read-only")]
    ReadOnly,
    /// CANCEL or START from a locality that is not the active one.
    #[error("locality is not the active locality")]
    NotActive,
}

/// What the caller must do after a write.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// START was set: run the command in the buffer for `locality`, then call
    /// [`Crb::complete`]. `cancelled` says CANCEL was already set: the TPM answers
    /// TPM_RC_CANCELED without running it.
    Execute {
        locality: u8,
        cancelled: bool,
    },
}

/// Counters for the PD's log and tests.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub commands: u64,
    pub refused: u64,
}

/// The CRB interface state.
#[derive(Clone, Debug)]
pub struct Crb {
    buffer: BufferLayout,
    active: Option<u8>,
    seized: bool,
    idle: bool,
    fatal: bool,
    start: bool,
    cancel: bool,
    int_enable: u32,
    stats: Stats,
}

/// A checked access: locality, offset in the page, size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub locality: u8,
    pub offset: u64,
    pub size: u8,
}

impl Access {
    /// Checks an access at `offset` from the base of locality 0's page.
    pub fn new(offset: u64, size: u64) -> Result<Self, AccessError> {
        let size = match size {
            1 | 2 | 4 | 8 => size as u8,
            _ => return Err(AccessError::Size),
        };
        let locality = offset / PAGE_SIZE;
        if locality >= u64::from(LOCALITIES) {
            return Err(AccessError::Offset);
        }
        let offset = offset % PAGE_SIZE;
        if !offset.is_multiple_of(u64::from(size)) {
            return Err(AccessError::Alignment);
        }
        if locality >= u64::from(IMPLEMENTED_LOCALITIES) {
            return Err(AccessError::Locality);
        }
        if offset + u64::from(size) > regs::REGS_END {
            return Err(AccessError::Offset);
        }
        Ok(Self {
            locality: locality as u8,
            offset,
            size,
        })
    }
}

impl Crb {
    /// The reset state: idle, no locality assigned.
    pub fn new(buffer: BufferLayout) -> Self {
        Self {
            buffer,
            active: None,
            seized: false,
            idle: true,
            fatal: false,
            start: false,
            cancel: false,
            int_enable: 0,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn active_locality(&self) -> Option<u8> {
        self.active
    }

    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Whether the TPM reports a fatal error (tpmSts) until reset.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// Whether a command is running (START set, not yet completed).
    pub fn is_started(&self) -> bool {
        self.start
    }

    /// The 32-bit register at `reg` (dword-aligned, below REGS_END) of `locality`.
    fn dword(&self, locality: u8, reg: u64) -> u32 {
        let id = self.interface_id();
        match reg {
            regs::LOC_STATE => {
                let mut v = loc_state::TPM_REG_VALID_STS | loc_state::TPM_ESTABLISHED;
                if let Some(l) = self.active {
                    v |= loc_state::LOC_ASSIGNED
                        | (u32::from(l) << loc_state::ACTIVE_LOCALITY_SHIFT);
                }
                v
            }
            regs::LOC_STS => {
                let mut v = 0;
                if self.active == Some(locality) {
                    v |= loc_sts::GRANTED;
                }
                if self.seized {
                    v |= loc_sts::BEEN_SEIZED;
                }
                v
            }
            regs::INTERFACE_ID => id as u32,
            r if r == regs::INTERFACE_ID + 4 => (id >> 32) as u32,
            regs::CTRL_STS => {
                (if self.fatal { ctrl_sts::FATAL } else { 0 })
                    | (if self.idle { ctrl_sts::IDLE } else { 0 })
            }
            regs::CTRL_CANCEL => u32::from(self.cancel),
            regs::CTRL_START => u32::from(self.start),
            regs::INT_ENABLE => self.int_enable,
            regs::CTRL_CMD_SIZE | regs::CTRL_RSP_SIZE => self.buffer.size,
            regs::CTRL_CMD_LADDR | regs::CTRL_RSP_ADDR => self.buffer.gpa as u32,
            regs::CTRL_CMD_HADDR => (self.buffer.gpa >> 32) as u32,
            r if r == regs::CTRL_RSP_ADDR + 4 => (self.buffer.gpa >> 32) as u32,
            // LOC_CTRL and CTRL_REQ act at once and read zero; CTRL_EXT, INT_STS
            // and the reserved words read zero.
            _ => 0,
        }
    }

    fn interface_id(&self) -> u64 {
        interface_id::TYPE_CRB
            | interface_id::VERSION_CRB
            | interface_id::XFER_64
            | interface_id::CAP_CRB
            | interface_id::SELECTOR_CRB
            | interface_id::SEL_LOCK
            | (u64::from(REVISION_ID) << interface_id::RID_SHIFT)
            | (u64::from(VENDOR_ID) << interface_id::VID_SHIFT)
            | (u64::from(DEVICE_ID) << interface_id::DID_SHIFT)
    }

    /// The register block of `locality`'s page as the guest reads it
    /// (little-endian), for a platform that lets the guest read it directly.
    pub fn image(&self, locality: u8) -> [u8; regs::REGS_END as usize] {
        let mut out = [0u8; regs::REGS_END as usize];
        for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&self.dword(locality, i as u64 * 4).to_le_bytes());
        }
        out
    }

    /// A guest read.
    pub fn read(&mut self, access: Access) -> u64 {
        let image = self.image(access.locality);
        let start = access.offset as usize;
        let mut bytes = [0u8; 8];
        // `Access::new` keeps offset + size inside the block.
        if let (Some(dst), Some(src)) = (
            bytes.get_mut(..usize::from(access.size)),
            image.get(start..start + usize::from(access.size)),
        ) {
            dst.copy_from_slice(src);
        }
        u64::from_le_bytes(bytes)
    }

    /// A guest write of the low `access.size` bytes of `value`.
    pub fn write(&mut self, access: Access, value: u64) -> Result<Effect, AccessError> {
        let result = self.write_inner(access, value);
        if result.is_err() {
            self.stats.refused += 1;
        }
        result
    }

    fn write_inner(&mut self, access: Access, value: u64) -> Result<Effect, AccessError> {
        let (reg, locality) = (access.offset & !3, access.locality);
        match access.size {
            // The only 64-bit registers are read-only, so an 8-byte write is two
            // dword writes, both checked before either takes effect.
            8 => {
                self.check_dword(locality, reg)?;
                self.check_dword(locality, reg + 4)?;
                let low = self.write_dword(locality, reg, value as u32)?;
                let high = self.write_dword(locality, reg + 4, (value >> 32) as u32)?;
                Ok(if low == Effect::None { high } else { low })
            }
            4 => self.write_dword(locality, reg, value as u32),
            size => {
                let shift = (access.offset & 3) * 8;
                let mask = ((1u64 << (u32::from(size) * 8)) - 1) << shift;
                let old = u64::from(self.dword(locality, reg));
                let merged = (old & !mask) | ((value << shift) & mask);
                self.write_dword(locality, reg, merged as u32)
            }
        }
    }

    /// Whether a write to the dword `reg` would be taken.
    fn check_dword(&self, locality: u8, reg: u64) -> Result<(), AccessError> {
        match reg {
            regs::LOC_CTRL | regs::CTRL_REQ | regs::INT_ENABLE | regs::INT_STS => Ok(()),
            regs::CTRL_CANCEL | regs::CTRL_START if self.active == Some(locality) => Ok(()),
            regs::CTRL_CANCEL | regs::CTRL_START => Err(AccessError::NotActive),
            _ => Err(AccessError::ReadOnly),
        }
    }

    fn write_dword(&mut self, locality: u8, reg: u64, value: u32) -> Result<Effect, AccessError> {
        self.check_dword(locality, reg)?;
        let active = self.active == Some(locality);
        match reg {
            regs::LOC_CTRL => {
                if value & loc_ctrl::REQUEST_ACCESS != 0 && self.active.is_none() {
                    self.active = Some(locality);
                }
                if value & loc_ctrl::RELINQUISH != 0 && active {
                    self.active = None;
                }
                // Seize needs a higher locality and resetEstablishment locality 3
                // or 4; neither exists here, so both are no-ops, as the PTP says
                // for localities without the right.
                Ok(Effect::None)
            }
            regs::CTRL_REQ => {
                if value & ctrl_req::CMD_READY != 0 {
                    self.idle = false;
                }
                if value & ctrl_req::GO_IDLE != 0 && !self.start {
                    self.idle = true;
                }
                Ok(Effect::None)
            }
            regs::CTRL_CANCEL => {
                self.cancel = value & regs::INVOKE != 0;
                Ok(Effect::None)
            }
            regs::CTRL_START => {
                // Writing 0 has no effect; a second START while one runs neither.
                if value & regs::INVOKE == 0 || self.start {
                    return Ok(Effect::None);
                }
                self.start = true;
                self.idle = false;
                self.stats.commands += 1;
                Ok(Effect::Execute {
                    locality,
                    cancelled: self.cancel,
                })
            }
            regs::INT_ENABLE => {
                self.int_enable = value & INT_ENABLE_MASK;
                Ok(Effect::None)
            }
            // Write-1-to-clear, and no interrupt is ever raised (the ACPI table
            // says the interface is polled).
            regs::INT_STS => Ok(Effect::None),
            _ => Err(AccessError::ReadOnly),
        }
    }

    /// The command START asked for is done; `fatal` when the engine failed in a
    /// way only a reset recovers from (tpmSts).
    pub fn complete(&mut self, fatal: bool) {
        self.start = false;
        if fatal {
            self.fatal = true;
        }
    }
}

#[cfg(test)]
mod tests;
