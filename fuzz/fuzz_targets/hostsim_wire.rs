//! host-sim packets from another PD (PPC requests and replies) and a dying PD's
//! fault record: decoding never panics and never yields more registers than exist.
#![no_main]

use hostsim::wire;
use ipc::{MessageRegisters, MAX_MESSAGE_REGISTERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut mrs = MessageRegisters::new();
    if let Some(msg) = wire::decode_call(data, &mut mrs) {
        assert!(msg.count() <= MAX_MESSAGE_REGISTERS);
        let mut out = Vec::new();
        wire::encode_call(msg, &mrs, &mut out);
        assert_eq!(out.len(), 16 + 8 * msg.count());
    }
    if let Some(Ok(msg)) = wire::decode_reply(data, &mut mrs) {
        assert!(msg.count() <= MAX_MESSAGE_REGISTERS);
    }
    let _ = wire::FaultRecord::decode(data);
});
