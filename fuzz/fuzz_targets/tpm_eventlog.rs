//! tpm: the TCG2 event log reader and the measured-boot list parser take any
//! bytes without panicking; a log that reads back replays, and a list that
//! parses re-encodes to the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpm::eventlog::{events, replay};
use tpm::measured_boot::{encode, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = events(data) {
        assert!(list.iter().all(|e| e.data.len() <= data.len()));
        let _ = replay(data);
    }
    if let Ok(list) = parse(data) {
        let again = encode(&list);
        assert_eq!(parse(&again).as_ref(), Ok(&list));
    }
});
