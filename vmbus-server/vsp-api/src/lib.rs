//! The wire contract between vmbus-server and VSP PDs.
//!
//! vmbus-server calls the VSP (protected calls, so a VSP PD runs at a higher priority
//! than vmbus-server): it asks for the VSP's offers, hands it complete GPADLs, and
//! opens, closes and retargets its channels. A VSP notifies vmbus-server when its
//! offers change; vmbus-server then asks again. GPADL page lists can exceed the
//! message registers, so they travel through a window region vmbus-server writes
//! and the VSP only reads.
//!
//! Every message is described once in [`ipc::wire_message!`]; both sides decode
//! defensively: registers are a peer's word, never trusted to be in range.
#![no_std]

use ipc::{MessageInfo, MessageRegisters, Region, RegionError};
use vmbus_protocol::messages::UserDefinedData;
use vmbus_protocol::{GpadlId, Guid, OfferFlags, Relid, Version};
use zerocopy::IntoBytes;

pub use grants::{ChannelGrants, GrantError, MAX_GRANTS};
pub use ipc::wire::DecodeError;
pub use slots::{VspChannels, GRANT_CHANNEL, MAX_VSPS, VSP_CHANNEL_VARS};

mod grants;
mod slots;

pub mod label {
    /// Reply: [`super::VspOffer`] or [`super::REPLY_NONE`].
    pub const GET_OFFER: u64 = 0x5601;
    /// The range words sit in the window. Reply: [`super::StatusReply`].
    pub const MAP_GPADL: u64 = 0x5602;
    pub const UNMAP_GPADL: u64 = 0x5603;
    /// Reply: [`super::StatusReply`].
    pub const OPEN: u64 = 0x5604;
    pub const CLOSE: u64 = 0x5605;
    /// Reply: [`super::StatusReply`].
    pub const MODIFY: u64 = 0x5606;
}

pub const REPLY_OK: u64 = 0;
pub const REPLY_NONE: u64 = 1;

/// Offer slots vmbus-server asks a VSP about.
pub const MAX_OFFERS_PER_VSP: usize = 8;

ipc::wire_message! {
    /// Which of a channel's memory stays encrypted (private to the guest and
    /// paravisor).
    #[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
    pub struct Confidentiality as field {
        /// The ring buffer GPADL.
        ring: bool,
        /// Every other GPADL and GPA-direct range.
        external: bool,
    }

    /// What a VSP offers in one slot.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct VspOffer as field {
        interface_id: Guid as bytes,
        instance_id: Guid as bytes,
        subchannel_index: u16,
        flags: OfferFlags as newtype,
        mmio_megabytes: u16,
        mmio_megabytes_optional: u16,
        /// The VSP can work on encrypted GPADLs / GPA-direct ranges too.
        confidential_external_memory: bool,
        user_defined: UserDefinedData,
    }

    /// The reply to GET_OFFER.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum OfferReply { Offer[REPLY_OK] { offer: VspOffer }, Empty[REPLY_NONE] }

    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct GetOffer[label::GET_OFFER] {
        slot: usize where |s| *s < MAX_OFFERS_PER_VSP,
    }

    /// A complete GPADL handed to the VSP; its range words sit in the window region.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct MapGpadl[label::MAP_GPADL] {
        relid: Relid as newtype,
        gpadl: GpadlId as newtype,
        range_count: u16,
        words: u32,
        confidentiality: Confidentiality,
    }

    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct UnmapGpadl[label::UNMAP_GPADL] { relid: Relid as newtype, gpadl: GpadlId as newtype }

    /// An open request as it crosses to the VSP.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct VspOpen[label::OPEN] {
        relid: Relid as newtype,
        open_id: u32,
        ring_gpadl: GpadlId as newtype,
        downstream_page_offset: u32,
        target_vp: u32,
        target_sint: u8,
        paravisor_synic: bool,
        confidentiality: Confidentiality,
        signal_connection_id: u32,
        event_flag: u32,
        version: Version as newtype,
        user_data: UserDefinedData,
        /// The opened offer's sub-channel index (0: the device's primary channel),
        /// so a VSP with sub-channels knows which of its offers this relid is.
        subchannel_index: u16,
    }

    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct CloseChannel[label::CLOSE] { relid: Relid as newtype }

    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct ModifyChannel[label::MODIFY] { relid: Relid as newtype, target_vp: u32 }

    /// The VSP's answer to MAP_GPADL, OPEN and MODIFY: an NTSTATUS.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub struct StatusReply[REPLY_OK] { status: u32 }
}

impl Confidentiality {
    pub const NONE: Self = Self {
        ring: false,
        external: false,
    };
}

impl VspOffer {
    /// A plain device: interface and instance, no subchannel, MMIO or user data,
    /// plaintext memory only.
    pub fn device(interface_id: Guid, instance_id: Guid) -> Self {
        Self {
            interface_id,
            instance_id,
            subchannel_index: 0,
            flags: OfferFlags::EMPTY,
            mmio_megabytes: 0,
            mmio_megabytes_optional: 0,
            confidential_external_memory: false,
            user_defined: [0; 120],
        }
    }

    /// The reply to GET_OFFER for a filled slot.
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        OfferReply::Offer {
            offer: self.clone(),
        }
        .encode(mrs)
    }

    /// `Ok(None)`: the slot is empty.
    pub fn decode(reply: MessageInfo, mrs: &MessageRegisters) -> Result<Option<Self>, DecodeError> {
        Ok(match OfferReply::decode(reply, mrs)? {
            OfferReply::Offer { offer } => Some(offer),
            OfferReply::Empty => None,
        })
    }
}

/// Writes GPADL range words into the window (vmbus-server side).
pub fn write_window(
    window: &Region<'_>,
    words: impl Iterator<Item = u64>,
) -> Result<u32, RegionError> {
    let mut n = 0u32;
    for (i, w) in words.enumerate() {
        window.write(i * 8, &w)?;
        n += 1;
    }
    Ok(n)
}

/// Reads `out.len()` range words from the window (VSP side).
pub fn read_window(window: &Region<'_>, out: &mut [u64]) -> Result<(), RegionError> {
    window.read_bytes(0, out.as_mut_bytes())
}

/// A call from vmbus-server, decoded on the VSP side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VspRequest {
    GetOffer { slot: usize },
    MapGpadl(MapGpadl),
    UnmapGpadl { relid: Relid, gpadl: GpadlId },
    Open(VspOpen),
    Close { relid: Relid },
    Modify { relid: Relid, target_vp: u32 },
}

impl VspRequest {
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, DecodeError> {
        Ok(match msg.label() {
            label::GET_OFFER => Self::GetOffer {
                slot: GetOffer::decode(msg, mrs)?.slot,
            },
            label::MAP_GPADL => Self::MapGpadl(MapGpadl::decode(msg, mrs)?),
            label::UNMAP_GPADL => {
                let UnmapGpadl { relid, gpadl } = UnmapGpadl::decode(msg, mrs)?;
                Self::UnmapGpadl { relid, gpadl }
            }
            label::OPEN => Self::Open(VspOpen::decode(msg, mrs)?),
            label::CLOSE => Self::Close {
                relid: CloseChannel::decode(msg, mrs)?.relid,
            },
            label::MODIFY => {
                let ModifyChannel { relid, target_vp } = ModifyChannel::decode(msg, mrs)?;
                Self::Modify { relid, target_vp }
            }
            other => return Err(DecodeError::UnknownLabel(other)),
        })
    }

    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        match self {
            Self::GetOffer { slot } => GetOffer { slot: *slot }.encode(mrs),
            Self::MapGpadl(m) => m.encode(mrs),
            Self::UnmapGpadl { relid, gpadl } => UnmapGpadl {
                relid: *relid,
                gpadl: *gpadl,
            }
            .encode(mrs),
            Self::Open(o) => o.encode(mrs),
            Self::Close { relid } => CloseChannel { relid: *relid }.encode(mrs),
            Self::Modify { relid, target_vp } => ModifyChannel {
                relid: *relid,
                target_vp: *target_vp,
            }
            .encode(mrs),
        }
    }
}

/// A status reply (MAP_GPADL, OPEN, MODIFY).
pub fn status_reply(mrs: &mut MessageRegisters, status: u32) -> MessageInfo {
    StatusReply { status }.encode(mrs)
}

#[cfg(test)]
mod tests;
