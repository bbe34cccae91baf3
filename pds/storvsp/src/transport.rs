//! The thin line between the protocol and a VMBus ring.
//!
//! A [`Transport`] is one channel's pair of rings as seen from the VSP: packets
//! come out of the guest-to-host ring, completions go into the host-to-guest
//! ring. Whether the guest must be signalled follows the ring's rules; the
//! transport reports it and the PD delivers it.

use crate::channel::{Completion, Storvsp, SubChannels};
use crate::guest_mem::GuestMemory;
use crate::packet::{self, IncomingPacket, DESCRIPTOR_SIZE};
use crate::protocol::VSTOR_PACKET_SIZE;

/// The ring broke its protocol (lying indices, a packet that runs off the ring):
/// the channel cannot be trusted any more and should be closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TransportError;

/// Bytes a transport needs to hold a packet's `vstor_packet` and the page list of
/// the largest transfer.
pub const fn scratch_size(max_transfer_bytes: u32) -> usize {
    let pages = (max_transfer_bytes as usize).div_ceil(4096) + 1;
    DESCRIPTOR_SIZE + 8 + 8 + pages * 8 + VSTOR_PACKET_SIZE
}

/// One packet taken from the ring.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Received<'b> {
    Packet(IncomingPacket<'b>),
    /// Not a packet the storage protocol uses (a completion, transfer pages, a
    /// descriptor that does not add up); answered by id if the guest asked.
    Malformed {
        transaction_id: u64,
        completion_requested: bool,
    },
}

pub trait Transport {
    /// Consumes the next packet. What it borrows (payload, page numbers) is copied
    /// into `scratch` first. `None` when the ring is empty.
    fn next<'b>(&mut self, scratch: &'b mut [u8]) -> Result<Option<Received<'b>>, TransportError>;

    /// Whether a completion with a `payload_len`-byte payload fits right now.
    fn can_send(&mut self, payload_len: usize) -> Result<bool, TransportError>;

    fn send_completion(
        &mut self,
        transaction_id: u64,
        payload: &[u8],
    ) -> Result<(), TransportError>;

    /// Publishes what was read and written; returns whether the guest must be
    /// signalled.
    fn flush(&mut self) -> Result<bool, TransportError> {
        Ok(false)
    }

    /// About to wait: re-arms wake-ups (for data, or for space if the last
    /// `can_send` failed). Returns `true` if work is already there, so the caller
    /// must go on instead of waiting.
    fn arm(&mut self) -> Result<bool, TransportError> {
        Ok(false)
    }
}

/// What one [`service`] call did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Serviced {
    pub packets: usize,
    /// The guest must be signalled (new completions, or space it waited for).
    pub signal: bool,
}

/// Publish completions at least this often while a busy guest keeps the ring full.
const FLUSH_EVERY: usize = 32;

/// Handles packets on one channel until its ring is empty and re-armed, or the
/// outgoing ring is full and the guest was asked to say when it has room.
pub fn service(
    vsp: &mut Storvsp,
    channel: u16,
    transport: &mut dyn Transport,
    mem: &dyn GuestMemory,
    subchannels: &mut dyn SubChannels,
    scratch: &mut [u8],
) -> Result<Serviced, TransportError> {
    let mut done = Serviced::default();
    loop {
        let mut batch = 0;
        // Room for the reply is reserved before a request is taken, so a
        // completion never has to wait on the side.
        while transport.can_send(VSTOR_PACKET_SIZE)? {
            let Some(received) = transport.next(scratch)? else {
                break;
            };
            let completion: Option<Completion> = match received {
                Received::Packet(p) => vsp.handle_parsed(channel, &p, mem, subchannels),
                Received::Malformed {
                    transaction_id,
                    completion_requested,
                } => vsp.refuse(transaction_id, completion_requested),
            };
            if let Some(c) = completion {
                transport.send_completion(c.transaction_id, c.bytes())?;
            }
            done.packets += 1;
            batch += 1;
            if batch == FLUSH_EVERY {
                done.signal |= transport.flush()?;
                batch = 0;
            }
        }
        done.signal |= transport.flush()?;
        if !transport.arm()? {
            return Ok(done);
        }
    }
}

/// An in-process transport: raw packets queued by a test or harness,
/// completions collected in order.
#[derive(Debug, Default)]
pub struct QueueTransport {
    pub incoming: alloc::collections::VecDeque<alloc::vec::Vec<u8>>,
    pub completions: alloc::vec::Vec<(u64, alloc::vec::Vec<u8>)>,
    /// Completions that fit before the (pretend) ring is full.
    pub room: Option<usize>,
}

impl Transport for QueueTransport {
    fn next<'b>(&mut self, scratch: &'b mut [u8]) -> Result<Option<Received<'b>>, TransportError> {
        let Some(raw) = self.incoming.pop_front() else {
            return Ok(None);
        };
        // A packet longer than the scratch is cut short and then fails to parse.
        let n = raw.len().min(scratch.len());
        scratch[..n].copy_from_slice(&raw[..n]);
        let bytes: &'b [u8] = &scratch[..n];
        Ok(Some(match packet::parse(bytes) {
            Ok(p) => Received::Packet(p),
            Err(_) => {
                let (transaction_id, completion_requested) =
                    packet::transaction_id_of(bytes).unwrap_or((0, false));
                Received::Malformed {
                    transaction_id,
                    completion_requested,
                }
            }
        }))
    }

    fn can_send(&mut self, _payload_len: usize) -> Result<bool, TransportError> {
        Ok(self.room.is_none_or(|r| r > 0))
    }

    fn send_completion(
        &mut self,
        transaction_id: u64,
        payload: &[u8],
    ) -> Result<(), TransportError> {
        if let Some(r) = self.room.as_mut() {
            *r = r.checked_sub(1).ok_or(TransportError)?;
        }
        self.completions.push((transaction_id, payload.to_vec()));
        Ok(())
    }
}
