//! virtio-net: the receive used ring and the headers in front of frames are
//! hostile bytes.
//!
//! Byte 0 picks the mode. Header mode hands the rest to the header parser as a
//! received buffer with a claimed length. Ring mode brings the model device up,
//! delivers a frame, then writes the fuzzer's bytes over the receive used ring
//! (index and elements) and the first buffers, and receives until nothing or an
//! error: every frame handed out fits the caller's buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtio_net::model::{Lie, Model};
use virtio_net::{header, Dma, Driver, BUF_LEN, DMA_LEN, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let written = usize::from(mode >> 1) * 17;
        if let Ok(r) = header::rx_frame(rest, written) {
            assert!(r.start == virtio_net::HEADER_LEN && r.end == written && written <= rest.len());
        }
        return;
    }
    let (bus, dma) = Model::device(DMA_LEN, Lie::None);
    let Ok(mut d) = Driver::init(bus.clone(), dma) else {
        panic!("the honest model must come up");
    };
    bus.0.borrow_mut().deliver(&[0xab; 60]);
    // The receive queue's rings start at 0: 32 descriptors, then the driver
    // area (4 + 2 * 32 + 2 bytes), then the used ring at the next 4 bytes.
    let used = (16 * 32 + 6 + 2 * 32usize).next_multiple_of(4);
    let (ring, bufs) = rest.split_at(rest.len().min(4 + 8 * 32));
    if let Some(idx) = ring.first_chunk::<2>() {
        d.dma_mut().write(used + 2, idx);
        d.dma_mut().write(used + 4, &ring[2..]);
    }
    d.dma_mut().write(4096, &bufs[..bufs.len().min(2 * BUF_LEN)]);
    let out_len = usize::from(mode >> 1) * 12;
    let mut out = vec![0u8; out_len];
    for _ in 0..64 {
        match d.receive(&mut out) {
            Ok(Some(n)) => assert!(n <= out_len && n <= MAX_FRAME),
            Ok(None) | Err(_) => break,
        }
    }
});
