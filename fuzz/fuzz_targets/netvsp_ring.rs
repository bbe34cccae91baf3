//! netvsp: a guest that scribbles over its own channel — the guest-to-host ring's
//! indices and packet bytes, the host-to-guest ring's read index, the send
//! buffer — between the NIC's runs. Serving must either go on or report the
//! broken ring; it must never panic, hang or write outside the guest's buffers.
//!
//! Byte 0 bit 0 brings the NIC up first (Linux's sequence through the real
//! driver), so scribbles land on a channel carrying traffic.
#![no_main]

use std::sync::atomic::AtomicU64;

use ipc::{Perms, Region};
use libfuzzer_sys::fuzz_target;
use netvsp::backend::Loopback;
use netvsp::testing::{self, GuestLayout};
use netvsp::Config;
use netvsp_protocol::nvsp::Version;
use vmbus_ring::PAGE_SIZE;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let layout = GuestLayout::new(4, 2);
    let words: Vec<AtomicU64> = (0..layout.pages * PAGE_SIZE / 8)
        .map(|_| AtomicU64::new(0))
        .collect();
    let ram = Region::from_atomics(&words, Perms::RW);
    let (mut host, mut client) = testing::guest_in(
        ram,
        layout,
        Config::new([0, 0x15, 0x5d, 0, 0, 1]),
        Box::new(Loopback::new(16)),
    );
    if mode & 1 == 1 && client.bring_up(Version::V61, &mut host.pump()).is_err() {
        return;
    }
    let ram = host.ram();
    // Everything before the receive buffer: both rings and the control page,
    // plus the send buffer the guest owns anyway.
    let scribble_end = layout.receive.0 * PAGE_SIZE;
    let send = (layout.send.0 * PAGE_SIZE, layout.send.1 * PAGE_SIZE);
    for _ in 0..64 {
        let [a, b, len, ref tail @ ..] = *rest else {
            break;
        };
        let len = usize::from(len % 64);
        let bytes = &tail[..len.min(tail.len())];
        let at = usize::from(u16::from_le_bytes([a, b]));
        let at = if a & 1 == 0 {
            at % scribble_end
        } else {
            send.0 + at % send.1
        };
        let _ = ram.write_bytes(at, bytes);
        rest = &tail[bytes.len()..];
        let _ = client.send_frame(&[0xff; 60]);
        let _ = client.flush();
        host.serve();
        let _ = client.poll();
        while client.receive_frame().is_some() {}
        if host.broken.is_some() {
            // A broken channel stays broken and quiet.
            assert_eq!(host.serve(), Default::default());
            break;
        }
    }
});
