//! A model virtio-blk function on the shared transport model (`virtio::model`),
//! serving a disk in memory; the transport's [`Lie`]s make it misbehave. For
//! tests and fuzzing only.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use alloc::rc::Rc;
pub use virtio::model::{config_read, Lie, MemDma, DMA_BASE};
use virtio::model::{Desc, Device, Transport};

/// The driver's bus to the model.
pub type ModelBus = virtio::model::ModelBus<Model>;

/// The device's side: transport, disk.
#[derive(Debug)]
pub struct Model {
    pub transport: Transport,
    pub disk: Vec<u8>,
    pub flushes: u32,
}

impl Model {
    /// A device with a `sectors`-sector disk and a DMA region of `dma_len` bytes.
    pub fn device(sectors: u64, dma_len: usize, lie: Lie) -> (ModelBus, MemDma) {
        // FLUSH (9), BLK_SIZE (6), SEG_MAX (2) on, as QEMU offers; RO off.
        let (transport, dma) = Transport::new(0x1042, (1 << 9) | (1 << 6) | (1 << 2), dma_len, lie);
        let model = Model {
            transport,
            disk: vec![0; (sectors * crate::SECTOR) as usize],
            flushes: 0,
        };
        (virtio::model::ModelBus(Rc::new(RefCell::new(model))), dma)
    }

    /// One request chain; the bytes written to device-writable buffers.
    fn serve(&mut self, chain: &[Desc]) -> u32 {
        let t = &self.transport;
        let (Some(hdr), Some(status_at)) = (chain.first(), chain.last()) else {
            return 0;
        };
        let header = t.bytes(hdr.addr, 16);
        let kind = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
        let mut written = 1;
        let mut status = 0u8;
        match (kind, chain.get(1).filter(|_| chain.len() == 3)) {
            (0 | 1, Some(data)) => {
                let start = (sector * crate::SECTOR) as usize;
                let len = data.len as usize;
                match self.disk.get_mut(start..start + len) {
                    Some(disk) if kind == 0 => {
                        t.put(data.addr, disk);
                        written += data.len;
                    }
                    Some(disk) => disk.copy_from_slice(&t.bytes(data.addr, len)),
                    None => status = 1,
                }
            }
            (4, None) => self.flushes += 1,
            _ => status = 2,
        }
        if t.lie != Lie::NoStatus {
            t.put(status_at.addr, &[status]);
        }
        written
    }
}

impl Device for Model {
    fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    fn device_read(&mut self, offset: u64) -> u64 {
        let sectors = self.disk.len() as u64 / crate::SECTOR;
        match offset {
            0 => sectors & 0xffff_ffff,
            4 => sectors >> 32,
            _ => 0,
        }
    }

    /// Serves every request the driver made available, as QEMU does on a kick.
    fn kick(&mut self, queue: u16) {
        while let Some(head) = self.transport.next_avail(queue) {
            let chain = self.transport.chain(queue, head, 3);
            let written = self.serve(&chain);
            self.transport.complete(queue, head, written);
        }
    }
}
