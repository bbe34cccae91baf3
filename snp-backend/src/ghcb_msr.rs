//! The GHCB MSR protocol (GHCB spec 56421 §2.3.1): requests in the GHCB MSR
//! (0xC001_0130) before or instead of a GHCB page, GHCBInfo in bits 11:0.
//!
//! Requests are what the paravisor writes; responses are what the host writes and
//! are hostile: [`MsrResponse::decode`] accepts every `u64` and returns either a
//! known response or an error, and the caller additionally checks that the
//! response code matches the request it made ([`MsrResponse::answers`]).

/// The GHCB MSR.
pub const MSR_GHCB: u32 = 0xc001_0130;

/// GHCBInfo codes.
pub mod info {
    pub const SEV_INFO_RESP: u64 = 0x001;
    pub const SEV_INFO_REQ: u64 = 0x002;
    pub const CPUID_REQ: u64 = 0x004;
    pub const CPUID_RESP: u64 = 0x005;
    pub const PREFERRED_GHCB_REQ: u64 = 0x010;
    pub const PREFERRED_GHCB_RESP: u64 = 0x011;
    pub const REGISTER_GHCB_REQ: u64 = 0x012;
    pub const REGISTER_GHCB_RESP: u64 = 0x013;
    pub const PSC_REQ: u64 = 0x014;
    pub const PSC_RESP: u64 = 0x015;
    pub const RUN_VMPL_REQ: u64 = 0x016;
    pub const RUN_VMPL_RESP: u64 = 0x017;
    pub const HV_FEATURES_REQ: u64 = 0x080;
    pub const HV_FEATURES_RESP: u64 = 0x081;
    pub const TERMINATE_REQ: u64 = 0x100;
}

/// The GHCB protocol version this backend speaks (SNP needs version 2).
pub const GHCB_PROTOCOL_VERSION: u16 = 2;

/// Page-state change operation as both the MSR request and PSC entries carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PscOp {
    Private = 1,
    Shared = 2,
}

impl PscOp {
    pub fn from_bits(v: u64) -> Option<Self> {
        match v {
            1 => Some(PscOp::Private),
            2 => Some(PscOp::Shared),
            _ => None,
        }
    }
}

/// A request the paravisor writes to the GHCB MSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrRequest {
    SevInfo,
    /// CPUID `function`, register 0..=3 (EAX, EBX, ECX, EDX).
    Cpuid {
        function: u32,
        register: u8,
    },
    RegisterGhcb {
        gfn: u64,
    },
    /// One 4 KiB page-state change.
    PageState {
        gfn: u64,
        op: PscOp,
    },
    RunVmpl {
        vmpl: u8,
    },
    HvFeatures,
    /// Reason code set (4 bits) and reason code (8 bits).
    Terminate {
        set: u8,
        reason: u8,
    },
}

/// GFNs the MSR protocol can carry: bits 51:12 for PSC, 63:12 for registration.
const PSC_GFN_MAX: u64 = (1 << 40) - 1;

impl MsrRequest {
    /// The MSR value, or `None` when a field does not fit its bits.
    pub fn encode(self) -> Option<u64> {
        Some(match self {
            MsrRequest::SevInfo => info::SEV_INFO_REQ,
            MsrRequest::Cpuid { function, register } => {
                if register > 3 {
                    return None;
                }
                info::CPUID_REQ | u64::from(register) << 30 | u64::from(function) << 32
            }
            MsrRequest::RegisterGhcb { gfn } => {
                if gfn >> 52 != 0 {
                    return None;
                }
                info::REGISTER_GHCB_REQ | gfn << 12
            }
            MsrRequest::PageState { gfn, op } => {
                if gfn > PSC_GFN_MAX {
                    return None;
                }
                info::PSC_REQ | gfn << 12 | (op as u64) << 52
            }
            MsrRequest::RunVmpl { vmpl } => info::RUN_VMPL_REQ | u64::from(vmpl) << 32,
            MsrRequest::HvFeatures => info::HV_FEATURES_REQ,
            MsrRequest::Terminate { set, reason } => {
                if set > 0xf {
                    return None;
                }
                info::TERMINATE_REQ | u64::from(set) << 12 | u64::from(reason) << 16
            }
        })
    }

    /// Decodes a request (the model host's side; also fuzzed). Reserved bits that
    /// the spec requires zero are refused.
    pub fn decode(v: u64) -> Result<Self, MsrError> {
        let fields = v >> 12;
        match v & 0xfff {
            info::SEV_INFO_REQ if fields == 0 => Ok(MsrRequest::SevInfo),
            info::CPUID_REQ if (v >> 12) & 0x3_ffff == 0 => Ok(MsrRequest::Cpuid {
                function: (v >> 32) as u32,
                register: ((v >> 30) & 3) as u8,
            }),
            info::REGISTER_GHCB_REQ => Ok(MsrRequest::RegisterGhcb { gfn: fields }),
            info::PSC_REQ if v >> 56 == 0 => {
                let op = PscOp::from_bits((v >> 52) & 0xf).ok_or(MsrError::Malformed(v))?;
                Ok(MsrRequest::PageState {
                    gfn: fields & PSC_GFN_MAX,
                    op,
                })
            }
            info::RUN_VMPL_REQ if fields & 0xf_ffff == 0 && v >> 40 == 0 => {
                Ok(MsrRequest::RunVmpl {
                    vmpl: (v >> 32) as u8,
                })
            }
            info::HV_FEATURES_REQ if fields == 0 => Ok(MsrRequest::HvFeatures),
            info::TERMINATE_REQ if v >> 24 == 0 => Ok(MsrRequest::Terminate {
                set: ((v >> 12) & 0xf) as u8,
                reason: ((v >> 16) & 0xff) as u8,
            }),
            _ => Err(MsrError::Malformed(v)),
        }
    }
}

/// A response the host wrote to the GHCB MSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrResponse {
    SevInfo {
        max: u16,
        min: u16,
        cbit: u8,
    },
    Cpuid {
        value: u32,
    },
    /// The registered GFN; all ones in bits 63:12 means the host refused.
    RegisterGhcb {
        gfn: u64,
    },
    /// Page-state change result; 0 is success.
    PageState {
        error: u32,
    },
    RunVmpl {
        error: u32,
    },
    HvFeatures {
        features: u64,
    },
}

/// Why a GHCB MSR value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrError {
    /// Unknown GHCBInfo or reserved bits set.
    Malformed(u64),
    /// A well-formed response that does not answer the request made.
    WrongResponse {
        request: MsrRequest,
        response: MsrResponse,
    },
}

impl MsrResponse {
    pub fn encode(self) -> u64 {
        match self {
            MsrResponse::SevInfo { max, min, cbit } => {
                info::SEV_INFO_RESP
                    | u64::from(cbit) << 24
                    | u64::from(min) << 32
                    | u64::from(max) << 48
            }
            MsrResponse::Cpuid { value } => info::CPUID_RESP | u64::from(value) << 32,
            MsrResponse::RegisterGhcb { gfn } => info::REGISTER_GHCB_RESP | gfn << 12,
            MsrResponse::PageState { error } => info::PSC_RESP | u64::from(error) << 32,
            MsrResponse::RunVmpl { error } => info::RUN_VMPL_RESP | u64::from(error) << 32,
            MsrResponse::HvFeatures { features } => info::HV_FEATURES_RESP | features << 12,
        }
    }

    pub fn decode(v: u64) -> Result<Self, MsrError> {
        let hi = (v >> 32) as u32;
        let reserved_mid = (v >> 12) & 0xf_ffff;
        match v & 0xfff {
            info::SEV_INFO_RESP if (v >> 12) & 0xfff == 0 => Ok(MsrResponse::SevInfo {
                max: (v >> 48) as u16,
                min: (v >> 32) as u16,
                cbit: (v >> 24) as u8,
            }),
            info::CPUID_RESP if reserved_mid == 0 => Ok(MsrResponse::Cpuid { value: hi }),
            info::REGISTER_GHCB_RESP => Ok(MsrResponse::RegisterGhcb { gfn: v >> 12 }),
            info::PSC_RESP if reserved_mid == 0 => Ok(MsrResponse::PageState { error: hi }),
            info::RUN_VMPL_RESP if reserved_mid == 0 => Ok(MsrResponse::RunVmpl { error: hi }),
            info::HV_FEATURES_RESP => Ok(MsrResponse::HvFeatures { features: v >> 12 }),
            _ => Err(MsrError::Malformed(v)),
        }
    }

    /// Whether this response is the one the protocol allows for `request`.
    pub fn answers(self, request: MsrRequest) -> bool {
        matches!(
            (request, self),
            (MsrRequest::SevInfo, MsrResponse::SevInfo { .. })
                | (MsrRequest::Cpuid { .. }, MsrResponse::Cpuid { .. })
                | (
                    MsrRequest::RegisterGhcb { .. },
                    MsrResponse::RegisterGhcb { .. }
                )
                | (MsrRequest::PageState { .. }, MsrResponse::PageState { .. })
                | (MsrRequest::RunVmpl { .. }, MsrResponse::RunVmpl { .. })
                | (MsrRequest::HvFeatures, MsrResponse::HvFeatures { .. })
        )
    }
}

/// Decodes the host's answer to `request`, refusing malformed values and answers
/// to a different question.
pub fn expect_response(request: MsrRequest, v: u64) -> Result<MsrResponse, MsrError> {
    let response = MsrResponse::decode(v)?;
    if response.answers(request) {
        Ok(response)
    } else {
        Err(MsrError::WrongResponse { request, response })
    }
}
