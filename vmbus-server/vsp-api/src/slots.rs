//! VSP slots: vmbus-server numbers its VSPs `0..MAX_VSPS`, and hvcall-pd and synic-pd
//! name their channel to VSP `i` the same way (variable `vsp<i>_channel` in each), so
//! a grant vmbus-server makes for slot `i` checks the right caller everywhere.
//!
//! A slot's channel is checked from the PD's first call on, not from the
//! authority's: a VSP that started before vmbus-server could otherwise claim another
//! channel's connection or flags in that window and keep them. The channel ids are
//! build-time constants shared by every system, so a slot's id must mean "a VSP"
//! in every system; a peer that is not a VSP gets a channel id of its own (hvcall-pd
//! has a port-service slot for that) instead of borrowing a VSP's and needing the
//! checks off. A per-system switch was the alternative, but a system that forgot it
//! would run open, and the Microkit description format sets no plain values.

use ipc::{Channel, Init, InitError, InitExt};

pub const MAX_VSPS: usize = 4;
pub const VSP_CHANNEL_VARS: [&str; MAX_VSPS] =
    ipc::numbered_names!("vsp", "_channel", [0, 1, 2, 3]);
/// In hvcall-pd and synic-pd: the channel vmbus-server grants over.
pub const GRANT_CHANNEL: &str = "grant_channel";

/// A granting PD's view of the VSPs: which channel is which slot, and who grants.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VspChannels {
    authority: Option<Channel>,
    slots: [Option<Channel>; MAX_VSPS],
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
        })
    }

    /// Whether `ch` is the authority's channel.
    pub fn is_authority(&self, ch: Channel) -> bool {
        self.authority == Some(ch)
    }

    /// The slot of the VSP on `ch`; `None` for other peers.
    pub fn slot_of(&self, ch: Channel) -> Option<u8> {
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
    fn vsp_channels_are_slots_from_the_start() {
        let init = FakeInit::new("pd")
            .variable(GRANT_CHANNEL, 3)
            .variable(VSP_CHANNEL_VARS[1], 5);
        let v = VspChannels::init(&init).unwrap_or_else(|e| panic!("{e:?}"));
        // Before the authority has called at all.
        assert_eq!(v.slot_of(Channel::new(5)), Some(1));
        assert!(!v.is_authority(Channel::new(5)));
        assert!(v.is_authority(Channel::new(3)));
        assert_eq!(v.slot_of(Channel::new(4)), None);
        assert_eq!(v.channel(1), Some(Channel::new(5)));
        assert_eq!(v.channel(0), None);
        assert_eq!(v.channel(200), None);
        let bad = FakeInit::new("pd").variable(GRANT_CHANNEL, 64);
        assert!(VspChannels::init(&bad).is_err());
    }
}
