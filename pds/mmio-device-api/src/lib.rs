//! The contract between the VMM PD and every PD that emulates a device behind guest
//! MMIO (the ioapic, the tpm): the VMM forwards each access it cannot satisfy from
//! mapped memory as [`MmioRequest`], and the device answers with its status as the
//! reply label and the value read in mr0.
//!
//! A device adds its own labels next to these (the ioapic's EOI and line calls) and
//! describes its refusals with [`status!`], so the VMM needs one forwarding path for
//! all of them ([`forward`]) and a device's tests one client ([`call`]).
#![no_std]

use core::fmt;
use core::fmt::Write as _;

use ipc::{
    Channel, Handler, HandlerError, IpcError, Kernel, MessageInfo, MessageRegisters, PpCall,
};

pub use ipc::wire::DecodeError;

/// Protected-call labels. The 0x1A00 range is the MMIO device contract; a device's
/// own calls take the labels after these.
pub mod label {
    /// mr0 = guest physical address, mr1 = size in bytes. Reply: the device's
    /// status, mr0 = the value read, zero-extended.
    pub const MMIO_READ: u64 = 0x1A01;
    /// mr0 = guest physical address, mr1 = size, mr2 = value (bytes above `size`
    /// are ignored). Reply: the device's status.
    pub const MMIO_WRITE: u64 = 0x1A02;
}

ipc::wire_message! {
    /// A guest access the VMM forwards. Address and size are the guest's: the device
    /// checks them against its own window and access rules.
    #[derive(Copy, Clone, PartialEq, Eq, Debug)]
    pub enum MmioRequest {
        Read[label::MMIO_READ] { gpa: u64, size: u64 },
        Write[label::MMIO_WRITE] { gpa: u64, size: u64, value: u64 },
    }
}

impl MmioRequest {
    /// Address, size and, for a write, the value as the guest gave it.
    pub fn parts(self) -> (u64, u64, Option<u64>) {
        match self {
            Self::Read { gpa, size } => (gpa, size, None),
            Self::Write { gpa, size, value } => (gpa, size, Some(value)),
        }
    }
}

/// The reply label of a call that succeeded; any other label is the device's
/// refusal.
pub const OK: u64 = 0;

/// The bits of a register value an access of `size` bytes carries.
pub fn value_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

/// Fills `mrs` with a device's answer: its status as the label, `value` in mr0.
pub fn reply(mrs: &mut MessageRegisters, status: u64, value: u64) -> MessageInfo {
    mrs.set(0, value);
    MessageInfo::new(status, 1)
}

/// What a device made of a call: the value to return (zero where there is none)
/// or its refusal; an `Err` outside is what stops the PD itself.
pub type Answer<S> = Result<Result<u64, S>, HandlerError>;

/// The body of `ipc::Handler::protected` for a device PD type with an inherent
/// `fn call(&mut self, &mut dyn Kernel, &ipc::PpCall<'_>) -> Answer<Status>`:
/// the answer goes back as the contract says (status label, value in mr0). Use
/// it inside the type's `impl Handler`.
#[macro_export]
macro_rules! protected {
    () => {
        fn protected(
            &mut self,
            kernel: &mut dyn ::ipc::Kernel,
            call: ::ipc::PpCall<'_>,
        ) -> ::ipc::HandlerReply {
            let answer = self.call(kernel, &call)?;
            Ok($crate::answer(call.mrs, answer))
        }
    };
}

/// Fills `mrs` with a device's answer to one call.
pub fn answer<S: Into<u64>>(mrs: &mut MessageRegisters, answer: Result<u64, S>) -> MessageInfo {
    match answer {
        Ok(value) => reply(mrs, OK, value),
        Err(status) => reply(mrs, status.into(), 0),
    }
}

/// Why a client call did not succeed; `S` is the device's status type.
#[derive(Copy, Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ClientError<S> {
    /// The call itself failed (not granted, the device PD is gone, ...).
    #[error("{0}")]
    Ipc(IpcError),
    /// The device refused the request.
    #[error("refused: {0}")]
    Refused(S),
}

impl<S> From<IpcError> for ClientError<S> {
    fn from(e: IpcError) -> Self {
        Self::Ipc(e)
    }
}

/// Makes a call with `args` in mr0.. and returns mr0 of a successful reply. The
/// arguments go out as given, unchecked, so tests can send what a broken peer would.
pub fn call<S: From<u64>>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    label: u64,
    args: &[u64],
) -> Result<u64, ClientError<S>> {
    let (msg, mut mrs) = message(label, args);
    client_call(kernel, ch, msg, &mut mrs)
}

/// A message of `label` with `args` in mr0.., as a client sends it.
pub fn message(label: u64, args: &[u64]) -> (MessageInfo, MessageRegisters) {
    let mut mrs = MessageRegisters::new();
    for (i, &a) in args.iter().enumerate() {
        mrs.set(i, a);
    }
    (MessageInfo::new(label, args.len()), mrs)
}

/// Hands a device PD one call from `ch` in-process, as its tests do: the reply's
/// status and mr0, or the handler's own error. A reply of any other length than
/// mr0 alone breaks the contract and panics, so a test cannot miss it.
pub fn serve<S: From<u64>>(
    pd: &mut dyn Handler,
    kernel: &mut dyn Kernel,
    ch: Channel,
    label: u64,
    args: &[u64],
) -> Result<(S, u64), HandlerError> {
    let (msg, mut mrs) = message(label, args);
    let reply = pd.protected(kernel, PpCall::new(ch, msg, &mut mrs))?;
    assert_eq!(reply.count(), 1, "an MMIO device replies with mr0 alone");
    Ok((S::from(reply.label()), mrs.get(0)))
}

fn client_call<S: From<u64>>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    msg: MessageInfo,
    mrs: &mut MessageRegisters,
) -> Result<u64, ClientError<S>> {
    let reply = ch.pp_call(kernel, msg, mrs)?;
    match reply.label() {
        OK => Ok(mrs.get(0)),
        refused => Err(ClientError::Refused(S::from(refused))),
    }
}

/// Sends one forwarded access; the value read (zero for a write) on success.
pub fn access<S: From<u64>>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    request: MmioRequest,
) -> Result<u64, ClientError<S>> {
    let mut mrs = MessageRegisters::new();
    let msg = request.encode(&mut mrs);
    client_call(kernel, ch, msg, &mut mrs)
}

/// A guest MMIO read at `gpa` of `size` bytes.
pub fn mmio_read<S: From<u64>>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
) -> Result<u64, ClientError<S>> {
    access(kernel, ch, MmioRequest::Read { gpa, size })
}

/// A guest MMIO write.
pub fn mmio_write<S: From<u64>>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
    value: u64,
) -> Result<(), ClientError<S>> {
    access(kernel, ch, MmioRequest::Write { gpa, size, value }).map(drop)
}

/// The VMM's path for any device: a read (`write` is `None`) or a write, with the
/// refusal kept as the raw status the VMM only counts.
pub fn forward(
    kernel: &mut dyn Kernel,
    ch: Channel,
    gpa: u64,
    size: u64,
    write: Option<u64>,
) -> Result<u64, ClientError<u64>> {
    let request = match write {
        Some(value) => MmioRequest::Write { gpa, size, value },
        None => MmioRequest::Read { gpa, size },
    };
    access(kernel, ch, request)
}

/// One log line through the kernel's debug console, prefixed with the device's
/// name, without an allocator. A line too long for the buffer is cut, not lost.
pub fn log(kernel: &mut dyn Kernel, device: &str, args: fmt::Arguments<'_>) {
    let mut line = heapless::String::<200>::new();
    let _ = line.write_str(device);
    let _ = line.write_str(": ");
    let _ = line.write_fmt(args);
    if line.len() == line.capacity() {
        line.pop();
    }
    let _ = line.push('\n');
    kernel.debug_puts(&line);
}

/// A device's status codes, the reply label (an open enum: a newer PD may answer
/// with a status this client does not know). The refusals every MMIO device has
/// come with it, named after the device's window; each listed code adds a
/// constant, and `Debug` and `Display` print the names.
///
/// ```
/// mmio_device_api::status! {
///     /// A device's outcomes.
///     pub struct Status in "the window" {
///         /// A device's own refusal.
///         BUSY = 5 => "busy",
///     }
/// }
/// assert_eq!(format!("{:?}", Status::OUTSIDE_WINDOW), "Status(outside the window)");
/// assert_eq!(Status::BUSY.to_string(), "busy");
/// assert_eq!(Status::from(7).name(), None);
/// ```
#[macro_export]
macro_rules! status {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $window:literal {
            $($(#[$cmeta:meta])* $code:ident = $value:expr => $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash)]
        $vis struct $name(pub u64);

        impl $name {
            pub const OK: Self = Self($crate::OK);
            /// The access does not lie wholly inside the device's window.
            pub const OUTSIDE_WINDOW: Self = Self(1);
            /// An access size no instruction makes, or one the device lacks.
            pub const BAD_SIZE: Self = Self(2);
            /// The caller's channel may not make this call.
            pub const NOT_PERMITTED: Self = Self(3);
            /// Unknown label, too few registers, or a field out of its range.
            pub const BAD_REQUEST: Self = Self(4);
            $($(#[$cmeta])* pub const $code: Self = Self($value);)*

            pub fn name(self) -> Option<&'static str> {
                Some(match self {
                    Self::OK => "ok",
                    Self::OUTSIDE_WINDOW => concat!("outside ", $window),
                    Self::BAD_SIZE => "bad access size",
                    Self::NOT_PERMITTED => "not permitted",
                    Self::BAD_REQUEST => "bad request",
                    $(Self::$code => $text,)*
                    _ => return None,
                })
            }
        }

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl From<$name> for u64 {
            fn from(status: $name) -> u64 {
                status.0
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(name) => write!(f, "{}({name})", stringify!($name)),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "status {:#x}", self.0),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests;
