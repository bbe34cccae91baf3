//! The guest's end of an open storage channel.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use storvsp_protocol::{
    ChannelProperties, DataDirection, NtStatus, Operation, ProtocolVersion, VersionPayload,
};
use vmbus_ring::{
    AttachError, Corruption, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing, ReadError, RingMem, WriteError,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::wire::{control_payload, srb_payload, GuestBuf, Reply};

/// How the client reaches the VSP.
pub trait Host {
    /// The ring asked for a signal (HvSignalEvent on the channel's connection).
    fn signal(&mut self) -> Result<(), String>;
    /// Nothing to read yet: wait for the VSP's interrupt (or run it).
    fn wait(&mut self) -> Result<(), String>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    RingFull,
    Write(WriteError),
    Read(ReadError),
    /// The VSP sent something other than a completion.
    NotACompletion(IncomingKind),
    ShortCompletion(usize),
    UnknownRequest(u64),
    TwoCompletions(u64),
    /// A negotiation step failed with this status.
    Refused(Operation, NtStatus),
    NoVersion,
    Host(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RingFull => write!(f, "the request ring is full"),
            Self::Write(e) => write!(f, "request ring: {e}"),
            Self::Read(e) => write!(f, "completion ring: {e}"),
            Self::NotACompletion(k) => write!(f, "a {k:?} packet from storvsp"),
            Self::ShortCompletion(n) => write!(f, "a {n}-byte completion"),
            Self::UnknownRequest(id) => write!(f, "completion for unknown request {id}"),
            Self::TwoCompletions(id) => write!(f, "two completions for request {id}"),
            Self::Refused(op, s) => write!(f, "operation {}: status {:#x}", op.0, s.0),
            Self::NoVersion => write!(f, "storvsp took no protocol version"),
            Self::Host(e) => write!(f, "{e}"),
        }
    }
}

impl From<Corruption> for ClientError {
    fn from(e: Corruption) -> Self {
        Self::Read(ReadError::Corrupt(e))
    }
}

/// One SRB to queue: the CDB, its direction and its data buffer.
#[derive(Copy, Clone, Debug)]
pub struct Request<'a> {
    pub cdb: &'a [u8],
    pub dir: DataDirection,
    pub buf: Option<&'a GuestBuf>,
}

/// What negotiation agreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub version: ProtocolVersion,
    pub properties: Option<ChannelProperties>,
    /// The versions offered first and refused.
    pub refused: Vec<ProtocolVersion>,
}

/// The guest's end of the open storage channel.
#[derive(Debug)]
pub struct Storvsc<M: RingMem> {
    tx: OutgoingRing<M>,
    rx: IncomingRing<M>,
    next_id: u64,
    /// Signals sent to the host.
    pub signals: u64,
    /// Waits for the host.
    pub interrupts: u64,
}

impl<M: RingMem> Storvsc<M> {
    /// The guest's ends of the guest-to-host (`tx`) and host-to-guest rings,
    /// whose control pages the guest initialized.
    pub fn new(tx: M, rx: M) -> Result<Self, AttachError> {
        Ok(Self {
            tx: OutgoingRing::new(tx)?,
            rx: IncomingRing::new(rx)?,
            next_id: 1,
            signals: 0,
            interrupts: 0,
        })
    }

    /// Writes one request (not yet published); returns its transaction id.
    pub fn queue(&mut self, payload: &[u8], buf: Option<&GuestBuf>) -> Result<u64, ClientError> {
        let id = self.next_id;
        let ranges;
        let kind = match buf {
            None => OutgoingKind::InBand,
            Some(b) => {
                ranges = [b.range()];
                OutgoingKind::GpaDirect(&ranges)
            }
        };
        let packet = OutgoingPacket {
            transaction_id: id,
            completion_requested: true,
            kind,
        };
        match self.tx.write_packet(&packet, &[payload]) {
            Ok(()) => {}
            Err(WriteError::Full { .. }) => return Err(ClientError::RingFull),
            Err(e) => return Err(ClientError::Write(e)),
        }
        self.next_id += 1;
        Ok(id)
    }

    /// Publishes what was queued; signals the host if the ring asks for it.
    pub fn kick(&mut self, host: &mut dyn Host) -> Result<(), ClientError> {
        if self.tx.commit()? {
            host.signal().map_err(ClientError::Host)?;
            self.signals += 1;
        }
        Ok(())
    }

    /// The next completion, if one is there (not yet handed back to the VSP).
    pub fn poll(&mut self) -> Result<Option<(u64, Reply)>, ClientError> {
        let p = match self.rx.read() {
            Ok(p) => p,
            Err(ReadError::Empty) => return Ok(None),
            Err(e) => return Err(ClientError::Read(e)),
        };
        if p.kind != IncomingKind::Completion {
            return Err(ClientError::NotACompletion(p.kind));
        }
        let mut bytes = vec![0u8; p.payload.len()];
        self.rx.copy_from(&p.payload, 0, &mut bytes)?;
        let reply = Reply::parse(&bytes).ok_or(ClientError::ShortCompletion(bytes.len()))?;
        Ok(Some((p.transaction_id, reply)))
    }

    /// Hands the space of the completions read back to the VSP; signals it if it
    /// waits for that space.
    pub fn release(&mut self, host: &mut dyn Host) -> Result<(), ClientError> {
        if self.rx.commit()? {
            host.signal().map_err(ClientError::Host)?;
            self.signals += 1;
        }
        Ok(())
    }

    /// Waits for the completions of `ids` (in any order); returns them in `ids`'
    /// order.
    pub fn collect(&mut self, host: &mut dyn Host, ids: &[u64]) -> Result<Vec<Reply>, ClientError> {
        let mut got: Vec<Option<Reply>> = vec![None; ids.len()];
        let mut left = ids.len();
        while left > 0 {
            while let Some((id, reply)) = self.poll()? {
                let slot = ids
                    .iter()
                    .position(|&i| i == id)
                    .ok_or(ClientError::UnknownRequest(id))?;
                if got[slot].is_some() {
                    return Err(ClientError::TwoCompletions(id));
                }
                got[slot] = Some(reply);
                left -= 1;
            }
            self.release(host)?;
            if left > 0 && self.rx.is_empty()? {
                host.wait().map_err(ClientError::Host)?;
                self.interrupts += 1;
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Queues `reqs`, publishes them and waits for all their completions.
    pub fn run(
        &mut self,
        host: &mut dyn Host,
        reqs: &[Request<'_>],
    ) -> Result<Vec<Reply>, ClientError> {
        let mut ids = Vec::with_capacity(reqs.len());
        for r in reqs {
            let len = r.buf.map_or(0, |b| b.len);
            ids.push(self.queue(&srb_payload(r.cdb, r.dir, len), r.buf)?);
        }
        self.kick(host)?;
        self.collect(host, &ids)
    }

    /// One request with `payload`, and its completion.
    pub fn call(
        &mut self,
        host: &mut dyn Host,
        payload: &[u8],
        buf: Option<&GuestBuf>,
    ) -> Result<Reply, ClientError> {
        let id = self.queue(payload, buf)?;
        self.kick(host)?;
        let mut r = self.collect(host, &[id])?;
        r.pop().ok_or(ClientError::UnknownRequest(id))
    }

    pub fn srb(
        &mut self,
        host: &mut dyn Host,
        cdb: &[u8],
        dir: DataDirection,
        buf: Option<&GuestBuf>,
    ) -> Result<Reply, ClientError> {
        let len = buf.map_or(0, |b| b.len);
        self.call(host, &srb_payload(cdb, dir, len), buf)
    }

    pub fn control(
        &mut self,
        host: &mut dyn Host,
        op: Operation,
        body: &[u8],
    ) -> Result<Reply, ClientError> {
        self.call(host, &control_payload(op, body), None)
    }

    /// Linux's storvsc_channel_init: BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION
    /// from the first of `versions` down until one is taken, QUERY_PROPERTIES,
    /// END_INITIALIZATION.
    pub fn negotiate(
        &mut self,
        host: &mut dyn Host,
        versions: &[ProtocolVersion],
    ) -> Result<Negotiated, ClientError> {
        let step = |r: Reply, op| {
            if r.header.status == NtStatus::SUCCESS {
                Ok(r)
            } else {
                Err(ClientError::Refused(op, r.header.status))
            }
        };
        let op = Operation::BEGIN_INITIALIZATION;
        step(self.control(host, op, &[])?, op)?;
        let mut refused = Vec::new();
        let mut chosen = None;
        for &v in versions {
            let body = VersionPayload {
                major_minor: v.0,
                revision: 0,
            };
            let r = self.control(host, Operation::QUERY_PROTOCOL_VERSION, body.as_bytes())?;
            if r.header.status == NtStatus::SUCCESS {
                chosen = Some(v);
                break;
            }
            refused.push(v);
        }
        let version = chosen.ok_or(ClientError::NoVersion)?;
        let op = Operation::QUERY_PROPERTIES;
        let props = step(self.control(host, op, &[])?, op)?;
        let op = Operation::END_INITIALIZATION;
        step(self.control(host, op, &[])?, op)?;
        Ok(Negotiated {
            version,
            properties: ChannelProperties::read_from_prefix(&props.body)
                .ok()
                .map(|(p, _)| p),
            refused,
        })
    }
}
