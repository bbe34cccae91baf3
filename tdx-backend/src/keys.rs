//! The paravisor's sealing key on TDX. Unlike SEV-SNP (MSG_KEY_REQ), TDX has no
//! instruction that derives a sealing key: a TD gets one from a key broker
//! that releases it against the TD's TDREPORT (TDG.MR.REPORT, verified by the
//! platform as a quote), bound to the TD's MRTD and ATTRIBUTES. Another image
//! (another MRTD) gets another key; the host relays only the report.
//!
//! [`ReportSource`] is TDG.MR.REPORT (TDCALL leaf 4: RCX the 1024-byte
//! TDREPORT_STRUCT's GPA, RDX the 64-byte REPORTDATA's, R8 subtype 0);
//! [`KeyBroker`] the broker. With feature `keys-model`, [`ModelTdx`] and
//! [`ModelBroker`] stand for the TDX module's report MAC and a broker that
//! checks it (on hardware: a quote from the quoting enclave and a remote
//! service; neither exists here).
//!
//! TDREPORT_STRUCT (TDX module ABI): REPORTMACSTRUCT at 0 (REPORTDATA at 0x80,
//! MAC at 0xE0), TEE_TCB_INFO at 0x100, TDINFO at 0x200 (ATTRIBUTES 0x200,
//! XFAM 0x208, MRTD 0x210, 48 bytes).

pub const LEAF_MR_REPORT: u64 = 4;
pub const TDREPORT_LEN: usize = 1024;
pub const REPORTDATA_LEN: usize = 64;
pub const REPORTDATA_AT: usize = 0x80;
pub const MAC_AT: usize = 0xe0;
pub const TDINFO_AT: usize = 0x200;
pub const ATTRIBUTES_AT: usize = 0x200;
pub const MRTD_AT: usize = 0x210;
pub const MRTD_LEN: usize = 48;

/// What the paravisor puts in REPORTDATA: which key it asks for.
pub const SEALING_REPORTDATA: [u8; REPORTDATA_LEN] = {
    let tag = b"paravisor vtpm sealing key v1";
    let mut b = [0u8; REPORTDATA_LEN];
    let mut i = 0;
    while i < tag.len() {
        b[i] = tag[i];
        i += 1;
    }
    b
};

/// Why no key came back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// TDG.MR.REPORT failed with this completion status.
    Report(u64),
    /// The report does not carry the REPORTDATA asked for.
    WrongReport,
    /// The broker refused (unverifiable report, unknown purpose).
    Refused,
}

/// TDG.MR.REPORT.
pub trait ReportSource {
    fn tdreport(
        &mut self,
        report_data: &[u8; REPORTDATA_LEN],
    ) -> Result<[u8; TDREPORT_LEN], KeyError>;
}

/// The service that releases keys against verified reports.
pub trait KeyBroker {
    fn release(&mut self, report: &[u8; TDREPORT_LEN]) -> Result<[u8; 32], KeyError>;
}

/// The paravisor's sealing key: its report, for the sealing purpose, traded
/// at the broker.
pub fn sealing_key(
    td: &mut dyn ReportSource,
    broker: &mut dyn KeyBroker,
) -> Result<[u8; 32], KeyError> {
    let report = td.tdreport(&SEALING_REPORTDATA)?;
    if report.get(REPORTDATA_AT..REPORTDATA_AT + REPORTDATA_LEN) != Some(&SEALING_REPORTDATA[..]) {
        return Err(KeyError::WrongReport);
    }
    broker.release(&report)
}

#[cfg(any(test, feature = "keys-model"))]
pub use model::{ModelBroker, ModelTdx};

#[cfg(any(test, feature = "keys-model"))]
mod model {
    use sha2::{Digest, Sha256};

    use super::*;

    fn mac(report_key: &[u8; 32], report: &[u8; TDREPORT_LEN]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(report_key);
        h.update(&report[..MAC_AT]);
        h.update(&report[TDINFO_AT..]);
        h.finalize().into()
    }

    /// The TDX module's side of TDG.MR.REPORT: the TD's measurements and the
    /// platform's report MAC key.
    #[derive(Clone, Debug)]
    pub struct ModelTdx {
        pub report_key: [u8; 32],
        pub mrtd: [u8; MRTD_LEN],
        pub attributes: u64,
    }

    impl ReportSource for ModelTdx {
        fn tdreport(
            &mut self,
            report_data: &[u8; REPORTDATA_LEN],
        ) -> Result<[u8; TDREPORT_LEN], KeyError> {
            let mut r = [0u8; TDREPORT_LEN];
            r[REPORTDATA_AT..REPORTDATA_AT + REPORTDATA_LEN].copy_from_slice(report_data);
            r[ATTRIBUTES_AT..ATTRIBUTES_AT + 8].copy_from_slice(&self.attributes.to_le_bytes());
            r[MRTD_AT..MRTD_AT + MRTD_LEN].copy_from_slice(&self.mrtd);
            let m = mac(&self.report_key, &r);
            r[MAC_AT..MAC_AT + 32].copy_from_slice(&m);
            Ok(r)
        }
    }

    /// A broker that trusts the platform's report key (standing for quote
    /// verification) and derives keys from its own secret, the MRTD and the
    /// ATTRIBUTES of the report.
    #[derive(Clone, Debug)]
    pub struct ModelBroker {
        pub report_key: [u8; 32],
        pub secret: [u8; 32],
    }

    impl KeyBroker for ModelBroker {
        fn release(&mut self, report: &[u8; TDREPORT_LEN]) -> Result<[u8; 32], KeyError> {
            let authentic = report[MAC_AT..MAC_AT + 32] == mac(&self.report_key, report);
            let sealing =
                report[REPORTDATA_AT..REPORTDATA_AT + REPORTDATA_LEN] == SEALING_REPORTDATA[..];
            if !authentic || !sealing {
                return Err(KeyError::Refused);
            }
            let mut h = Sha256::new();
            h.update(self.secret);
            h.update(&report[ATTRIBUTES_AT..ATTRIBUTES_AT + 8]);
            h.update(&report[MRTD_AT..MRTD_AT + MRTD_LEN]);
            Ok(h.finalize().into())
        }
    }
}

#[cfg(test)]
mod tests;
