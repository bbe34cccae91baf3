//! system.xml parser + checker on arbitrary bytes: must never panic, whatever it
//! accepts must also pass the model-level check, the two modes must agree (Microkit
//! mode accepts a superset, differing only by policy findings) and listing what build
//! refuses must not panic either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.xml");
    let strict = sdf::parse_and_check(text, path);
    let microkit = sdf::parse_and_check_with(text, path, sdf::Mode::Microkit);
    match &strict {
        Ok(system) => {
            assert!(sdf::check(system).is_ok(), "accepted by parse_and_check, rejected by check");
            let checked = microkit.as_ref().expect("strict accepts, microkit must too");
            assert!(checked.warnings.is_empty(), "no policy finding without a strict error");
            if let Err(refusals) = sdf::build_refusals(system) {
                let _ = refusals.to_string();
            }
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            // Rendering every message and hint must not panic either.
            let _ = diags.to_string();
            match &microkit {
                Ok(checked) => {
                    assert!(diags.iter().all(|d| d.kind.policy().is_some()));
                    assert_eq!(checked.warnings.len(), diags.len());
                    for w in &checked.warnings {
                        let _ = w.as_warning();
                    }
                }
                Err(errors) => assert!(errors.iter().all(|d| d.kind.policy().is_none())),
            }
        }
    }
});
