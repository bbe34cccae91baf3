//! The sealing-key exchanges with the platform: the SNP firmware's MSG_KEY_RSP
//! (and MSG_KEY_REQ as the firmware model decodes it), and a TDREPORT handed to
//! the TDX model broker. Any bytes are refused or give a key; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snp_backend::keys::{decode_response, KeyRequest, KEY_REQ_LEN};
use tdx_backend::keys::{KeyBroker, ModelBroker, TDREPORT_LEN};

fuzz_target!(|data: &[u8]| {
    let _ = decode_response(data);
    if let Ok(req) = KeyRequest::decode(data) {
        // What decodes re-encodes to the same bytes: nothing reserved was dropped.
        assert_eq!(&req.encode()[..], &data[..KEY_REQ_LEN]);
    }
    if let Ok(report) = <[u8; TDREPORT_LEN]>::try_from(data) {
        let mut broker = ModelBroker {
            report_key: [5; 32],
            secret: [9; 32],
        };
        let _ = broker.release(&report);
    }
});
