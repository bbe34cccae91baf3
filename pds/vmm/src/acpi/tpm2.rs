//! The TPM2 table (TCG ACPI Specification, 8.3: revision 4 with the log area
//! fields) and the `MSFT0101` device Linux's tpm_crb binds to.
//!
//! ```text
//! Device (TPM0) {
//!     Name (_HID, "MSFT0101")
//!     Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xFED40000, 0x6000) })
//! }
//! ```
//! tpm_crb (drivers/char/tpm/tpm_crb.c) reads the start method from the TPM2
//! table, maps `_CRS`'s memory and expects the control area right after the
//! locality registers at its start; with start method 7 (CRB) it writes START.

use alloc::vec::Vec;

use super::aml::{buffer, device, name, string};
use super::sdt::table;
use crate::devices::tpm_crb::TpmDevice;

const REVISION: u8 = 4;
/// Start method 7: Command Response Buffer, START register.
pub const START_METHOD_CRB: u32 = 7;
/// Platform class 0: client.
const PLATFORM_CLIENT: u16 = 0;
/// Memory32Fixed descriptor (tag 0x86, 9 bytes of body), read-write.
const MEMORY32_FIXED: [u8; 4] = [0x86, 0x09, 0x00, 0x01];
const END_TAG: [u8; 2] = [0x79, 0];
pub const TPM2_LEN: usize = 76;

pub(crate) fn tpm2(tpm: &TpmDevice) -> Vec<u8> {
    let mut body = Vec::with_capacity(TPM2_LEN - super::sdt::HEADER_LEN);
    body.extend_from_slice(&PLATFORM_CLIENT.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&tpm.control_area().to_le_bytes());
    body.extend_from_slice(&START_METHOD_CRB.to_le_bytes());
    body.extend_from_slice(&[0; 12]);
    let (lasa, laml) = tpm.log.unwrap_or((0, 0));
    body.extend_from_slice(&laml.to_le_bytes());
    body.extend_from_slice(&lasa.to_le_bytes());
    table(b"TPM2", REVISION, &body)
}

pub(crate) fn device_aml(tpm: &TpmDevice) -> Vec<u8> {
    let (base, len) = tpm.window();
    let mut crs = MEMORY32_FIXED.to_vec();
    crs.extend_from_slice(&base.to_le_bytes());
    crs.extend_from_slice(&len.to_le_bytes());
    crs.extend_from_slice(&END_TAG);
    let mut body = name(b"_HID", &string("MSFT0101"));
    body.extend(name(b"_CRS", &buffer(&crs)));
    device(b"TPM0", &body)
}
