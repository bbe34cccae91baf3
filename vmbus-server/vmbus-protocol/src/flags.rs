//! Bit sets carried in offers and in version negotiation. Open: unknown bits from the
//! peer are kept, so they can be reported or masked, never lost silently.

use core::fmt;
use core::ops::{BitAnd, BitOr, Not};

use zerocopy::{FromBytes, Immutable, IntoBytes};

macro_rules! bit_set {
    ($name:ident($ty:ty) { $($(#[$cdoc:meta])* $flag:ident = $value:expr,)* }) => {
        impl $name {
            pub const EMPTY: Self = Self(0);
            $($(#[$cdoc])* pub const $flag: Self = Self($value);)*
            /// Every bit this crate gives a name.
            pub const KNOWN: Self = Self(0 $(| $value)*);

            pub const fn bits(self) -> $ty {
                self.0
            }

            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            pub const fn intersection(self, other: Self) -> Self {
                Self(self.0 & other.0)
            }

            pub const fn without(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }

            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }

        impl BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                self.intersection(rhs)
            }
        }

        impl Not for $name {
            type Output = Self;
            fn not(self) -> Self {
                Self(!self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                let mut first = true;
                $(
                    if self.contains(Self::$flag) && Self::$flag.0 != 0 {
                        if !first { f.write_str(" | ")?; }
                        f.write_str(stringify!($flag))?;
                        first = false;
                    }
                )*
                let unknown = self.0 & !Self::KNOWN.0;
                if unknown != 0 {
                    if !first { f.write_str(" | ")?; }
                    write!(f, "{unknown:#x}")?;
                }
                f.write_str(")")
            }
        }
    };
}

/// `chn_flags` of an offer.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable)]
pub struct OfferFlags(pub u16);

bit_set! {
    OfferFlags(u16) {
        ENUMERATE_DEVICE_INTERFACE = 0x0001,
        /// The ring buffer stays in encrypted (private) memory: the paravisor, not the
        /// host, serves this channel. Meaningful only with 6.0 and the confidential
        /// channels feature; before 6.0 the bit meant "server supports transfer pages".
        CONFIDENTIAL_RING_BUFFER = 0x0002,
        /// GPA-direct ranges and further GPADLs stay encrypted too (before 6.0: "server
        /// supports GPADLs").
        CONFIDENTIAL_EXTERNAL_MEMORY = 0x0004,
        NAMED_PIPE_MODE = 0x0010,
        LOOPBACK_OFFER = 0x0100,
        PARENT_OFFER = 0x0200,
        REQUEST_MONITORED_NOTIFICATION = 0x0400,
        TLNPI_PROVIDER_OFFER = 0x2000,
    }
}

impl OfferFlags {
    /// The bits whose meaning depends on Confidential VMBus having been negotiated.
    pub const CONFIDENTIAL: Self = Self(0x0006);
}

/// Feature flags of a 6.0 connection: requested in INITIATE_CONTACT, granted in the
/// VERSION_RESPONSE.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable)]
pub struct FeatureFlags(pub u32);

bit_set! {
    FeatureFlags(u32) {
        GUEST_SPECIFIED_SIGNAL_PARAMETERS = 0x01,
        CHANNEL_INTERRUPT_REDIRECTION = 0x02,
        MODIFY_CONNECTION = 0x04,
        CLIENT_ID = 0x08,
        /// Offers may carry the confidential ring buffer / external memory flags.
        CONFIDENTIAL_CHANNELS = 0x10,
        PAUSE_RESUME = 0x20,
        SERVER_SPECIFIED_MONITOR_PAGES = 0x40,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidential_bits_match_the_wire_values() {
        assert_eq!(OfferFlags::CONFIDENTIAL_RING_BUFFER.bits(), 0x2);
        assert_eq!(OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY.bits(), 0x4);
        assert_eq!(
            OfferFlags::CONFIDENTIAL,
            OfferFlags::CONFIDENTIAL_RING_BUFFER | OfferFlags::CONFIDENTIAL_EXTERNAL_MEMORY
        );
        assert_eq!(FeatureFlags::CONFIDENTIAL_CHANNELS.bits(), 0x10);
    }

    #[test]
    fn debug_names_known_bits_and_shows_unknown_ones() {
        let f = FeatureFlags::CONFIDENTIAL_CHANNELS | FeatureFlags(0x8000_0000);
        assert_eq!(
            std::format!("{f:?}"),
            "FeatureFlags(CONFIDENTIAL_CHANNELS | 0x80000000)"
        );
        assert_eq!(
            (OfferFlags::CONFIDENTIAL | OfferFlags::NAMED_PIPE_MODE)
                .without(OfferFlags::CONFIDENTIAL),
            OfferFlags::NAMED_PIPE_MODE
        );
    }
}
