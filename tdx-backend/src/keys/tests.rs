use super::*;

const REPORT_KEY: [u8; 32] = [5; 32];

fn td(mrtd: u8) -> ModelTdx {
    ModelTdx {
        report_key: REPORT_KEY,
        mrtd: [mrtd; MRTD_LEN],
        attributes: 1 << 28,
    }
}

fn broker() -> ModelBroker {
    ModelBroker {
        report_key: REPORT_KEY,
        secret: [9; 32],
    }
}

#[test]
fn the_sealing_key_is_bound_to_mrtd_and_attributes() {
    let key = |mut t: ModelTdx| sealing_key(&mut t, &mut broker()).expect("released");
    let base = key(td(1));
    assert_eq!(base, key(td(1)), "stable across boots");
    assert_ne!(base, key(td(2)), "another image");
    let mut debug = td(1);
    debug.attributes |= 1;
    assert_ne!(base, key(debug), "another ATTRIBUTES (a debug TD)");
}

/// Changes a report after the module MACed it.
type Forgery = fn(&mut [u8; TDREPORT_LEN]);

/// A report source that lies: it changes the report after the module MACed it.
struct Forged(ModelTdx, Forgery);

impl ReportSource for Forged {
    fn tdreport(
        &mut self,
        report_data: &[u8; REPORTDATA_LEN],
    ) -> Result<[u8; TDREPORT_LEN], KeyError> {
        let mut r = self.0.tdreport(report_data)?;
        (self.1)(&mut r);
        Ok(r)
    }
}

#[test]
fn forged_or_foreign_reports_get_no_key() {
    let cases: [(Forgery, KeyError); 3] = [
        // Claim another MRTD: the MAC no longer verifies.
        (|r| r[MRTD_AT] ^= 1, KeyError::Refused),
        (|r| r[MAC_AT] ^= 1, KeyError::Refused),
        // A report for another purpose is not sent at all.
        (|r| r[REPORTDATA_AT] ^= 1, KeyError::WrongReport),
    ];
    for (forge, want) in cases {
        assert_eq!(
            sealing_key(&mut Forged(td(1), forge), &mut broker()),
            Err(want)
        );
    }
    let mut other_platform = broker();
    other_platform.report_key = [6; 32];
    assert_eq!(
        sealing_key(&mut td(1), &mut other_platform),
        Err(KeyError::Refused)
    );
}
