//! The paravisor's sealing key on SEV-SNP: a key the firmware derives for the
//! caller on MSG_KEY_REQ, mixing in fields of the guest it chose, here the
//! launch MEASUREMENT and the guest POLICY. Another image (another launch
//! digest) gets another key, so its sealed state cannot be opened, and the host
//! never sees the key.
//!
//! Source: SEV Secure Nested Paging Firmware ABI Specification (AMD pub. 56860),
//! "MSG_KEY_REQ" and "MSG_KEY_RSP". The request travels as an SNP guest message
//! (SNP_GUEST_REQUEST, AES-256-GCM under VMPCK0, the host relaying only
//! ciphertext); [`GuestRequest`] is that channel, and [`ModelFirmware`] (feature
//! `keys-model`) the firmware answering it in tests.
//!
//! MSG_KEY_REQ (0x60 bytes): 0x00 bit 0 ROOT_KEY_SELECT (0 VCEK, 1 VMRK), bits
//! 2:1 KEY_SEL, the rest of the word reserved; 0x04 reserved; 0x08
//! GUEST_FIELD_SELECT; 0x10 VMPL; 0x14 GUEST_SVN; 0x18 TCB_VERSION; 0x20..0x60
//! reserved. MSG_KEY_RSP (0x40 bytes): 0x00 STATUS; 0x04..0x20 reserved; 0x20
//! DERIVED_KEY (32 bytes).

/// MSG_KEY_REQ's guest message type (table "Message Type Encodings"; the
/// firmware answers with type 4, MSG_KEY_RSP) and the two messages' sizes.
pub const MSG_KEY_REQ: u8 = 3;
pub const KEY_REQ_LEN: usize = 0x60;
pub const KEY_RSP_LEN: usize = 0x40;

/// MSG_KEY_RSP STATUS values: 0 on success, this one for a malformed request.
pub const STATUS_INVALID_PARAM: u32 = 0x16;

/// GUEST_FIELD_SELECT bits: which of the guest's fields the key mixes in. Bits
/// 1 and 2 (IMAGE_ID, FAMILY_ID) are defined but not used here.
pub mod field {
    pub const GUEST_POLICY: u64 = 1 << 0;
    pub const MEASUREMENT: u64 = 1 << 3;
    pub const GUEST_SVN: u64 = 1 << 4;
    pub const TCB_VERSION: u64 = 1 << 5;
    /// Every bit this ABI version defines.
    pub const ALL: u64 = (1 << 6) - 1;
}

/// Which root key the firmware derives from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RootKey {
    /// The chip's Versioned Chip Endorsement Key.
    Vcek,
    /// The VM Root Key (only for guests launched with one).
    Vmrk,
}

/// A decoded MSG_KEY_REQ.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    pub root: RootKey,
    pub guest_field_select: u64,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub tcb_version: u64,
}

impl KeyRequest {
    /// What the paravisor asks for its sealing key: from the VCEK, bound to its
    /// launch measurement and policy, for VMPL0 (no lower VMPL can ask for it).
    pub const SEALING: Self = Self {
        root: RootKey::Vcek,
        guest_field_select: field::MEASUREMENT | field::GUEST_POLICY,
        vmpl: 0,
        guest_svn: 0,
        tcb_version: 0,
    };

    pub fn encode(&self) -> [u8; KEY_REQ_LEN] {
        let mut b = [0u8; KEY_REQ_LEN];
        b[0] = u8::from(self.root == RootKey::Vmrk);
        b[0x08..0x10].copy_from_slice(&self.guest_field_select.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&self.vmpl.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[0x18..0x20].copy_from_slice(&self.tcb_version.to_le_bytes());
        b
    }

    /// The firmware's view: reserved bits and fields must be zero, KEY_SEL 0
    /// (the default key), and only defined field bits selected.
    pub fn decode(b: &[u8]) -> Result<Self, u32> {
        let b: &[u8; KEY_REQ_LEN] = b.try_into().map_err(|_| STATUS_INVALID_PARAM)?;
        let word = u32_at(b, 0);
        let reserved_clear =
            word & !1 == 0 && u32_at(b, 4) == 0 && b[0x20..].iter().all(|&x| x == 0);
        let select = u64_at(b, 0x08);
        if !reserved_clear || select & !field::ALL != 0 {
            return Err(STATUS_INVALID_PARAM);
        }
        Ok(Self {
            root: if word & 1 == 1 {
                RootKey::Vmrk
            } else {
                RootKey::Vcek
            },
            guest_field_select: select,
            vmpl: u32_at(b, 0x10),
            guest_svn: u32_at(b, 0x14),
            tcb_version: u64_at(b, 0x18),
        })
    }
}

/// Why no key came back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The guest message could not be sent or its reply not authenticated.
    Channel,
    /// The reply is not a MSG_KEY_RSP of the right size.
    Malformed,
    /// The firmware refused with this STATUS.
    Firmware(u32),
}

/// The SNP guest-message channel to the firmware.
pub trait GuestRequest {
    /// Sends `request` as message `msg_type` and fills `response` with the
    /// firmware's decrypted answer; returns its length.
    fn request(
        &mut self,
        msg_type: u8,
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize, KeyError>;
}

/// Asks the firmware for the paravisor's sealing key ([`KeyRequest::SEALING`]).
pub fn sealing_key(channel: &mut dyn GuestRequest) -> Result<[u8; 32], KeyError> {
    let mut rsp = [0u8; KEY_RSP_LEN];
    let n = channel.request(MSG_KEY_REQ, &KeyRequest::SEALING.encode(), &mut rsp)?;
    decode_response(rsp.get(..n).ok_or(KeyError::Malformed)?)
}

/// The derived key in a MSG_KEY_RSP, or the firmware's refusal.
pub fn decode_response(rsp: &[u8]) -> Result<[u8; 32], KeyError> {
    let rsp: &[u8; KEY_RSP_LEN] = rsp.try_into().map_err(|_| KeyError::Malformed)?;
    match u32_at(rsp, 0) {
        0 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&rsp[0x20..0x40]);
            Ok(key)
        }
        s => Err(KeyError::Firmware(s)),
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    crate::le::u64_at(b, off)
}

#[cfg(any(test, feature = "keys-model"))]
pub use model::ModelFirmware;

/// The firmware side, for tests: a chip secret standing for the VCEK's seed,
/// the guest's launch measurement and policy, and the VMPL of the caller.
#[cfg(any(test, feature = "keys-model"))]
mod model {
    use sha2::{Digest, Sha256};

    use super::*;

    #[derive(Clone, Debug)]
    pub struct ModelFirmware {
        pub chip_secret: [u8; 32],
        pub measurement: [u8; 48],
        pub policy: u64,
        /// The VMPL the request came from (the paravisor runs at 0).
        pub caller_vmpl: u32,
    }

    impl ModelFirmware {
        fn derive(&self, req: &KeyRequest) -> Result<[u8; 32], u32> {
            // The ABI refuses a key for a more privileged VMPL than the caller's,
            // and the model launches no guest with a VMRK.
            if req.vmpl < self.caller_vmpl || req.root == RootKey::Vmrk {
                return Err(STATUS_INVALID_PARAM);
            }
            let mut h = Sha256::new();
            h.update(self.chip_secret);
            h.update(req.guest_field_select.to_le_bytes());
            h.update(req.vmpl.to_le_bytes());
            let sel = |bit: u64| req.guest_field_select & bit != 0;
            if sel(field::GUEST_POLICY) {
                h.update(self.policy.to_le_bytes());
            }
            if sel(field::MEASUREMENT) {
                h.update(self.measurement);
            }
            if sel(field::GUEST_SVN) {
                h.update(req.guest_svn.to_le_bytes());
            }
            if sel(field::TCB_VERSION) {
                h.update(req.tcb_version.to_le_bytes());
            }
            Ok(h.finalize().into())
        }
    }

    impl GuestRequest for ModelFirmware {
        fn request(
            &mut self,
            msg_type: u8,
            request: &[u8],
            response: &mut [u8],
        ) -> Result<usize, KeyError> {
            if msg_type != MSG_KEY_REQ {
                return Err(KeyError::Channel);
            }
            let out = response.get_mut(..KEY_RSP_LEN).ok_or(KeyError::Malformed)?;
            out.fill(0);
            match KeyRequest::decode(request).and_then(|r| self.derive(&r)) {
                Ok(key) => out[0x20..].copy_from_slice(&key),
                Err(s) => out[..4].copy_from_slice(&s.to_le_bytes()),
            }
            Ok(KEY_RSP_LEN)
        }
    }
}

#[cfg(test)]
mod tests;
