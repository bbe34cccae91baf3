#![allow(clippy::unwrap_used)]

use std::vec::Vec;

use proptest::prelude::*;

use crate::model::{Lie, MemDma, Model, ModelBus};
use crate::*;

/// The model's memory: the driver's 16 KiB for the queue, then the data window.
const DMA_LEN: usize = 64 * 1024;
const QUEUE_LEN: usize = 16 * 1024;
const DATA: DataWindow = DataWindow {
    bus_addr: crate::model::DMA_BASE + QUEUE_LEN as u64,
    len: (DMA_LEN - QUEUE_LEN) as u64,
};

fn driver(lie: Lie) -> Result<(Driver<ModelBus, MemDma>, ModelBus), Error> {
    let (bus, dma) = Model::device(2048, DMA_LEN, lie);
    Driver::init(bus.clone(), dma, DATA).map(|d| (d, bus))
}

/// Submits `req` and polls it to completion.
fn run(d: &mut Driver<ModelBus, MemDma>, req: Request) -> Result<Status, Error> {
    let slot = d.submit(req)?;
    let c = d.poll()?.ok_or(Error::Busy)?;
    assert_eq!(c.slot, slot);
    Ok(c.status)
}

fn io(kind: RequestKind, sector: u64, len: u32) -> Request {
    Request {
        kind,
        sector,
        data_offset: 0,
        len,
    }
}

#[test]
fn brings_the_device_up_and_reads_back_what_it_wrote() {
    let (mut d, bus) = driver(Lie::None).unwrap();
    assert_eq!(
        d.geometry(),
        Geometry {
            sectors: 2048,
            read_only: false,
            flush: true
        }
    );
    // memory decoding and bus mastering on; DRIVER_OK reached
    assert_eq!(bus.0.borrow().transport.config[4] & 6, 6);
    let data = QUEUE_LEN;
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    d.dma_mut().write(data, &pattern);
    assert_eq!(
        run(&mut d, io(RequestKind::Write, 100, 4096)),
        Ok(Status::Ok)
    );
    assert_eq!(
        &bus.0.borrow().disk[100 * 512..100 * 512 + 4096],
        &pattern[..]
    );
    d.dma_mut().write(data, &[0; 4096]);
    assert_eq!(
        run(&mut d, io(RequestKind::Read, 100, 4096)),
        Ok(Status::Ok)
    );
    let mut back = std::vec![0u8; 4096];
    d.dma().read(data, &mut back);
    assert_eq!(back, pattern);
    assert_eq!(run(&mut d, io(RequestKind::Flush, 0, 0)), Ok(Status::Ok));
    assert_eq!(bus.0.borrow().flushes, 1);
    assert_eq!(d.ack_interrupt(), Ok(1));
    assert_eq!(d.in_flight(), 0);
}

#[test]
fn requests_outside_the_disk_or_the_data_area_are_refused_before_the_device() {
    let (mut d, bus) = driver(Lie::None).unwrap();
    let area = DATA.len as usize;
    let cases = [
        io(RequestKind::Read, 2047, 1024),
        io(RequestKind::Read, u64::MAX, 512),
        io(RequestKind::Write, 0, 0),
        io(RequestKind::Write, 0, 100),
        Request {
            data_offset: area,
            ..io(RequestKind::Read, 0, 512)
        },
        Request {
            data_offset: usize::MAX,
            ..io(RequestKind::Read, 0, 512)
        },
    ];
    for req in cases {
        assert_eq!(d.submit(req), Err(Error::OutOfRange), "{req:?}");
    }
    assert_eq!(bus.0.borrow().transport.notifies, 0);
}

#[test]
fn a_full_queue_is_busy_until_completions_are_taken() {
    let (mut d, _bus) = driver(Lie::None).unwrap();
    let mut slots = Vec::new();
    while let Ok(slot) = d.submit(io(RequestKind::Read, 0, 512)) {
        slots.push(slot);
    }
    assert_eq!(d.submit(io(RequestKind::Read, 0, 512)), Err(Error::Busy));
    assert_eq!(slots.len(), 128 / 3);
    let mut done = Vec::new();
    while let Some(c) = d.poll().unwrap() {
        done.push(c.slot);
    }
    assert_eq!(done, slots);
    assert!(d.submit(io(RequestKind::Read, 0, 512)).is_ok());
}

#[test]
fn devices_that_lie_get_errors_not_panics() {
    for (lie, want) in virtio::model::BRING_UP_LIES {
        assert_eq!(driver(lie).err(), Some(want), "{lie:?}");
    }
    let completion = [
        (Lie::UsedOverrun, Err(Error::UsedOverrun(1000))),
        (Lie::UsedId(1), Err(Error::UsedId(1))),
        (Lie::UsedId(3), Err(Error::UsedId(3))),
        (Lie::UsedId(u32::MAX), Err(Error::UsedId(u32::MAX))),
        (Lie::UsedLen(514), Err(Error::UsedLen(514))),
        (Lie::NoStatus, Ok(Status::Other(0xff))),
    ];
    for (lie, want) in completion {
        let (mut d, _) = driver(lie).unwrap();
        assert_eq!(run(&mut d, io(RequestKind::Read, 0, 512)), want, "{lie:?}");
    }
    // A request completed twice: the second completion names a free slot.
    let (mut d, _) = driver(Lie::Twice).unwrap();
    assert_eq!(run(&mut d, io(RequestKind::Read, 0, 512)), Ok(Status::Ok));
    assert_eq!(d.poll(), Err(Error::UsedId(0)));
}

#[test]
fn a_dma_region_too_small_for_the_queue_is_refused() {
    let (bus, dma) = Model::device(8, 2048, Lie::None);
    assert_eq!(Driver::init(bus, dma, DATA).err(), Some(Error::DmaTooSmall));
    let (bus, dma) = Model::device(8, DMA_LEN, Lie::None);
    let empty = DataWindow { len: 0, ..DATA };
    assert_eq!(Driver::init(bus, dma, empty).err(), Some(Error::OutOfRange));
}

proptest! {
    /// Whatever the device writes into its used ring, the driver answers with a
    /// completion or an error and never reads outside the queue.
    #[test]
    fn any_used_ring_is_survived(idx in any::<u16>(), elems in proptest::collection::vec((any::<u32>(), any::<u32>()), 1..8)) {
        let (mut d, _) = driver(Lie::None).unwrap();
        let slot = d.submit(io(RequestKind::Read, 0, 512)).unwrap();
        let _ = d.poll();
        let _ = d.submit(io(RequestKind::Write, 1, 512));
        let (_, _, used, _) = Split::new(128, 0, SLOT_DESCRIPTORS).areas();
        for (k, (id, len)) in elems.iter().enumerate() {
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&id.to_le_bytes());
            e[4..].copy_from_slice(&len.to_le_bytes());
            d.dma_mut().write(used + 4 + 8 * ((k + 1) % 128), &e);
        }
        d.dma_mut().write(used + 2, &idx.to_le_bytes());
        // Only the write (slot 0 again) is in flight: at most one completion, for it.
        let mut completed = 0;
        for _ in 0..elems.len() {
            match d.poll() {
                Ok(Some(c)) => {
                    prop_assert_eq!(c.slot, slot);
                    completed += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
        prop_assert!(completed <= 1);
        prop_assert_eq!(d.in_flight(), 1 - completed);
    }
}

#[test]
fn the_server_answers_calls_and_fails_a_lying_device_for_good() {
    use crate::service::{label, Reply, Server, FLAG_FLUSH};
    let (d, bus) = driver(Lie::None).unwrap();
    let mut server = Server::new(d, 1000);
    assert_eq!(
        server.serve(label::GEOMETRY, &[]),
        (Reply::Ok, [2048, FLAG_FLUSH], 2)
    );
    let pattern = [0x5au8; 1024];
    server.driver().dma_mut().write(QUEUE_LEN + 512, &pattern);
    assert_eq!(server.serve(label::WRITE, &[10, 512, 1024]).0, Reply::Ok);
    assert_eq!(&bus.0.borrow().disk[10 * 512..12 * 512], &pattern[..]);
    assert_eq!(server.serve(label::READ, &[10, 0, 1024]).0, Reply::Ok);
    assert_eq!(server.serve(label::FLUSH, &[]).0, Reply::Ok);
    assert_eq!(bus.0.borrow().flushes, 1);
    // Refused before the device: past the disk, past the window, malformed.
    for (l, mrs) in [
        (label::READ, &[2047u64, 0, 1024][..]),
        (label::READ, &[0, DATA.len, 512][..]),
        (label::WRITE, &[0, u64::MAX, 512][..]),
        (label::READ, &[0, 0][..]),
    ] {
        assert_eq!(server.serve(l, mrs).0, Reply::BadRequest, "{mrs:?}");
    }
    // A device that completes a request twice is failed, and stays failed.
    let (d, _) = driver(Lie::Twice).unwrap();
    let mut server = Server::new(d, 1000);
    assert_eq!(server.serve(label::READ, &[0, 0, 512]).0, Reply::Ok);
    assert_eq!(
        server.serve(label::READ, &[0, 0, 512]).0,
        Reply::DeviceFailed
    );
    assert_eq!(server.serve(label::GEOMETRY, &[]).0, Reply::DeviceFailed);
    // One that never writes the status byte is failed too.
    let (d, _) = driver(Lie::NoStatus).unwrap();
    let mut server = Server::new(d, 1000);
    assert_eq!(server.serve(label::FLUSH, &[]).0, Reply::DeviceFailed);
}
