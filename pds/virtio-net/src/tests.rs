#![allow(clippy::unwrap_used)]

extern crate std;

use std::vec::Vec;

use proptest::prelude::*;

use crate::model::{Lie, MemDma, Model, ModelBus, MAC};
use crate::*;

fn driver(lie: Lie) -> Result<(Driver<ModelBus, MemDma>, ModelBus), Error> {
    let (bus, dma) = Model::device(DMA_LEN, lie);
    Driver::init(bus.clone(), dma).map(|d| (d, bus))
}

fn frame(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[test]
fn frames_cross_both_ways_and_receive_buffers_come_back() {
    let (mut d, bus) = driver(Lie::None).unwrap();
    assert_eq!(d.mac(), Some(MAC));
    // memory decoding and bus mastering on; MAC agreed, nothing else
    assert_eq!(bus.0.borrow().transport.config[4] & 6, 6);
    assert_eq!(
        bus.0.borrow().transport.driver_features(),
        virtio::F_VERSION_1 | (1 << 5)
    );
    let sizes = [14, 60, 1514, MAX_FRAME];
    for (k, &n) in sizes.iter().enumerate() {
        assert_eq!(d.transmit(&frame(n, k as u8)), Ok(true));
    }
    let sent = bus.0.borrow().sent.clone();
    assert_eq!(sent.len(), sizes.len());
    for (k, &n) in sizes.iter().enumerate() {
        assert_eq!(sent[k], frame(n, k as u8));
    }
    // Three times the queue: buffers must be handed back as frames are taken.
    let mut out = [0u8; MAX_FRAME];
    for k in 0..3 * usize::from(QUEUE_SIZE) {
        let f = frame(60 + k, k as u8);
        bus.0.borrow_mut().deliver(&f);
        assert_eq!(d.receive(&mut out), Ok(Some(f.len())), "frame {k}");
        assert_eq!(&out[..f.len()], &f[..]);
    }
    assert_eq!(d.receive(&mut out), Ok(None));
    // Each transmit frees what went before; the last one is still to reclaim.
    assert_eq!(d.reclaim_tx(), Ok(1));
    assert_eq!(d.tx_in_flight(), 0);
    assert_eq!(d.stats(), Stats::default());
    assert_eq!(d.ack_interrupt(), Ok(1));
}

#[test]
fn a_device_that_will_not_come_up_properly_is_refused() {
    for (lie, want) in virtio::model::BRING_UP_LIES {
        assert_eq!(driver(lie).err(), Some(want), "{lie:?}");
    }
    let (bus, dma) = Model::device(DMA_LEN - 1, Lie::None);
    assert_eq!(Driver::init(bus, dma).err(), Some(Error::DmaTooSmall));
}

#[test]
fn a_lying_used_ring_is_an_error_not_a_frame() {
    let q = u32::from(QUEUE_SIZE);
    for (lie, want) in [
        (Lie::UsedOverrun, Error::UsedOverrun(1000)),
        (Lie::UsedId(q), Error::UsedId(q)),
        (Lie::UsedId(u32::MAX), Error::UsedId(u32::MAX)),
        (
            Lie::UsedLen(BUF_LEN as u32 + 1),
            Error::UsedLen(BUF_LEN as u32 + 1),
        ),
        (
            Lie::UsedLen(HEADER_LEN as u32 - 1),
            Error::UsedLen(HEADER_LEN as u32 - 1),
        ),
    ] {
        let (mut d, bus) = driver(lie).unwrap();
        bus.0.borrow_mut().deliver(&frame(60, 1));
        assert_eq!(d.receive(&mut [0; MAX_FRAME]), Err(want), "{lie:?}");
    }
    // A transmit slot completed twice: the second is not in flight any more.
    // (A receive buffer is posted again at once, so its second completion reads
    // as a frame: bytes the device wrote inside a buffer it owned, no worse
    // than any frame it makes up.)
    let (mut d, _) = driver(Lie::Twice).unwrap();
    assert_eq!(d.transmit(&frame(60, 1)), Ok(true));
    assert_eq!(d.reclaim_tx(), Err(Error::UsedId(0)));
}

#[test]
fn bad_headers_and_misfit_frames_are_dropped_and_counted() {
    let offload = |flags, gso_type| {
        NetHeader {
            flags,
            gso_type,
            ..NetHeader::default()
        }
        .bytes()
    };
    let runt = Stats {
        rx_runt: 1,
        ..Stats::default()
    };
    let off = Stats {
        rx_offload: 1,
        ..Stats::default()
    };
    let long = Stats {
        rx_too_long: 1,
        ..Stats::default()
    };
    // (header, frame length, caller's buffer, what is counted)
    for (hdr, n, out_len, want) in [
        (offload(0, 1), 60, MAX_FRAME, off),
        (offload(0, 4), 60, MAX_FRAME, off),
        (offload(1, 0), 60, MAX_FRAME, off),
        (offload(0, 0), 13, MAX_FRAME, runt),
        (offload(0, 0), 0, MAX_FRAME, runt),
        (offload(0, 0), 61, 60, long),
    ] {
        let (mut d, bus) = driver(Lie::None).unwrap();
        bus.0.borrow_mut().rx_header = hdr;
        bus.0.borrow_mut().deliver(&frame(n, 7));
        let mut out = std::vec![0u8; out_len];
        assert_eq!(d.receive(&mut out), Ok(None), "{hdr:?} {n}");
        assert_eq!(d.stats(), want, "{hdr:?} {n}");
        // The buffer went back: the next good frame still arrives.
        bus.0.borrow_mut().rx_header = offload(2, 0);
        bus.0.borrow_mut().deliver(&frame(20, 3));
        assert_eq!(d.receive(&mut out), Ok(Some(20)));
    }
}

#[test]
fn frames_the_wire_cannot_carry_are_refused_before_the_device() {
    let (mut d, bus) = driver(Lie::None).unwrap();
    for n in [0, 13, MAX_FRAME + 1] {
        assert_eq!(d.transmit(&frame(n, 0)), Err(Error::OutOfRange), "{n}");
    }
    assert!(bus.0.borrow().sent.is_empty());
}

proptest! {
    /// Whatever header and length the device writes, the driver hands out a
    /// frame inside the caller's buffer, drops it, or gives up with an error.
    #[test]
    fn any_rx_header_and_length_is_survived(
        hdr in any::<[u8; HEADER_LEN]>(),
        n in 0usize..2100,
        skew in -40i64..40,
        out_len in 0usize..2100,
    ) {
        let (mut d, bus) = driver(Lie::None).unwrap();
        {
            let mut m = bus.0.borrow_mut();
            m.rx_header = hdr;
            m.rx_len_skew = skew;
            m.deliver(&frame(n, 9));
        }
        let mut out = std::vec![0u8; out_len];
        if let Ok(Some(len)) = d.receive(&mut out) {
            prop_assert!(len <= out_len && len <= MAX_FRAME);
        }
    }

    #[test]
    fn rx_frame_stays_inside_what_was_written(buf in proptest::collection::vec(any::<u8>(), 0..64), written in 0usize..80) {
        if let Ok(r) = header::rx_frame(&buf, written) {
            prop_assert!(r.start == HEADER_LEN && r.end == written && written <= buf.len());
        }
    }
}
