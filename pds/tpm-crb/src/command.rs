//! TPM 2.0 command and response headers (TPM 2.0 Part 1, 18: a 10-byte header of
//! tag, size and code, big-endian) read from bytes the guest wrote, and the
//! 10-byte error responses the TPM gives when a command never reaches the engine.
//!
//! The buffer is copied out of shared memory before it is parsed (the guest may
//! rewrite it at any time), and the size field is trusted only once it is within
//! both the header and the bytes actually copied.

use core::fmt;

use zerocopy::byteorder::{BigEndian, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The header every command and response starts with.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Header {
    pub tag: U16<BigEndian>,
    pub size: U32<BigEndian>,
    /// The command code, or the response code of a response.
    pub code: U32<BigEndian>,
}
pub const HEADER_SIZE: usize = 10;
const _: () = assert!(core::mem::size_of::<Header>() == HEADER_SIZE);

/// TPM_ST values a header may carry.
pub mod tag {
    pub const NO_SESSIONS: u16 = 0x8001;
    pub const SESSIONS: u16 = 0x8002;
    /// What a TPM 1.2 command starts with; a TPM 2.0 answers it with a 1.2-style
    /// error (TPM_BADTAG) so old software learns it talks to a 2.0 TPM.
    pub const TPM12_RQU_COMMAND: u16 = 0x00c1;
    pub const TPM12_RSP_COMMAND: u16 = 0x00c4;
}

/// TPM_RC values (TPM 2.0 Part 2, 6.6) this layer produces or names.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    pub const SUCCESS: Self = Self(0x000);
    /// Also TPM 1.2's TPM_BADTAG (same value), the answer to a 1.2 command.
    pub const BAD_TAG: Self = Self(0x01e);
    pub const INITIALIZE: Self = Self(0x100);
    /// The TPM cannot run commands (here: no engine on this platform yet).
    pub const FAILURE: Self = Self(0x101);
    pub const COMMAND_SIZE: Self = Self(0x142);
    pub const COMMAND_CODE: Self = Self(0x143);
    pub const CANCELED: Self = Self(0x909);

    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SUCCESS => "TPM_RC_SUCCESS",
            Self::BAD_TAG => "TPM_RC_BAD_TAG",
            Self::INITIALIZE => "TPM_RC_INITIALIZE",
            Self::FAILURE => "TPM_RC_FAILURE",
            Self::COMMAND_SIZE => "TPM_RC_COMMAND_SIZE",
            Self::COMMAND_CODE => "TPM_RC_COMMAND_CODE",
            Self::CANCELED => "TPM_RC_CANCELED",
            _ => return None,
        })
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "TPM_RC({:#x})", self.0),
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A TPM_CC (TPM 2.0 Part 2, 6.5): what a command asks for. Open: a guest may
/// send any value; the named ones are those the tests, the oracle and the
/// measured boot use.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommandCode(pub u32);

impl CommandCode {
    pub const CREATE_PRIMARY: Self = Self(0x131);
    pub const SELF_TEST: Self = Self(0x143);
    pub const STARTUP: Self = Self(0x144);
    pub const SHUTDOWN: Self = Self(0x145);
    pub const CREATE: Self = Self(0x153);
    pub const LOAD: Self = Self(0x157);
    pub const QUOTE: Self = Self(0x158);
    pub const UNSEAL: Self = Self(0x15e);
    pub const FLUSH_CONTEXT: Self = Self(0x165);
    pub const GET_CAPABILITY: Self = Self(0x17a);
    pub const GET_RANDOM: Self = Self(0x17b);
    pub const PCR_READ: Self = Self(0x17e);
    pub const PCR_EXTEND: Self = Self(0x182);
}

/// A command whose header checked out: its bytes are exactly `size` long.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    pub tag: u16,
    pub code: CommandCode,
    pub bytes: &'a [u8],
}

impl<'a> Command<'a> {
    /// Checks the header of `buf` (the bytes copied out of the command buffer,
    /// possibly longer than the command). The error is what the TPM answers.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ResponseCode> {
        let Ok((header, _)) = Header::read_from_prefix(buf) else {
            return Err(ResponseCode::COMMAND_SIZE);
        };
        let tag = header.tag.get();
        if tag != tag::NO_SESSIONS && tag != tag::SESSIONS {
            return Err(ResponseCode::BAD_TAG);
        }
        let size = usize::try_from(header.size.get()).unwrap_or(usize::MAX);
        let bytes = buf
            .get(..size)
            .filter(|_| size >= HEADER_SIZE)
            .ok_or(ResponseCode::COMMAND_SIZE)?;
        Ok(Self {
            tag,
            code: CommandCode(header.code.get()),
            bytes,
        })
    }
}

/// The 10-byte response for a command refused with `rc` before it ran. A 1.2
/// command gets the 1.2 response tag, as TPM 2.0 Part 1 (Annex on 1.2 commands)
/// asks, so old software can tell the TPM's version.
pub fn error_response(command: &[u8], rc: ResponseCode) -> [u8; HEADER_SIZE] {
    let tag = match command.get(..2) {
        Some([0x00, 0xc1]) => tag::TPM12_RSP_COMMAND,
        _ => tag::NO_SESSIONS,
    };
    let header = Header {
        tag: U16::new(tag),
        size: U32::new(HEADER_SIZE as u32),
        code: U32::new(rc.0),
    };
    let mut out = [0u8; HEADER_SIZE];
    out.copy_from_slice(header.as_bytes());
    out
}

/// A response's header, checked against the bytes that carry it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub tag: u16,
    pub code: ResponseCode,
    pub bytes: &'a [u8],
}

impl<'a> Response<'a> {
    /// Reads a response (from an engine, or from a peer TPM such as the swtpm
    /// oracle); `None` if the header does not fit or lies about the size.
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        let (header, _) = Header::read_from_prefix(buf).ok()?;
        let size = usize::try_from(header.size.get()).ok()?;
        let bytes = buf.get(..size).filter(|_| size >= HEADER_SIZE)?;
        Some(Self {
            tag: header.tag.get(),
            code: ResponseCode(header.code.get()),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests;
