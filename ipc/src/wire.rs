//! Protected-call messages described once, encoded and decoded from that description.
//!
//! A server's contract lives in its `*-api` crate as a list of [`wire_message!`](crate::wire_message)
//! descriptions: each message names its label and its fields in register order, and
//! the macro generates the struct or enum, `encode` and a `decode` that treats the
//! registers as a hostile peer's word (wrong label, too few registers and a value a
//! field cannot take are [`DecodeError`]s, never panics or truncations). Register
//! numbers are derived, never written by hand, so the two sides cannot drift apart.
//!
//! A field's type says how it travels:
//! - `name: T` — `T: Field` (integers range-checked into their width, `bool` as 0/1,
//!   byte arrays packed little-endian, and any `wire_message!` `as field` type);
//! - `name: T as newtype` — a tuple struct around an integer (`Relid(pub u32)`);
//! - `name: T as into` — `u64: From<T>` and `T: TryFrom<u64>`;
//! - `name: T as bytes` — a zerocopy struct, little-endian, padded to whole registers.
//!
//! `where |v| predicate` after a field adds a range check of its own.
//!
//! ```
//! ipc::wire_message! {
//!     /// A request with a label.
//!     #[derive(Clone, Debug, PartialEq, Eq)]
//!     pub struct Ping[0x10] { seq: u32, flag: bool, small: u8 where |v| *v < 4 }
//!
//!     /// One label per variant.
//!     #[derive(Clone, Debug, PartialEq, Eq)]
//!     pub enum Reply { Pong[0] { seq: u32 }, Busy[1] }
//!
//!     /// A field made of fields, tagged by its first register.
//!     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
//!     pub enum Shape as field { Dot[0], Line[1] { len: u16 } }
//! }
//! let mut mrs = ipc::MessageRegisters::new();
//! let msg = Ping { seq: 7, flag: true, small: 3 }.encode(&mut mrs);
//! assert_eq!(Ping::decode(msg, &mrs), Ok(Ping { seq: 7, flag: true, small: 3 }));
//! ```

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::{Channel, IpcError, Kernel, MessageInfo, MessageRegisters};

/// Why a peer's message could not be decoded.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// No message of this kind carries that label.
    UnknownLabel(u64),
    /// The message has fewer registers than its fields occupy.
    TooShort { needed: usize, got: usize },
    /// A register holds a value the named field cannot take.
    BadField(&'static str),
}

/// A field value out of range; the message decoder names the field.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct BadValue;

/// A value that travels in a fixed number of message registers.
pub trait Field: Sized {
    const REGS: usize;
    /// `regs` is exactly `REGS` long.
    fn put(&self, regs: &mut [u64]);
    /// `regs` is exactly `REGS` long.
    fn take(regs: &[u64]) -> Result<Self, BadValue>;
}

/// A message with its label(s), as [`wire_message!`](crate::wire_message) generates it.
pub trait Message: Sized {
    fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo;
    fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, DecodeError>;
}

/// Calls `ch` with `request` and decodes the reply as `R`.
pub fn call<Q: Message, R: Message>(
    kernel: &mut dyn Kernel,
    ch: Channel,
    request: &Q,
) -> Result<Result<R, DecodeError>, IpcError> {
    let mut mrs = MessageRegisters::new();
    let msg = request.encode(&mut mrs);
    let reply = ch.pp_call(kernel, msg, &mut mrs)?;
    Ok(R::decode(reply, &mrs))
}

/// Register `i` of a field's window; zero beyond it (the window always has the
/// field's size, so this only guards against a miscounted description).
pub fn word(regs: &[u64], i: usize) -> u64 {
    regs.get(i).copied().unwrap_or(0)
}

pub fn set_word(regs: &mut [u64], i: usize, value: u64) {
    if let Some(r) = regs.get_mut(i) {
        *r = value;
    }
}

/// The `n` registers from `at`, or an empty window past the end (a `take` then
/// reads zeros; decode has already refused messages that are too short).
pub fn window(regs: &[u64], at: usize, n: usize) -> &[u64] {
    regs.get(at..at.saturating_add(n)).unwrap_or(&[])
}

pub fn window_mut(regs: &mut [u64], at: usize, n: usize) -> &mut [u64] {
    regs.get_mut(at..at.saturating_add(n)).unwrap_or(&mut [])
}

pub const fn max(values: &[usize]) -> usize {
    let mut m = 0;
    let mut i = 0;
    while i < values.len() {
        if values[i] > m {
            m = values[i];
        }
        i += 1;
    }
    m
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const REGS: usize = 1;
            fn put(&self, regs: &mut [u64]) {
                set_word(regs, 0, u64::from(*self));
            }
            fn take(regs: &[u64]) -> Result<Self, BadValue> {
                <$t>::try_from(word(regs, 0)).map_err(|_| BadValue)
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64);

impl Field for usize {
    const REGS: usize = 1;
    fn put(&self, regs: &mut [u64]) {
        set_word(regs, 0, *self as u64);
    }
    fn take(regs: &[u64]) -> Result<Self, BadValue> {
        usize::try_from(word(regs, 0)).map_err(|_| BadValue)
    }
}

impl Field for bool {
    const REGS: usize = 1;
    fn put(&self, regs: &mut [u64]) {
        set_word(regs, 0, u64::from(*self));
    }
    fn take(regs: &[u64]) -> Result<Self, BadValue> {
        match word(regs, 0) {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BadValue),
        }
    }
}

/// Bytes packed eight to a register, little-endian; the tail of the last register
/// is zero on encode and ignored on decode.
impl<const N: usize> Field for [u8; N] {
    const REGS: usize = N.div_ceil(8);
    fn put(&self, regs: &mut [u64]) {
        pack(self, regs);
    }
    fn take(regs: &[u64]) -> Result<Self, BadValue> {
        let mut out = [0u8; N];
        unpack(regs, &mut out);
        Ok(out)
    }
}

fn pack(bytes: &[u8], regs: &mut [u64]) {
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        set_word(regs, i, u64::from_le_bytes(w));
    }
}

fn unpack(regs: &[u64], out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let w = word(regs, i).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// Registers a zerocopy value of type `T` occupies.
pub const fn bytes_regs<T>() -> usize {
    size_of::<T>().div_ceil(8)
}

pub fn put_bytes<T: IntoBytes + Immutable>(value: &T, regs: &mut [u64]) {
    pack(value.as_bytes(), regs);
}

/// Any bit pattern is accepted by `FromBytes` types; their own invariants are the
/// consumer's to check, as for bytes read from shared memory.
pub fn take_bytes<T: FromBytes + IntoBytes>(regs: &[u64]) -> Result<T, BadValue> {
    let mut value = T::new_zeroed();
    unpack(regs, value.as_mut_bytes());
    Ok(value)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wire_regs {
    ($t:ty) => {
        <$t as $crate::wire::Field>::REGS
    };
    ($t:ty, bytes) => {
        $crate::wire::bytes_regs::<$t>()
    };
    ($t:ty, newtype) => {
        1
    };
    ($t:ty, into) => {
        1
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wire_put {
    ($v:expr, $regs:expr, $t:ty) => {
        $crate::wire::Field::put($v, $regs)
    };
    ($v:expr, $regs:expr, $t:ty, bytes) => {
        $crate::wire::put_bytes::<$t>($v, $regs)
    };
    ($v:expr, $regs:expr, $t:ty, newtype) => {
        $crate::wire::set_word($regs, 0, u64::from($v.0))
    };
    ($v:expr, $regs:expr, $t:ty, into) => {
        $crate::wire::set_word($regs, 0, u64::from(*$v))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wire_take {
    ($regs:expr, $t:ty) => {
        <$t as $crate::wire::Field>::take($regs)
    };
    ($regs:expr, $t:ty, bytes) => {
        $crate::wire::take_bytes::<$t>($regs)
    };
    ($regs:expr, $t:ty, newtype) => {{
        // A type alias, because a `ty` fragment cannot name a tuple constructor.
        type Newtype = $t;
        ::core::convert::TryFrom::try_from($crate::wire::word($regs, 0))
            .map(|raw| Newtype { 0: raw })
            .map_err(|_| $crate::wire::BadValue)
    }};
    ($regs:expr, $t:ty, into) => {
        <$t as ::core::convert::TryFrom<u64>>::try_from($crate::wire::word($regs, 0))
            .map_err(|_| $crate::wire::BadValue)
    };
}

/// The [`Message`] impl over the inherent `encode`/`decode` the macro generates.
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_message_impl {
    ($name:ident) => {
        impl $crate::wire::Message for $name {
            fn encode(&self, mrs: &mut $crate::MessageRegisters) -> $crate::MessageInfo {
                Self::encode(self, mrs)
            }
            fn decode(
                msg: $crate::MessageInfo,
                mrs: &$crate::MessageRegisters,
            ) -> Result<Self, $crate::wire::DecodeError> {
                Self::decode(msg, mrs)
            }
        }
    };
}

/// Encodes the listed fields (bound as references) into `$regs` from register 0.
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_put_fields {
    ($regs:expr; $($f:ident : $t:ty $(as $c:ident)?),*) => {{
        let _regs: &mut [u64] = $regs;
        let mut _at = 0usize;
        $(
            let n = $crate::__wire_regs!($t $(, $c)?);
            $crate::__wire_put!($f, $crate::wire::window_mut(_regs, _at, n), $t $(, $c)?);
            _at += n;
        )*
    }};
}

/// Decodes the listed fields from `$regs` into local bindings, or returns the error.
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_take_fields {
    ($regs:expr; $($f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),*) => {
        let _regs: &[u64] = $regs;
        let mut _at = 0usize;
        $(
            let n = $crate::__wire_regs!($t $(, $c)?);
            let $f: $t = $crate::__wire_take!($crate::wire::window(_regs, _at, n), $t $(, $c)?)
                .map_err(|_| $crate::wire::DecodeError::BadField(stringify!($f)))?;
            $(
                let check: fn(&$t) -> bool = $check;
                if !check(&$f) {
                    return Err($crate::wire::DecodeError::BadField(stringify!($f)));
                }
            )?
            _at += n;
        )*
    };
}

/// Describes messages; see the [module documentation](crate::wire).
#[macro_export]
macro_rules! wire_message {
    () => {};

    // A struct: a message with one label, or (`as field`) a field made of fields
    // (no label), usable as `T` inside other messages.
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident $([$label:expr])? $(as $kind:ident)? {
            $($(#[$fm:meta])* $f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),* $(,)?
        }
        $($rest:tt)*
    ) => {
        $(#[$m])*
        $vis struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }

        $crate::__wire_struct_impl! {
            [$($label)?] [$($kind)?] $name { $($f : $t $(as $c)? $(where $check)?),* }
        }

        $crate::wire_message! { $($rest)* }
    };

    // An enum: one label per variant, or (`as field`) a tagged union as a field,
    // the tag in the first register and then the variant's fields.
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident $(as $kind:ident)? {
            $(
                $(#[$vm:meta])*
                $v:ident [$label:expr]
                $({ $($(#[$fm:meta])* $f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),* $(,)? })?
            ),* $(,)?
        }
        $($rest:tt)*
    ) => {
        $(#[$m])*
        $vis enum $name {
            $($(#[$vm])* $v $({ $($(#[$fm])* $f: $t),* })?,)*
        }

        $crate::__wire_enum_impl! {
            [$($kind)?] $name {
                $($v [$label] $({ $($f : $t $(as $c)? $(where $check)?),* })?),*
            }
        }

        $crate::wire_message! { $($rest)* }
    };
}

/// The impls of a [`wire_message!`] struct: `[label] []` a message, `[] [field]` a
/// [`Field`].
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_struct_impl {
    (
        [$label:expr] [] $name:ident {
            $($f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),*
        }
    ) => {
        impl $name {
            pub const LABEL: u64 = $label;
            pub const REGS: usize = 0 $(+ $crate::__wire_regs!($t $(, $c)?))*;

            pub fn encode(&self, mrs: &mut $crate::MessageRegisters) -> $crate::MessageInfo {
                let Self { $($f),* } = self;
                $crate::__wire_put_fields!(&mut mrs.0[..]; $($f: $t $(as $c)?),*);
                $crate::MessageInfo::new(Self::LABEL, Self::REGS)
            }

            pub fn decode(
                msg: $crate::MessageInfo,
                mrs: &$crate::MessageRegisters,
            ) -> Result<Self, $crate::wire::DecodeError> {
                if msg.label() != Self::LABEL {
                    return Err($crate::wire::DecodeError::UnknownLabel(msg.label()));
                }
                if msg.count() < Self::REGS {
                    return Err($crate::wire::DecodeError::TooShort {
                        needed: Self::REGS,
                        got: msg.count(),
                    });
                }
                $crate::__wire_take_fields!(&mrs.0[..]; $($f: $t $(as $c)? $(where $check)?),*);
                Ok(Self { $($f),* })
            }
        }

        $crate::__wire_message_impl!($name);

        const _: () = assert!($name::REGS <= $crate::MAX_MESSAGE_REGISTERS);
    };
    (
        [] [field] $name:ident {
            $($f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),*
        }
    ) => {
        impl $crate::wire::Field for $name {
            const REGS: usize = 0 $(+ $crate::__wire_regs!($t $(, $c)?))*;

            fn put(&self, regs: &mut [u64]) {
                let Self { $($f),* } = self;
                $crate::__wire_put_fields!(regs; $($f: $t $(as $c)?),*);
            }

            fn take(regs: &[u64]) -> Result<Self, $crate::wire::BadValue> {
                let decode = || -> Result<Self, $crate::wire::DecodeError> {
                    $crate::__wire_take_fields!(regs; $($f: $t $(as $c)? $(where $check)?),*);
                    Ok(Self { $($f),* })
                };
                decode().map_err(|_| $crate::wire::BadValue)
            }
        }
    };
}

/// The impls of a [`wire_message!`] enum: `[]` a message (labels), `[field]` a
/// [`Field`] (tags).
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_enum_impl {
    (
        [] $name:ident {
            $($v:ident [$label:expr] $({ $($f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),* })?),*
        }
    ) => {
        impl $name {
            /// The label this value travels with.
            pub fn label(&self) -> u64 {
                match self {
                    $(Self::$v { .. } => $label,)*
                }
            }

            pub fn encode(&self, mrs: &mut $crate::MessageRegisters) -> $crate::MessageInfo {
                match self {
                    $(
                        Self::$v $({ $($f),* })? => {
                            let count = 0 $($(+ $crate::__wire_regs!($t $(, $c)?))*)?;
                            $crate::__wire_put_fields!(&mut mrs.0[..]; $($($f: $t $(as $c)?),*)?);
                            $crate::MessageInfo::new($label, count)
                        }
                    )*
                }
            }

            pub fn decode(
                msg: $crate::MessageInfo,
                mrs: &$crate::MessageRegisters,
            ) -> Result<Self, $crate::wire::DecodeError> {
                let label = msg.label();
                $(
                    if label == $label {
                        let needed = 0 $($(+ $crate::__wire_regs!($t $(, $c)?))*)?;
                        if msg.count() < needed {
                            return Err($crate::wire::DecodeError::TooShort {
                                needed,
                                got: msg.count(),
                            });
                        }
                        $crate::__wire_take_fields!(&mrs.0[..]; $($($f: $t $(as $c)? $(where $check)?),*)?);
                        return Ok(Self::$v $({ $($f),* })?);
                    }
                )*
                Err($crate::wire::DecodeError::UnknownLabel(label))
            }
        }

        $crate::__wire_message_impl!($name);

        const _: () = assert!(
            $crate::wire::max(&[$(0 $($(+ $crate::__wire_regs!($t $(, $c)?))*)?),*])
                <= $crate::MAX_MESSAGE_REGISTERS
        );
    };
    (
        [field] $name:ident {
            $($v:ident [$tag:expr] $({ $($f:ident : $t:ty $(as $c:ident)? $(where $check:expr)?),* })?),*
        }
    ) => {
        impl $crate::wire::Field for $name {
            const REGS: usize =
                1 + $crate::wire::max(&[$(0 $($(+ $crate::__wire_regs!($t $(, $c)?))*)?),*]);

            fn put(&self, regs: &mut [u64]) {
                match self {
                    $(
                        Self::$v $({ $($f),* })? => {
                            $crate::wire::set_word(regs, 0, $tag);
                            let _rest = $crate::wire::window_mut(regs, 1, Self::REGS - 1);
                            $crate::__wire_put_fields!(_rest; $($($f: $t $(as $c)?),*)?);
                        }
                    )*
                }
            }

            fn take(regs: &[u64]) -> Result<Self, $crate::wire::BadValue> {
                let tag = $crate::wire::word(regs, 0);
                let _rest = $crate::wire::window(regs, 1, Self::REGS - 1);
                let decode = || -> Result<Self, $crate::wire::DecodeError> {
                    $(
                        if tag == $tag {
                            $crate::__wire_take_fields!(_rest; $($($f: $t $(as $c)? $(where $check)?),*)?);
                            return Ok(Self::$v $({ $($f),* })?);
                        }
                    )*
                    Err($crate::wire::DecodeError::UnknownLabel(tag))
                };
                decode().map_err(|_| $crate::wire::BadValue)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::wire_message! {
        #[derive(Clone, Debug, PartialEq, Eq)]
        struct Point as field { x: u16, y: u16 where |y| *y < 100 }

        #[derive(Clone, Debug, PartialEq, Eq)]
        enum Kind as field { Empty[0], Both[7] { a: u8, p: Point } }

        #[derive(Clone, Debug, PartialEq, Eq)]
        struct Req[0x42] { id: u32, kind: Kind, blob: [u8; 12], on: bool }

        #[derive(Clone, Debug, PartialEq, Eq)]
        enum Rep { Done[0] { value: u64 }, Refused[3] }
    }

    fn sample() -> Req {
        Req {
            id: 9,
            kind: Kind::Both {
                a: 1,
                p: Point { x: 2, y: 3 },
            },
            blob: core::array::from_fn(|i| i as u8 + 1),
            on: true,
        }
    }

    #[test]
    fn layouts_are_derived_from_the_description() {
        assert_eq!(<Point as Field>::REGS, 2);
        assert_eq!(<Kind as Field>::REGS, 4);
        assert_eq!(Req::REGS, 1 + 4 + 2 + 1);
        let mut mrs = MessageRegisters::new();
        let msg = sample().encode(&mut mrs);
        assert_eq!((msg.label(), msg.count()), (0x42, 8));
        assert_eq!(&mrs.0[..5], &[9, 7, 1, 2, 3]);
        assert_eq!(mrs.0[5], u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(mrs.0[6], u64::from_le_bytes([9, 10, 11, 12, 0, 0, 0, 0]));
        assert_eq!(Req::decode(msg, &mrs), Ok(sample()));
    }

    #[test]
    fn malformed_messages_are_refused_with_the_reason() {
        let mut good = MessageRegisters::new();
        let msg = sample().encode(&mut good);
        let cases: &[(&str, MessageInfo, usize, u64, DecodeError)] = &[
            (
                "label",
                MessageInfo::new(0x43, 8),
                0,
                9,
                DecodeError::UnknownLabel(0x43),
            ),
            (
                "short",
                MessageInfo::new(0x42, 7),
                0,
                9,
                DecodeError::TooShort { needed: 8, got: 7 },
            ),
            ("u32", msg, 0, 1 << 32, DecodeError::BadField("id")),
            ("tag", msg, 1, 5, DecodeError::BadField("kind")),
            ("nested u8", msg, 2, 256, DecodeError::BadField("kind")),
            ("where", msg, 4, 100, DecodeError::BadField("kind")),
            ("bool", msg, 7, 2, DecodeError::BadField("on")),
        ];
        for (what, info, reg, value, want) in cases {
            let mut mrs = good.clone();
            mrs.0[*reg] = *value;
            assert_eq!(Req::decode(*info, &mrs), Err(*want), "{what}");
        }
    }

    #[test]
    fn enum_messages_carry_one_label_per_variant() {
        let mut mrs = MessageRegisters::new();
        let msg = Rep::Done { value: u64::MAX }.encode(&mut mrs);
        assert_eq!((msg.label(), msg.count()), (0, 1));
        assert_eq!(Rep::decode(msg, &mrs), Ok(Rep::Done { value: u64::MAX }));
        let msg = Rep::Refused.encode(&mut mrs);
        assert_eq!((msg.label(), msg.count()), (3, 0));
        assert_eq!(Rep::Refused.label(), 3);
        assert_eq!(Rep::decode(msg, &mrs), Ok(Rep::Refused));
        assert_eq!(
            Rep::decode(MessageInfo::new(0, 0), &mrs),
            Err(DecodeError::TooShort { needed: 1, got: 0 })
        );
        assert_eq!(
            Rep::decode(MessageInfo::new(1, 9), &mrs),
            Err(DecodeError::UnknownLabel(1))
        );
    }

    #[test]
    fn empty_tag_variant_ignores_the_rest() {
        let mut regs = [0xffu64; 4];
        Kind::Empty.put(&mut regs);
        assert_eq!(regs[0], 0);
        assert_eq!(Kind::take(&regs), Ok(Kind::Empty));
    }
}
