//! netvsp-protocol: RNDIS messages (as a guest writes them into the send buffer, or
//! a host into the receive buffer) must parse without panicking, and every slice
//! handed back must lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsp_protocol::rndis::{self, Message};

fuzz_target!(|data: &[u8]| {
    // Walk the buffer as netvsp walks a batched send section.
    let mut rest = data;
    for _ in 0..64 {
        let Ok((message, used)) = rndis::parse(rest) else {
            return;
        };
        assert!(used >= rndis::HEADER_SIZE && used <= rest.len());
        if let Message::Packet(p) = message {
            assert!(!p.frame.is_empty() && p.frame.len() <= used);
            for info in p.per_packet_info().take(1024) {
                if let Ok(info) = info {
                    assert!(info.data.len() <= p.per_packet_info.len());
                }
            }
            let _ = p.vlan_tci();
        }
        rest = &rest[used..];
    }
});
