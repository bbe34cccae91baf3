//! A model virtio-blk function laid out as QEMU's `virtio-blk-pci,disable-legacy=on`
//! (vendor capabilities at 0x40.., all windows in a 16 KiB BAR 4), serving a disk
//! in memory, with [`Lie`]s that make it misbehave the ways a hostile or broken
//! device could. For tests and fuzzing only.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::bus::{Bus, Dma};
use crate::Error;

pub const BAR: u8 = 4;
pub const BAR_SIZE: u64 = 0x4000;
/// Where the model's DMA region appears on the bus.
pub const DMA_BASE: u64 = 0x1000_0000;
const NOTIFY_MULTIPLIER: u32 = 4;

/// A way for the device to misbehave.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Lie {
    None,
    /// Offers only legacy features.
    NoVersion1,
    /// Clears FEATURES_OK when the driver sets it.
    RejectFeatures,
    /// The status never reads 0 after a reset.
    NeverResets,
    /// Queue 0's maximum size.
    QueueSize(u16),
    /// The common window reaches past the BAR.
    CommonOutsideBar,
    /// The capability list points back at itself.
    CapLoop,
    /// The used index jumps far ahead of what was posted.
    UsedOverrun,
    /// The used element names a descriptor that is not a request head.
    UsedId(u32),
    /// The used element claims this many bytes written.
    UsedLen(u32),
    /// The status byte is left as it was.
    NoStatus,
    /// Completes each request twice.
    Twice,
}

/// The device's side: registers, rings, disk.
#[derive(Debug)]
pub struct Model {
    pub config: [u8; 256],
    pub disk: Vec<u8>,
    pub lie: Lie,
    pub flushes: u32,
    pub notifies: u32,
    mem: Rc<RefCell<Vec<u8>>>,
    regs: Regs,
}

#[derive(Debug, Default)]
struct Regs {
    dfselect: u32,
    gfselect: u32,
    driver_features: [u32; 2],
    status: u8,
    queue_size: u16,
    queue_enable: u16,
    queue: [u64; 3],
    last_avail: u16,
    used_idx: u16,
    isr: u8,
}

/// The driver's view of the DMA region the model shares.
#[derive(Debug)]
pub struct MemDma(Rc<RefCell<Vec<u8>>>);

impl Dma for MemDma {
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
    fn bus_addr(&self) -> u64 {
        DMA_BASE
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        let mem = self.0.borrow();
        if let Some(src) = mem.get(offset..offset.saturating_add(out.len())) {
            out.copy_from_slice(src);
        }
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        let mut mem = self.0.borrow_mut();
        if let Some(dst) = mem.get_mut(offset..offset.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
    }
}

/// The driver's [`Bus`]: the model behind a shared handle, so a test can look
/// at (and change) the device while the driver owns its bus.
#[derive(Clone, Debug)]
pub struct ModelBus(pub Rc<RefCell<Model>>);

impl Model {
    /// A device with a `sectors`-sector disk and a DMA region of `dma_len` bytes.
    pub fn device(sectors: u64, dma_len: usize, lie: Lie) -> (ModelBus, MemDma) {
        let mem = Rc::new(RefCell::new(vec![0u8; dma_len]));
        let mut config = [0u8; 256];
        config[0..4].copy_from_slice(&0x1042_1af4u32.to_le_bytes());
        config[6] = 0x10;
        config[0x34] = 0x40;
        // (kind, offset in BAR 4, length), 16 bytes each; notify gets 20.
        let caps: [(u8, u32, u32); 4] = [
            (1, 0, 0x1000),
            (3, 0x1000, 0x1000),
            (4, 0x2000, 0x1000),
            (2, 0x3000, 0x1000),
        ];
        let mut at = 0x40usize;
        for (k, &(kind, offset, len)) in caps.iter().enumerate() {
            let cap_len = if kind == 2 { 20 } else { 16 };
            let next = if k + 1 < caps.len() { at + cap_len } else { 0 };
            config[at] = 0x09;
            config[at + 1] = next as u8;
            config[at + 2] = cap_len as u8;
            config[at + 3] = kind;
            config[at + 4] = BAR;
            config[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
            config[at + 12..at + 16].copy_from_slice(&len.to_le_bytes());
            if kind == 2 {
                config[at + 16..at + 20].copy_from_slice(&NOTIFY_MULTIPLIER.to_le_bytes());
            }
            at += cap_len;
        }
        match lie {
            Lie::CommonOutsideBar => {
                config[0x40 + 12..0x40 + 16].copy_from_slice(&0x5000u32.to_le_bytes())
            }
            Lie::CapLoop => config[0x41] = 0x40,
            _ => {}
        }
        let model = Model {
            config,
            disk: vec![0; (sectors * crate::SECTOR) as usize],
            lie,
            flushes: 0,
            notifies: 0,
            mem: mem.clone(),
            regs: Regs::default(),
        };
        (ModelBus(Rc::new(RefCell::new(model))), MemDma(mem))
    }

    fn features(&self) -> u64 {
        let version_1 = if self.lie == Lie::NoVersion1 {
            0
        } else {
            1 << 32
        };
        // RO off; FLUSH (9), BLK_SIZE (6), SEG_MAX (2) on, as QEMU offers.
        version_1 | (1 << 9) | (1 << 6) | (1 << 2)
    }

    fn common_read(&self, off: u64) -> u64 {
        let r = &self.regs;
        match off {
            0x04 => (self.features() >> (32 * u64::from(r.dfselect.min(1)))) & 0xffff_ffff,
            0x12 => 1,
            0x14 if self.lie == Lie::NeverResets => 1,
            0x14 => u64::from(r.status),
            0x18 => match self.lie {
                Lie::QueueSize(n) => u64::from(n),
                _ if r.queue_size != 0 => u64::from(r.queue_size),
                _ => 256,
            },
            0x1c => u64::from(r.queue_enable),
            0x1e => 3,
            _ => 0,
        }
    }

    fn common_write(&mut self, off: u64, value: u64) {
        let r = &mut self.regs;
        match off {
            0x00 => r.dfselect = value as u32,
            0x08 => r.gfselect = value as u32,
            0x0c => r.driver_features[usize::from(r.gfselect != 0)] = value as u32,
            0x14 => {
                r.status = value as u8;
                if value == 0 {
                    *r = Regs::default();
                } else if value & 8 != 0 && self.lie == Lie::RejectFeatures {
                    r.status &= !8;
                }
            }
            0x18 => r.queue_size = value as u16,
            0x1c => r.queue_enable = value as u16,
            0x20..=0x37 => {
                let i = ((off - 0x20) / 8) as usize;
                let shift = if off % 8 == 4 { 32 } else { 0 };
                let keep = if shift == 0 {
                    !0xffff_ffffu64
                } else {
                    0xffff_ffff
                };
                r.queue[i] = (r.queue[i] & keep) | ((value & 0xffff_ffff) << shift);
            }
            _ => {}
        }
    }

    fn mem_at(&self, addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(addr.checked_sub(DMA_BASE)?).ok()?;
        (off.checked_add(len)? <= self.mem.borrow().len()).then_some(off)
    }

    fn mem_u16(&self, addr: u64) -> u16 {
        let mut b = [0; 2];
        if let Some(o) = self.mem_at(addr, 2) {
            b.copy_from_slice(&self.mem.borrow()[o..o + 2]);
        }
        u16::from_le_bytes(b)
    }

    fn mem_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        match self.mem_at(addr, len) {
            Some(o) => self.mem.borrow()[o..o + len].to_vec(),
            None => vec![0; len],
        }
    }

    fn put(&self, addr: u64, data: &[u8]) {
        if let Some(o) = self.mem_at(addr, data.len()) {
            self.mem.borrow_mut()[o..o + data.len()].copy_from_slice(data);
        }
    }

    /// Serves every request the driver made available, as QEMU does on a kick.
    fn kick(&mut self) {
        self.notifies += 1;
        let [desc, avail, used] = self.regs.queue;
        let n = u64::from(self.regs.queue_size.max(1));
        let avail_idx = self.mem_u16(avail + 2);
        while self.regs.last_avail != avail_idx {
            let head = self.mem_u16(avail + 4 + 2 * (u64::from(self.regs.last_avail) % n));
            self.regs.last_avail = self.regs.last_avail.wrapping_add(1);
            let written = self.serve(desc, head, n);
            let times = if self.lie == Lie::Twice { 2 } else { 1 };
            for _ in 0..times {
                self.complete(used, n, head, written);
            }
        }
        self.regs.isr |= 1;
    }

    fn complete(&mut self, used: u64, n: u64, head: u16, written: u32) {
        let (id, len) = match self.lie {
            Lie::UsedId(id) => (id, written),
            Lie::UsedLen(len) => (u32::from(head), len),
            _ => (u32::from(head), written),
        };
        let slot = used + 4 + 8 * (u64::from(self.regs.used_idx) % n);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&id.to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        self.put(slot, &elem);
        let step = if self.lie == Lie::UsedOverrun {
            1000
        } else {
            1
        };
        self.regs.used_idx = self.regs.used_idx.wrapping_add(step);
        self.put(used + 2, &self.regs.used_idx.to_le_bytes());
    }

    /// One request chain; the bytes written to device-writable buffers.
    fn serve(&mut self, desc: u64, head: u16, n: u64) -> u32 {
        let mut chain = Vec::new();
        let mut i = u64::from(head);
        while chain.len() < 3 && i < n {
            let d = self.mem_bytes(desc + 16 * i, 16);
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            chain.push((addr, len));
            if flags & 1 == 0 {
                break;
            }
            i = u64::from(u16::from_le_bytes([d[14], d[15]]));
        }
        let Some(&(hdr, _)) = chain.first() else {
            return 0;
        };
        let header = self.mem_bytes(hdr, 16);
        let kind = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
        let Some(&(status_at, _)) = chain.last() else {
            return 0;
        };
        let mut written = 1;
        let mut status = 0u8;
        match (kind, chain.get(1).filter(|_| chain.len() == 3)) {
            (0 | 1, Some(&(addr, len))) => {
                let start = (sector * crate::SECTOR) as usize;
                match self.disk.get(start..start + len as usize) {
                    Some(_) if kind == 0 => {
                        let data = self.disk[start..start + len as usize].to_vec();
                        self.put(addr, &data);
                        written += len;
                    }
                    Some(_) => {
                        let data = self.mem_bytes(addr, len as usize);
                        self.disk[start..start + len as usize].copy_from_slice(&data);
                    }
                    None => status = 1,
                }
            }
            (4, None) => self.flushes += 1,
            _ => status = 2,
        }
        if self.lie != Lie::NoStatus {
            self.put(status_at, &[status]);
        }
        written
    }
}

/// A little-endian config-space read of `width` bytes from `space`.
pub fn config_read(space: &[u8], offset: u8, width: u8) -> Result<u32, Error> {
    let start = usize::from(offset);
    let bytes = space
        .get(start..start + usize::from(width))
        .ok_or(Error::Config)?;
    Ok(bytes.iter().rev().fold(0, |v, &b| (v << 8) | u32::from(b)))
}

impl Bus for ModelBus {
    fn config_read(&mut self, offset: u8, width: u8) -> Result<u32, Error> {
        config_read(&self.0.borrow().config, offset, width)
    }

    fn config_write(&mut self, offset: u8, width: u8, value: u32) -> Result<(), Error> {
        let mut m = self.0.borrow_mut();
        let start = usize::from(offset);
        let bytes = m
            .config
            .get_mut(start..start + usize::from(width))
            .ok_or(Error::Config)?;
        bytes.copy_from_slice(&value.to_le_bytes()[..usize::from(width)]);
        Ok(())
    }

    fn bar_size(&self, bar: u8) -> u64 {
        if bar == BAR {
            BAR_SIZE
        } else {
            0
        }
    }

    fn read(&mut self, bar: u8, offset: u64, _width: u8) -> u64 {
        let mut m = self.0.borrow_mut();
        match (bar, offset) {
            (BAR, 0..=0xfff) => m.common_read(offset),
            (BAR, 0x1000) => u64::from(core::mem::take(&mut m.regs.isr)),
            (BAR, 0x2000) => (m.disk.len() as u64 / crate::SECTOR) & 0xffff_ffff,
            (BAR, 0x2004) => (m.disk.len() as u64 / crate::SECTOR) >> 32,
            _ => 0,
        }
    }

    fn write(&mut self, bar: u8, offset: u64, _width: u8, value: u64) {
        let mut m = self.0.borrow_mut();
        match (bar, offset) {
            (BAR, 0..=0xfff) => m.common_write(offset, value),
            (BAR, 0x3000..=0x3fff) => m.kick(),
            _ => {}
        }
    }
}
