//! Protocol versions and the connection constants that depend on them.

use core::fmt;

/// A VMBus protocol version, `major << 16 | minor`. Open: a guest may ask for any
/// 32-bit value, and an unknown one must still be representable to be refused.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl Version {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self(((major as u32) << 16) | minor as u32)
    }

    pub const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub const fn minor(self) -> u16 {
        self.0 as u16
    }

    /// Windows Server 2008.
    pub const WS2008: Self = Self::new(0, 13);
    pub const WIN7: Self = Self::new(1, 1);
    pub const WIN8: Self = Self::new(2, 4);
    pub const WIN8_1: Self = Self::new(3, 0);
    pub const WIN10: Self = Self::new(4, 0);
    /// Adds MODIFYCHANNEL.
    pub const WIN10_V4_1: Self = Self::new(4, 1);
    /// Adds the message SINT in INITIATE_CONTACT and message connection id 4.
    pub const WIN10_V5: Self = Self::new(5, 0);
    /// Adds the message VTL in INITIATE_CONTACT.
    pub const WIN10_V5_1: Self = Self::new(5, 1);
    pub const WIN10_V5_2: Self = Self::new(5, 2);
    /// Adds MODIFYCHANNEL_RESPONSE.
    pub const WIN10_V5_3: Self = Self::new(5, 3);
    /// Adds feature flags, among them Confidential VMBus channels.
    pub const V6_0: Self = Self::new(6, 0);

    /// Every version a guest may negotiate, newest first: the order Linux tries them.
    pub const ALL: [Self; 11] = [
        Self::V6_0,
        Self::WIN10_V5_3,
        Self::WIN10_V5_2,
        Self::WIN10_V5_1,
        Self::WIN10_V5,
        Self::WIN10_V4_1,
        Self::WIN10,
        Self::WIN8_1,
        Self::WIN8,
        Self::WIN7,
        Self::WS2008,
    ];

    /// Whether this is one of the versions the protocol defines.
    pub fn is_known(self) -> bool {
        Self::ALL.contains(&self)
    }

    /// The connection id the guest posts channel messages to once this version is
    /// negotiated (it also posts INITIATE_CONTACT for this version there).
    pub fn message_connection_id(self) -> u32 {
        if self >= Self::WIN10_V5 {
            MESSAGE_CONNECTION_ID_4
        } else {
            MESSAGE_CONNECTION_ID
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The message connection used before 5.0 (and for INITIATE_CONTACT of those versions).
pub const MESSAGE_CONNECTION_ID: u32 = 1;
/// The event connection pre-Win7 guests signal through (with the interrupt page).
pub const EVENT_CONNECTION_ID: u32 = 2;
/// The message connection from 5.0 on.
pub const MESSAGE_CONNECTION_ID_4: u32 = 4;
/// The SINT channel messages arrive on unless a 5.x guest names another.
pub const MESSAGE_SINT: u8 = 2;
/// The `message_type` of an hv_message carrying a VMBus channel message.
pub const HV_MESSAGE_TYPE_CHANNEL: u32 = 1;
/// Largest channel message (the hv_message payload).
pub const MAX_MESSAGE_SIZE: usize = 240;
/// Guest pages are 4 KiB on the wire whatever the guest's own page size.
pub const PAGE_SIZE: u64 = hvdef::HV_PAGE_SIZE;
/// Relids index the 2048-bit event flag page; bit 0 is reserved for the pre-Win8
/// shared interrupt, so 1..=2047 are usable.
pub const MAX_RELID: u32 = 2047;
/// `target_vp` meaning "do not interrupt".
pub const VP_INDEX_DISABLE_INTERRUPT: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_newest_first_and_encode_major_minor() {
        assert_eq!(Version::V6_0.0, 0x0006_0000);
        assert_eq!(Version::WS2008.0, 13);
        assert!(Version::ALL.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(Version::WIN10_V5_3.major(), 5);
        assert_eq!(Version::WIN10_V5_3.minor(), 3);
        assert!(!Version(0x0005_0004).is_known());
    }

    #[test]
    fn connection_id_switches_at_5_0() {
        assert_eq!(Version::WIN10_V4_1.message_connection_id(), 1);
        assert_eq!(Version::WIN10_V5.message_connection_id(), 4);
        assert_eq!(Version::V6_0.message_connection_id(), 4);
    }
}
