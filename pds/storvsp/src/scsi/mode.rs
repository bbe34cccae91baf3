//! MODE SENSE(6)/(10): the caching and control pages, no block descriptors.

use alloc::vec::Vec;

use super::cdb::{op, Cdb};
use super::Sense;

pub const PAGE_CACHING: u8 = 0x08;
pub const PAGE_CONTROL: u8 = 0x0A;
pub const PAGE_ALL: u8 = 0x3F;

/// Page control values (CDB byte 2 bits 7-6).
const PC_CURRENT: u8 = 0;
const PC_CHANGEABLE: u8 = 1;
const PC_DEFAULT: u8 = 2;

/// Device-specific parameter bits in the mode header.
const DSP_WRITE_PROTECT: u8 = 0x80;
const DSP_DPOFUA: u8 = 0x10;

#[derive(Copy, Clone, Debug)]
pub struct ModeState {
    pub read_only: bool,
    pub write_cache: bool,
}

fn caching_page(pc: u8, s: &ModeState) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[0] = PAGE_CACHING;
    p[1] = 0x12;
    // Nothing is changeable; current and default both report the cache.
    if pc != PC_CHANGEABLE && s.write_cache {
        p[2] = 0x04; // WCE
    }
    p
}

fn control_page(pc: u8) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0] = PAGE_CONTROL;
    p[1] = 0x0A;
    if pc != PC_CHANGEABLE {
        p[2] = 0x02; // GLTSD: no log parameters are saved; D_SENSE=0: fixed sense
        p[3] = 0x10; // QAM 1: commands may be reordered
        p[8..10].copy_from_slice(&0xFFFFu16.to_be_bytes()); // busy timeout: unlimited
    }
    p
}

/// Builds the full mode parameter data for the CDB; the caller truncates to the
/// allocation length.
pub fn mode_sense(cdb: &Cdb<'_>, s: &ModeState) -> Result<(Vec<u8>, usize), Sense> {
    let ten = cdb.opcode() == op::MODE_SENSE10;
    let pc = cdb.u8(2) >> 6;
    let page = cdb.u8(2) & 0x3f;
    let subpage = cdb.u8(3);
    let alloc = if ten {
        usize::from(cdb.u16(7))
    } else {
        usize::from(cdb.u8(4))
    };
    if pc == 3 {
        return Err(Sense::SAVING_PARAMETERS_NOT_SUPPORTED);
    }
    debug_assert!(matches!(pc, PC_CURRENT | PC_CHANGEABLE | PC_DEFAULT));
    let mut pages = Vec::new();
    match (page, subpage) {
        (PAGE_CACHING, 0) => pages.extend_from_slice(&caching_page(pc, s)),
        (PAGE_CONTROL, 0) => pages.extend_from_slice(&control_page(pc)),
        (PAGE_ALL, 0 | 0xFF) => {
            pages.extend_from_slice(&caching_page(pc, s));
            pages.extend_from_slice(&control_page(pc));
        }
        (PAGE_CACHING | PAGE_CONTROL | PAGE_ALL, _) => {
            return Err(Sense::invalid_cdb_field(3, None));
        }
        _ => return Err(Sense::invalid_cdb_field(2, Some(5))),
    }
    let mut dsp = DSP_DPOFUA;
    if s.read_only {
        dsp |= DSP_WRITE_PROTECT;
    }
    let mut out = Vec::with_capacity(8 + pages.len());
    if ten {
        let len = (6 + pages.len()) as u16; // bytes after the length field
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0, dsp, 0, 0, 0, 0]); // no block descriptors
    } else {
        out.extend_from_slice(&[(3 + pages.len()) as u8, 0, dsp, 0]);
    }
    out.extend_from_slice(&pages);
    Ok((out, alloc))
}
