//! One NIC channel's NVSP state machine.
//!
//! Bring-up as Linux's `netvsc_connect_vsp` drives it: INIT (version), NDIS
//! config and version, the receive buffer (answered with how it is cut into
//! sections), the send buffer (answered with its section size); then RNDIS
//! INITIALIZE and queries through SEND_RNDIS_PACKET, answered through the receive
//! buffer.
//!
//! Data path: a guest SEND_RNDIS_PACKET names RNDIS data packets in a send-buffer
//! section (or in GPA ranges); each frame goes to the backend and the packet is
//! completed. A frame from the backend is written, behind its RNDIS header, into
//! a free receive section and announced with a transfer-page packet whose
//! transaction id is the section; the guest's completion frees it.
//!
//! Nothing here blocks. What cannot be written to the guest's ring right now waits
//! in `pending`; while anything waits, [`Nic::is_stalled`] tells the owner to stop
//! reading the guest's ring until [`Nic::flush`] gets it out.
//!
//! vRSS: the guest may ask for sub-channels (NVSP SUBCHANNEL); each opened one is
//! a queue of this NIC ([`Nic::open_queue`]) with its own ring and its own
//! `pending`, sharing the primary's buffers, sections and RNDIS state. Sends are
//! taken on any queue; a received frame goes to the queue RSS picks
//! ([`crate::rss`]), control answers to queue 0. A frame or answer for a queue
//! other than the one being served waits in that queue's `pending`, and
//! [`Nic::take_woken`] tells the owner which queues to serve next.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use netvsp_protocol::nvsp::{self, u32le, Message, Status, Version, MESSAGE_SIZE};
use netvsp_protocol::rndis;
use vmbus_ring::{OutgoingKind, OutgoingPacket, TransferPageRange};

use crate::backend::Backend;
use crate::mem::GuestBuffer;
use crate::rndis_device::{Outcome, RndisDevice, MAX_FRAME, MAX_TRANSFER_SIZE};
use crate::sections::Sections;

/// Channels one NIC can have: the primary and up to seven sub-channels, which is
/// what one VSP's offer slots hold (vsp_api::MAX_OFFERS_PER_VSP).
pub const MAX_QUEUES: usize = 8;

/// Receive sections are Hyper-V's size: one MTU-sized frame with its RNDIS
/// header and per-packet info, which is what Linux sizes its copies for.
pub const RECEIVE_SECTION_SIZE: u32 = 1728;
/// Send sections are Hyper-V's size too (Linux copies packets below it).
pub const SEND_SECTION_SIZE: u32 = 6144;
/// RNDIS control answers waiting for a receive section; beyond this a guest that
/// never completes receives loses answers instead of growing our heap.
const MAX_QUEUED_CONTROL: usize = 64;
/// Packets waiting for room in the guest's ring, beyond the receive sections.
const MAX_PENDING: usize = 1024;

#[derive(Copy, Clone, Debug)]
pub struct Config {
    pub mac: [u8; 6],
    pub link_up: bool,
    /// The largest receive/send buffer accepted, in bytes.
    pub max_receive_buffer: usize,
    pub max_send_buffer: usize,
    /// Channels offered for vRSS (1: no sub-channels), at most [`MAX_QUEUES`].
    pub queues: u32,
}

impl Config {
    pub fn new(mac: [u8; 6]) -> Self {
        Self {
            mac,
            link_up: true,
            max_receive_buffer: 32 << 20,
            max_send_buffer: 16 << 20,
            queues: MAX_QUEUES as u32,
        }
    }
}

/// A packet the guest wrote to the channel, as the owner read it from the ring.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub transaction_id: u64,
    pub completion_requested: bool,
    pub kind: IncomingKind<'a>,
    /// The in-band bytes (an NVSP message, padded).
    pub payload: &'a [u8],
}

pub enum IncomingKind<'a> {
    InBand,
    Completion,
    /// The GPA ranges of the packet, as one buffer.
    GpaDirect(&'a dyn GuestBuffer),
}

impl core::fmt::Debug for IncomingKind<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InBand => f.write_str("InBand"),
            Self::Completion => f.write_str("Completion"),
            Self::GpaDirect(m) => write!(f, "GpaDirect({} bytes)", m.len()),
        }
    }
}

/// The guest's ring is full: try again once it has read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OutboxFull;

/// Writes packets into the guest's ring, in the ring crate's one packet model.
pub trait Outbox {
    fn send(&mut self, packet: &OutgoingPacket<'_>, payload: &[&[u8]]) -> Result<(), OutboxFull>;
}

/// Counters a test or the PD's log reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Frames from the network the filter or the frame size refused.
    pub rx_filtered: u64,
    /// NVSP messages or RNDIS packets refused as malformed.
    pub bad_messages: u64,
    /// Completions naming no outstanding receive section.
    pub bogus_completions: u64,
    /// Control answers dropped because the guest held every section.
    pub control_dropped: u64,
    /// Completions dropped because the owner ignored [`Nic::is_stalled`].
    pub completions_dropped: u64,
}

enum Pending {
    Completion {
        tid: u64,
        message: [u8; MESSAGE_SIZE],
        len: usize,
    },
    Transfer {
        section: u32,
        len: u32,
        control: bool,
    },
}

struct ReceiveBuffer<M> {
    mem: M,
    id: u16,
    sections: Sections,
    /// The queue each section was last announced on.
    owner: Vec<u8>,
}

struct SendBuffer<M> {
    mem: M,
    sections: u32,
}

pub struct Nic<M> {
    config: Config,
    version: Option<Version>,
    ndis_version: (u32, u32),
    guest_mtu: u32,
    receive: Option<ReceiveBuffer<M>>,
    send: Option<SendBuffer<M>>,
    rndis: RndisDevice,
    /// Control answers not yet in a receive section.
    control: VecDeque<Vec<u8>>,
    /// Per queue: what waits for room in that channel's ring.
    pending: Vec<VecDeque<Pending>>,
    /// Queues with an open channel (bit 0, the primary, always).
    open_queues: u32,
    /// Queues that got work while another was served.
    woken: u32,
    /// Sub-channels granted to the guest's SUBCHANNEL request.
    subchannels: Option<u32>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    pub stats: Stats,
}

/// The status of a SEND_*_BUFFER completion: whether the buffer was taken.
fn setup_status(ok: bool) -> zerocopy::byteorder::little_endian::U32 {
    u32le(if ok { Status::SUCCESS } else { Status::FAILURE }.0)
}

impl<M> core::fmt::Debug for Nic<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Nic")
            .field("version", &self.version)
            .field(
                "receive",
                &self.receive.as_ref().map(|r| r.sections.count()),
            )
            .field("send", &self.send.as_ref().map(|s| s.sections))
            .field("rndis", &self.rndis)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Why a SEND_RNDIS_PACKET's bytes could not be had.
struct BadPacket;

impl<M: GuestBuffer> Nic<M> {
    pub fn new(config: Config) -> Self {
        Self {
            rndis: RndisDevice::new(config.mac, config.link_up)
                .with_queues(config.queues.clamp(1, MAX_QUEUES as u32)),
            config,
            version: None,
            ndis_version: (0, 0),
            guest_mtu: 0,
            receive: None,
            send: None,
            control: VecDeque::new(),
            pending: (0..MAX_QUEUES).map(|_| VecDeque::new()).collect(),
            open_queues: 1,
            woken: 0,
            subchannels: None,
            scratch: Vec::new(),
            frame: vec![0; MAX_FRAME],
            stats: Stats::default(),
        }
    }

    pub fn version(&self) -> Option<Version> {
        self.version
    }

    pub fn ndis_version(&self) -> (u32, u32) {
        self.ndis_version
    }

    /// The MTU the guest announced in its NDIS config (0 before it did).
    pub fn guest_mtu(&self) -> u32 {
        self.guest_mtu
    }

    pub fn rndis(&self) -> &RndisDevice {
        &self.rndis
    }

    /// Receive sections the guest holds right now.
    pub fn sections_out(&self) -> usize {
        self.receive
            .as_ref()
            .map_or(0, |r| r.sections.count() - r.sections.free_count())
    }

    pub fn is_stalled(&self) -> bool {
        self.is_stalled_on(0)
    }

    pub fn is_stalled_on(&self, queue: usize) -> bool {
        self.pending.get(queue).is_some_and(|p| !p.is_empty())
    }

    /// Sub-channels granted (the owner offers that many), once the guest asked.
    pub fn subchannels(&self) -> Option<u32> {
        self.subchannels
    }

    /// Sub-channel `queue` (its offer's sub-channel index) opened. False if the
    /// NIC never granted it.
    pub fn open_queue(&mut self, queue: usize) -> bool {
        let granted = self.subchannels.unwrap_or(0) as usize;
        if queue == 0 || queue > granted || queue >= MAX_QUEUES {
            return false;
        }
        self.open_queues |= 1 << queue;
        true
    }

    /// Sub-channel `queue` closed: what waited for it is dropped and the sections
    /// it held come back (its guest side is gone, nobody will complete them).
    pub fn close_queue(&mut self, queue: usize) {
        if queue == 0 || queue >= MAX_QUEUES {
            return;
        }
        self.open_queues &= !(1 << queue);
        self.woken &= !(1 << queue);
        self.pending[queue].clear();
        if let Some(r) = self.receive.as_mut() {
            for (section, owner) in r.owner.iter().enumerate() {
                if usize::from(*owner) == queue {
                    r.sections.give_back(section as u64);
                }
            }
        }
    }

    /// Queues (bit per queue) that got work while another was served; asking
    /// clears them.
    pub fn take_woken(&mut self) -> u32 {
        core::mem::take(&mut self.woken) & self.open_queues
    }

    /// Whether frames from the network can reach the guest at all.
    pub fn ready_for_frames(&self) -> bool {
        self.receive.is_some() && self.rndis.is_initialized() && self.rndis.packet_filter() != 0
    }

    /// Link up or down; the guest hears of it by an RNDIS indication.
    pub fn set_link(&mut self, up: bool) {
        let mut m = Vec::new();
        if self.rndis.set_link(up, &mut m) {
            self.queue_control(m);
        }
    }

    /// Handles one packet from the guest on the primary channel. `gpadl`
    /// resolves a GPADL handle the guest names to its buffer.
    pub fn handle(
        &mut self,
        packet: Incoming<'_>,
        out: &mut dyn Outbox,
        gpadl: &mut dyn FnMut(u32) -> Option<M>,
        backend: &mut dyn Backend,
    ) {
        self.handle_on(0, packet, out, gpadl, backend)
    }

    /// Handles one packet from the guest on queue `q`'s channel, `out` its ring.
    pub fn handle_on(
        &mut self,
        q: usize,
        packet: Incoming<'_>,
        out: &mut dyn Outbox,
        gpadl: &mut dyn FnMut(u32) -> Option<M>,
        backend: &mut dyn Backend,
    ) {
        let tid = packet.transaction_id;
        if let IncomingKind::Completion = packet.kind {
            // The guest is done with a receive section (whatever the payload says).
            let freed = self
                .receive
                .as_mut()
                .is_some_and(|r| r.sections.give_back(tid));
            if !freed {
                self.stats.bogus_completions += 1;
            }
            return;
        }
        let message = match Message::parse(packet.payload) {
            Ok(m) => m,
            Err(_) => {
                self.stats.bad_messages += 1;
                return self.refuse(q, out, &packet);
            }
        };
        // Setup belongs to the primary; a sub-channel carries data.
        let setup = q == 0;
        let reply = match message {
            Message::Init(init) if setup => Some(self.init(init)),
            Message::SendNdisConfig(c) if setup && self.version.is_some() => {
                self.guest_mtu = c.mtu.get();
                None
            }
            Message::SendNdisVersion(v) if setup && self.version.is_some() => {
                self.ndis_version = (v.major.get(), v.minor.get());
                None
            }
            Message::SendReceiveBuffer(b) if setup && self.version.is_some() => {
                Some(self.receive_buffer(b.id.get(), gpadl(b.gpadl.get())))
            }
            Message::SendSendBuffer(b) if setup && self.version.is_some() => {
                Some(self.send_buffer(gpadl(b.gpadl.get())))
            }
            Message::RevokeReceiveBuffer(r) if setup => {
                if self.receive.as_ref().is_some_and(|b| b.id == r.id.get()) {
                    self.receive = None;
                    self.control.clear();
                }
                None
            }
            Message::RevokeSendBuffer(_) if setup => {
                self.send = None;
                None
            }
            Message::SendRndisPacket(p) if self.version.is_some() => {
                let status = self.rndis_packet(p, &packet.kind, backend);
                Some(
                    Message::SendRndisPacketComplete(nvsp::SendRndisPacketComplete {
                        status: u32le(status.0),
                    })
                    .encode(),
                )
            }
            Message::Subchannel(r) if setup => Some(self.subchannel(r)),
            Message::SwitchDataPath(_) if setup => {
                // No VF to switch to; Linux waits for an empty completion.
                if packet.completion_requested {
                    self.send_completion(q, out, tid, &[]);
                }
                return self.flush_control(q, out);
            }
            _ => {
                self.stats.bad_messages += 1;
                return self.refuse(q, out, &packet);
            }
        };
        if let Some(reply) = reply {
            if packet.completion_requested {
                self.send_completion(q, out, tid, &reply);
            }
        }
        self.flush_control(q, out);
    }

    /// NVSP 5's SUBCHANNEL ALLOCATE: grants up to what the NIC offers, once.
    fn subchannel(&mut self, r: nvsp::SubchannelRequest) -> [u8; MESSAGE_SIZE] {
        let most = self.rndis.queues() - 1;
        let asked = r.count.get();
        let ok = self.version.is_some_and(|v| v >= Version::V5)
            && r.op.get() == nvsp::SUBCHANNEL_ALLOCATE
            && asked > 0
            && most > 0
            && self.subchannels.is_none();
        let granted = if ok { asked.min(most) } else { 0 };
        if ok {
            self.subchannels = Some(granted);
        } else {
            self.stats.bad_messages += 1;
        }
        Message::encode_subchannel_complete(nvsp::SubchannelComplete {
            status: u32le(if ok {
                Status::SUCCESS.0
            } else {
                Status::FAILURE.0
            }),
            count: u32le(granted),
        })
    }

    /// A message that is not one we take: if the guest waits for an answer, it
    /// gets a failure, so it does not wait forever.
    fn refuse(&mut self, q: usize, out: &mut dyn Outbox, packet: &Incoming<'_>) {
        if packet.completion_requested {
            let reply = Message::SendRndisPacketComplete(nvsp::SendRndisPacketComplete {
                status: u32le(Status::FAILURE.0),
            })
            .encode();
            self.send_completion(q, out, packet.transaction_id, &reply);
        }
    }

    fn init(&mut self, init: nvsp::Init) -> [u8; MESSAGE_SIZE] {
        let min = Version(init.min_version.get());
        let max = Version(init.max_version.get());
        // Renegotiating under live buffers would change their meaning.
        let agreed = if self.receive.is_some() || self.send.is_some() {
            None
        } else {
            Version::negotiate(min, max)
        };
        if agreed.is_some() {
            self.version = agreed;
        }
        let status = match agreed {
            Some(_) => Status::SUCCESS,
            None if min > Version::V61 => Status::PROTOCOL_TOO_NEW,
            None if max < Version::V2 => Status::PROTOCOL_TOO_OLD,
            None => Status::FAILURE,
        };
        Message::InitComplete(nvsp::InitComplete {
            negotiated_version: u32le(agreed.map_or(0, |v| v.0)),
            max_mdl_chain_length: u32le(0),
            status: u32le(status.0),
        })
        .encode()
    }

    /// The buffer a SEND_*_BUFFER names, cut into `section`-byte sections: at
    /// most one of each kind, no larger than configured, at least one section.
    fn new_buffer(
        &mut self,
        taken: bool,
        gpadl: Option<M>,
        max: usize,
        section: u32,
    ) -> Option<(M, u32)> {
        let found = gpadl
            .filter(|m| !taken && m.len() <= max)
            .map(|m| {
                let count = (m.len() / section as usize) as u32;
                (m, count)
            })
            .filter(|(_, count)| *count > 0);
        if found.is_none() {
            self.stats.bad_messages += 1;
        }
        found
    }

    /// SEND_RECEIVE_BUFFER of buffer `id` over `mem` (the GPADL it names).
    fn receive_buffer(&mut self, id: u16, mem: Option<M>) -> [u8; MESSAGE_SIZE] {
        let size = RECEIVE_SECTION_SIZE;
        let max = self.config.max_receive_buffer;
        let found = self.new_buffer(self.receive.is_some(), mem, max, size);
        let count = found.map_or(0, |(mem, count)| {
            self.receive = Some(ReceiveBuffer {
                mem,
                id,
                sections: Sections::new(count),
                owner: vec![0; count as usize],
            });
            count
        });
        Message::SendReceiveBufferComplete(nvsp::SendReceiveBufferComplete {
            status: setup_status(count > 0),
            section_count: u32le(u32::from(count > 0)),
            section: nvsp::ReceiveBufferSection {
                offset: u32le(0),
                sub_allocation_size: u32le(if count > 0 { size } else { 0 }),
                sub_allocation_count: u32le(count),
                end_offset: u32le(count * size),
            },
        })
        .encode()
    }

    /// SEND_SEND_BUFFER over `mem` (the GPADL it names).
    fn send_buffer(&mut self, mem: Option<M>) -> [u8; MESSAGE_SIZE] {
        let size = SEND_SECTION_SIZE;
        let found = self.new_buffer(self.send.is_some(), mem, self.config.max_send_buffer, size);
        let ok = found.is_some();
        // A refused second buffer leaves the first in place.
        if let Some((mem, sections)) = found {
            self.send = Some(SendBuffer { mem, sections });
        }
        Message::SendSendBufferComplete(nvsp::SendSendBufferComplete {
            status: setup_status(ok),
            section_size: u32le(if ok { size } else { 0 }),
        })
        .encode()
    }

    /// Copies the RNDIS bytes a SEND_RNDIS_PACKET names into `scratch`: the send
    /// section's bytes, then the packet's GPA ranges. Usually one of the two is
    /// empty; Linux uses both when a batch has room for a packet's RNDIS header
    /// but not its data (`cp_partial`): the header ends the section and the
    /// frame follows in the ranges.
    fn fetch(
        &mut self,
        p: &nvsp::SendRndisPacket,
        kind: &IncomingKind<'_>,
    ) -> Result<(), BadPacket> {
        let index = p.section_index.get();
        let section = if index == nvsp::NO_SECTION {
            0
        } else {
            let send = self.send.as_ref().ok_or(BadPacket)?;
            let len = p.section_size.get();
            if index >= send.sections || len > SEND_SECTION_SIZE {
                return Err(BadPacket);
            }
            len as usize
        };
        // An in-band packet names no GPA ranges: its bytes are the section's alone.
        let ranges: Option<&dyn GuestBuffer> = match kind {
            IncomingKind::GpaDirect(mem) => Some(*mem),
            _ if section == 0 => return Err(BadPacket),
            _ => None,
        };
        let len = section
            .checked_add(ranges.map_or(0, |r| r.len()))
            .ok_or(BadPacket)?;
        if len == 0 || len > MAX_TRANSFER_SIZE as usize {
            return Err(BadPacket);
        }
        self.scratch.resize(len, 0);
        let (head, tail) = self.scratch.split_at_mut(section);
        if let Some(send) = self.send.as_ref().filter(|_| section > 0) {
            let at = (index * SEND_SECTION_SIZE) as usize;
            send.mem.read_at(at, head).map_err(|_| BadPacket)?;
        }
        match ranges {
            Some(ranges) => ranges.read_at(0, tail).map_err(|_| BadPacket),
            None => Ok(()),
        }
    }

    /// Handles every RNDIS message in the packet; the NVSP status for it.
    fn rndis_packet(
        &mut self,
        p: nvsp::SendRndisPacket,
        kind: &IncomingKind<'_>,
        backend: &mut dyn Backend,
    ) -> Status {
        if self.fetch(&p, kind).is_err() {
            self.stats.bad_messages += 1;
            return Status::INVALID_RNDIS_PACKET;
        }
        let bytes = core::mem::take(&mut self.scratch);
        let mut status = Status::SUCCESS;
        let mut at = 0;
        // A section holds at most a few batched packets; a GPA-direct packet one.
        while at < bytes.len() {
            let rest = &bytes[at..];
            // Batched packets are padded; a zero header word is the padding's end.
            if rest.iter().take(4).all(|&b| b == 0) && at > 0 {
                break;
            }
            match rndis::parse(rest) {
                Ok((rndis::Message::Packet(data), used)) => {
                    self.transmit(&data, backend);
                    at += used;
                }
                Ok((message, used)) => {
                    let mut answer = Vec::new();
                    if self.rndis.control(message, &mut answer) == Outcome::Answered {
                        self.queue_control(answer);
                    }
                    at += used;
                }
                Err(e) => {
                    self.stats.bad_messages += 1;
                    let mut answer = Vec::new();
                    if self.rndis.refuse(&e, &mut answer) == Outcome::Answered {
                        self.queue_control(answer);
                    }
                    status = Status::INVALID_RNDIS_PACKET;
                    break;
                }
            }
        }
        self.scratch = bytes;
        status
    }

    fn transmit(&mut self, data: &rndis::DataPacket<'_>, backend: &mut dyn Backend) {
        let tag = match data.vlan_tci() {
            Ok(tag) => tag,
            Err(_) => {
                self.stats.bad_messages += 1;
                self.rndis.counters.xmit_error += 1;
                return;
            }
        };
        let frame = data.frame;
        let sent = match tag {
            // The sender moved the 802.1Q tag out of the frame: put it back.
            Some(tci) if frame.len() >= 12 && frame.len() + 4 <= MAX_FRAME => {
                self.frame.clear();
                self.frame.extend_from_slice(&frame[..12]);
                self.frame.extend_from_slice(&[0x81, 0x00]);
                self.frame.extend_from_slice(&tci.to_be_bytes());
                self.frame.extend_from_slice(&frame[12..]);
                backend.transmit(&self.frame)
            }
            None if frame.len() <= MAX_FRAME => backend.transmit(frame),
            _ => false,
        };
        if sent {
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += frame.len() as u64;
            self.rndis.counters.xmit_ok += 1;
        } else {
            self.rndis.counters.xmit_error += 1;
        }
    }

    fn queue_control(&mut self, answer: Vec<u8>) {
        if self.control.len() >= MAX_QUEUED_CONTROL {
            self.stats.control_dropped += 1;
            return;
        }
        self.control.push_back(answer);
    }

    fn send_completion(&mut self, q: usize, out: &mut dyn Outbox, tid: u64, message: &[u8]) {
        let mut buf = [0u8; MESSAGE_SIZE];
        let len = message.len().min(MESSAGE_SIZE);
        buf[..len].copy_from_slice(&message[..len]);
        let p = Pending::Completion {
            tid,
            message: buf,
            len,
        };
        let Some(pending) = self.pending.get(q) else {
            return;
        };
        if pending.is_empty() && self.write(out, &p).is_ok() {
            return;
        }
        // An owner that keeps handing packets while the NIC is stalled (serve
        // never does) must not grow this without end; transfers are bounded by
        // the sections already.
        if self.pending[q].len() >= MAX_PENDING {
            self.stats.completions_dropped += 1;
            return;
        }
        self.pending[q].push_back(p);
    }

    fn write(&self, out: &mut dyn Outbox, p: &Pending) -> Result<(), OutboxFull> {
        match p {
            Pending::Completion { tid, message, len } => out.send(
                &OutgoingPacket {
                    transaction_id: *tid,
                    completion_requested: false,
                    kind: OutgoingKind::Completion,
                },
                &[&message[..*len]],
            ),
            Pending::Transfer {
                section,
                len,
                control,
            } => {
                let Some(r) = &self.receive else {
                    // The buffer was revoked meanwhile: nothing left to announce.
                    return Ok(());
                };
                let message = Message::SendRndisPacket(nvsp::SendRndisPacket {
                    channel_type: u32le(if *control {
                        nvsp::CHANNEL_TYPE_CONTROL
                    } else {
                        nvsp::CHANNEL_TYPE_DATA
                    }),
                    section_index: u32le(nvsp::NO_SECTION),
                    section_size: u32le(0),
                })
                .encode();
                let range = TransferPageRange {
                    byte_count: *len,
                    byte_offset: section * RECEIVE_SECTION_SIZE,
                };
                out.send(
                    &OutgoingPacket {
                        transaction_id: u64::from(*section),
                        completion_requested: true,
                        kind: OutgoingKind::TransferPages {
                            transfer_page_set_id: r.id,
                            ranges: &[range],
                        },
                    },
                    &[&message],
                )
            }
        }
    }

    /// Writes what waits for the primary's ring; false if some still waits.
    pub fn flush(&mut self, out: &mut dyn Outbox) -> bool {
        self.flush_on(0, out)
    }

    /// Writes what waits for queue `q`'s ring (`out`); false if some still waits.
    pub fn flush_on(&mut self, q: usize, out: &mut dyn Outbox) -> bool {
        if q >= self.pending.len() {
            return true;
        }
        while let Some(p) = self.pending[q].front() {
            if self.write(out, p).is_err() {
                return false;
            }
            self.pending[q].pop_front();
        }
        self.flush_control(q, out);
        self.pending[q].is_empty()
    }

    /// Places queued control answers into receive sections, announced on the
    /// primary (serving another queue only marks the primary for serving).
    fn flush_control(&mut self, q: usize, out: &mut dyn Outbox) {
        while let Some(answer) = self.control.front() {
            let answer = answer.clone();
            if !self.place(q, 0, out, &[&answer], true) {
                return;
            }
            self.control.pop_front();
        }
    }

    /// Writes one RNDIS message into a free section and announces it on queue
    /// `target`: at once if that is the queue being served (`current`, `out` its
    /// ring) and nothing waits before it, else in the target's `pending`. False
    /// if no section is free (or no buffer is set up).
    fn place(
        &mut self,
        current: usize,
        target: usize,
        out: &mut dyn Outbox,
        parts: &[&[u8]],
        control: bool,
    ) -> bool {
        let Some(r) = self.receive.as_mut() else {
            return false;
        };
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > RECEIVE_SECTION_SIZE as usize {
            // Cannot happen for our own answers and frames; never write past it.
            return true;
        }
        let Some(section) = r.sections.take() else {
            return false;
        };
        if let Some(o) = r.owner.get_mut(section as usize) {
            *o = target as u8;
        }
        let mut at = (section * RECEIVE_SECTION_SIZE) as usize;
        for part in parts {
            if r.mem.write_at(at, part).is_err() {
                r.sections.give_back(section.into());
                return true;
            }
            at += part.len();
        }
        let p = Pending::Transfer {
            section,
            len: len as u32,
            control,
        };
        let now = target == current && self.pending[target].is_empty();
        if !now || self.write(out, &p).is_err() {
            self.pending[target].push_back(p);
            if target != current {
                self.woken |= 1 << target;
            }
        }
        true
    }

    /// The queue a received frame goes to: RSS's pick if that queue is open, else
    /// the primary.
    fn steer(&self, frame: &[u8]) -> usize {
        let q = self.rndis.rss().queue(frame) as usize;
        if q < MAX_QUEUES && self.open_queues & (1 << q) != 0 {
            q
        } else {
            0
        }
    }

    /// Moves frames from the network to the guest while it has free sections and
    /// room in the primary's ring. Returns how many were delivered.
    pub fn poll_rx(&mut self, out: &mut dyn Outbox, backend: &mut dyn Backend) -> usize {
        self.poll_rx_on(0, out, backend)
    }

    /// The same while queue `q` is served (`out` its ring): frames RSS sends to
    /// other queues wait in theirs.
    pub fn poll_rx_on(
        &mut self,
        q: usize,
        out: &mut dyn Outbox,
        backend: &mut dyn Backend,
    ) -> usize {
        if !self.flush_on(q, out) {
            return 0;
        }
        let mut n = 0;
        let mut frame = core::mem::take(&mut self.frame);
        frame.resize(MAX_FRAME, 0);
        while self.is_stalled_free(q) {
            let Some(len) = backend.receive(&mut frame) else {
                break;
            };
            let data = &frame[..len.min(MAX_FRAME)];
            if !self.ready_for_frames() || !self.rndis.accepts(data) {
                self.stats.rx_filtered += 1;
                continue;
            }
            let header = rndis::packet_header(data.len(), 0);
            let target = self.steer(data);
            if self.place(q, target, out, &[&header, data], false) {
                n += 1;
                self.stats.rx_frames += 1;
                self.stats.rx_bytes += data.len() as u64;
                self.rndis.counters.rcv_ok += 1;
            } else {
                self.rndis.counters.rcv_no_buffer += 1;
            }
        }
        self.frame = frame;
        n
    }

    /// Ready to take a frame: nothing waits for the ring and a section is free
    /// (checked before pulling a frame so none is pulled only to be dropped).
    fn is_stalled_free(&self, q: usize) -> bool {
        !self.is_stalled_on(q)
            && self.control.is_empty()
            && self
                .receive
                .as_ref()
                .is_none_or(|r| r.sections.free_count() > 0)
    }
}
