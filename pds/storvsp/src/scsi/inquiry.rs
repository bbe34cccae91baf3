//! INQUIRY data: the standard page and the VPD pages sd probes (SPC-4, SBC-4).

use alloc::vec::Vec;

use super::disk::DiskConfig;

/// Peripheral device type: direct-access block device.
pub const DEVICE_TYPE_DISK: u8 = 0x00;
/// Peripheral qualifier 3 / type 0x1f: no logical unit here.
pub const NO_LUN: u8 = 0x7F;

pub const VPD_SUPPORTED_PAGES: u8 = 0x00;
pub const VPD_UNIT_SERIAL: u8 = 0x80;
pub const VPD_DEVICE_ID: u8 = 0x83;
pub const VPD_BLOCK_LIMITS: u8 = 0xB0;
pub const VPD_BLOCK_CHARACTERISTICS: u8 = 0xB1;
pub const VPD_LOGICAL_BLOCK_PROVISIONING: u8 = 0xB2;

const SUPPORTED: [u8; 6] = [
    VPD_SUPPORTED_PAGES,
    VPD_UNIT_SERIAL,
    VPD_DEVICE_ID,
    VPD_BLOCK_LIMITS,
    VPD_BLOCK_CHARACTERISTICS,
    VPD_LOGICAL_BLOCK_PROVISIONING,
];

pub const STANDARD_LEN: usize = 36;

/// Standard INQUIRY data for `peripheral` (disk, or [`NO_LUN`]).
pub fn standard(peripheral: u8, cfg: &DiskConfig) -> [u8; STANDARD_LEN] {
    let mut d = [0u8; STANDARD_LEN];
    d[0] = peripheral;
    d[2] = 0x06; // SPC-4
    d[3] = 0x10 | 0x02; // HISUP, response data format 2
    d[4] = (STANDARD_LEN - 5) as u8;
    d[7] = 0x02; // CMDQUE: the guest may queue commands
    d[8..16].copy_from_slice(&cfg.vendor);
    d[16..32].copy_from_slice(&cfg.product);
    d[32..36].copy_from_slice(&cfg.revision);
    d
}

/// What a VPD page needs to know about the disk.
#[derive(Copy, Clone, Debug)]
pub struct Limits {
    pub max_transfer_blocks: u32,
    pub unmap: bool,
    pub max_unmap_blocks: u32,
    pub max_unmap_descriptors: u32,
    pub max_write_same_blocks: u64,
    /// Logical blocks per 4 KiB (the granularity punched holes have).
    pub granularity_blocks: u16,
}

fn page(code: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + body.len());
    v.extend_from_slice(&[DEVICE_TYPE_DISK, code]);
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// The VPD page `code`, or `None` if we do not have it.
pub fn vpd(code: u8, cfg: &DiskConfig, l: &Limits) -> Option<Vec<u8>> {
    Some(match code {
        VPD_SUPPORTED_PAGES => page(code, &SUPPORTED),
        VPD_UNIT_SERIAL => page(code, &cfg.serial),
        VPD_DEVICE_ID => page(code, &device_id(cfg)),
        VPD_BLOCK_LIMITS => {
            let mut b = [0u8; 0x3C];
            b[0] = 0x01; // WSNZ: WRITE SAME with length 0 is refused
            b[2..4].copy_from_slice(&l.granularity_blocks.to_be_bytes());
            b[4..8].copy_from_slice(&l.max_transfer_blocks.to_be_bytes());
            b[8..12].copy_from_slice(&l.max_transfer_blocks.to_be_bytes());
            if l.unmap {
                b[16..20].copy_from_slice(&l.max_unmap_blocks.to_be_bytes());
                b[20..24].copy_from_slice(&l.max_unmap_descriptors.to_be_bytes());
                b[24..28].copy_from_slice(&u32::from(l.granularity_blocks).to_be_bytes());
            }
            b[32..40].copy_from_slice(&l.max_write_same_blocks.to_be_bytes());
            page(code, &b)
        }
        VPD_BLOCK_CHARACTERISTICS => {
            let mut b = [0u8; 0x3C];
            b[0..2].copy_from_slice(&1u16.to_be_bytes()); // non-rotating medium
            page(code, &b)
        }
        VPD_LOGICAL_BLOCK_PROVISIONING => {
            let mut b = [0u8; 4];
            if l.unmap {
                // LBPU, LBPWS, LBPWS10, LBPRZ=1: unmapped blocks read as zeros.
                b[1] = 0x80 | 0x40 | 0x20 | 0x04;
                b[2] = 0x02; // thin provisioned
            }
            page(code, &b)
        }
        _ => return None,
    })
}

/// Device identification: a T10 vendor-id designator (vendor + the disk id in
/// hex) and the raw disk id as a vendor-specific designator.
fn device_id(cfg: &DiskConfig) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut v = Vec::new();
    // Code set ASCII, association logical unit, type T10 vendor ID.
    v.extend_from_slice(&[0x02, 0x01, 0x00, (8 + 32) as u8]);
    v.extend_from_slice(&cfg.vendor);
    for b in cfg.disk_id {
        v.push(HEX[usize::from(b >> 4)]);
        v.push(HEX[usize::from(b & 0xf)]);
    }
    // Code set binary, type vendor specific.
    v.extend_from_slice(&[0x01, 0x00, 0x00, 16]);
    v.extend_from_slice(&cfg.disk_id);
    v
}
