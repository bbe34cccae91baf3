//! netvsp's frame-queue backend: the peer PD writes every byte of the queue it
//! produces into (indices, slot lengths, frame bytes). Receiving must never
//! panic or read past a slot, every frame handed over must fit the caller's
//! buffer and its slot, and a lying index only stops the queue.
#![no_main]

use std::sync::atomic::AtomicU64;

use ipc::{Perms, Region};
use libfuzzer_sys::fuzz_target;
use netvsp::backend::queue::{FrameSlot, QueueBackend, SLOT_DATA};
use netvsp::backend::Backend;

const SLOTS: u32 = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&buf_len, bytes)) = data.split_first() else {
        return;
    };
    let size = QueueBackend::region_size(SLOTS).expect("a small queue");
    let words =
        |n: usize| -> Vec<AtomicU64> { (0..n.div_ceil(8)).map(|_| AtomicU64::new(0)).collect() };
    let (tx_words, rx_words) = (words(size), words(size));
    let tx = Region::from_atomics(&tx_words, Perms::RW);
    let rx = Region::from_atomics(&rx_words, Perms::RW);
    // The peer's queue as it wrote it: header and slots, byte for byte.
    let _ = rx.write_bytes(0, &bytes[..bytes.len().min(size)]);
    let Ok(mut backend) = QueueBackend::new(tx, rx, SLOTS) else {
        return;
    };
    let mut buf = vec![0u8; usize::from(buf_len) * 8];
    for _ in 0..2 * SLOTS {
        match backend.receive(&mut buf) {
            Some(n) => assert!(n <= buf.len() && n <= SLOT_DATA),
            None => break,
        }
    }
    // Sending still works or refuses cleanly whatever the peer did to its queue.
    let frame = FrameSlot::new(&[0x5a; 60]).expect("fits");
    assert_eq!(frame.frame(), Some(&[0x5a; 60][..]));
    let _ = backend.transmit(&[0x5a; 60]);
    let _ = backend.has_room(1);
    let _ = backend.take_wakeup();
});
