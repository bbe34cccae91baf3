//! The tpm PD (libtpms behind the CRB, driven as Linux drives it) against swtpm
//! running the same libtpms: the scripted sequence gives the same answers, except
//! where the bytes come from each TPM's own random seeds.

#![allow(clippy::unwrap_used)]

mod common;

use common::{libtpms_turn, rc, script, Compare, Guest, Swtpm, SECRET};
use tpm::commands;
use tpm::libtpms::LibtpmsEngine;

#[test]
fn the_pd_answers_the_script_as_swtpm_does() {
    let _turn = libtpms_turn();
    let Some(mut swtpm) = Swtpm::start() else {
        panic!("swtpm is not installed (apt-get install swtpm; .ci/install-qemu does)");
    };
    let mut guest = Guest::new(LibtpmsEngine::start(None).expect("libtpms starts"));
    let ours = script(|c| guest.transact(c));
    let theirs = script(|c| swtpm.transact(c));
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            rc(&a.response),
            0,
            "{}: our TPM said {:#x}",
            a.name,
            rc(&a.response)
        );
        match a.compare {
            Compare::Exact => assert_eq!(a.response, b.response, "{}", a.name),
            Compare::Shape => {
                assert_eq!(rc(&a.response), rc(&b.response), "{}", a.name);
                assert_eq!(a.response.len(), b.response.len(), "{}", a.name);
            }
        }
    }
    // The unseal step returned what was sealed, on both.
    let unseal = ours.iter().find(|s| s.name == "Unseal").unwrap();
    assert_eq!(commands::unsealed_data(&unseal.response), Some(SECRET));
    // PCR 16 is the extend chain of the two digests.
    let read = ours.iter().find(|s| s.name == "PCR_Read(0,16)").unwrap();
    let values = commands::pcr_values(&read.response).unwrap();
    let mut pcr = [0u8; 32];
    for d in [[0x5a; 32], [0xa5; 32]] {
        pcr = tpm::measure::extend(&pcr, &d);
    }
    assert_eq!(values, vec![[0u8; 32], pcr]);
}
