//! system.xml parser + checker on arbitrary bytes: must never panic, and whatever it
//! accepts must also pass the model-level check.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match sdf::parse_and_check(text, Path::new("fuzz.xml")) {
        Ok(system) => {
            assert!(sdf::check(&system).is_ok(), "accepted by parse_and_check, rejected by check");
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            // Rendering every message and hint must not panic either.
            let _ = diags.to_string();
        }
    }
});
