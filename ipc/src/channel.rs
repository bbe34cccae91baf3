use core::fmt;

use crate::{HandlerError, IpcError, Kernel, MessageInfo, MessageRegisters, PpCall};

/// A channel end, named by the per-PD id system.xml gave it (0..=61, shared with irq ids).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(u8);

impl Channel {
    /// Microkit keeps 62 slots per PD; ids are shared between channels and irqs.
    pub const MAX_ID: u8 = 61;

    /// For ids fixed at compile time; an out-of-range constant fails the build.
    pub const fn new(id: u8) -> Self {
        assert!(id <= Self::MAX_ID, "channel id out of range");
        Self(id)
    }

    pub const fn try_new(id: u8) -> Option<Self> {
        if id <= Self::MAX_ID {
            Some(Self(id))
        } else {
            None
        }
    }

    pub const fn index(self) -> u8 {
        self.0
    }

    /// This channel's bit in a channel mask (a [`ChannelSet`]'s bits, or a
    /// system.xml variable listing channels).
    pub const fn bit(self) -> u64 {
        1 << self.0
    }

    pub fn notify(self, kernel: &mut dyn Kernel) -> Result<(), IpcError> {
        kernel.notify(self)
    }

    pub fn pp_call(
        self,
        kernel: &mut dyn Kernel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, IpcError> {
        kernel.pp_call(PpCall::new(self, msg, mrs))
    }

    pub fn irq_ack(self, kernel: &mut dyn Kernel) -> Result<(), IpcError> {
        kernel.irq_ack(self)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.0)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// The set of channels that were signalled since the PD last ran, as Microkit delivers
/// them: several notifications may be coalesced into one `notified` call.
#[derive(Copy, Clone, Default, PartialEq, Eq)]
pub struct ChannelSet(u64);

impl ChannelSet {
    pub const EMPTY: Self = Self(0);

    pub const fn from_bits(bits: u64) -> Self {
        Self(bits & ((1u64 << (Channel::MAX_ID + 1)) - 1))
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub fn insert(&mut self, ch: Channel) {
        self.0 |= 1 << ch.0;
    }

    pub fn contains(self, ch: Channel) -> bool {
        self.0 & (1 << ch.0) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Channel> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let id = rest.trailing_zeros() as u8;
            rest &= rest - 1;
            Some(Channel(id))
        })
    }

    /// For a `notified` handler: the first channel in the set that `expected` does
    /// not accept is an [`HandlerError::UnexpectedNotification`], checked before the
    /// handler acts on any of them.
    pub fn only_from(self, mut expected: impl FnMut(Channel) -> bool) -> Result<(), HandlerError> {
        match self.iter().find(|&ch| !expected(ch)) {
            Some(ch) => Err(HandlerError::UnexpectedNotification(ch)),
            None => Ok(()),
        }
    }
}

impl FromIterator<Channel> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = Channel>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for ch in iter {
            set.insert(ch);
        }
        set
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|c| c.0)).finish()
    }
}

/// A child PD, by the `id` its parent gave it in system.xml.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Child(pub u8);

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn channel_ids_above_61_are_refused() {
        assert!(Channel::try_new(61).is_some());
        assert!(Channel::try_new(62).is_none());
        assert!(Channel::try_new(255).is_none());
    }

    #[test]
    fn channel_set_iterates_in_id_order() {
        let set: ChannelSet = [Channel::new(7), Channel::new(0), Channel::new(61)]
            .into_iter()
            .collect();
        let ids: Vec<u8> = set.iter().map(Channel::index).collect();
        assert_eq!(ids, [0, 7, 61]);
        assert!(set.contains(Channel::new(7)));
        assert!(!set.contains(Channel::new(8)));
        let bits = Channel::new(0).bit() | Channel::new(7).bit() | Channel::new(61).bit();
        assert_eq!(set.bits(), bits);
    }

    #[test]
    fn only_from_names_the_lowest_unexpected_channel() {
        let set: ChannelSet = [Channel::new(2), Channel::new(5), Channel::new(9)]
            .into_iter()
            .collect();
        assert_eq!(set.only_from(|ch| ch.index() < 10), Ok(()));
        assert_eq!(
            set.only_from(|ch| ch == Channel::new(2)),
            Err(HandlerError::UnexpectedNotification(Channel::new(5)))
        );
        assert_eq!(ChannelSet::EMPTY.only_from(|_| false), Ok(()));
    }

    #[test]
    fn channel_set_drops_bits_beyond_the_id_space() {
        assert_eq!(ChannelSet::from_bits(u64::MAX).iter().count(), 62);
    }
}
