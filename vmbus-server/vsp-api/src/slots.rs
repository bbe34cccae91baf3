//! VSP slots: vmbus-server numbers its VSPs `0..MAX_VSPS`, and hvcall-pd and synic-pd
//! name their channel to VSP `i` the same way (variable `vsp<i>_channel` in each), so
//! a grant vmbus-server makes for slot `i` checks the right caller everywhere.

use ipc::{Channel, Init, InitError, InitExt};

pub const MAX_VSPS: usize = 4;
pub const VSP_CHANNEL_VARS: [&str; MAX_VSPS] = [
    "vsp0_channel",
    "vsp1_channel",
    "vsp2_channel",
    "vsp3_channel",
];
/// In hvcall-pd and synic-pd: the channel vmbus-server grants over.
pub const GRANT_CHANNEL: &str = "grant_channel";

/// A granting PD's view of the VSPs: which channel is which slot, and who grants.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VspChannels {
    authority: Option<Channel>,
    slots: [Option<Channel>; MAX_VSPS],
    /// The authority has called. The image's channel table names the slots, but a
    /// system without vmbus-server (tests/systems/hvcall_synic.xml) uses those
    /// channels for other peers; vmbus-server calls first thing at start, before it
    /// asks any VSP for offers, so every VSP channel is checked from then on.
    authority_seen: bool,
}

impl VspChannels {
    /// Reads [`GRANT_CHANNEL`] and [`VSP_CHANNEL_VARS`], each optional.
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let mut slots = [None; MAX_VSPS];
        for (slot, name) in slots.iter_mut().zip(VSP_CHANNEL_VARS) {
            *slot = init.optional(init.channel(name))?;
        }
        Ok(Self {
            authority: init.optional(init.channel(GRANT_CHANNEL))?,
            slots,
            authority_seen: false,
        })
    }

    /// Notes a call on `ch`; true if it is the authority's.
    pub fn note_caller(&mut self, ch: Channel) -> bool {
        let authority = self.authority == Some(ch);
        self.authority_seen |= authority;
        authority
    }

    /// The slot of the VSP on `ch`, once checks are on; `None` for other peers.
    pub fn slot_of(&self, ch: Channel) -> Option<u8> {
        if !self.authority_seen {
            return None;
        }
        self.slots
            .iter()
            .position(|c| *c == Some(ch))
            .and_then(|i| u8::try_from(i).ok())
    }

    /// The channel of VSP `slot`, if the system has one there.
    pub fn channel(&self, slot: u8) -> Option<Channel> {
        self.slots.get(usize::from(slot)).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use ipc::testing::FakeInit;

    use super::*;

    #[test]
    fn vsp_channels_are_checked_once_the_authority_has_called() {
        let init = FakeInit::new("pd")
            .variable(GRANT_CHANNEL, 3)
            .variable(VSP_CHANNEL_VARS[1], 5);
        let mut v = VspChannels::init(&init).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(v.slot_of(Channel::new(5)), None, "before the authority");
        assert!(!v.note_caller(Channel::new(5)));
        assert_eq!(v.slot_of(Channel::new(5)), None);
        assert!(v.note_caller(Channel::new(3)));
        assert_eq!(v.slot_of(Channel::new(5)), Some(1));
        assert_eq!(v.slot_of(Channel::new(4)), None);
        assert_eq!(v.channel(1), Some(Channel::new(5)));
        assert_eq!(v.channel(0), None);
        assert_eq!(v.channel(200), None);
        let bad = FakeInit::new("pd").variable(GRANT_CHANNEL, 64);
        assert!(VspChannels::init(&bad).is_err());
    }
}
