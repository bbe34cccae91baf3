//! virtio-blk: a device's config space and its used ring are hostile bytes.
//!
//! Byte 0 picks the mode. Capability mode serves the rest as the function's
//! config space (and byte 1 as which BARs are mapped) to the capability walk.
//! Service mode feeds the client PD's calls (label and message registers from
//! the bytes) to the driver PD's server over the honest model: a reply for each,
//! never a panic.
//! Used-ring mode brings the model device up, puts requests in flight, then
//! writes the fuzzer's bytes over the used ring (index and elements) and polls:
//! every answer must be a completion of an in-flight slot or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtio_blk::model::{self, Lie, Model, DMA_BASE};
use virtio_blk::service::{Reply, Server};
use virtio_blk::{Bus, DataWindow, Dma, Driver, Error, Request, RequestKind, Split};

struct ConfigBytes<'a> {
    config: &'a [u8],
    bars: u8,
}

impl Bus for ConfigBytes<'_> {
    fn config_read(&mut self, offset: u8, width: u8) -> Result<u32, Error> {
        model::config_read(self.config, offset, width)
    }
    fn config_write(&mut self, _: u8, _: u8, _: u32) -> Result<(), Error> {
        Ok(())
    }
    fn bar_size(&self, bar: u8) -> u64 {
        if bar < 6 && self.bars & (1 << bar) != 0 {
            0x4000
        } else {
            0
        }
    }
    fn read(&mut self, _: u8, _: u64, _: u8) -> u64 {
        0
    }
    fn write(&mut self, _: u8, _: u64, _: u8, _: u64) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 3 == 2 {
        let (bus, dma) = Model::device(64, 64 * 1024, Lie::None);
        let data = DataWindow {
            bus_addr: DMA_BASE + 0x4000,
            len: 0xc000,
        };
        let Ok(d) = Driver::init(bus, dma, data) else {
            panic!("the honest model must come up");
        };
        let mut server = Server::new(d, 16);
        let words: Vec<u64> = rest
            .chunks(8)
            .map(|c| c.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b)))
            .collect();
        for call in words.chunks(4) {
            let (label, mrs) = call.split_first().unwrap_or((&0, &[]));
            let (reply, _, n) = server.serve(*label % 6, mrs);
            assert!(n <= 2);
            assert_ne!(reply, Reply::DeviceFailed, "the honest model never fails");
        }
        return;
    }
    if mode & 1 == 0 {
        let Some((&bars, config)) = rest.split_first() else {
            return;
        };
        let mut space = [0u8; 256];
        let n = config.len().min(256);
        space[..n].copy_from_slice(&config[..n]);
        let mut bus = ConfigBytes {
            config: &space,
            bars,
        };
        if let Ok(layout) = virtio_blk::find_capabilities(&mut bus, 8) {
            for w in [layout.common, layout.notify, layout.isr, layout.device] {
                assert!(w.offset + w.len <= 0x4000 && bars & (1 << w.bar) != 0);
            }
        }
        return;
    }
    // The driver's 16 KiB of queue, then the data window, in the model's memory.
    let (bus, dma) = Model::device(64, 64 * 1024, Lie::None);
    let data = DataWindow {
        bus_addr: DMA_BASE + 0x4000,
        len: 0xc000,
    };
    let Ok(mut d) = Driver::init(bus, dma, data) else {
        panic!("the honest model must come up");
    };
    let requests = usize::from(mode >> 1) % 8;
    let mut in_flight = Vec::new();
    for k in 0..requests {
        let kind = if k % 2 == 0 {
            RequestKind::Read
        } else {
            RequestKind::Write
        };
        if let Ok(slot) = d.submit(Request {
            kind,
            sector: k as u64,
            data_offset: 512 * k,
            len: 512,
        }) {
            in_flight.push(slot);
        }
    }
    let (_, _, used, end) = Split::new(128, 0, virtio_blk::SLOT_DESCRIPTORS).areas();
    let n = rest.len().min(end - used);
    d.dma_mut().write(used, &rest[..n]);
    for _ in 0..requests + 2 {
        match d.poll() {
            Ok(Some(c)) => {
                let at = in_flight.iter().position(|&s| s == c.slot);
                assert!(at.is_some(), "completion for a slot not in flight");
                in_flight.retain(|&s| s != c.slot);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
