//! The wire contract between vmbus-server and VSP PDs.
//!
//! vmbus-server calls the VSP (protected calls, so a VSP PD runs at a higher priority
//! than vmbus-server): it asks for the VSP's offers, hands it complete GPADLs, and
//! opens, closes and retargets its channels. A VSP notifies vmbus-server when its
//! offers change; vmbus-server then asks again. GPADL page lists can exceed the
//! message registers, so they travel through a window region vmbus-server writes
//! and the VSP only reads.
//!
//! Both sides decode defensively: registers are a peer's word, never trusted to be in
//! range.

use ipc::{MessageInfo, MessageRegisters, Region, RegionError};
use vmbus_protocol::messages::UserDefinedData;
use vmbus_protocol::{GpadlId, Guid, OfferFlags, Relid, Version};
use zerocopy::{FromBytes, IntoBytes};

use crate::env::{Confidentiality, OpenRequest};

pub mod label {
    /// mr0 = offer slot. Reply [`super::REPLY_OK`] with the offer (see
    /// [`super::VspOffer::encode`]) or [`super::REPLY_NONE`].
    pub const GET_OFFER: u64 = 0x5601;
    /// mr0 = relid, mr1 = gpadl, mr2 = range count, mr3 = words in the window,
    /// mr4 = confidentiality bits. Reply mr0 = status.
    pub const MAP_GPADL: u64 = 0x5602;
    /// mr0 = relid, mr1 = gpadl.
    pub const UNMAP_GPADL: u64 = 0x5603;
    /// See [`super::VspOpen`]. Reply mr0 = status.
    pub const OPEN: u64 = 0x5604;
    /// mr0 = relid.
    pub const CLOSE: u64 = 0x5605;
    /// mr0 = relid, mr1 = target VP. Reply mr0 = status.
    pub const MODIFY: u64 = 0x5606;
}

pub const REPLY_OK: u64 = 0;
pub const REPLY_NONE: u64 = 1;

/// Offer slots vmbus-server asks a VSP about.
pub const MAX_OFFERS_PER_VSP: usize = 8;

const CONF_RING: u64 = 1;
const CONF_EXTERNAL: u64 = 2;
const USER_WORDS: usize = 120 / 8;

/// A register field out of range, or too few registers.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct BadField;

fn need(msg: MessageInfo, n: usize) -> Result<(), BadField> {
    if msg.count() < n {
        Err(BadField)
    } else {
        Ok(())
    }
}

fn u32_of(v: u64) -> Result<u32, BadField> {
    u32::try_from(v).map_err(|_| BadField)
}

fn put_words(mrs: &mut MessageRegisters, at: usize, bytes: &[u8]) {
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        mrs.set(at + i, u64::from_le_bytes(w));
    }
}

fn get_words(mrs: &MessageRegisters, at: usize, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let w = mrs.get(at + i).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

fn guid_at(mrs: &MessageRegisters, at: usize) -> Guid {
    let mut b = [0u8; 16];
    get_words(mrs, at, &mut b);
    Guid::read_from_bytes(&b).unwrap_or(Guid::ZERO)
}

fn confidentiality_bits(c: Confidentiality) -> u64 {
    (if c.ring { CONF_RING } else { 0 }) | if c.external { CONF_EXTERNAL } else { 0 }
}

fn confidentiality_of(v: u64) -> Result<Confidentiality, BadField> {
    if v & !(CONF_RING | CONF_EXTERNAL) != 0 {
        return Err(BadField);
    }
    Ok(Confidentiality {
        ring: v & CONF_RING != 0,
        external: v & CONF_EXTERNAL != 0,
    })
}

/// What a VSP offers in one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VspOffer {
    pub interface_id: Guid,
    pub instance_id: Guid,
    pub subchannel_index: u16,
    pub flags: OfferFlags,
    pub mmio_megabytes: u16,
    pub mmio_megabytes_optional: u16,
    /// The VSP can work on encrypted GPADLs / GPA-direct ranges too.
    pub confidential_external_memory: bool,
    pub user_defined: UserDefinedData,
}

impl VspOffer {
    /// The reply to GET_OFFER: mr0-1 interface, mr2-3 instance, mr4 = subchannel |
    /// flags << 16 | mmio << 32 | mmio_optional << 48, mr5 = external-memory flag,
    /// mr6.. user data.
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        put_words(mrs, 0, self.interface_id.as_bytes());
        put_words(mrs, 2, self.instance_id.as_bytes());
        mrs.set(
            4,
            u64::from(self.subchannel_index)
                | u64::from(self.flags.bits()) << 16
                | u64::from(self.mmio_megabytes) << 32
                | u64::from(self.mmio_megabytes_optional) << 48,
        );
        mrs.set(5, self.confidential_external_memory.into());
        put_words(mrs, 6, &self.user_defined);
        MessageInfo::new(REPLY_OK, 6 + USER_WORDS)
    }

    /// `Ok(None)`: the slot is empty.
    pub fn decode(reply: MessageInfo, mrs: &MessageRegisters) -> Result<Option<Self>, BadField> {
        match reply.label() {
            REPLY_NONE => return Ok(None),
            REPLY_OK => need(reply, 6 + USER_WORDS)?,
            _ => return Err(BadField),
        }
        let packed = mrs.get(4);
        let mut user_defined = [0u8; 120];
        get_words(mrs, 6, &mut user_defined);
        Ok(Some(Self {
            interface_id: guid_at(mrs, 0),
            instance_id: guid_at(mrs, 2),
            subchannel_index: packed as u16,
            flags: OfferFlags((packed >> 16) as u16),
            mmio_megabytes: (packed >> 32) as u16,
            mmio_megabytes_optional: (packed >> 48) as u16,
            confidential_external_memory: match mrs.get(5) {
                0 => false,
                1 => true,
                _ => return Err(BadField),
            },
            user_defined,
        }))
    }
}

/// A complete GPADL handed to the VSP; its range words sit in the window region.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MapGpadl {
    pub relid: Relid,
    pub gpadl: GpadlId,
    pub range_count: u16,
    pub words: u32,
    pub confidentiality: Confidentiality,
}

impl MapGpadl {
    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        mrs.set(0, self.relid.0.into());
        mrs.set(1, self.gpadl.0.into());
        mrs.set(2, self.range_count.into());
        mrs.set(3, self.words.into());
        mrs.set(4, confidentiality_bits(self.confidentiality));
        MessageInfo::new(label::MAP_GPADL, 5)
    }

    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, BadField> {
        need(msg, 5)?;
        Ok(Self {
            relid: Relid(u32_of(mrs.get(0))?),
            gpadl: GpadlId(u32_of(mrs.get(1))?),
            range_count: u16::try_from(mrs.get(2)).map_err(|_| BadField)?,
            words: u32_of(mrs.get(3))?,
            confidentiality: confidentiality_of(mrs.get(4))?,
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

/// An open request as it crosses to the VSP: mr0 relid, mr1 open id, mr2 ring GPADL,
/// mr3 downstream offset, mr4 target VP, mr5 = SINT | paravisor SynIC << 8 |
/// confidentiality << 16, mr6 signal connection id, mr7 event flag, mr8 version,
/// mr9.. user data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VspOpen {
    pub relid: Relid,
    pub open_id: u32,
    pub ring_gpadl: GpadlId,
    pub downstream_page_offset: u32,
    pub target_vp: u32,
    pub target_sint: u8,
    pub paravisor_synic: bool,
    pub confidentiality: Confidentiality,
    pub signal_connection_id: u32,
    pub event_flag: u32,
    pub version: Version,
    pub user_data: UserDefinedData,
}

impl VspOpen {
    pub fn from_request(r: &OpenRequest<'_>) -> Self {
        Self {
            relid: r.relid,
            open_id: r.open_id,
            ring_gpadl: r.ring_gpadl,
            downstream_page_offset: r.downstream_page_offset,
            target_vp: r.target_vp,
            target_sint: r.target_sint,
            paravisor_synic: r.paravisor_synic,
            confidentiality: r.confidentiality,
            signal_connection_id: r.signal_connection_id,
            event_flag: r.event_flag,
            version: r.version,
            user_data: *r.user_data,
        }
    }

    pub fn encode(&self, mrs: &mut MessageRegisters) -> MessageInfo {
        mrs.set(0, self.relid.0.into());
        mrs.set(1, self.open_id.into());
        mrs.set(2, self.ring_gpadl.0.into());
        mrs.set(3, self.downstream_page_offset.into());
        mrs.set(4, self.target_vp.into());
        mrs.set(
            5,
            u64::from(self.target_sint)
                | u64::from(self.paravisor_synic) << 8
                | confidentiality_bits(self.confidentiality) << 16,
        );
        mrs.set(6, self.signal_connection_id.into());
        mrs.set(7, self.event_flag.into());
        mrs.set(8, self.version.0.into());
        put_words(mrs, 9, &self.user_data);
        MessageInfo::new(label::OPEN, 9 + USER_WORDS)
    }

    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, BadField> {
        need(msg, 9 + USER_WORDS)?;
        let packed = mrs.get(5);
        if packed >> 24 != 0 || (packed >> 8) & 0xff > 1 {
            return Err(BadField);
        }
        let mut user_data = [0u8; 120];
        get_words(mrs, 9, &mut user_data);
        Ok(Self {
            relid: Relid(u32_of(mrs.get(0))?),
            open_id: u32_of(mrs.get(1))?,
            ring_gpadl: GpadlId(u32_of(mrs.get(2))?),
            downstream_page_offset: u32_of(mrs.get(3))?,
            target_vp: u32_of(mrs.get(4))?,
            target_sint: packed as u8,
            paravisor_synic: (packed >> 8) & 1 != 0,
            confidentiality: confidentiality_of(packed >> 16)?,
            signal_connection_id: u32_of(mrs.get(6))?,
            event_flag: u32_of(mrs.get(7))?,
            version: Version(u32_of(mrs.get(8))?),
            user_data,
        })
    }
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
    pub fn decode(msg: MessageInfo, mrs: &MessageRegisters) -> Result<Self, BadField> {
        Ok(match msg.label() {
            label::GET_OFFER => {
                need(msg, 1)?;
                let slot = usize::try_from(mrs.get(0)).map_err(|_| BadField)?;
                if slot >= MAX_OFFERS_PER_VSP {
                    return Err(BadField);
                }
                Self::GetOffer { slot }
            }
            label::MAP_GPADL => Self::MapGpadl(MapGpadl::decode(msg, mrs)?),
            label::UNMAP_GPADL => {
                need(msg, 2)?;
                Self::UnmapGpadl {
                    relid: Relid(u32_of(mrs.get(0))?),
                    gpadl: GpadlId(u32_of(mrs.get(1))?),
                }
            }
            label::OPEN => Self::Open(VspOpen::decode(msg, mrs)?),
            label::CLOSE => {
                need(msg, 1)?;
                Self::Close {
                    relid: Relid(u32_of(mrs.get(0))?),
                }
            }
            label::MODIFY => {
                need(msg, 2)?;
                Self::Modify {
                    relid: Relid(u32_of(mrs.get(0))?),
                    target_vp: u32_of(mrs.get(1))?,
                }
            }
            _ => return Err(BadField),
        })
    }
}

/// A status reply (MAP_GPADL, OPEN, MODIFY).
pub fn status_reply(mrs: &mut MessageRegisters, status: u32) -> MessageInfo {
    mrs.set(0, status.into());
    MessageInfo::new(REPLY_OK, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_round_trip_and_empty_slots_are_none() {
        let offer = VspOffer {
            interface_id: vmbus_protocol::ids::interface::STORAGE,
            instance_id: Guid::from_fields(1, 2, 3, [4; 8]),
            subchannel_index: 2,
            flags: OfferFlags::NAMED_PIPE_MODE,
            mmio_megabytes: 7,
            mmio_megabytes_optional: 9,
            confidential_external_memory: true,
            user_defined: core::array::from_fn(|i| i as u8),
        };
        let mut mrs = MessageRegisters::new();
        let reply = offer.encode(&mut mrs);
        assert_eq!(VspOffer::decode(reply, &mrs), Ok(Some(offer)));
        assert_eq!(
            VspOffer::decode(MessageInfo::new(REPLY_NONE, 0), &mrs),
            Ok(None)
        );
        assert_eq!(
            VspOffer::decode(MessageInfo::new(REPLY_OK, 3), &mrs),
            Err(BadField)
        );
        mrs.set(5, 2);
        assert_eq!(VspOffer::decode(reply, &mrs), Err(BadField));
    }

    #[test]
    fn requests_round_trip_and_bad_fields_are_refused() {
        let open = VspOpen {
            relid: Relid(3),
            open_id: 4,
            ring_gpadl: GpadlId(5),
            downstream_page_offset: 6,
            target_vp: 7,
            target_sint: 2,
            paravisor_synic: true,
            confidentiality: Confidentiality {
                ring: true,
                external: false,
            },
            signal_connection_id: 0x2003,
            event_flag: 3,
            version: Version::V6_0,
            user_data: [9; 120],
        };
        let mut mrs = MessageRegisters::new();
        let msg = open.encode(&mut mrs);
        assert_eq!(VspRequest::decode(msg, &mrs), Ok(VspRequest::Open(open)));
        mrs.set(5, 1 << 30);
        assert_eq!(VspRequest::decode(msg, &mrs), Err(BadField));

        let map = MapGpadl {
            relid: Relid(1),
            gpadl: GpadlId(2),
            range_count: 1,
            words: 9,
            confidentiality: Confidentiality::NONE,
        };
        let msg = map.encode(&mut mrs);
        assert_eq!(VspRequest::decode(msg, &mrs), Ok(VspRequest::MapGpadl(map)));
        mrs.set(4, 8);
        assert_eq!(VspRequest::decode(msg, &mrs), Err(BadField));

        mrs.set(0, MAX_OFFERS_PER_VSP as u64);
        assert_eq!(
            VspRequest::decode(MessageInfo::new(label::GET_OFFER, 1), &mrs),
            Err(BadField)
        );
        assert_eq!(
            VspRequest::decode(MessageInfo::new(label::CLOSE, 0), &mrs),
            Err(BadField)
        );
        assert_eq!(
            VspRequest::decode(MessageInfo::new(0x9999, 9), &mrs),
            Err(BadField)
        );
    }
}
