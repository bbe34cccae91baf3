//! netvsp-protocol: NVSP messages from hostile bytes must parse or fail cleanly,
//! and what parses must re-encode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netvsp_protocol::nvsp::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        if !matches!(m, Message::Unknown(_)) {
            assert_eq!(Message::parse(&m.encode()), Ok(m));
        }
    }
    let _ = Message::parse_subchannel_complete(data);
});
