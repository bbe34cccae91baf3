//! paravisor verify's IGVM reader: any bytes given as an IGVM file must be parsed
//! and measured without panicking, and a file that measures must measure the same
//! twice (no hidden state), with a digest only for the measured platforms.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tools/paravisor/src/igvm/measure.rs"]
#[allow(dead_code)] // the CLI's helpers (names, the digest line) are not fuzzed
mod measure;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = measure::measure_file(data) {
        assert_eq!(measure::measure_file(data), Ok(m));
        let m = measure::measure_file(data).unwrap_or_else(|_| unreachable!());
        assert_eq!(m.digest.is_some(), m.platform != measure::Platform::Native);
    }
});
