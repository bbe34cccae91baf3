//! The RNDIS control plane: what the NIC answers to INITIALIZE, QUERY, SET, RESET
//! and KEEPALIVE, and which received frames its packet filter lets through.
//!
//! The OIDs answered are the ones Linux's `rndis_filter.c` asks during bring-up
//! (MAC, frame size, link state, offload capabilities and parameters, packet
//! filter) plus the informational ones tools read, and receive-side scaling: the
//! capability says how many channels the NIC can have (Linux asks for sub-channels
//! up to that and its CPU count), the parameters steer received frames ([`Rss`]).

use alloc::vec::Vec;

use netvsp_protocol::oid::{self, filter, Oid};
use netvsp_protocol::rndis::{self, Message, MessageType, Status};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::IntoBytes;

use crate::rss::{Rss, TABLE_ENTRIES};

/// The MTU offered (GEN_MAXIMUM_FRAME_SIZE): Linux caps its interface to it.
pub const MTU: u32 = 1500;
/// The largest frame moved either way: MTU, Ethernet header and one 802.1Q tag.
pub const MAX_FRAME: usize = MTU as usize + 14 + 4;
/// Packets the guest may batch in one send-buffer section.
pub const MAX_PACKETS_PER_MESSAGE: u32 = 8;
/// Batched packets start 8-byte aligned (log2).
pub const PACKET_ALIGNMENT_FACTOR: u32 = 3;
/// The largest RNDIS message taken from the guest.
pub const MAX_TRANSFER_SIZE: u32 = 0x10000;
/// 10 Gbit/s in the units of GEN_LINK_SPEED (100 bit/s).
const LINK_SPEED: u32 = 100_000_000;
const MAX_MULTICAST: usize = 32;
const VENDOR_DESCRIPTION: &[u8] = b"paravisor netvsp\0";

const SUPPORTED: [Oid; 20] = [
    Oid::GEN_SUPPORTED_LIST,
    Oid::GEN_HARDWARE_STATUS,
    Oid::GEN_MEDIA_SUPPORTED,
    Oid::GEN_MEDIA_IN_USE,
    Oid::GEN_MAXIMUM_FRAME_SIZE,
    Oid::GEN_LINK_SPEED,
    Oid::GEN_VENDOR_ID,
    Oid::GEN_VENDOR_DESCRIPTION,
    Oid::GEN_CURRENT_PACKET_FILTER,
    Oid::GEN_MAXIMUM_TOTAL_SIZE,
    Oid::GEN_MEDIA_CONNECT_STATUS,
    Oid::GEN_MAXIMUM_SEND_PACKETS,
    Oid::GEN_VENDOR_DRIVER_VERSION,
    Oid::GEN_XMIT_OK,
    Oid::GEN_RCV_OK,
    Oid::P802_3_PERMANENT_ADDRESS,
    Oid::P802_3_CURRENT_ADDRESS,
    Oid::P802_3_MULTICAST_LIST,
    Oid::P802_3_MAXIMUM_LIST_SIZE,
    Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES,
];

/// Frame and error counters, as the statistics OIDs report them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub xmit_ok: u64,
    pub rcv_ok: u64,
    pub xmit_error: u64,
    pub rcv_error: u64,
    pub rcv_no_buffer: u64,
}

#[derive(Debug)]
pub struct RndisDevice {
    mac: [u8; 6],
    initialized: bool,
    filter: u32,
    link_up: bool,
    multicast: Vec<[u8; 6]>,
    /// Channels the NIC can have (the primary and its sub-channels).
    queues: u32,
    rss: Rss,
    pub counters: Counters,
}

/// What answering a message came to, for the NVSP completion.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    /// Nothing to send back (HALT, completions the guest should not send).
    Silent,
}

impl RndisDevice {
    pub fn new(mac: [u8; 6], link_up: bool) -> Self {
        Self {
            mac,
            initialized: false,
            filter: 0,
            link_up,
            multicast: Vec::new(),
            queues: 1,
            rss: Rss::default(),
            counters: Counters::default(),
        }
    }

    /// Offers receive-side scaling over `queues` channels (1: none).
    pub fn with_queues(mut self, queues: u32) -> Self {
        self.queues = queues.max(1);
        self
    }

    pub fn queues(&self) -> u32 {
        self.queues
    }

    pub fn rss(&self) -> &Rss {
        &self.rss
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    pub fn packet_filter(&self) -> u32 {
        self.filter
    }

    /// Records a link change; the indication to send, if the guest is listening.
    pub fn set_link(&mut self, up: bool, out: &mut Vec<u8>) -> bool {
        if self.link_up == up {
            return false;
        }
        self.link_up = up;
        if !self.initialized {
            return false;
        }
        let status = if up {
            Status::MEDIA_CONNECT
        } else {
            Status::MEDIA_DISCONNECT
        };
        rndis::indicate_status(status, &[], out);
        true
    }

    /// Whether the packet filter passes a frame the network delivered.
    pub fn accepts(&self, frame: &[u8]) -> bool {
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        let f = self.filter;
        if f & filter::PROMISCUOUS != 0 {
            return true;
        }
        if dst == [0xff; 6] {
            return f & filter::BROADCAST != 0;
        }
        if dst[0] & 1 != 0 {
            return f & filter::ALL_MULTICAST != 0
                || (f & filter::MULTICAST != 0 && self.multicast.iter().any(|m| m == dst));
        }
        f & filter::DIRECTED != 0 && dst == self.mac
    }

    /// Answers one control message into `out`.
    pub fn control(&mut self, message: Message<'_>, out: &mut Vec<u8>) -> Outcome {
        match message {
            Message::Initialize(req) => {
                self.initialized = true;
                let c = rndis::InitializeComplete {
                    request_id: req.request_id,
                    status: U32::new(Status::SUCCESS.0),
                    major_version: U32::new(rndis::MAJOR_VERSION),
                    minor_version: U32::new(rndis::MINOR_VERSION),
                    device_flags: U32::new(rndis::DF_CONNECTIONLESS),
                    medium: U32::new(rndis::MEDIUM_802_3),
                    max_packets_per_message: U32::new(MAX_PACKETS_PER_MESSAGE),
                    max_transfer_size: U32::new(MAX_TRANSFER_SIZE),
                    packet_alignment_factor: U32::new(PACKET_ALIGNMENT_FACTOR),
                    af_list_offset: U32::new(0),
                    af_list_size: U32::new(0),
                };
                rndis::encode(MessageType::INITIALIZE_COMPLETE, c.as_bytes(), &[], out);
                Outcome::Answered
            }
            Message::Halt(_) => {
                self.initialized = false;
                self.filter = 0;
                Outcome::Silent
            }
            Message::Query(req, _) => {
                let mut info = Vec::new();
                let status = self.query(Oid(req.oid.get()), &mut info);
                if status != Status::SUCCESS {
                    info.clear();
                }
                rndis::query_complete(req.request_id.get(), status, &info, out);
                Outcome::Answered
            }
            Message::Set(req, info) => {
                let status = self.set(Oid(req.oid.get()), info);
                complete(MessageType::SET_COMPLETE, req.request_id.get(), status, out);
                Outcome::Answered
            }
            Message::Reset => {
                self.filter = 0;
                let c = rndis::ResetComplete {
                    status: U32::new(Status::SUCCESS.0),
                    addressing_reset: U32::new(0),
                };
                rndis::encode(MessageType::RESET_COMPLETE, c.as_bytes(), &[], out);
                Outcome::Answered
            }
            Message::KeepAlive(req) => {
                complete(
                    MessageType::KEEPALIVE_COMPLETE,
                    req.request_id.get(),
                    Status::SUCCESS,
                    out,
                );
                Outcome::Answered
            }
            // Data packets take the data path; completions and indications are the
            // host's to send. Nothing to answer.
            _ => Outcome::Silent,
        }
    }

    /// Answers a request that did not parse, if it got as far as naming itself:
    /// the guest's waiter gets a failure instead of a timeout.
    pub fn refuse(&mut self, e: &rndis::Error, out: &mut Vec<u8>) -> Outcome {
        let (Some(ty), Some(id)) = (e.message_type, e.request_id) else {
            return Outcome::Silent;
        };
        match ty {
            MessageType::QUERY => rndis::query_complete(id, Status::INVALID_DATA, &[], out),
            MessageType::SET => complete(MessageType::SET_COMPLETE, id, Status::INVALID_DATA, out),
            MessageType::KEEPALIVE => complete(
                MessageType::KEEPALIVE_COMPLETE,
                id,
                Status::INVALID_DATA,
                out,
            ),
            MessageType::INITIALIZE => {
                let c = rndis::InitializeComplete {
                    request_id: U32::new(id),
                    status: U32::new(Status::INVALID_DATA.0),
                    ..Default::default()
                };
                rndis::encode(MessageType::INITIALIZE_COMPLETE, c.as_bytes(), &[], out);
            }
            _ => return Outcome::Silent,
        }
        Outcome::Answered
    }

    fn query(&self, oid: Oid, info: &mut Vec<u8>) -> Status {
        let mut u32_ = |v: u32| info.extend_from_slice(&v.to_le_bytes());
        match oid {
            Oid::GEN_SUPPORTED_LIST => SUPPORTED.iter().for_each(|&o| u32_(o.0)),
            Oid::GEN_HARDWARE_STATUS => u32_(0),
            Oid::GEN_MEDIA_SUPPORTED | Oid::GEN_MEDIA_IN_USE => u32_(rndis::MEDIUM_802_3),
            Oid::GEN_MAXIMUM_FRAME_SIZE | Oid::GEN_CURRENT_LOOKAHEAD => u32_(MTU),
            Oid::GEN_MAXIMUM_TOTAL_SIZE => u32_(MTU + 14),
            Oid::GEN_LINK_SPEED => u32_(LINK_SPEED),
            // No IEEE OUI of our own: the "not assigned" vendor.
            Oid::GEN_VENDOR_ID => u32_(0x00ff_ffff),
            Oid::GEN_VENDOR_DRIVER_VERSION => u32_(0x0001_0000),
            Oid::GEN_CURRENT_PACKET_FILTER => u32_(self.filter),
            Oid::GEN_MEDIA_CONNECT_STATUS => u32_(if self.link_up { 0 } else { 1 }),
            Oid::GEN_MAXIMUM_SEND_PACKETS => u32_(MAX_PACKETS_PER_MESSAGE),
            Oid::P802_3_MAXIMUM_LIST_SIZE => u32_(MAX_MULTICAST as u32),
            Oid::GEN_VENDOR_DESCRIPTION => info.extend_from_slice(VENDOR_DESCRIPTION),
            Oid::P802_3_PERMANENT_ADDRESS | Oid::P802_3_CURRENT_ADDRESS => {
                info.extend_from_slice(&self.mac)
            }
            Oid::P802_3_MULTICAST_LIST => self
                .multicast
                .iter()
                .for_each(|m| info.extend_from_slice(m)),
            Oid::GEN_XMIT_OK => info.extend_from_slice(&self.counters.xmit_ok.to_le_bytes()),
            Oid::GEN_RCV_OK => info.extend_from_slice(&self.counters.rcv_ok.to_le_bytes()),
            Oid::GEN_XMIT_ERROR => info.extend_from_slice(&self.counters.xmit_error.to_le_bytes()),
            Oid::GEN_RCV_ERROR => info.extend_from_slice(&self.counters.rcv_error.to_le_bytes()),
            Oid::GEN_RCV_NO_BUFFER => {
                info.extend_from_slice(&self.counters.rcv_no_buffer.to_le_bytes())
            }
            Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES | Oid::TCP_OFFLOAD_CURRENT_CONFIG => {
                info.extend_from_slice(no_offloads().as_bytes())
            }
            Oid::GEN_RECEIVE_SCALE_CAPABILITIES if self.queues > 1 => {
                info.extend_from_slice(rss_capabilities(self.queues).as_bytes())
            }
            _ => return Status::NOT_SUPPORTED,
        }
        Status::SUCCESS
    }

    fn set(&mut self, oid: Oid, info: &[u8]) -> Status {
        match oid {
            Oid::GEN_CURRENT_PACKET_FILTER => match info.get(..4) {
                Some(w) => {
                    self.filter = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                    Status::SUCCESS
                }
                None => Status::INVALID_LENGTH,
            },
            Oid::P802_3_MULTICAST_LIST => {
                if !info.len().is_multiple_of(6) || info.len() / 6 > MAX_MULTICAST {
                    return Status::INVALID_LENGTH;
                }
                self.multicast = info
                    .chunks_exact(6)
                    .map(|c| [c[0], c[1], c[2], c[3], c[4], c[5]])
                    .collect();
                Status::SUCCESS
            }
            // Offload parameters: none are offered, so none get enabled; take the
            // guest's settings as long as they are an NDIS object at all.
            Oid::TCP_OFFLOAD_PARAMETERS | Oid::OFFLOAD_ENCAPSULATION => {
                if info.len() < 4 {
                    Status::INVALID_LENGTH
                } else {
                    Status::SUCCESS
                }
            }
            Oid::GEN_CURRENT_LOOKAHEAD => Status::SUCCESS,
            Oid::GEN_RECEIVE_SCALE_PARAMETERS if self.queues > 1 => {
                match self.rss.set(info, self.queues) {
                    Ok(()) => Status::SUCCESS,
                    Err(e) => e.status(),
                }
            }
            // Changing the MAC (GEN_RNDIS_CONFIG_PARAMETER) is refused.
            _ => Status::NOT_SUPPORTED,
        }
    }
}

fn complete(ty: MessageType, request_id: u32, status: Status, out: &mut Vec<u8>) {
    let c = rndis::RequestComplete {
        request_id: U32::new(request_id),
        status: U32::new(status.0),
    };
    rndis::encode(ty, c.as_bytes(), &[], out);
}

/// What RSS can do: Toeplitz over TCP and UDP on both IP versions, `queues`
/// channels, Linux's table size.
fn rss_capabilities(queues: u32) -> oid::ReceiveScaleCapabilities {
    oid::ReceiveScaleCapabilities {
        header: oid::ObjectHeader {
            object_type: oid::OBJECT_TYPE_RSS_CAPABILITIES,
            revision: oid::RSS_REVISION_2,
            size: U16::new(size_of::<oid::ReceiveScaleCapabilities>() as u16),
        },
        capabilities: U32::new(oid::RSS_CAPS_TOEPLITZ_TCP_UDP),
        interrupt_messages: U32::new(queues),
        receive_queues: U32::new(queues),
        indirection_table_entries: U16::new(TABLE_ENTRIES),
    }
}

/// The offload capabilities object with nothing offered: the guest computes its
/// own checksums and segments, which is what a software switch needs anyway.
fn no_offloads() -> oid::Offload {
    oid::Offload {
        header: oid::ObjectHeader {
            object_type: oid::OBJECT_TYPE_OFFLOAD,
            revision: oid::OFFLOAD_REVISION_3,
            size: U16::new(oid::OFFLOAD_SIZE as u16),
        },
        checksum: Default::default(),
        lso_v1: Default::default(),
        ipsec_v1: Default::default(),
        lso_v2: Default::default(),
        flags: U32::new(0),
        ipsec_v2: [0; 32],
        rsc: [0; 4],
        encapsulation_gre: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0, 0x15, 0x5d, 1, 2, 3];

    #[test]
    fn packet_filter_table() {
        let group = [0x01, 0, 0x5e, 0, 0, 1];
        let other = [0, 0x15, 0x5d, 9, 9, 9];
        let mut d = RndisDevice::new(MAC, true);
        let mut out = Vec::new();
        assert_eq!(d.set(Oid::P802_3_MULTICAST_LIST, &group), Status::SUCCESS);
        assert_eq!(
            d.set(Oid::P802_3_MULTICAST_LIST, &[0; 7]),
            Status::INVALID_LENGTH
        );
        let table: [(u32, [u8; 6], bool); 9] = [
            (0, MAC, false),
            (filter::DIRECTED, MAC, true),
            (filter::DIRECTED, other, false),
            (filter::DIRECTED, [0xff; 6], false),
            (filter::BROADCAST, [0xff; 6], true),
            (filter::MULTICAST, group, true),
            (filter::MULTICAST, [0x01, 0, 0x5e, 0, 0, 2], false),
            (filter::ALL_MULTICAST, [0x01, 0, 0x5e, 0, 0, 2], true),
            (filter::PROMISCUOUS, other, true),
        ];
        for (f, dst, want) in table {
            d.set(Oid::GEN_CURRENT_PACKET_FILTER, &f.to_le_bytes());
            let frame = [dst.as_slice(), &MAC, &[0x08, 0]].concat();
            assert_eq!(d.accepts(&frame), want, "filter {f:#x} dst {dst:x?}");
        }
        assert!(!d.accepts(&[0xff; 5]), "a runt has no destination");
        // Link changes are only indicated to an initialized guest.
        assert!(!d.set_link(false, &mut out));
        assert!(out.is_empty());
    }
}
