//! The PCI capability list of a modern virtio function (virtio 1.x, 4.1.4):
//! vendor-specific capabilities (id 0x09) each naming a BAR window.

use crate::bus::Bus;
use crate::Error;

const STATUS: u8 = 0x06;
const STATUS_CAP_LIST: u32 = 1 << 4;
const CAP_POINTER: u8 = 0x34;
const VENDOR_CAP: u32 = 0x09;
/// A list longer than config space can hold loops.
const MAX_CAPS: usize = 48;

const COMMON: u32 = 1;
const NOTIFY: u32 = 2;
const ISR: u32 = 3;
const DEVICE: u32 = 4;

/// Common configuration is 0x38 bytes in virtio 1.x; the ISR one byte; notify
/// at least one u16; the device window's minimum is the device type's.
const MIN_LEN: [(u32, u64); 4] = [(COMMON, 0x38), (NOTIFY, 2), (ISR, 1), (DEVICE, 0)];

/// A register window: `len` bytes at `offset` of BAR `bar`, inside what is mapped.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub bar: u8,
    pub offset: u64,
    pub len: u64,
}

/// Where the device's register blocks are.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub common: Window,
    pub notify: Window,
    /// Queue `q`'s doorbell is at `notify.offset + queue_notify_off(q) * this`.
    pub notify_multiplier: u32,
    pub isr: Window,
    pub device: Window,
}

fn read8(bus: &mut impl Bus, at: u8) -> Result<u32, Error> {
    bus.config_read(at, 1)
}

fn read32(bus: &mut impl Bus, at: u8) -> Result<u32, Error> {
    bus.config_read(at, 4)
}

/// Walks the capability list and takes the first usable window of each kind
/// (as the spec tells drivers to); a kind with none is an error. The device
/// window must hold at least `device_len` bytes (what the driver reads there).
pub fn find(bus: &mut impl Bus, device_len: u64) -> Result<Layout, Error> {
    if bus.config_read(STATUS, 2)? & STATUS_CAP_LIST == 0 {
        return Err(Error::CapabilityList);
    }
    let mut found: [Option<Window>; 4] = [None; 4];
    let mut multiplier = 0;
    let mut ptr = read8(bus, CAP_POINTER)? & 0xfc;
    let mut seen = 0;
    while ptr != 0 {
        seen += 1;
        // Capabilities live after the header, and a 16-byte virtio one must fit.
        if seen > MAX_CAPS || !(0x40..=0xf0).contains(&ptr) {
            return Err(Error::CapabilityList);
        }
        let at = ptr as u8;
        let id = read8(bus, at)?;
        let next = read8(bus, at + 1)? & 0xfc;
        if id == VENDOR_CAP {
            let kind = read8(bus, at + 3)?;
            let window = Window {
                bar: read8(bus, at + 4)? as u8,
                offset: u64::from(read32(bus, at + 8)?),
                len: u64::from(read32(bus, at + 12)?),
            };
            if let Some(i) = MIN_LEN.iter().position(|&(k, _)| k == kind) {
                let min = if kind == DEVICE {
                    device_len.max(1)
                } else {
                    MIN_LEN[i].1
                };
                if found[i].is_none() && usable(bus, window, min) {
                    if kind == NOTIFY {
                        // The multiplier follows the 16-byte header; it must fit too.
                        if at > 0xe8 {
                            ptr = next;
                            continue;
                        }
                        multiplier = read32(bus, at + 16)?;
                    }
                    found[i] = Some(window);
                }
            }
        }
        ptr = next;
    }
    let need = |i: usize, name| found[i].ok_or(Error::Capability(name));
    Ok(Layout {
        common: need(0, "common")?,
        notify: need(1, "notify")?,
        notify_multiplier: multiplier,
        isr: need(2, "isr")?,
        device: need(3, "device")?,
    })
}

/// Inside a mapped BAR and at least `min` bytes long.
fn usable(bus: &impl Bus, w: Window, min: u64) -> bool {
    w.bar < 6
        && w.len >= min
        && w.offset
            .checked_add(w.len)
            .is_some_and(|end| end <= bus.bar_size(w.bar))
}
