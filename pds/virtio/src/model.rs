//! A model modern virtio PCI function laid out as QEMU's `virtio-*-pci,
//! disable-legacy=on` (vendor capabilities at 0x40.., all windows in a 16 KiB
//! BAR 4): the transport side (config space, common registers, rings in the
//! shared memory, [`Lie`]s that make it misbehave the ways a hostile or broken
//! device could), which a device type's model ([`Device`]) completes. For tests
//! and fuzzing only.

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
/// (common, ISR, device, notify) window offsets in the BAR.
const ISR_AT: u64 = 0x1000;
pub const DEVICE_AT: u64 = 0x2000;
const NOTIFY_AT: u64 = 0x3000;
const QUEUES: usize = 2;

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
    /// Every queue's maximum size.
    QueueSize(u16),
    /// The common window reaches past the BAR.
    CommonOutsideBar,
    /// The capability list points back at itself.
    CapLoop,
    /// The used index jumps far ahead of what was posted.
    UsedOverrun,
    /// The used element names this descriptor instead of the chain's head.
    UsedId(u32),
    /// The used element claims this many bytes written.
    UsedLen(u32),
    /// The device leaves its own result unwritten (blk: the status byte).
    NoStatus,
    /// Completes each chain twice.
    Twice,
}

/// Each bring-up lie and the error every driver on the transport must give.
pub const BRING_UP_LIES: [(Lie, Error); 7] = [
    (Lie::NoVersion1, Error::NotModern),
    (Lie::RejectFeatures, Error::FeaturesRejected),
    (Lie::NeverResets, Error::ResetTimeout),
    (Lie::QueueSize(0), Error::QueueSize(0)),
    (Lie::QueueSize(100), Error::QueueSize(100)),
    (Lie::CommonOutsideBar, Error::Capability("common")),
    (Lie::CapLoop, Error::CapabilityList),
];

/// A device type's part of the model: its config window and what it does
/// when the driver rings a queue's doorbell.
pub trait Device {
    fn transport(&mut self) -> &mut Transport;
    /// A read at `offset` of the device-specific window.
    fn device_read(&mut self, offset: u64) -> u64;
    /// The driver rang queue `queue`'s doorbell.
    fn kick(&mut self, queue: u16);
}

/// The transport side of the model: registers and the shared memory.
#[derive(Debug)]
pub struct Transport {
    pub config: [u8; 256],
    pub lie: Lie,
    pub notifies: u32,
    features: u64,
    mem: Rc<RefCell<Vec<u8>>>,
    regs: Regs,
}

#[derive(Debug, Default)]
struct Regs {
    dfselect: u32,
    gfselect: u32,
    driver_features: [u32; 2],
    status: u8,
    select: u16,
    queues: [QueueRegs; QUEUES],
    isr: u8,
}

#[derive(Debug, Default, Clone, Copy)]
struct QueueRegs {
    size: u16,
    enable: u16,
    /// desc, driver, device
    areas: [u64; 3],
    last_avail: u16,
    used_idx: u16,
}

/// One descriptor of a chain as the device reads it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub device_writes: bool,
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
#[derive(Debug)]
pub struct ModelBus<D>(pub Rc<RefCell<D>>);

impl<D> Clone for ModelBus<D> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Transport {
    /// A function with PCI device id `id`, offering `features` (VERSION_1 added
    /// unless the lie says otherwise), a DMA region of `dma_len` bytes.
    pub fn new(id: u16, features: u64, dma_len: usize, lie: Lie) -> (Self, MemDma) {
        let mem = Rc::new(RefCell::new(vec![0u8; dma_len]));
        let mut config = [0u8; 256];
        config[0..2].copy_from_slice(&0x1af4u16.to_le_bytes());
        config[2..4].copy_from_slice(&id.to_le_bytes());
        config[6] = 0x10;
        config[0x34] = 0x40;
        // (kind, offset in BAR 4), 0x1000 bytes each; 16-byte capabilities,
        // notify's 20 with its multiplier.
        let caps: [(u8, u64); 4] = [(1, 0), (3, ISR_AT), (4, DEVICE_AT), (2, NOTIFY_AT)];
        let mut at = 0x40usize;
        for (k, &(kind, offset)) in caps.iter().enumerate() {
            let cap_len = if kind == 2 { 20 } else { 16 };
            let next = if k + 1 < caps.len() { at + cap_len } else { 0 };
            config[at] = 0x09;
            config[at + 1] = next as u8;
            config[at + 2] = cap_len as u8;
            config[at + 3] = kind;
            config[at + 4] = BAR;
            config[at + 8..at + 12].copy_from_slice(&(offset as u32).to_le_bytes());
            config[at + 12..at + 16].copy_from_slice(&0x1000u32.to_le_bytes());
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
        let features = if lie == Lie::NoVersion1 {
            features & !crate::F_VERSION_1
        } else {
            features | crate::F_VERSION_1
        };
        let model = Self {
            config,
            lie,
            notifies: 0,
            features,
            mem: mem.clone(),
            regs: Regs::default(),
        };
        (model, MemDma(mem))
    }

    /// The features the driver wrote.
    pub fn driver_features(&self) -> u64 {
        let [lo, hi] = self.regs.driver_features;
        (u64::from(hi) << 32) | u64::from(lo)
    }

    fn queue(&mut self) -> Option<&mut QueueRegs> {
        self.regs.queues.get_mut(usize::from(self.regs.select))
    }

    fn common_read(&mut self, off: u64) -> u64 {
        let lie = self.lie;
        let r = &self.regs;
        let features = (self.features >> (32 * u64::from(r.dfselect.min(1)))) & 0xffff_ffff;
        match off {
            0x04 => features,
            0x12 => QUEUES as u64,
            0x14 if lie == Lie::NeverResets => 1,
            0x14 => u64::from(r.status),
            0x18 => match (lie, self.queue()) {
                (Lie::QueueSize(n), _) => u64::from(n),
                (_, Some(q)) if q.size != 0 => u64::from(q.size),
                (_, Some(_)) => 256,
                (_, None) => 0,
            },
            0x1c => self.queue().map_or(0, |q| u64::from(q.enable)),
            0x1e => u64::from(self.regs.select) + 3,
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
            0x16 => r.select = value as u16,
            0x18 => self.queue().into_iter().for_each(|q| q.size = value as u16),
            0x1c => self
                .queue()
                .into_iter()
                .for_each(|q| q.enable = value as u16),
            0x20..=0x37 => {
                let i = ((off - 0x20) / 8) as usize;
                let shift = if off % 8 == 4 { 32 } else { 0 };
                let keep = if shift == 0 {
                    !0xffff_ffffu64
                } else {
                    0xffff_ffff
                };
                if let Some(q) = self.queue() {
                    q.areas[i] = (q.areas[i] & keep) | ((value & 0xffff_ffff) << shift);
                }
            }
            _ => {}
        }
    }

    fn mem_at(&self, addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(addr.checked_sub(DMA_BASE)?).ok()?;
        (off.checked_add(len)? <= self.mem.borrow().len()).then_some(off)
    }

    /// `len` bytes at bus address `addr` (zeros where it is not DMA memory).
    pub fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        match self.mem_at(addr, len) {
            Some(o) => self.mem.borrow()[o..o + len].to_vec(),
            None => vec![0; len],
        }
    }

    /// Writes `data` at bus address `addr` if it is DMA memory.
    pub fn put(&self, addr: u64, data: &[u8]) {
        if let Some(o) = self.mem_at(addr, data.len()) {
            self.mem.borrow_mut()[o..o + data.len()].copy_from_slice(data);
        }
    }

    fn u16_at(&self, addr: u64) -> u16 {
        let b = self.bytes(addr, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    /// The head of the next chain the driver made available on `queue`.
    pub fn next_avail(&mut self, queue: u16) -> Option<u16> {
        let q = *self.regs.queues.get(usize::from(queue))?;
        let n = u64::from(q.size.max(1));
        if q.enable == 0 || self.u16_at(q.areas[1] + 2) == q.last_avail {
            return None;
        }
        let head = self.u16_at(q.areas[1] + 4 + 2 * (u64::from(q.last_avail) % n));
        self.regs.queues[usize::from(queue)].last_avail = q.last_avail.wrapping_add(1);
        Some(head)
    }

    /// Up to `max` descriptors of the chain starting at `head`.
    pub fn chain(&self, queue: u16, head: u16, max: usize) -> Vec<Desc> {
        let Some(q) = self.regs.queues.get(usize::from(queue)) else {
            return Vec::new();
        };
        let mut chain = Vec::new();
        let mut i = head;
        while chain.len() < max && i < q.size {
            let d = self.bytes(q.areas[0] + 16 * u64::from(i), 16);
            let flags = u16::from_le_bytes([d[12], d[13]]);
            chain.push(Desc {
                addr: u64::from_le_bytes(d[..8].try_into().unwrap_or_default()),
                len: u32::from_le_bytes(d[8..12].try_into().unwrap_or_default()),
                device_writes: flags & 2 != 0,
            });
            if flags & 1 == 0 {
                break;
            }
            i = u16::from_le_bytes([d[14], d[15]]);
        }
        chain
    }

    /// Publishes the chain at `head` as used with `written` bytes (as the lie
    /// has it), and raises the queue interrupt.
    pub fn complete(&mut self, queue: u16, head: u16, written: u32) {
        let times = if self.lie == Lie::Twice { 2 } else { 1 };
        for _ in 0..times {
            self.publish(queue, head, written);
        }
        self.regs.isr |= 1;
    }

    fn publish(&mut self, queue: u16, head: u16, written: u32) {
        let Some(&q) = self.regs.queues.get(usize::from(queue)) else {
            return;
        };
        let (id, len) = match self.lie {
            Lie::UsedId(id) => (id, written),
            Lie::UsedLen(len) => (u32::from(head), len),
            _ => (u32::from(head), written),
        };
        let n = u64::from(q.size.max(1));
        let slot = q.areas[2] + 4 + 8 * (u64::from(q.used_idx) % n);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&id.to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        self.put(slot, &elem);
        let step = if self.lie == Lie::UsedOverrun {
            1000
        } else {
            1
        };
        let idx = q.used_idx.wrapping_add(step);
        self.regs.queues[usize::from(queue)].used_idx = idx;
        self.put(q.areas[2] + 2, &idx.to_le_bytes());
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

impl<D: Device> Bus for ModelBus<D> {
    fn config_read(&mut self, offset: u8, width: u8) -> Result<u32, Error> {
        config_read(&self.0.borrow_mut().transport().config, offset, width)
    }

    fn config_write(&mut self, offset: u8, width: u8, value: u32) -> Result<(), Error> {
        let mut m = self.0.borrow_mut();
        let start = usize::from(offset);
        let bytes = m
            .transport()
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
            (BAR, 0..ISR_AT) => m.transport().common_read(offset),
            (BAR, ISR_AT) => u64::from(core::mem::take(&mut m.transport().regs.isr)),
            (BAR, DEVICE_AT..NOTIFY_AT) => m.device_read(offset - DEVICE_AT),
            _ => 0,
        }
    }

    fn write(&mut self, bar: u8, offset: u64, _width: u8, value: u64) {
        let mut m = self.0.borrow_mut();
        match (bar, offset) {
            (BAR, 0..ISR_AT) => m.transport().common_write(offset, value),
            (BAR, NOTIFY_AT..BAR_SIZE) => {
                m.transport().notifies += 1;
                m.kick(value as u16);
            }
            _ => {}
        }
    }
}
