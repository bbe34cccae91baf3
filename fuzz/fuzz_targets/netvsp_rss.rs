//! netvsp: OID_GEN_RECEIVE_SCALE_PARAMETERS as a guest sets it (every length,
//! offset and entry hostile) must be taken or refused whole without panicking,
//! and the channel any frame is then steered to must be one the table may name.
//!
//! Byte 0: the channels the NIC has (1 to 8); bytes 1-2 (LE): how many of the
//! following bytes are the parameters; the rest are frames of 60 to 123 bytes,
//! each after a length byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsp::rss::Rss;

fuzz_target!(|data: &[u8]| {
    let Some((&[queues, lo, hi], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let queues = u32::from(queues % 8) + 1;
    let len = usize::from(u16::from_le_bytes([lo, hi]));
    let (params, mut frames) = rest.split_at(len.min(rest.len()));
    let mut rss = Rss::default();
    let before = rss.clone();
    if rss.set(params, queues).is_err() {
        assert_eq!(rss, before, "a refused set changes nothing");
    }
    assert!(rss.table().iter().all(|&q| u32::from(q) < queues));
    while let Some((&n, rest)) = frames.split_first() {
        let (frame, rest) = rest.split_at((60 + usize::from(n % 64)).min(rest.len()));
        assert!(rss.queue(frame) < queues);
        frames = rest;
    }
});
