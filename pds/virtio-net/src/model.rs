//! A model virtio-net function on the shared transport model
//! (`virtio::model`): frames the driver sends land in [`Model::sent`], frames
//! pushed with [`Model::deliver`] fill the receive buffers the driver posted,
//! behind the header [`Model::rx_header`] (which a test may make lie). For
//! tests and fuzzing only.

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use virtio::model::{Device, Transport};
pub use virtio::model::{Lie, MemDma, DMA_BASE};

use crate::header::{NetHeader, HEADER_LEN};

pub type ModelBus = virtio::model::ModelBus<Model>;

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

#[derive(Debug)]
pub struct Model {
    pub transport: Transport,
    /// Frames waiting for a receive buffer.
    pub wire: VecDeque<Vec<u8>>,
    /// Frames the driver transmitted, headers stripped.
    pub sent: Vec<Vec<u8>>,
    /// The header written in front of each received frame.
    pub rx_header: [u8; HEADER_LEN],
    /// Bytes the device claims it wrote beyond the frame (negative: fewer).
    pub rx_len_skew: i64,
}

impl Model {
    /// A device offering MAC (5) and STATUS (16) as QEMU's does, with a DMA
    /// region of `dma_len` bytes.
    pub fn device(dma_len: usize, lie: Lie) -> (ModelBus, MemDma) {
        let (transport, dma) = Transport::new(0x1041, (1 << 5) | (1 << 16), dma_len, lie);
        let model = Model {
            transport,
            wire: VecDeque::new(),
            sent: Vec::new(),
            rx_header: NetHeader::default().bytes(),
            rx_len_skew: 0,
        };
        (virtio::model::ModelBus(Rc::new(RefCell::new(model))), dma)
    }

    /// Queues `frame` for the driver and fills what receive buffers it can.
    pub fn deliver(&mut self, frame: &[u8]) {
        self.wire.push_back(frame.to_vec());
        self.fill_rx();
    }

    fn fill_rx(&mut self) {
        while !self.wire.is_empty() {
            let Some(head) = self.transport.next_avail(0) else {
                return;
            };
            let frame = self.wire.pop_front().unwrap_or_default();
            let Some(buf) = self.transport.chain(0, head, 1).first().copied() else {
                return;
            };
            let mut bytes = self.rx_header.to_vec();
            bytes.extend_from_slice(&frame);
            bytes.truncate(buf.len as usize);
            self.transport.put(buf.addr, &bytes);
            let written = (bytes.len() as i64 + self.rx_len_skew).clamp(0, u32::MAX.into());
            self.transport.complete(0, head, written as u32);
        }
    }

    fn drain_tx(&mut self) {
        while let Some(head) = self.transport.next_avail(1) {
            let mut bytes = Vec::new();
            for d in self.transport.chain(1, head, 4) {
                bytes.extend(self.transport.bytes(d.addr, d.len as usize));
            }
            self.sent
                .push(bytes.get(HEADER_LEN..).unwrap_or_default().to_vec());
            self.transport.complete(1, head, 0);
        }
    }
}

impl Device for Model {
    fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    fn device_read(&mut self, offset: u64) -> u64 {
        match offset {
            0..6 => u64::from(MAC[offset as usize]),
            // link up
            6 => 1,
            _ => 0,
        }
    }

    fn kick(&mut self, queue: u16) {
        match queue {
            0 => self.fill_rx(),
            1 => self.drain_tx(),
            _ => {}
        }
    }
}
