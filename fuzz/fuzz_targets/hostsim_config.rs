//! The PD config a host-sim PD parses before anything else runs: never panics, and
//! whatever it accepts survives an encode/parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = hostsim::PdConfig::parse(text) {
        let again = hostsim::PdConfig::parse(&config.encode()).expect("re-parse of encoded config");
        assert_eq!(again, config);
    }
});
