//! The guest's end of an open storage channel.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use storvsp_protocol::{
    ChannelProperties, DataDirection, NtStatus, Operation, ProtocolVersion, VersionPayload,
    VstorHeader,
};
use vmbus_ring::{
    AttachError, Corruption, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket,
    OutgoingRing, ReadError, RingMem, WriteError,
};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::wire::{control_payload, srb_payload, GuestBuf, Reply};

/// How the client reaches the VSP.
pub trait Host {
    /// The ring asked for a signal (HvSignalEvent on the channel's connection).
    fn signal(&mut self) -> Result<(), String>;
    /// Nothing to read yet: wait for the VSP's interrupt (or run it).
    fn wait(&mut self) -> Result<(), String>;
    /// Before waiting: call `ready` for a bounded while, as long as polling pays
    /// (the host's rule); whether it said a completion is there. By default
    /// never: the client waits at once.
    fn poll(&mut self, ready: &mut dyn FnMut() -> bool) -> bool {
        let _ = ready;
        false
    }
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

    /// Publishes what was queued; signals the host if the ring asks for it. Then
    /// hands back the space of the completions the last [`Self::collect`] read:
    /// publishing the read index stalls on the line the VSP last wrote, which
    /// here overlaps with the VSP serving the new requests instead of delaying
    /// them.
    pub fn kick(&mut self, host: &mut dyn Host) -> Result<(), ClientError> {
        if self.tx.commit()? {
            host.signal().map_err(ClientError::Host)?;
            self.signals += 1;
        }
        self.release(host)
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
        // Header and body straight from the ring: one buffer and one copy per
        // completion, not a whole-payload copy parsed into a second one.
        let len = p.payload.len();
        let head = core::mem::size_of::<VstorHeader>();
        let Some(body_len) = len.checked_sub(head) else {
            return Err(ClientError::ShortCompletion(len));
        };
        let mut header = VstorHeader::new_zeroed();
        self.rx.copy_from(&p.payload, 0, header.as_mut_bytes())?;
        let mut body = vec![0u8; body_len];
        self.rx.copy_from(&p.payload, head, &mut body)?;
        Ok(Some((p.transaction_id, Reply { header, body })))
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
    /// order. Their space goes back to the VSP before any wait and at the next
    /// [`Self::kick`] (or an explicit [`Self::release`]).
    pub fn collect(&mut self, host: &mut dyn Host, ids: &[u64]) -> Result<Vec<Reply>, ClientError> {
        self.gather(host, ids.len(), |id| ids.iter().position(|&i| i == id))
    }

    /// Waits for `count` completions, the one of transaction `id` going to slot
    /// `slot_of(id)` (`None`: not one we wait for).
    fn gather(
        &mut self,
        host: &mut dyn Host,
        count: usize,
        slot_of: impl Fn(u64) -> Option<usize>,
    ) -> Result<Vec<Reply>, ClientError> {
        let mut got: Vec<Option<Reply>> = vec![None; count];
        let mut left = count;
        while left > 0 {
            while let Some((id, reply)) = self.poll()? {
                let slot = slot_of(id).ok_or(ClientError::UnknownRequest(id))?;
                if got[slot].is_some() {
                    return Err(ClientError::TwoCompletions(id));
                }
                got[slot] = Some(reply);
                left -= 1;
            }
            if left > 0 && self.rx.is_empty()? {
                // Before a wait, so a VSP waiting for the space is signalled.
                self.release(host)?;
                self.wait_for_completion(host)?;
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Linux's VMBus rule for a reader that polls: with `interrupt_mask` set the
    /// VSP commits completions without signalling, so while the host polls a
    /// completion costs neither side a wake-up. Before waiting the mask is
    /// cleared and the ring looked at once more: a completion committed while it
    /// was set got no signal and must not be slept through.
    fn wait_for_completion(&mut self, host: &mut dyn Host) -> Result<(), ClientError> {
        self.rx.mask_interrupts();
        let rx = &mut self.rx;
        let mut broken = None;
        let came = host.poll(&mut || match rx.is_empty() {
            Ok(empty) => !empty,
            Err(e) => {
                broken = Some(e);
                true
            }
        });
        if let Some(e) = broken {
            return Err(e.into());
        }
        if came || self.rx.unmask_interrupts()? {
            return Ok(());
        }
        host.wait().map_err(ClientError::Host)?;
        self.interrupts += 1;
        Ok(())
    }

    /// Queues `reqs`, publishes them and waits for all their completions.
    pub fn run(
        &mut self,
        host: &mut dyn Host,
        reqs: &[Request<'_>],
    ) -> Result<Vec<Reply>, ClientError> {
        // Transaction ids are handed out in order, so `reqs[i]` is `first + i`.
        let first = self.next_id;
        for r in reqs {
            let len = r.buf.map_or(0, |b| b.len);
            self.queue(&srb_payload(r.cdb, r.dir, len), r.buf)?;
        }
        self.kick(host)?;
        self.gather(host, reqs.len(), |id| {
            id.checked_sub(first)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&i| i < reqs.len())
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use core::sync::atomic::{AtomicU64, Ordering};
    use std::vec::Vec;

    use ipc::{Perms, Region};
    use storvsp_protocol::VSTOR_PACKET_SIZE;
    use vmbus_ring::protocol::PAGE_SIZE;
    use vmbus_ring::RegionRingMem;

    use super::*;

    /// How the fake host behaves before the client waits.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    enum Polls {
        /// Never polls: the client waits at once.
        No,
        /// The completion comes while the client polls.
        Hit,
        /// The completion comes just as polling gives up.
        Late,
    }

    /// The VSP's ends of both rings, answering each request with a completion,
    /// and what the client asked of it.
    struct Vsp<'a> {
        requests: IncomingRing<RegionRingMem<'a>>,
        completions: OutgoingRing<RegionRingMem<'a>>,
        polls: Polls,
        waits: usize,
        /// The completion ring's mask when the VSP answered, and whether its
        /// commit asked for a signal.
        answered: Vec<(u32, bool)>,
    }

    impl Vsp<'_> {
        fn answer(&mut self) {
            let p = self.requests.read().unwrap();
            let _ = self.requests.commit().unwrap();
            let packet = OutgoingPacket {
                transaction_id: p.transaction_id,
                completion_requested: false,
                kind: OutgoingKind::Completion,
            };
            self.completions
                .write_packet(&packet, &[&[0; VSTOR_PACKET_SIZE]])
                .unwrap();
            let mask = self
                .completions
                .mem()
                .control()
                .interrupt_mask()
                .load(Ordering::SeqCst);
            let signal = self.completions.commit().unwrap();
            self.answered.push((mask, signal));
        }
    }

    impl Host for Vsp<'_> {
        fn signal(&mut self) -> Result<(), String> {
            Ok(())
        }

        fn wait(&mut self) -> Result<(), String> {
            self.waits += 1;
            self.answer();
            Ok(())
        }

        fn poll(&mut self, ready: &mut dyn FnMut() -> bool) -> bool {
            match self.polls {
                Polls::No => false,
                Polls::Hit => {
                    assert!(!ready(), "nothing before the VSP answers");
                    self.answer();
                    ready()
                }
                Polls::Late => {
                    self.answer();
                    false
                }
            }
        }
    }

    fn ring(words: &[AtomicU64]) -> RegionRingMem<'_> {
        let mem = RegionRingMem::new(Region::from_atomics(words, Perms::RW)).unwrap();
        mem.control().initialize();
        mem
    }

    fn words() -> Vec<AtomicU64> {
        (0..4 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect()
    }

    /// A client and the VSP answering it over two rings in `words`, and the
    /// completion ring (to look at its control page).
    fn pair(
        words: &[AtomicU64],
        polls: Polls,
    ) -> (Storvsc<RegionRingMem<'_>>, Vsp<'_>, RegionRingMem<'_>) {
        let (tx, rx) = words.split_at(2 * PAGE_SIZE / 8);
        let (tx, rx) = (ring(tx), ring(rx));
        let vsp = Vsp {
            requests: IncomingRing::new(tx).unwrap(),
            completions: OutgoingRing::new(rx).unwrap(),
            polls,
            waits: 0,
            answered: Vec::new(),
        };
        (Storvsc::new(tx, rx).unwrap(), vsp, rx)
    }

    #[test]
    fn a_polling_client_takes_completions_without_signals_or_waits() {
        // (how the host polls, waits, (mask, signal) when the VSP answered,
        //  the mask afterwards: still set by a client that polled with success)
        let table = [
            (Polls::No, 1, (0, true), 0),
            (Polls::Hit, 0, (1, false), 1),
            // Committed while masked, so unsignalled: the look after unmasking
            // finds it instead of a wait that would never end.
            (Polls::Late, 0, (1, false), 0),
        ];
        for (polls, waits, answered, mask_after) in table {
            let words = words();
            let (mut client, mut vsp, rx) = pair(&words, polls);
            let reply = client.call(&mut vsp, &[0; 8], None).unwrap();
            assert_eq!(reply.header.status, NtStatus::SUCCESS, "{polls:?}");
            assert_eq!(
                (vsp.waits, vsp.answered.as_slice()),
                (waits, &[answered][..]),
                "{polls:?}"
            );
            assert_eq!(client.interrupts, waits as u64, "{polls:?}");
            let mask = rx.control().interrupt_mask().load(Ordering::SeqCst);
            assert_eq!(mask, mask_after, "{polls:?}");
        }
    }

    #[test]
    fn a_completions_space_goes_back_with_the_next_request() {
        let words = words();
        let (mut client, mut vsp, rx) = pair(&words, Polls::Hit);
        let read = || rx.control().read_index().load(Ordering::SeqCst);
        let write = || rx.control().write_index().load(Ordering::SeqCst);
        client.call(&mut vsp, &[0; 8], None).unwrap();
        // Read, not yet handed back: publishing it would stall the caller on
        // the line the VSP last wrote.
        let first = write();
        assert_eq!(read(), 0);
        client.call(&mut vsp, &[0; 8], None).unwrap();
        // The next request took it back: the first completion's space, not the
        // second's.
        assert_eq!(read(), first);
        assert_ne!(write(), first);
        // An explicit release hands back the rest.
        client.release(&mut vsp).unwrap();
        assert_eq!(read(), write());
    }

    #[test]
    fn a_completion_is_read_as_header_and_body_or_refused_when_short() {
        let head = core::mem::size_of::<VstorHeader>();
        // (payload length, what the client makes of it); the ring pads payloads
        // to 8 bytes, so lengths are multiples of 8 around the 12-byte header.
        assert_eq!(head, 12);
        let table = [
            (0, Err(ClientError::ShortCompletion(0))),
            (8, Err(ClientError::ShortCompletion(8))),
            (16, Ok(4)),
            (
                VSTOR_PACKET_SIZE.next_multiple_of(8),
                Ok(VSTOR_PACKET_SIZE.next_multiple_of(8) - head),
            ),
        ];
        for (len, expected) in table {
            let words = words();
            let (mut client, mut vsp, _) = pair(&words, Polls::No);
            let completions = &mut vsp.completions;
            let packet = OutgoingPacket {
                transaction_id: 7,
                completion_requested: false,
                kind: OutgoingKind::Completion,
            };
            // Bytes that tell header from body: the body starts with 0xb0.
            let payload: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xb0).collect();
            completions.write_packet(&packet, &[&payload]).unwrap();
            let _ = completions.commit().unwrap();
            let got = client.poll().map(|r| {
                let (id, reply) = r.unwrap();
                assert_eq!(id, 7);
                assert_eq!(reply.header.as_bytes(), &payload[..head]);
                assert_eq!(reply.body, &payload[head..]);
                reply.body.len()
            });
            assert_eq!(got, expected, "{len}-byte payload");
        }
    }
}
