//! TPM 2.0 commands this PD issues itself (measured boot's PCR_Extend) and the
//! scripted sequence the oracle tests and the benchmark send, encoded per TPM 2.0
//! Part 3; plus a bounded reader for the response fields they need.

use alloc::vec::Vec;

use tpm_crb::command::{tag, CommandCode};

/// TPM_RH_OWNER: the storage hierarchy.
pub const RH_OWNER: u32 = 0x4000_0001;
/// TPM_RS_PW: the password session (empty password here).
pub const RS_PW: u32 = 0x4000_0009;
pub const ALG_SHA256: u16 = 0x000b;
const ALG_ECC: u16 = 0x0023;
const ALG_KEYEDHASH: u16 = 0x0008;
const ALG_AES: u16 = 0x0006;
const ALG_CFB: u16 = 0x0043;
const ALG_ECDSA: u16 = 0x0018;
const ALG_NULL: u16 = 0x0010;
const ECC_NIST_P256: u16 = 0x0003;
/// TPM_CAP_TPM_PROPERTIES and TPM_PT_FIXED: the fixed properties (manufacturer,
/// firmware version, limits).
pub const CAP_TPM_PROPERTIES: u32 = 6;
pub const PT_FIXED: u32 = 0x100;

/// Object attributes (TPMA_OBJECT).
mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const NO_DA: u32 = 1 << 10;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;
    pub const KEY: u32 =
        FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA | RESTRICTED;
}

/// A command under construction; `finish` patches the size.
struct Builder(Vec<u8>);

impl Builder {
    fn new(tag: u16, code: CommandCode) -> Self {
        let mut b = Self(Vec::with_capacity(64));
        b.u16(tag).u32(0).u32(code.0);
        b
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A TPM2B: 16-bit size, then the bytes (callers pass at most a few KiB).
    fn sized(&mut self, v: &[u8]) -> &mut Self {
        self.u16(v.len() as u16).bytes(v)
    }
    /// The authorization area with one empty password session.
    fn password_session(&mut self) -> &mut Self {
        self.u32(9).u32(RS_PW).u16(0).u8(0).u16(0)
    }
    fn pcr_selection(&mut self, pcrs: u32) -> &mut Self {
        let [a, b, c, _] = pcrs.to_le_bytes();
        self.u32(1).u16(ALG_SHA256).u8(3).bytes(&[a, b, c])
    }
    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() as u32).to_be_bytes();
        self.0[2..6].copy_from_slice(&len);
        self.0
    }
}

pub fn startup_clear() -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::STARTUP);
    b.u16(0);
    b.finish()
}

pub fn self_test() -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::SELF_TEST);
    b.u8(1);
    b.finish()
}

pub fn get_capability(capability: u32, property: u32, count: u32) -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::GET_CAPABILITY);
    b.u32(capability).u32(property).u32(count);
    b.finish()
}

/// TPM2_PCR_Extend of `pcr`'s SHA-256 bank with `digest`.
pub fn pcr_extend(pcr: u32, digest: &[u8; 32]) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::PCR_EXTEND);
    b.u32(pcr)
        .password_session()
        .u32(1)
        .u16(ALG_SHA256)
        .bytes(digest);
    b.finish()
}

/// TPM2_PCR_Read of the SHA-256 bank, PCRs in the `pcrs` bit mask (0..=23).
pub fn pcr_read(pcrs: u32) -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::PCR_READ);
    b.pcr_selection(pcrs);
    b.finish()
}

/// The public area of an ECC P-256 key: a storage parent (AES-128-CFB) or a
/// restricted ECDSA-SHA256 signing key.
fn ecc_template(signing: bool) -> Vec<u8> {
    let mut t = Builder(Vec::new());
    t.u16(ALG_ECC).u16(ALG_SHA256);
    if signing {
        t.u32(attr::KEY | attr::SIGN).u16(0).u16(ALG_NULL);
        t.u16(ALG_ECDSA).u16(ALG_SHA256);
    } else {
        t.u32(attr::KEY | attr::DECRYPT).u16(0);
        t.u16(ALG_AES).u16(128).u16(ALG_CFB).u16(ALG_NULL);
    }
    t.u16(ECC_NIST_P256).u16(ALG_NULL).u16(0).u16(0);
    t.0
}

/// TPM2_CreatePrimary in the owner hierarchy.
pub fn create_primary(signing: bool) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::CREATE_PRIMARY);
    b.u32(RH_OWNER).password_session();
    b.u16(4).u16(0).u16(0);
    b.sized(&ecc_template(signing));
    b.u16(0).u32(0);
    b.finish()
}

/// TPM2_Create of a sealed data object holding `secret` under `parent`.
pub fn create_sealed(parent: u32, secret: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::CREATE);
    b.u32(parent).password_session();
    b.u16(4 + secret.len() as u16).u16(0).sized(secret);
    let mut t = Builder(Vec::new());
    t.u16(ALG_KEYEDHASH).u16(ALG_SHA256);
    t.u32(attr::FIXED_TPM | attr::FIXED_PARENT | attr::USER_WITH_AUTH | attr::NO_DA);
    t.u16(0).u16(ALG_NULL).u16(0);
    b.sized(&t.0);
    b.u16(0).u32(0);
    b.finish()
}

pub fn load(parent: u32, private: &[u8], public: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::LOAD);
    b.u32(parent)
        .password_session()
        .sized(private)
        .sized(public);
    b.finish()
}

pub fn unseal(item: u32) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::UNSEAL);
    b.u32(item).password_session();
    b.finish()
}

/// TPM2_Quote over the SHA-256 PCRs in `pcrs` with the key's own scheme.
pub fn quote(key: u32, nonce: &[u8], pcrs: u32) -> Vec<u8> {
    let mut b = Builder::new(tag::SESSIONS, CommandCode::QUOTE);
    b.u32(key)
        .password_session()
        .sized(nonce)
        .u16(ALG_NULL)
        .pcr_selection(pcrs);
    b.finish()
}

pub fn get_random(bytes: u16) -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::GET_RANDOM);
    b.u16(bytes);
    b.finish()
}

/// The bytes a GetRandom response carries.
pub fn random_bytes(response: &[u8]) -> Option<&[u8]> {
    Reader::after_header(response)?.sized()
}

pub fn flush_context(handle: u32) -> Vec<u8> {
    let mut b = Builder::new(tag::NO_SESSIONS, CommandCode::FLUSH_CONTEXT);
    b.u32(handle);
    b.finish()
}

/// A bounded cursor over response bytes: every read checks the length.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts after the 10-byte header.
    pub fn after_header(response: &'a [u8]) -> Option<Self> {
        Some(Self {
            bytes: response.get(10..)?,
        })
    }
    pub fn u16(&mut self) -> Option<u16> {
        let (v, rest) = self.bytes.split_first_chunk::<2>()?;
        self.bytes = rest;
        Some(u16::from_be_bytes(*v))
    }
    pub fn u32(&mut self) -> Option<u32> {
        let (v, rest) = self.bytes.split_first_chunk::<4>()?;
        self.bytes = rest;
        Some(u32::from_be_bytes(*v))
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (v, rest) = (self.bytes.get(..n)?, self.bytes.get(n..)?);
        self.bytes = rest;
        Some(v)
    }
    /// A TPM2B's contents.
    pub fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// A TPM2B with its size prefix, as a later command takes it back.
    pub fn sized_with_prefix(&mut self) -> Option<&'a [u8]> {
        let whole = self.bytes;
        let n = usize::from(self.u16()?);
        self.take(n)?;
        whole.get(..n + 2)
    }
}

/// The handle a CreatePrimary or Load response returns.
pub fn handle_of(response: &[u8]) -> Option<u32> {
    Reader::after_header(response)?.u32()
}

/// (outPrivate, outPublic) of a Create response, each with its size prefix.
pub fn created_object(response: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut r = Reader::after_header(response)?;
    r.u32()?;
    let private = r.sized_with_prefix()?.get(2..)?.to_vec();
    let public = r.sized_with_prefix()?.get(2..)?.to_vec();
    Some((private, public))
}

/// The data an Unseal response carries.
pub fn unsealed_data(response: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::after_header(response)?;
    r.u32()?;
    r.sized()
}

/// The SHA-256 values a PCR_Read response carries, in PCR order.
pub fn pcr_values(response: &[u8]) -> Option<Vec<[u8; 32]>> {
    let mut r = Reader::after_header(response)?;
    r.u32()?;
    for _ in 0..r.u32()? {
        r.u16()?;
        let n = r.take(1)?[0];
        r.take(usize::from(n))?;
    }
    let count = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(r.sized()?.try_into().ok()?);
    }
    Some(out)
}
