//! A guest NIC driver for tests: what Linux's `hv_netvsc` does on a netvsp
//! channel, in the same order (`netvsc_connect_vsp`, then `rndis_filter_device_add`
//! and `rndis_filter_open`), over the channel's two rings and the guest's own
//! memory.
//!
//! It checks the host strictly: every answer Linux would reject (a receive
//! buffer cut in more than one section, a transfer range outside the buffer or
//! larger than a section, an offload object of the wrong type) is an error here,
//! so a test passing means Linux would accept the host too.
//!
//! The host side runs when the client calls `pump` (a test's in-process host, or
//! a signal to another PD followed by waiting).
//!
//! vRSS as `rndis_set_subchannel` does it: [`Netvsc::request_subchannels`] asks
//! the host on the primary; the caller opens each offered sub-channel at the
//! VMBus level and hands its rings over ([`Netvsc::attach_subchannel`]), then
//! sets the RSS parameters ([`Netvsc::set_rss`]). Frames may then be sent on any
//! channel, and each received frame is tagged with the channel it came on.
#![no_std]

extern crate alloc;

pub mod flows;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use ipc::Region;
use netvsp_protocol::nvsp::{self, u32le, Message, Status, Version, MESSAGE_SIZE};
use netvsp_protocol::oid::{self, Oid};
use netvsp_protocol::rndis::{self, MessageType};
use vmbus_ring::{
    GpaRangeRef, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, RingMem,
    PAGE_SIZE,
};
use zerocopy::FromBytes;

/// A buffer of the client's: consecutive pages of guest RAM from `offset`,
/// shared with the host as GPADL `gpadl`.
#[derive(Copy, Clone, Debug)]
pub struct Buffer {
    pub offset: usize,
    pub len: usize,
    pub gpadl: u32,
}

impl Buffer {
    /// The NVSP message that hands this buffer's GPADL to the host under `id`.
    fn message(self, id: u16) -> nvsp::SendBuffer {
        nvsp::SendBuffer {
            gpadl: u32le(self.gpadl),
            id: id.into(),
        }
    }
}

/// Where the client's memory is: guest RAM (page `i` of it is guest page
/// `base_pfn + i`), its two buffers and one page for control messages.
#[derive(Copy, Clone, Debug)]
pub struct Layout<'a> {
    pub ram: Region<'a>,
    pub base_pfn: u64,
    pub receive: Buffer,
    pub send: Buffer,
    pub control_page: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The host answered something Linux would refuse.
    Host(&'static str),
    /// No answer after the pump ran this many times.
    Timeout,
    Ring,
    /// No channel with this index is attached.
    NoChannel(u16),
}

/// What bring-up found out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub version: Version,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub link_up: bool,
    pub receive_sections: u32,
    pub send_sections: u32,
    /// Receive queues the host offered for vRSS (0: not supported).
    pub rss_queues: u32,
}

const PUMPS: usize = 64;
/// Transaction ids of data sends are the section plus this, kept apart from
/// requests.
const DATA_TID: u64 = 1 << 32;

/// A channel's two rings: guest-to-host, host-to-guest.
type Rings<M> = (OutgoingRing<M>, IncomingRing<M>);

pub struct Netvsc<'a, M: RingMem> {
    /// Index 0 the primary channel, `i` sub-channel `i` once attached.
    channels: Vec<Option<Rings<M>>>,
    /// Sub-channels the host granted.
    granted: u32,
    layout: Layout<'a>,
    next_tid: u64,
    next_request: u32,
    receive_section: u32,
    send_section: u32,
    send_free: Vec<u32>,
    completions: BTreeMap<u64, [u8; MESSAGE_SIZE]>,
    control: VecDeque<Vec<u8>>,
    /// Received frames and the channel each came on.
    frames: VecDeque<(u16, Vec<u8>)>,
    pub indications: Vec<u32>,
    /// Frames whose completion status was not SUCCESS.
    pub tx_refused: u64,
    scratch: Vec<u8>,
}

impl<M: RingMem> core::fmt::Debug for Netvsc<'_, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Netvsc")
            .field("send_free", &self.send_free.len())
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

/// Data messages back to back as Linux batches them: each but the last (unless
/// `pad_last`, when more follows) padded to 8 bytes, the padding counted in its
/// length.
fn batch(frames: &[&[u8]], pad_last: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let start = bytes.len();
        rndis::data_packet(frame, &[], &mut bytes);
        if pad_last || i + 1 < frames.len() {
            bytes.resize(bytes.len().next_multiple_of(8), 0);
            let len = (bytes.len() - start) as u32;
            bytes[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
        }
    }
    bytes
}

fn body<T: FromBytes>(bytes: &[u8]) -> Option<T> {
    T::read_from_prefix(bytes).ok().map(|(v, _)| v)
}

impl<'a, M: RingMem> Netvsc<'a, M> {
    /// `out` is the guest-to-host ring, `inp` the host-to-guest one.
    pub fn new(out: OutgoingRing<M>, inp: IncomingRing<M>, layout: Layout<'a>) -> Self {
        Self {
            channels: alloc::vec![Some((out, inp))],
            granted: 0,
            layout,
            next_tid: 1,
            next_request: 1,
            receive_section: 0,
            send_section: 0,
            send_free: Vec::new(),
            completions: BTreeMap::new(),
            control: VecDeque::new(),
            frames: VecDeque::new(),
            indications: Vec::new(),
            tx_refused: 0,
            scratch: Vec::new(),
        }
    }

    fn rings(&mut self, channel: u16) -> Result<&mut Rings<M>, ClientError> {
        self.channels
            .get_mut(usize::from(channel))
            .and_then(Option::as_mut)
            .ok_or(ClientError::NoChannel(channel))
    }

    fn write(&mut self, packet: &OutgoingPacket<'_>, payload: &[u8]) -> Result<(), ClientError> {
        self.write_on(0, packet, payload)
    }

    fn write_on(
        &mut self,
        channel: u16,
        packet: &OutgoingPacket<'_>,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let (out, _) = self.rings(channel)?;
        out.write_packet(packet, &[payload])
            .map_err(|_| ClientError::Ring)?;
        out.commit().map_err(|_| ClientError::Ring)?;
        Ok(())
    }

    /// Sends `message` in a packet of `kind` under a fresh transaction id.
    fn send(
        &mut self,
        kind: OutgoingKind<'_>,
        message: Message,
        completion: bool,
    ) -> Result<u64, ClientError> {
        let tid = self.next_tid;
        self.next_tid += 1;
        let packet = OutgoingPacket {
            transaction_id: tid,
            completion_requested: completion,
            kind,
        };
        self.write(&packet, &message.encode())?;
        Ok(tid)
    }

    fn inband(&mut self, message: Message, completion: bool) -> Result<u64, ClientError> {
        self.send(OutgoingKind::InBand, message, completion)
    }

    fn wait(
        &mut self,
        tid: u64,
        pump: &mut dyn FnMut(),
    ) -> Result<[u8; MESSAGE_SIZE], ClientError> {
        for _ in 0..PUMPS {
            pump();
            self.poll()?;
            if let Some(m) = self.completions.remove(&tid) {
                return Ok(m);
            }
        }
        Err(ClientError::Timeout)
    }

    fn request(
        &mut self,
        message: Message,
        pump: &mut dyn FnMut(),
    ) -> Result<Message, ClientError> {
        let tid = self.inband(message, true)?;
        let reply = self.wait(tid, pump)?;
        Message::parse(&reply).map_err(|_| ClientError::Host("unparsable completion"))
    }

    /// Reads everything the host sent on every channel: completions, received
    /// messages (each completed back at once on its channel, as Linux does),
    /// in-band notes.
    pub fn poll(&mut self) -> Result<(), ClientError> {
        for channel in 0..self.channels.len() {
            if self.channels[channel].is_some() {
                self.poll_on(channel as u16)?;
            }
        }
        Ok(())
    }

    fn poll_on(&mut self, channel: u16) -> Result<(), ClientError> {
        loop {
            let (_, inp) = self.rings(channel)?;
            let p = match inp.read() {
                Ok(p) => p,
                Err(vmbus_ring::ReadError::Empty) => break,
                Err(_) => return Err(ClientError::Ring),
            };
            let mut payload = [0u8; MESSAGE_SIZE];
            let n = p.payload.len().min(MESSAGE_SIZE);
            inp.copy_from(&p.payload, 0, &mut payload[..n])
                .map_err(|_| ClientError::Ring)?;
            match p.kind {
                IncomingKind::Completion => self.completed(p.transaction_id, payload),
                IncomingKind::TransferPages(tp) => {
                    if tp.transfer_page_set_id != nvsp::RECEIVE_BUFFER_ID {
                        return Err(ClientError::Host("transfer pages of another set"));
                    }
                    let ranges: Vec<_> = inp
                        .transfer_ranges(&tp)
                        .collect::<Result<_, _>>()
                        .map_err(|_| ClientError::Ring)?;
                    for r in ranges {
                        self.received(channel, r.byte_offset, r.byte_count)?;
                    }
                    let done = Message::SendRndisPacketComplete(nvsp::SendRndisPacketComplete {
                        status: u32le(Status::SUCCESS.0),
                    });
                    let packet = OutgoingPacket {
                        transaction_id: p.transaction_id,
                        completion_requested: false,
                        kind: OutgoingKind::Completion,
                    };
                    self.write_on(channel, &packet, &done.encode())?;
                }
                _ => {}
            }
        }
        let (_, inp) = self.rings(channel)?;
        inp.commit().map_err(|_| ClientError::Ring)?;
        Ok(())
    }

    fn completed(&mut self, tid: u64, payload: [u8; MESSAGE_SIZE]) {
        if tid >= DATA_TID {
            let section = (tid - DATA_TID) as u32;
            if let Ok(Message::SendRndisPacketComplete(c)) = Message::parse(&payload) {
                if c.status.get() != Status::SUCCESS.0 {
                    self.tx_refused += 1;
                }
            }
            self.send_free.push(section);
        } else {
            self.completions.insert(tid, payload);
        }
    }

    fn received(&mut self, channel: u16, offset: u32, count: u32) -> Result<(), ClientError> {
        let rb = self.layout.receive;
        if count > self.receive_section || offset as usize + count as usize > rb.len {
            return Err(ClientError::Host("transfer range outside a section"));
        }
        self.scratch.resize(count as usize, 0);
        self.layout
            .ram
            .read_bytes(rb.offset + offset as usize, &mut self.scratch)
            .map_err(|_| ClientError::Ring)?;
        let (m, _) =
            rndis::parse(&self.scratch).map_err(|_| ClientError::Host("unparsable RNDIS"))?;
        match m {
            rndis::Message::Packet(p) => self.frames.push_back((channel, p.frame.to_vec())),
            rndis::Message::IndicateStatus(s, _) => self.indications.push(s.status.get()),
            _ => self.control.push_back(self.scratch.clone()),
        }
        Ok(())
    }

    /// Sends one RNDIS control message the way Linux does (GPA-direct from its
    /// request's page) and returns the host's answer.
    fn rndis_request(
        &mut self,
        msg: &[u8],
        pump: &mut dyn FnMut(),
    ) -> Result<Vec<u8>, ClientError> {
        let page = self.layout.control_page;
        self.layout
            .ram
            .write_bytes(page, msg)
            .map_err(|_| ClientError::Ring)?;
        let pfn = [self.layout.base_pfn + (page / PAGE_SIZE) as u64];
        let ranges = [GpaRangeRef {
            byte_count: msg.len() as u32,
            byte_offset: 0,
            pfns: &pfn,
        }];
        let send = Message::SendRndisPacket(nvsp::SendRndisPacket {
            channel_type: u32le(nvsp::CHANNEL_TYPE_CONTROL),
            section_index: u32le(nvsp::NO_SECTION),
            section_size: u32le(0),
        });
        let tid = self.send(OutgoingKind::GpaDirect(&ranges), send, true)?;
        self.wait(tid, pump)?;
        for _ in 0..PUMPS {
            if let Some(answer) = self.control.pop_front() {
                return Ok(answer);
            }
            pump();
            self.poll()?;
        }
        Err(ClientError::Timeout)
    }

    fn oid(
        &mut self,
        ty: MessageType,
        oid: Oid,
        info: &[u8],
        pump: &mut dyn FnMut(),
    ) -> Result<(rndis::Status, Vec<u8>), ClientError> {
        let id = self.next_request;
        self.next_request += 1;
        let mut msg = Vec::new();
        rndis::oid_request(ty, id, oid, info, &mut msg);
        let answer = self.rndis_request(&msg, pump)?;
        match rndis::parse(&answer) {
            Ok((rndis::Message::QueryComplete(c, info), _)) if c.request_id.get() == id => {
                // Linux's own bounds: the info must start past the fixed fields.
                if c.info_buffer_offset.get() < 16 {
                    return Err(ClientError::Host("query info offset inside the header"));
                }
                Ok((rndis::Status(c.status.get()), info.to_vec()))
            }
            Ok((rndis::Message::SetComplete(c), _)) if c.request_id.get() == id => {
                Ok((rndis::Status(c.status.get()), Vec::new()))
            }
            _ => Err(ClientError::Host("answer to another request")),
        }
    }

    fn query_u32(&mut self, oid: Oid, pump: &mut dyn FnMut()) -> Result<u32, ClientError> {
        match self.oid(MessageType::QUERY, oid, &[], pump)? {
            (rndis::Status::SUCCESS, info) if info.len() == 4 => {
                Ok(u32::from_le_bytes([info[0], info[1], info[2], info[3]]))
            }
            _ => Err(ClientError::Host("u32 query failed")),
        }
    }

    fn set(&mut self, oid: Oid, info: &[u8], pump: &mut dyn FnMut()) -> Result<(), ClientError> {
        match self.set_status(oid, info, pump)? {
            rndis::Status::SUCCESS => Ok(()),
            _ => Err(ClientError::Host("set refused")),
        }
    }

    /// An RNDIS SET of `oid` with `info` as given (hostile-guest tests); the
    /// host's status.
    pub fn set_status(
        &mut self,
        oid: Oid,
        info: &[u8],
        pump: &mut dyn FnMut(),
    ) -> Result<rndis::Status, ClientError> {
        Ok(self.oid(MessageType::SET, oid, info, pump)?.0)
    }

    /// NVSP SUBCHANNEL ALLOCATE for `count` sub-channels; how many the host
    /// granted (it may grant fewer, never more: Linux refuses more).
    pub fn request_subchannels(
        &mut self,
        count: u32,
        pump: &mut dyn FnMut(),
    ) -> Result<u32, ClientError> {
        let request = Message::Subchannel(nvsp::SubchannelRequest {
            op: u32le(nvsp::SUBCHANNEL_ALLOCATE),
            count: u32le(count),
        });
        let tid = self.inband(request, true)?;
        let reply = self.wait(tid, pump)?;
        let c = Message::parse_subchannel_complete(&reply)
            .map_err(|_| ClientError::Host("unparsable subchannel completion"))?;
        if c.status.get() != Status::SUCCESS.0 {
            return Err(ClientError::Host("sub-channel request failed"));
        }
        if c.count.get() > count {
            return Err(ClientError::Host("more sub-channels than asked"));
        }
        self.granted = c.count.get();
        Ok(self.granted)
    }

    /// Sub-channel `index` (its offer's sub-channel index) is open on these rings.
    pub fn attach_subchannel(
        &mut self,
        index: u16,
        out: OutgoingRing<M>,
        inp: IncomingRing<M>,
    ) -> Result<(), ClientError> {
        let i = usize::from(index);
        if index == 0 || u32::from(index) > self.granted {
            return Err(ClientError::Host(
                "an offer with a sub-channel index never granted",
            ));
        }
        if self.channels.len() <= i {
            self.channels.resize_with(i + 1, || None);
        }
        if self.channels[i].is_some() {
            return Err(ClientError::Host("a sub-channel offered twice"));
        }
        self.channels[i] = Some((out, inp));
        Ok(())
    }

    /// Sub-channel `index` closed: its rings are given back.
    pub fn detach_subchannel(&mut self, index: u16) -> Option<Rings<M>> {
        if index == 0 {
            return None;
        }
        self.channels
            .get_mut(usize::from(index))
            .and_then(Option::take)
    }

    /// Sets RSS as `rndis_filter_set_rss_param` does: Toeplitz with `key` over
    /// `hash_types` (NDIS_HASH_* bits), `table` mapping hash to channel. The
    /// host's status.
    pub fn set_rss(
        &mut self,
        table: &[u32],
        key: &[u8],
        hash_types: u32,
        pump: &mut dyn FnMut(),
    ) -> Result<rndis::Status, ClientError> {
        let mut info = Vec::new();
        let hash = oid::hash::TOEPLITZ | hash_types;
        oid::rss_parameters(0, hash, table, key, &mut info);
        self.set_status(Oid::GEN_RECEIVE_SCALE_PARAMETERS, &info, pump)
    }

    /// The whole bring-up, newest version first as Linux tries them, stopping at
    /// `max`.
    pub fn bring_up(&mut self, max: Version, pump: &mut dyn FnMut()) -> Result<Info, ClientError> {
        let mut version = None;
        for v in Version::SUPPORTED.into_iter().filter(|v| *v <= max) {
            let init = Message::Init(nvsp::Init {
                min_version: u32le(v.0),
                max_version: u32le(v.0),
            });
            if let Message::InitComplete(c) = self.request(init, pump)? {
                if c.status.get() == Status::SUCCESS.0 {
                    version = Some(Version(c.negotiated_version.get()));
                    break;
                }
            }
        }
        let version = version.ok_or(ClientError::Host("no version agreed"))?;
        let config = Message::SendNdisConfig(nvsp::SendNdisConfig {
            mtu: u32le(1514),
            reserved: u32le(0),
            capabilities: (1u64 << 3).into(),
        });
        self.inband(config, false)?;
        let ndis = if version > Version::V4 {
            (6, 30)
        } else {
            (6, 1)
        };
        let ndis = Message::SendNdisVersion(nvsp::SendNdisVersion {
            major: u32le(ndis.0),
            minor: u32le(ndis.1),
        });
        self.inband(ndis, false)?;

        let rb = self.layout.receive;
        let m = Message::SendReceiveBuffer(rb.message(nvsp::RECEIVE_BUFFER_ID));
        let Message::SendReceiveBufferComplete(c) = self.request(m, pump)? else {
            return Err(ClientError::Host("wrong receive buffer answer"));
        };
        let s = c.section;
        if c.status.get() != Status::SUCCESS.0 || c.section_count.get() != 1 || s.offset.get() != 0
        {
            return Err(ClientError::Host("receive buffer refused or cut oddly"));
        }
        let (size, count) = (s.sub_allocation_size.get(), s.sub_allocation_count.get());
        if size < 68 || u64::from(size) * u64::from(count) > rb.len as u64 {
            return Err(ClientError::Host("receive sections do not fit the buffer"));
        }
        self.receive_section = size;

        let sb = self.layout.send;
        let m = Message::SendSendBuffer(sb.message(nvsp::SEND_BUFFER_ID));
        let Message::SendSendBufferComplete(c) = self.request(m, pump)? else {
            return Err(ClientError::Host("wrong send buffer answer"));
        };
        if c.status.get() != Status::SUCCESS.0 || c.section_size.get() < 68 {
            return Err(ClientError::Host("send buffer refused"));
        }
        self.send_section = c.section_size.get();
        let send_sections = (sb.len / self.send_section as usize) as u32;
        self.send_free = (0..send_sections).rev().collect();

        self.rndis_up(version, pump, count, send_sections)
    }

    fn rndis_up(
        &mut self,
        version: Version,
        pump: &mut dyn FnMut(),
        receive_sections: u32,
        send_sections: u32,
    ) -> Result<Info, ClientError> {
        let id = self.next_request;
        self.next_request += 1;
        let init = rndis::InitializeRequest {
            request_id: id.into(),
            major_version: 1.into(),
            minor_version: 0.into(),
            max_transfer_size: 0x4000.into(),
        };
        let mut msg = Vec::new();
        rndis::encode(
            MessageType::INITIALIZE,
            zerocopy::IntoBytes::as_bytes(&init),
            &[],
            &mut msg,
        );
        let answer = self.rndis_request(&msg, pump)?;
        match rndis::parse(&answer) {
            Ok((rndis::Message::InitializeComplete(c), _))
                if c.request_id.get() == id && c.status.get() == 0 => {}
            _ => return Err(ClientError::Host("RNDIS INITIALIZE failed")),
        }

        let mtu = self.query_u32(Oid::GEN_MAXIMUM_FRAME_SIZE, pump)?;
        let (status, mac) =
            self.oid(MessageType::QUERY, Oid::P802_3_PERMANENT_ADDRESS, &[], pump)?;
        let mac: [u8; 6] = match (status, mac.try_into()) {
            (rndis::Status::SUCCESS, Ok(mac)) => mac,
            _ => return Err(ClientError::Host("no MAC")),
        };
        // Friendly name: Linux ignores a refusal.
        self.oid(MessageType::QUERY, Oid::GEN_FRIENDLY_NAME, &[], pump)?;

        let (_, caps) = self.oid(
            MessageType::QUERY,
            Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES,
            &[],
            pump,
        )?;
        let header: oid::ObjectHeader = body(&caps).ok_or(ClientError::Host("no offload caps"))?;
        if header.object_type != oid::OBJECT_TYPE_OFFLOAD
            || header.revision < 1
            || usize::from(header.size.get()) > caps.len()
            || usize::from(header.size.get()) < oid::OFFLOAD_SIZE_6_0
            || caps.len() > oid::OFFLOAD_SIZE
        {
            return Err(ClientError::Host("offload caps Linux would reject"));
        }
        // Offload parameters as Linux sets them with nothing offered: all off.
        let mut params = [0u8; 28];
        params[..4].copy_from_slice(&[oid::OBJECT_TYPE_DEFAULT, 3, 28, 0]);
        self.set(Oid::TCP_OFFLOAD_PARAMETERS, &params, pump)?;
        let link_up = self.query_u32(Oid::GEN_MEDIA_CONNECT_STATUS, pump)? == 0;

        let mut rss_queues = 0;
        if version >= Version::V5 {
            let cap = [oid::OBJECT_TYPE_RSS_CAPABILITIES, 2, 18, 0];
            let mut info = cap.to_vec();
            info.resize(18, 0);
            let (status, caps) = self.oid(
                MessageType::QUERY,
                Oid::GEN_RECEIVE_SCALE_CAPABILITIES,
                &info,
                pump,
            )?;
            if let (rndis::Status::SUCCESS, Some(c)) =
                (status, body::<oid::ReceiveScaleCapabilities>(&caps))
            {
                rss_queues = c.receive_queues.get();
            }
        }
        let filter = oid::filter::DIRECTED | oid::filter::BROADCAST | oid::filter::ALL_MULTICAST;
        self.set(Oid::GEN_CURRENT_PACKET_FILTER, &filter.to_le_bytes(), pump)?;
        Ok(Info {
            version,
            mac,
            mtu,
            link_up,
            receive_sections,
            send_sections,
            rss_queues,
        })
    }

    /// Queues one frame through a send-buffer section. False if every section is
    /// out (poll, let the host run, retry). Call [`Netvsc::flush`] to let the
    /// host see a batch.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<bool, ClientError> {
        self.send_batch(&[frame])
    }

    /// The same on channel `channel` (0 the primary, else an attached
    /// sub-channel), as Linux's transmit queues pick one.
    pub fn send_frame_on(&mut self, channel: u16, frame: &[u8]) -> Result<bool, ClientError> {
        self.send_split_on(channel, &batch(&[frame], false), &[])
    }

    /// Queues several frames in one send-buffer section, as Linux batches them
    /// (`xmit_more`): each RNDIS message but the last padded to 8 bytes, the
    /// padding counted in its length.
    pub fn send_batch(&mut self, frames: &[&[u8]]) -> Result<bool, ClientError> {
        self.send_split(&batch(frames, false), &[])
    }

    /// Linux's `cp_partial`: `frames` batched in the section, then the RNDIS
    /// header of `last` ending the section while its frame follows as the
    /// packet's GPA range (from the control page).
    pub fn send_partial(&mut self, frames: &[&[u8]], last: &[u8]) -> Result<bool, ClientError> {
        let mut section_bytes = batch(frames, true);
        section_bytes.extend_from_slice(&rndis::packet_header(last.len(), 0));
        self.send_split(&section_bytes, last)
    }

    /// Queues RNDIS data messages already laid out as a send section holds them.
    pub fn send_section_bytes(&mut self, section_bytes: &[u8]) -> Result<bool, ClientError> {
        self.send_split(section_bytes, &[])
    }

    /// One SEND_RNDIS_PACKET: `section_bytes` in a send section, `ranged` (if
    /// any) in the control page named by a GPA range.
    fn send_split(&mut self, section_bytes: &[u8], ranged: &[u8]) -> Result<bool, ClientError> {
        self.send_split_on(0, section_bytes, ranged)
    }

    fn send_split_on(
        &mut self,
        channel: u16,
        section_bytes: &[u8],
        ranged: &[u8],
    ) -> Result<bool, ClientError> {
        self.rings(channel)?;
        if section_bytes.len() > self.send_section as usize || ranged.len() > PAGE_SIZE {
            return Err(ClientError::Host("message larger than a send section"));
        }
        let Some(section) = self.send_free.pop() else {
            return Ok(false);
        };
        let at = self.layout.send.offset + section as usize * self.send_section as usize;
        let ram = self.layout.ram;
        ram.write_bytes(at, section_bytes)
            .and_then(|()| ram.write_bytes(self.layout.control_page, ranged))
            .map_err(|_| ClientError::Ring)?;
        let m = Message::SendRndisPacket(nvsp::SendRndisPacket {
            channel_type: u32le(nvsp::CHANNEL_TYPE_DATA),
            section_index: u32le(section),
            section_size: u32le(section_bytes.len() as u32),
        });
        let pfn = [self.layout.base_pfn + (self.layout.control_page / PAGE_SIZE) as u64];
        let range = [GpaRangeRef {
            byte_count: ranged.len() as u32,
            byte_offset: 0,
            pfns: &pfn,
        }];
        let packet = OutgoingPacket {
            transaction_id: DATA_TID + u64::from(section),
            completion_requested: true,
            kind: if ranged.is_empty() {
                OutgoingKind::InBand
            } else {
                OutgoingKind::GpaDirect(&range)
            },
        };
        let (out, _) = self.rings(channel)?;
        match out.write_packet(&packet, &[&m.encode()]) {
            Ok(()) => Ok(true),
            Err(vmbus_ring::WriteError::Full { .. }) => {
                self.send_free.push(section);
                Ok(false)
            }
            Err(_) => Err(ClientError::Ring),
        }
    }

    /// Publishes queued sends on every channel.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        for (out, _) in self.channels.iter_mut().flatten() {
            out.commit().map_err(|_| ClientError::Ring)?;
        }
        Ok(())
    }

    pub fn receive_frame(&mut self) -> Option<Vec<u8>> {
        self.frames.pop_front().map(|(_, f)| f)
    }

    /// The next received frame and the channel it came on.
    pub fn receive_frame_on(&mut self) -> Option<(u16, Vec<u8>)> {
        self.frames.pop_front()
    }

    pub fn free_send_sections(&self) -> usize {
        self.send_free.len()
    }

    /// Sends raw bytes as an in-band packet (hostile-guest tests).
    pub fn send_raw(&mut self, payload: &[u8], completion: bool) -> Result<u64, ClientError> {
        let tid = self.next_tid;
        self.next_tid += 1;
        let packet = OutgoingPacket {
            transaction_id: tid,
            completion_requested: completion,
            kind: OutgoingKind::InBand,
        };
        self.write(&packet, payload)?;
        Ok(tid)
    }

    /// Waits for the completion of `tid` (from [`Netvsc::send_raw`]).
    pub fn completion(
        &mut self,
        tid: u64,
        pump: &mut dyn FnMut(),
    ) -> Result<[u8; MESSAGE_SIZE], ClientError> {
        self.wait(tid, pump)
    }

    /// Sends a raw RNDIS message the way control messages go and returns the
    /// host's RNDIS answer (hostile-guest tests).
    pub fn rndis_raw(
        &mut self,
        msg: &[u8],
        pump: &mut dyn FnMut(),
    ) -> Result<Vec<u8>, ClientError> {
        self.rndis_request(msg, pump)
    }
}
