//! The thin line between the protocol and a VMBus ring.
//!
//! A [`Transport`] is one channel's pair of rings as seen from the VSP: packets
//! come out of the guest-to-host ring, completions go into the host-to-guest
//! ring. Signalling the guest (interrupt mask, pending send size) is the ring
//! implementation's business, not the protocol's.

use crate::channel::{Storvsp, SubChannels};
use crate::guest_mem::GuestMemory;
use crate::packet::DESCRIPTOR_SIZE;
use crate::protocol::VSTOR_PACKET_SIZE;

/// The ring broke its protocol (lying indices, a packet that runs off the ring):
/// the channel cannot be trusted any more and should be closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TransportError;

/// Largest packet a storvsc client sends: descriptor, GPA-direct header, one
/// range of pages for the largest transfer, and the `vstor_packet`.
pub const fn max_packet_size(max_transfer_bytes: u32) -> usize {
    let pages = (max_transfer_bytes as usize).div_ceil(4096) + 1;
    DESCRIPTOR_SIZE + 8 + 8 + pages * 8 + VSTOR_PACKET_SIZE
}

pub trait Transport {
    /// Consumes the next packet, copying at most `buf.len()` bytes of it
    /// (descriptor included, trailer excluded) into `buf`. Returns the packet's
    /// full length, which exceeds `buf.len()` when it was truncated, or `None`
    /// when the ring is empty.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, TransportError>;

    /// Whether a completion with a `payload_len`-byte payload fits right now.
    fn can_send(&mut self, payload_len: usize) -> Result<bool, TransportError>;

    /// Writes a completion packet for `transaction_id`.
    fn send_completion(
        &mut self,
        transaction_id: u64,
        payload: &[u8],
    ) -> Result<(), TransportError>;
}

/// Handles packets on one channel until its ring is empty, or until there is no
/// room for another completion (the ring wakes us when the guest makes room).
/// Returns how many packets were handled.
pub fn service(
    vsp: &mut Storvsp,
    channel: u16,
    transport: &mut dyn Transport,
    mem: &dyn GuestMemory,
    subchannels: &mut dyn SubChannels,
    buf: &mut [u8],
) -> Result<usize, TransportError> {
    let mut handled = 0;
    // Room for the reply is reserved before a request is taken, so a completion
    // never has to wait on the side.
    while transport.can_send(VSTOR_PACKET_SIZE)? {
        let Some(len) = transport.recv(buf)? else {
            break;
        };
        // A truncated packet fails to parse (its layout runs past the copy) and
        // is answered with an error by its transaction id.
        let raw = &buf[..len.min(buf.len())];
        if let Some(c) = vsp.handle_packet(channel, raw, mem, subchannels) {
            transport.send_completion(c.transaction_id, c.bytes())?;
        }
        handled += 1;
    }
    Ok(handled)
}

/// An in-process transport: packets queued by a test or harness, completions
/// collected in order.
#[derive(Debug, Default)]
pub struct QueueTransport {
    pub incoming: alloc::collections::VecDeque<alloc::vec::Vec<u8>>,
    pub completions: alloc::vec::Vec<(u64, alloc::vec::Vec<u8>)>,
    /// Completions that fit before the (pretend) ring is full.
    pub room: Option<usize>,
}

impl Transport for QueueTransport {
    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, TransportError> {
        Ok(self.incoming.pop_front().map(|p| {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            p.len()
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
