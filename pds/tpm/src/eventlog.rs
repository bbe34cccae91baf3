//! The TCG2 crypto-agile event log (TCG PC Client Platform Firmware Profile,
//! 10.2): a SHA-1-format header event carrying the "Spec ID Event03" structure,
//! then TCG_PCR_EVENT2 records with one SHA-256 digest each. Little-endian.
//!
//! [`EventLog`] appends records into a fixed buffer (the log area the TPM2 ACPI
//! table points at); [`replay`] reads a log back — bounded, it is also what a
//! test or a guest-side tool runs over bytes it did not write — and recomputes
//! the PCRs.

use alloc::vec::Vec;

use crate::commands::ALG_SHA256;
use crate::measure::extend;

/// EV_NO_ACTION: the header event, not extended.
pub const EV_NO_ACTION: u32 = 0x3;
/// EV_POST_CODE: platform firmware code; used for each PD image.
pub const EV_POST_CODE: u32 = 0x1;
const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
/// TCG_PCR_EVENT2 bytes besides the event data: index, type, count, alg, digest,
/// event size.
const EVENT2_FIXED: usize = 4 + 4 + 4 + 2 + 32 + 4;

/// The log did not fit its area.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LogFull;

/// An event log under construction.
#[derive(Clone, Debug)]
pub struct EventLog {
    bytes: Vec<u8>,
    capacity: usize,
}

impl EventLog {
    /// A log of at most `capacity` bytes, starting with the Spec ID header event.
    pub fn new(capacity: usize) -> Result<Self, LogFull> {
        let mut spec = Vec::with_capacity(33);
        spec.extend_from_slice(SPEC_ID_SIGNATURE);
        spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
        spec.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintnSize 2 (64-bit)
        spec.extend_from_slice(&1u32.to_le_bytes()); // one algorithm
        spec.extend_from_slice(&ALG_SHA256.to_le_bytes());
        spec.extend_from_slice(&32u16.to_le_bytes());
        spec.push(0); // no vendor info
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&spec);
        if bytes.len() > capacity {
            return Err(LogFull);
        }
        Ok(Self { bytes, capacity })
    }

    /// Appends a TCG_PCR_EVENT2 record.
    pub fn append(
        &mut self,
        pcr: u32,
        event_type: u32,
        digest: &[u8; 32],
        data: &[u8],
    ) -> Result<(), LogFull> {
        if self.bytes.len() + EVENT2_FIXED + data.len() > self.capacity {
            return Err(LogFull);
        }
        self.bytes.extend_from_slice(&pcr.to_le_bytes());
        self.bytes.extend_from_slice(&event_type.to_le_bytes());
        self.bytes.extend_from_slice(&1u32.to_le_bytes());
        self.bytes.extend_from_slice(&ALG_SHA256.to_le_bytes());
        self.bytes.extend_from_slice(digest);
        self.bytes
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub pcr: u32,
    pub event_type: u32,
    pub sha256: [u8; 32],
    pub data: &'a [u8],
}

/// Why a log could not be read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogError {
    /// The first event is not a Spec ID Event03 header announcing SHA-256 only.
    BadHeader,
    /// A record runs past the end, or carries other than one SHA-256 digest.
    BadEvent { offset: usize },
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Reads every record of `log` (trailing zero bytes end it, as in a log area
/// larger than its log).
pub fn events(log: &[u8]) -> Result<Vec<Event<'_>>, LogError> {
    let header_size = le32(log, 28).ok_or(LogError::BadHeader)? as usize;
    let spec = log
        .get(32..32usize.saturating_add(header_size))
        .ok_or(LogError::BadHeader)?;
    if le32(log, 4) != Some(EV_NO_ACTION)
        || spec.get(..16) != Some(SPEC_ID_SIGNATURE)
        || le32(spec, 24) != Some(1)
        || le16(spec, 28) != Some(ALG_SHA256)
        || le16(spec, 30) != Some(32)
    {
        return Err(LogError::BadHeader);
    }
    let mut at = 32 + header_size;
    let mut out = Vec::new();
    while at < log.len() {
        let bad = LogError::BadEvent { offset: at };
        let (Some(pcr), Some(event_type)) = (le32(log, at), le32(log, at + 4)) else {
            // Fewer than 8 bytes left: only zero padding may remain.
            return if log[at..].iter().all(|&b| b == 0) {
                Ok(out)
            } else {
                Err(bad)
            };
        };
        if pcr == 0 && event_type == 0 {
            return if log[at..].iter().all(|&b| b == 0) {
                Ok(out)
            } else {
                Err(bad)
            };
        }
        if le32(log, at + 8) != Some(1) || le16(log, at + 12) != Some(ALG_SHA256) {
            return Err(bad);
        }
        let sha256: [u8; 32] = log
            .get(at + 14..at + 46)
            .and_then(|d| d.try_into().ok())
            .ok_or(bad)?;
        let size = le32(log, at + 46).ok_or(bad)? as usize;
        let data = log
            .get(at + EVENT2_FIXED..)
            .and_then(|rest| rest.get(..size))
            .ok_or(bad)?;
        out.push(Event {
            pcr,
            event_type,
            sha256,
            data,
        });
        at += EVENT2_FIXED + size;
    }
    Ok(out)
}

/// The SHA-256 PCRs 0..=23 the log's events produce from a reset TPM.
pub fn replay(log: &[u8]) -> Result<[[u8; 32]; 24], LogError> {
    let mut pcrs = [[0u8; 32]; 24];
    for (i, e) in events(log)?.iter().enumerate() {
        if e.event_type == EV_NO_ACTION {
            continue;
        }
        let pcr = pcrs
            .get_mut(e.pcr as usize)
            .ok_or(LogError::BadEvent { offset: i })?;
        *pcr = extend(pcr, &e.sha256);
    }
    Ok(pcrs)
}
