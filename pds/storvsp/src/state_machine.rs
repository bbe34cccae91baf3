//! The storvsp protocol state machine, sans I/O: a packet's bytes go in, the
//! completion's bytes come out.
//!
//! The primary channel negotiates (BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION
//! until a version fits, QUERY_PROPERTIES, optionally CREATE_SUB_CHANNELS,
//! END_INITIALIZATION); afterwards every channel, primary or sub-channel, carries
//! EXECUTE_SRB and the resets. A packet out of order is answered with
//! INVALID_DEVICE_STATE and changes nothing.

use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::scsi::Controller;
use crate::srb;
use isolation::GuestMemory;
use storvsp_protocol::{
    ChannelProperties, NtStatus, Operation, ProtocolVersion, SrbStatus, VersionPayload,
    VmscsiRequest, VstorHeader, STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL, VMSCSI_REQUEST_SIZE,
    VMSCSI_REQUEST_SIZE_PRE_WIN8, VSTOR_HEADER_SIZE, VSTOR_PACKET_SIZE,
};
use vmbus_device::Packet;

/// Asks the VMBus side to offer sub-channels (a call to the vmbus-server PD).
/// `Debug` so a channel holding one can be printed whole.
pub trait SubChannels: core::fmt::Debug {
    /// How many sub-channels the VMBus side could offer.
    fn max_subchannels(&self) -> u16;
    /// Offers `count` sub-channels; `Err` if it cannot.
    fn enable(&mut self, count: u16) -> Result<(), SubChannelError>;
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SubChannelError;

/// No sub-channels at all.
#[derive(Copy, Clone, Debug, Default)]
pub struct NoSubChannels;

impl SubChannels for NoSubChannels {
    fn max_subchannels(&self) -> u16 {
        0
    }

    fn enable(&mut self, _count: u16) -> Result<(), SubChannelError> {
        Err(SubChannelError)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProtocolState {
    /// Waiting for BEGIN_INITIALIZATION.
    Begin,
    /// Waiting for a QUERY_PROTOCOL_VERSION we can accept.
    QueryVersion,
    QueryProperties {
        version: ProtocolVersion,
    },
    /// Waiting for END_INITIALIZATION (CREATE_SUB_CHANNELS allowed once).
    EndInitialization {
        version: ProtocolVersion,
        subchannels: Option<u16>,
    },
    Ready {
        version: ProtocolVersion,
        subchannels: u16,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StorvspConfig {
    /// Largest transfer the guest may send in one SRB.
    pub max_transfer_bytes: u32,
}

impl Default for StorvspConfig {
    fn default() -> Self {
        Self {
            max_transfer_bytes: 512 * 1024,
        }
    }
}

/// The completion to send back: its transaction id and `vstor_packet` bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub transaction_id: u64,
    len: usize,
    bytes: [u8; VSTOR_PACKET_SIZE],
}

impl Completion {
    /// A completion as the guest read it from the ring (cut to a `vstor_packet`).
    pub fn from_wire(transaction_id: u64, wire: &[u8]) -> Self {
        let mut bytes = [0u8; VSTOR_PACKET_SIZE];
        let len = wire.len().min(VSTOR_PACKET_SIZE);
        bytes[..len].copy_from_slice(&wire[..len]);
        Self {
            transaction_id,
            len,
            bytes,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn header(&self) -> VstorHeader {
        VstorHeader::read_from_prefix(&self.bytes)
            .map(|(h, _)| h)
            .unwrap_or_else(|_| VstorHeader::new_zeroed())
    }

    /// The SRB part, for EXECUTE_SRB completions.
    pub fn srb(&self) -> VmscsiRequest {
        VmscsiRequest::read_from_prefix(&self.bytes[VSTOR_HEADER_SIZE..])
            .map(|(s, _)| s)
            .unwrap_or_else(|_| VmscsiRequest::new_zeroed())
    }
}

/// Counters a test or a log can read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub srbs: u64,
    /// Packets refused as malformed or out of order.
    pub refused: u64,
}

/// One storvsp instance: the protocol state shared by all its channels and the
/// SCSI controller behind them.
#[derive(Debug)]
pub struct Storvsp {
    state: ProtocolState,
    controller: Controller,
    config: StorvspConfig,
    stats: Stats,
}

enum Reply {
    Empty(NtStatus),
    Owned(NtStatus, PayloadBuf),
}

impl Storvsp {
    pub fn new(controller: Controller, config: StorvspConfig) -> Self {
        Self {
            state: ProtocolState::Begin,
            controller,
            config,
            stats: Stats::default(),
        }
    }

    pub fn state(&self) -> ProtocolState {
        self.state
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// The primary channel closed: the next open starts negotiating afresh.
    pub fn reset(&mut self) {
        self.state = ProtocolState::Begin;
    }

    /// Handles one packet (in-band or GPA-direct) of channel `channel` (0 is the
    /// primary). Returns the completion to send, if the guest asked for one.
    pub fn handle_packet(
        &mut self,
        channel: u16,
        packet: &Packet<'_>,
        mem: &GuestMemory<'_>,
        subchannels: &mut dyn SubChannels,
    ) -> Option<Completion> {
        self.stats.packets += 1;
        let (status, size, payload) = self.dispatch(channel, packet, mem, subchannels);
        packet
            .completion_requested()
            .then(|| complete(packet.transaction_id(), size, status, payload.as_slice()))
    }

    /// Answers a packet of a kind the protocol never uses (a completion, transfer
    /// pages) by its id alone.
    pub fn refuse(
        &mut self,
        transaction_id: u64,
        completion_requested: bool,
    ) -> Option<Completion> {
        self.stats.packets += 1;
        self.stats.refused += 1;
        completion_requested.then(|| {
            complete(
                transaction_id,
                self.refusal_size(0),
                NtStatus::INVALID_PARAMETER,
                refused_srb().as_bytes(),
            )
        })
    }

    /// How much SRB a refusal carries: never less than the negotiated version's
    /// full `vstor_packet`, because Linux's storvsc_on_channel_callback drops any
    /// completion shorter than that ("Invalid pkt") and the request it answers
    /// would then hang until the SCSI timeout. Before a version is agreed, the
    /// largest packet: the client cannot want more, and a longer completion is
    /// harmless where a shorter one is lost.
    fn refusal_size(&self, mirrored: usize) -> usize {
        let version = match self.state {
            ProtocolState::QueryProperties { version }
            | ProtocolState::EndInitialization { version, .. }
            | ProtocolState::Ready { version, .. } => Some(version),
            ProtocolState::Begin | ProtocolState::QueryVersion => None,
        };
        let full = version.map_or(VMSCSI_REQUEST_SIZE, ProtocolVersion::srb_size);
        mirrored.max(full).min(VMSCSI_REQUEST_SIZE)
    }

    fn dispatch(
        &mut self,
        channel: u16,
        packet: &Packet<'_>,
        mem: &GuestMemory<'_>,
        subchannels: &mut dyn SubChannels,
    ) -> (NtStatus, usize, PayloadBuf) {
        // Answers mirror the request's size, as Hyper-V does: old clients send
        // shorter packets, and Linux checks the completion is no shorter than
        // what it sent.
        let size = packet
            .payload
            .len()
            .saturating_sub(VSTOR_HEADER_SIZE)
            .min(VMSCSI_REQUEST_SIZE);
        let Ok((header, body)) = VstorHeader::read_from_prefix(packet.payload) else {
            self.stats.refused += 1;
            return (
                NtStatus::INVALID_PARAMETER,
                self.refusal_size(size),
                PayloadBuf::from(refused_srb().as_bytes()),
            );
        };
        let reply = match header.operation {
            Operation::EXECUTE_SRB => return self.execute_srb(packet, body, mem, size),
            op => self.control(channel, op, body, subchannels),
        };
        match reply {
            Reply::Empty(status) => (status, size, PayloadBuf::empty()),
            Reply::Owned(status, payload) => (status, size, payload),
        }
    }

    fn execute_srb(
        &mut self,
        packet: &Packet<'_>,
        body: &[u8],
        mem: &GuestMemory<'_>,
        size: usize,
    ) -> (NtStatus, usize, PayloadBuf) {
        if !matches!(self.state, ProtocolState::Ready { .. }) {
            self.stats.refused += 1;
            return (
                NtStatus::INVALID_DEVICE_STATE,
                self.refusal_size(size),
                PayloadBuf::from(refused_srb().as_bytes()),
            );
        }
        if body.len() < VMSCSI_REQUEST_SIZE_PRE_WIN8 {
            self.stats.refused += 1;
            return (
                NtStatus::INVALID_PARAMETER,
                self.refusal_size(size),
                PayloadBuf::from(refused_srb().as_bytes()),
            );
        }
        // A short (pre-Windows-8 sized) SRB has its extension read as zeros.
        let mut request = VmscsiRequest::new_zeroed();
        let n = body.len().min(VMSCSI_REQUEST_SIZE);
        request.as_mut_bytes()[..n].copy_from_slice(&body[..n]);
        self.stats.srbs += 1;
        let (response, status) = srb::execute(&mut self.controller, &request, packet.buffer, mem);
        (status, size, PayloadBuf::from(response.as_bytes()))
    }

    fn control(
        &mut self,
        channel: u16,
        op: Operation,
        body: &[u8],
        subchannels: &mut dyn SubChannels,
    ) -> Reply {
        use ProtocolState as S;
        let bad_state = Reply::Empty(NtStatus::INVALID_DEVICE_STATE);
        let primary = channel == 0;
        let reply = match (self.state, op) {
            (S::Begin, Operation::BEGIN_INITIALIZATION) if primary => {
                self.state = S::QueryVersion;
                Reply::Empty(NtStatus::SUCCESS)
            }
            (S::QueryVersion, Operation::QUERY_PROTOCOL_VERSION) if primary => {
                let Ok((v, _)) = VersionPayload::read_from_prefix(body) else {
                    self.stats.refused += 1;
                    return Reply::Empty(NtStatus::INVALID_PARAMETER);
                };
                let version = ProtocolVersion(v.major_minor);
                let status = if version.is_supported() {
                    self.state = S::QueryProperties { version };
                    NtStatus::SUCCESS
                } else {
                    // Linux tries the next older version on any non-zero status.
                    NtStatus::REVISION_MISMATCH
                };
                return version_reply(status, v.major_minor);
            }
            (S::QueryProperties { version }, Operation::QUERY_PROPERTIES) if primary => {
                self.state = S::EndInitialization {
                    version,
                    subchannels: None,
                };
                return self.properties(subchannels.max_subchannels());
            }
            (
                S::EndInitialization {
                    version,
                    subchannels: None,
                },
                Operation::CREATE_SUB_CHANNELS,
            ) if primary => match create_subchannels(body, subchannels) {
                Ok(count) => {
                    self.state = S::EndInitialization {
                        version,
                        subchannels: Some(count),
                    };
                    Reply::Empty(NtStatus::SUCCESS)
                }
                Err(status) => Reply::Empty(status),
            },
            (
                S::EndInitialization {
                    version,
                    subchannels: count,
                },
                Operation::END_INITIALIZATION,
            ) if primary => {
                self.state = S::Ready {
                    version,
                    subchannels: count.unwrap_or(0),
                };
                Reply::Empty(NtStatus::SUCCESS)
            }
            // Linux asks for sub-channels after END_INITIALIZATION.
            (S::Ready { version, .. }, Operation::CREATE_SUB_CHANNELS) if primary => {
                match create_subchannels(body, subchannels) {
                    Ok(count) => {
                        self.state = S::Ready {
                            version,
                            subchannels: count,
                        };
                        Reply::Empty(NtStatus::SUCCESS)
                    }
                    Err(status) => Reply::Empty(status),
                }
            }
            // Nothing is queued behind a request (each completes before the
            // next is read), so a reset has nothing to abort.
            (
                S::Ready { .. },
                Operation::RESET_LUN | Operation::RESET_ADAPTER | Operation::RESET_BUS,
            ) => Reply::Empty(NtStatus::SUCCESS),
            (_, op) if op.0 == 0 || op.0 > Operation::EVENT_NOTIFICATION.0 => {
                Reply::Empty(NtStatus::INVALID_DEVICE_REQUEST)
            }
            _ => bad_state,
        };
        if let Reply::Empty(s) = reply {
            if s != NtStatus::SUCCESS {
                self.stats.refused += 1;
            }
        }
        reply
    }

    fn properties(&self, max_subchannels: u16) -> Reply {
        let props = ChannelProperties {
            reserved: 0,
            max_channel_count: max_subchannels,
            reserved1: 0,
            flags: if max_subchannels > 0 {
                STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL
            } else {
                0
            },
            max_transfer_bytes: self.config.max_transfer_bytes,
            reserved2: 0,
        };
        Reply::Owned(NtStatus::SUCCESS, PayloadBuf::from(props.as_bytes()))
    }
}

fn version_reply(status: NtStatus, major_minor: u16) -> Reply {
    let v = VersionPayload {
        major_minor,
        revision: 0,
    };
    Reply::Owned(status, PayloadBuf::from(v.as_bytes()))
}

fn create_subchannels(body: &[u8], ctl: &mut dyn SubChannels) -> Result<u16, NtStatus> {
    let count = match body {
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        _ => return Err(NtStatus::INVALID_PARAMETER),
    };
    if count > ctl.max_subchannels() {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    ctl.enable(count).map_err(|_| NtStatus::INVALID_PARAMETER)?;
    Ok(count)
}

/// A payload up to the size of the union.
#[derive(Copy, Clone, Debug)]
struct PayloadBuf {
    len: usize,
    bytes: [u8; VMSCSI_REQUEST_SIZE],
}

impl PayloadBuf {
    fn empty() -> Self {
        Self {
            len: 0,
            bytes: [0; VMSCSI_REQUEST_SIZE],
        }
    }

    fn from(src: &[u8]) -> Self {
        let mut p = Self::empty();
        let n = src.len().min(VMSCSI_REQUEST_SIZE);
        p.bytes[..n].copy_from_slice(&src[..n]);
        p.len = n;
        p
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The SRB of a refusal: Linux completes a SCSI command from `srb_status` (not
/// from the packet's NT status), so it must say failure. SRB_STATUS_ERROR, not
/// INVALID_REQUEST: storvsc turns INVALID_REQUEST on an INQUIRY or MODE SENSE
/// into success with no data. Nothing was transferred and there is no sense.
fn refused_srb() -> VmscsiRequest {
    let mut srb = VmscsiRequest::new_zeroed();
    srb.length = VMSCSI_REQUEST_SIZE as u16;
    srb.srb_status = SrbStatus::ERROR.0;
    srb
}

/// Builds a COMPLETE_IO `vstor_packet` of `12 + size` bytes: the payload is
/// truncated or zero-padded to `size`.
fn complete(transaction_id: u64, size: usize, status: NtStatus, payload: &[u8]) -> Completion {
    let mut bytes = [0u8; VSTOR_PACKET_SIZE];
    let header = VstorHeader {
        operation: Operation::COMPLETE_IO,
        flags: 0,
        status,
    };
    bytes[..VSTOR_HEADER_SIZE].copy_from_slice(header.as_bytes());
    let n = payload.len().min(size);
    bytes[VSTOR_HEADER_SIZE..VSTOR_HEADER_SIZE + n].copy_from_slice(&payload[..n]);
    Completion {
        transaction_id,
        len: VSTOR_HEADER_SIZE + size,
        bytes,
    }
}
