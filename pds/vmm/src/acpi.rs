//! The ACPI tables a stock Linux guest boots with, built at run time into one
//! byte blob for a given guest-physical base: RSDP (revision 2) → XSDT → FADT
//! (hardware-reduced, revision 6), MADT and, with a vTPM, TPM2; the FADT's
//! X_DSDT → DSDT (the VMBus device, COM1, the vTPM's `MSFT0101` and `\_S5`).
//!
//! Power-off: Linux's `acpi_power_off` on a hardware-reduced platform writes
//! [`WAKE_STATUS`] to the sleep status register, then `SLP_TYP << 2 | SLP_EN` with
//! SLP_TYP from `\_S5` to the sleep control register. The VMM traps both I/O
//! ports ([`SLEEP_CONTROL_PORT`], [`SLEEP_STATUS_PORT`]) and treats
//! [`S5_SLEEP_CONTROL`] (see [`sleep_request`]) as "power off".

mod aml;
mod dsdt;
mod fadt;
mod madt;
mod rsdp;
mod sdt;
#[cfg(test)]
mod tests;
mod tpm2;

use alloc::vec::Vec;

use crate::boot::AcpiBlob;
use crate::devices::tpm_crb::TpmDevice;

/// The FADT's SLEEP_CONTROL_REG: one byte at this I/O port.
pub const SLEEP_CONTROL_PORT: u16 = 0x404;
/// The FADT's SLEEP_STATUS_REG: one byte at this I/O port.
pub const SLEEP_STATUS_PORT: u16 = 0x405;
/// SLP_TYP for S5 in `\_S5`.
pub const S5_SLEEP_TYPE: u8 = 5;
/// SLP_EN in the sleep control register (ACPI 6.5 4.8.3.7).
pub const SLEEP_ENABLE: u8 = 1 << 5;
/// WAK_STS in the sleep status register; the guest writes it to clear it.
pub const WAKE_STATUS: u8 = 1 << 7;
/// The byte Linux writes to [`SLEEP_CONTROL_PORT`] to power off.
pub const S5_SLEEP_CONTROL: u8 = (S5_SLEEP_TYPE << 2) | SLEEP_ENABLE;
/// x2APIC ids 0..vcpus stay below 255, where every Linux version takes them.
pub const MAX_VCPUS: u32 = 255;

/// A byte the guest wrote to [`SLEEP_CONTROL_PORT`]: the sleep type it enters,
/// if SLP_EN is set (bits 2-4 are SLP_TYP; the rest is reserved).
pub fn sleep_request(value: u8) -> Option<u8> {
    (value & SLEEP_ENABLE != 0).then_some((value >> 2) & 0x7)
}

/// Why the tables cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcpiError {
    #[error("a guest needs at least one vCPU")]
    NoVcpus,
    #[error("{0} vCPUs (at most {MAX_VCPUS})")]
    TooManyVcpus(u32),
    /// The base must be 16-byte aligned: the RSDP is the blob's first bytes, and a
    /// legacy RSDP scan looks only on 16-byte boundaries.
    #[error("ACPI base {0:#x} is not 16-byte aligned")]
    BaseUnaligned(u64),
    /// The blob would run past the end of the address space.
    #[error("ACPI tables at {0:#x} overflow")]
    AddressOverflow(u64),
}

/// The tables, laid out for `base_gpa`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiTables {
    pub base_gpa: u64,
    pub bytes: Vec<u8>,
    /// `base_gpa`: the RSDP comes first.
    pub rsdp_gpa: u64,
    /// (signature, offset in `bytes`, length) of each SDT, in build order.
    tables: Vec<([u8; 4], usize, usize)>,
    /// The firmware memory the tables point at (the vTPM's event log).
    nvs: Option<(u64, u64)>,
}

const fn align16(v: usize) -> usize {
    (v + 15) & !15
}

impl AcpiTables {
    /// Builds the tables for `vcpus` vCPUs (x2APIC ids 0..vcpus) at `base_gpa`.
    pub fn build(base_gpa: u64, vcpus: u32) -> Result<Self, AcpiError> {
        Self::build_for(base_gpa, vcpus, None)
    }

    /// The same, with the vTPM described when there is one.
    pub fn build_for(
        base_gpa: u64,
        vcpus: u32,
        tpm: Option<&TpmDevice>,
    ) -> Result<Self, AcpiError> {
        if vcpus == 0 {
            return Err(AcpiError::NoVcpus);
        }
        if vcpus > MAX_VCPUS {
            return Err(AcpiError::TooManyVcpus(vcpus));
        }
        if !base_gpa.is_multiple_of(16) {
            return Err(AcpiError::BaseUnaligned(base_gpa));
        }
        let dsdt = dsdt::dsdt(tpm);
        let madt = madt::madt(vcpus);
        let tpm2 = tpm.map(tpm2::tpm2);
        let xsdt_at = align16(rsdp::RSDP_LEN);
        let xsdt_len = sdt::HEADER_LEN + (2 + usize::from(tpm2.is_some())) * 8;
        let fadt_at = align16(xsdt_at + xsdt_len);
        let madt_at = align16(fadt_at + fadt::FADT_LEN);
        let dsdt_at = align16(madt_at + madt.len());
        let tpm2_at = align16(dsdt_at + dsdt.len());
        let total = match &tpm2 {
            Some(t) => tpm2_at + t.len(),
            None => dsdt_at + dsdt.len(),
        };
        base_gpa
            .checked_add(total as u64)
            .ok_or(AcpiError::AddressOverflow(base_gpa))?;
        let gpa = |off: usize| base_gpa + off as u64;

        let fadt = fadt::fadt(gpa(dsdt_at));
        let mut entries = alloc::vec![gpa(fadt_at), gpa(madt_at)];
        if tpm2.is_some() {
            entries.push(gpa(tpm2_at));
        }
        let xsdt = rsdp::xsdt(&entries);
        let rsdp = rsdp::rsdp(gpa(xsdt_at));
        let mut bytes = alloc::vec![0u8; total];
        let mut tables = Vec::with_capacity(5);
        bytes[..rsdp.len()].copy_from_slice(&rsdp);
        let tpm2 = tpm2.map(|t| (*b"TPM2", tpm2_at, t));
        for (sig, at, t) in [
            (*b"XSDT", xsdt_at, xsdt),
            (*b"FACP", fadt_at, fadt),
            (*b"APIC", madt_at, madt),
            (*b"DSDT", dsdt_at, dsdt),
        ]
        .into_iter()
        .chain(tpm2)
        {
            bytes[at..at + t.len()].copy_from_slice(&t);
            tables.push((sig, at, t.len()));
        }
        Ok(Self {
            base_gpa,
            bytes,
            rsdp_gpa: base_gpa,
            tables,
            nvs: tpm
                .and_then(|t| t.log)
                .map(|(gpa, len)| (gpa, u64::from(len))),
        })
    }

    /// The SDT with `signature` ("XSDT", "FACP", "APIC", "DSDT", "TPM2").
    pub fn table(&self, signature: &[u8; 4]) -> Option<&[u8]> {
        let &(_, at, len) = self.tables.iter().find(|(s, _, _)| s == signature)?;
        self.bytes.get(at..at + len)
    }

    /// The RSDP's 36 bytes.
    pub fn rsdp(&self) -> &[u8] {
        &self.bytes[..rsdp::RSDP_LEN]
    }

    /// For [`crate::boot::plan`].
    pub fn blob(&self) -> AcpiBlob<'_> {
        AcpiBlob {
            gpa: self.base_gpa,
            bytes: &self.bytes,
            rsdp_gpa: self.rsdp_gpa,
            nvs: self.nvs,
        }
    }
}
