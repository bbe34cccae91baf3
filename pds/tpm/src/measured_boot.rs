//! Measured boot: before the guest runs, the tpm PD starts its TPM and extends
//! PCR [`PCR`] with the image hash of every PD, in manifest order, logging each
//! in the TCG2 event log the guest reads through the TPM2 ACPI table.
//!
//! The hashes come from a measurement list (region [`MEASUREMENTS`]), which
//! `tpm-measurements` writes from `paravisor manifest`'s JSON: per PD its name
//! and `program_image.sha256`, the SHA-256 of the program image file, in the
//! manifest's order (system.xml's, parents before children). The list is read
//! bounded: the builder made it, but a corrupt one must not crash the TPM.

use alloc::string::String;
use alloc::vec::Vec;

use crate::commands;
use crate::eventlog::{EventLog, LogFull, EV_POST_CODE};

/// The PCR the paravisor's images go to: PCR 0 holds platform firmware code,
/// which the paravisor is to its guest.
pub const PCR: u32 = 0;
pub const MEASUREMENTS: &str = "measurements";
pub const EVENT_LOG: &str = "event_log";
pub const MAGIC: &[u8; 8] = b"PVMEAS01";
const NAME_BYTES: usize = 32;
const ENTRY_BYTES: usize = NAME_BYTES + 32;
/// As many PDs as a system may have.
pub const MAX_ENTRIES: u32 = 63;

/// One PD's image measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub name: String,
    pub sha256: [u8; 32],
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ListError {
    BadMagic,
    /// More entries than a system has PDs, or than the bytes hold.
    BadCount(u32),
    /// A name that is empty or not UTF-8.
    BadName(u32),
}

/// The list's bytes: magic, count (u32 LE), 4 reserved bytes, then per entry a
/// NUL-padded name of 32 bytes and the 32-byte SHA-256.
pub fn encode(list: &[Measurement]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + list.len() * ENTRY_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for m in list {
        let mut name = [0u8; NAME_BYTES];
        let n = m.name.len().min(NAME_BYTES);
        name[..n].copy_from_slice(&m.name.as_bytes()[..n]);
        out.extend_from_slice(&name);
        out.extend_from_slice(&m.sha256);
    }
    out
}

pub fn parse(bytes: &[u8]) -> Result<Vec<Measurement>, ListError> {
    if bytes.get(..8) != Some(MAGIC) {
        return Err(ListError::BadMagic);
    }
    let count = bytes
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ListError::BadMagic)?;
    let entries = bytes
        .get(16..)
        .and_then(|rest| rest.get(..(count as usize).checked_mul(ENTRY_BYTES)?))
        .filter(|_| count <= MAX_ENTRIES)
        .ok_or(ListError::BadCount(count))?;
    let mut out = Vec::with_capacity(count as usize);
    for (i, entry) in entries.chunks_exact(ENTRY_BYTES).enumerate() {
        let (name, hash) = entry.split_at(NAME_BYTES);
        let len = name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        let name = core::str::from_utf8(&name[..len])
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or(ListError::BadName(i as u32))?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(hash);
        out.push(Measurement {
            name: name.into(),
            sha256,
        });
    }
    Ok(out)
}

/// The list a granted region holds. All zero bytes is no list laid out
/// (`paravisor sim` gives fresh memory unless a region file backs it): nothing
/// to measure, so the TPM still starts, PCR 0 stays zero and the log holds
/// only its header, which replays to that. Any other bytes must be a whole
/// list; a damaged one is refused, never read as empty.
pub fn parse_region(bytes: &[u8]) -> Result<Vec<Measurement>, ListError> {
    if bytes.iter().all(|&b| b == 0) {
        return Ok(Vec::new());
    }
    parse(bytes)
}

/// A SHA-256 written as 64 hex digits (the manifest's form).
pub fn sha256_from_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    // from_str_radix alone would take a sign ("+f").
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Why measured boot did not complete; the PD does not start without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    List(ListError),
    /// The TPM refused a command (its response code).
    Tpm {
        command: &'static str,
        rc: u32,
    },
    /// The engine gave no response.
    Engine(&'static str),
    Log(LogFull),
}

/// The event log that records `list`: one EV_POST_CODE event per PD image,
/// into [`PCR`], its data the PD's name. What the PD publishes after measuring,
/// and what the image builder computes to state the PCR and log in advance.
pub fn event_log(list: &[Measurement], capacity: usize) -> Result<EventLog, LogFull> {
    let mut log = EventLog::new(capacity)?;
    for m in list {
        log.append(PCR, EV_POST_CODE, &m.sha256, m.name.as_bytes())?;
    }
    Ok(log)
}

/// Runs `run` (a command in, its response out) through Startup(CLEAR) and one
/// PCR_Extend per measurement, and returns the event log recording them.
pub fn measure(
    mut run: impl FnMut(&[u8]) -> Option<Vec<u8>>,
    list: &[Measurement],
    log_capacity: usize,
) -> Result<EventLog, BootError> {
    // Built first: a list whose log cannot fit is refused before any extend.
    let log = event_log(list, log_capacity).map_err(BootError::Log)?;
    let mut check = |command: &'static str, bytes: &[u8]| {
        let r = run(bytes).ok_or(BootError::Engine(command))?;
        let rc = r
            .get(6..10)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(BootError::Engine(command))?;
        if rc != 0 {
            return Err(BootError::Tpm { command, rc });
        }
        Ok(())
    };
    check("TPM2_Startup", &commands::startup_clear())?;
    for m in list {
        check("TPM2_PCR_Extend", &commands::pcr_extend(PCR, &m.sha256))?;
    }
    Ok(log)
}
