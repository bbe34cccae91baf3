//! Bringing a modern virtio function up (virtio 1.x, 3.1.1: reset, ACKNOWLEDGE,
//! DRIVER, features, FEATURES_OK, queues, DRIVER_OK) through its common
//! configuration window, and the doorbells, ISR and device window after.

use crate::bus::{Bus, Dma};
use crate::caps::{self, Layout, Window};
use crate::queue::{Split, MAX_SIZE};
use crate::Error;

/// Common configuration registers (4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

mod status {
    pub const ACKNOWLEDGE: u64 = 1;
    pub const DRIVER: u64 = 2;
    pub const DRIVER_OK: u64 = 4;
    pub const FEATURES_OK: u64 = 8;
    pub const NEEDS_RESET: u64 = 0x40;
    pub const FAILED: u64 = 0x80;
}

pub const F_VERSION_1: u64 = 1 << 32;

const PCI_COMMAND: u8 = 0x04;
/// The device decodes its BARs and may master the bus (DMA).
const COMMAND_MEMORY_AND_MASTER: u32 = (1 << 1) | (1 << 2);
/// No MSI-X vector: queues interrupt through INTx.
const NO_VECTOR: u64 = 0xffff;
/// (register reads before we stop waiting for a reset, device-window reads
/// while the config generation keeps changing)
const PATIENCE: (u32, u32) = (1_000_000, 16);

/// A function's registers as the capability walk found them.
#[derive(Debug)]
pub struct Transport<B: Bus> {
    bus: B,
    layout: Layout,
}

/// A set-up virtqueue and where its doorbell is.
#[derive(Debug)]
pub struct Queue {
    pub split: Split,
    pub index: u16,
    notify_at: u64,
}

impl<B: Bus> Transport<B> {
    /// Finds the register windows (the device window at least `device_len`
    /// bytes) and turns on memory decoding and bus mastering.
    pub fn new(mut bus: B, device_len: u64) -> Result<Self, Error> {
        let layout = caps::find(&mut bus, device_len)?;
        let command = bus.config_read(PCI_COMMAND, 2)?;
        bus.config_write(PCI_COMMAND, 2, command | COMMAND_MEMORY_AND_MASTER)?;
        Ok(Self { bus, layout })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Resets the device and negotiates: VERSION_1 is required, the rest of
    /// `wanted` taken where offered. The features both sides agreed.
    pub fn negotiate(&mut self, wanted: u64) -> Result<u64, Error> {
        self.set_common(common::DEVICE_STATUS, 1, 0);
        let mut polls = 0;
        while self.common(common::DEVICE_STATUS, 1) != 0 {
            polls += 1;
            if polls > PATIENCE.0 {
                return Err(Error::ResetTimeout);
            }
        }
        self.add_status(status::ACKNOWLEDGE | status::DRIVER);
        let mut offered = 0;
        for half in 0..2u64 {
            self.set_common(common::DEVICE_FEATURE_SELECT, 4, half);
            offered |= self.common(common::DEVICE_FEATURE, 4) << (32 * half);
        }
        if offered & F_VERSION_1 == 0 {
            return Err(Error::NotModern);
        }
        let accepted = offered & (wanted | F_VERSION_1);
        for half in 0..2u64 {
            self.set_common(common::DRIVER_FEATURE_SELECT, 4, half);
            self.set_common(
                common::DRIVER_FEATURE,
                4,
                (accepted >> (32 * half)) & 0xffff_ffff,
            );
        }
        self.add_status(status::FEATURES_OK);
        if self.common(common::DEVICE_STATUS, 1) & status::FEATURES_OK == 0 {
            return Err(Error::FeaturesRejected);
        }
        Ok(accepted)
    }

    /// Sets queue `index` up at `base` of `dma`, at most `max` entries, in
    /// slots of `width` descriptors; the queue must end inside `dma`.
    pub fn queue(
        &mut self,
        index: u16,
        dma: &impl Dma,
        base: usize,
        max: u16,
        width: u16,
    ) -> Result<Queue, Error> {
        self.set_common(common::QUEUE_SELECT, 2, u64::from(index));
        let offered = self.common(common::QUEUE_SIZE, 2) as u16;
        // Split queue sizes are powers of two (2.7); we need room for a slot.
        if offered < width.max(1) || !offered.is_power_of_two() {
            return Err(Error::QueueSize(offered));
        }
        let size = offered.min(max.min(MAX_SIZE).max(width));
        let split = Split::new(size, base, width);
        let (desc, avail, used, end) = split.areas();
        if end > dma.len() {
            return Err(Error::DmaTooSmall);
        }
        let off = self.common(common::QUEUE_NOTIFY_OFF, 2);
        let at = off
            .checked_mul(u64::from(self.layout.notify_multiplier))
            .filter(|&at| at.saturating_add(2) <= self.layout.notify.len)
            .ok_or(Error::Capability("notify"))?;
        self.set_common(common::QUEUE_SIZE, 2, u64::from(size));
        self.set_common(common::QUEUE_MSIX_VECTOR, 2, NO_VECTOR);
        let bus_base = dma.bus_addr();
        for (reg, off) in [
            (common::QUEUE_DESC, desc),
            (common::QUEUE_DRIVER, avail),
            (common::QUEUE_DEVICE, used),
        ] {
            let addr = bus_base + off as u64;
            self.set_common(reg, 4, addr & 0xffff_ffff);
            self.set_common(reg + 4, 4, addr >> 32);
        }
        self.set_common(common::QUEUE_ENABLE, 2, 1);
        Ok(Queue {
            split,
            index,
            notify_at: self.layout.notify.offset + at,
        })
    }

    /// The device may run.
    pub fn driver_ok(&mut self) {
        self.add_status(status::DRIVER_OK);
    }

    /// Tells the device we gave up on it.
    pub fn fail(&mut self) {
        self.add_status(status::FAILED);
    }

    /// Rings `queue`'s doorbell.
    pub fn notify(&mut self, queue: &Queue) {
        let n = self.layout.notify;
        self.bus
            .write(n.bar, queue.notify_at, 2, u64::from(queue.index));
    }

    /// Reads the device window with `read` (given the bus and the window) until
    /// the config generation holds still across it.
    pub fn device_config<T>(
        &mut self,
        mut read: impl FnMut(&mut B, Window) -> T,
    ) -> Result<T, Error> {
        for _ in 0..PATIENCE.1 {
            let before = self.common(common::CONFIG_GENERATION, 1);
            let value = read(&mut self.bus, self.layout.device);
            if self.common(common::CONFIG_GENERATION, 1) == before {
                return Ok(value);
            }
        }
        Err(Error::ConfigUnstable)
    }

    /// Reads (and so clears) the ISR after an interrupt; a configuration change
    /// that says the device needs a reset is an error.
    pub fn ack_interrupt(&mut self) -> Result<u8, Error> {
        let isr = self.layout.isr;
        let v = self.bus.read(isr.bar, isr.offset, 1) as u8;
        if v & 2 != 0 && self.common(common::DEVICE_STATUS, 1) & status::NEEDS_RESET != 0 {
            return Err(Error::NeedsReset);
        }
        Ok(v)
    }

    fn add_status(&mut self, bits: u64) {
        let now = self.common(common::DEVICE_STATUS, 1);
        self.set_common(common::DEVICE_STATUS, 1, now | bits);
    }

    fn common(&mut self, reg: u64, width: u8) -> u64 {
        let w = self.layout.common;
        self.bus.read(w.bar, w.offset + reg, width)
    }

    fn set_common(&mut self, reg: u64, width: u8, value: u64) {
        let w = self.layout.common;
        self.bus.write(w.bar, w.offset + reg, width, value);
    }
}
