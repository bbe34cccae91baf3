//! tpm: the TCG2 event log reader and the measured-boot list parser take any
//! bytes without panicking; a log that reads back replays, a list that parses
//! re-encodes to the bytes it came from, and a hash the manifest parser takes is
//! 64 hex digits that print back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpm::eventlog::{events, replay};
use tpm::measured_boot::{encode, parse, sha256_from_hex};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = events(data) {
        assert!(list.iter().all(|e| e.data.len() <= data.len()));
        let _ = replay(data);
    }
    if let Ok(list) = parse(data) {
        let again = encode(&list);
        assert_eq!(parse(&again).as_ref(), Ok(&list));
    }
    if let Some(hash) = core::str::from_utf8(data).ok().and_then(sha256_from_hex) {
        let printed: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(printed, core::str::from_utf8(data).unwrap_or("").to_ascii_lowercase());
    }
});
