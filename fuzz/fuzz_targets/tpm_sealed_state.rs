//! tpm: the sealed-state blob the host hands back at boot. Any bytes are
//! refused or unseal whole; a blob that unseals was sealed by this image under
//! this key (a fuzzer cannot forge the tag, so only the seed's round trips pass).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpm::seal::{DevelopmentKey, Sealer, NONCE_BYTES};

fuzz_target!(|data: &[u8]| {
    let sealer = Sealer::new(&DevelopmentKey, [1; 32]);
    if let Ok((state, generation)) = sealer.unseal(data) {
        // Re-sealing with the nonce it carried gives the same bytes back.
        let nonce: [u8; NONCE_BYTES] = data[56..56 + NONCE_BYTES].try_into().unwrap();
        assert_eq!(sealer.seal(&state, generation, nonce), data);
    }
});
