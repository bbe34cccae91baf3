//! tpm-crb command and response headers: any bytes a guest leaves in the
//! command buffer parse to a command no longer than the bytes, or to the error
//! the TPM answers with, whose response is itself a valid 10-byte response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpm_crb::command::{error_response, Command, Response, HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    match Command::parse(data) {
        Ok(c) => {
            assert!(c.bytes.len() >= HEADER_SIZE && c.bytes.len() <= data.len());
        }
        Err(rc) => {
            let r = error_response(data, rc);
            let parsed = Response::parse(&r).expect("error responses parse");
            assert_eq!(parsed.code, rc);
            assert_eq!(parsed.bytes.len(), HEADER_SIZE);
        }
    }
    if let Some(r) = Response::parse(data) {
        assert!(r.bytes.len() <= data.len());
    }
});
