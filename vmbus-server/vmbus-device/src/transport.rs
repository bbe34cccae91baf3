//! One channel's pair of rings as a VSP uses them: packets come out of the
//! guest-to-host ring, replies go into the host-to-guest ring, and the ring's
//! signalling rules say when the guest must be interrupted.

use vmbus_ring::{
    AttachError, GpaRangeRef, IncomingKind, IncomingPacket, IncomingRing, OutgoingKind,
    OutgoingPacket, OutgoingRing, ReadError, RingMem, WriteError,
};

use crate::device::{Reply, ReplyKind};
use crate::packet::{BufferError, Packet, PacketBuf};

/// The ring broke its protocol (lying indices, a packet running off the ring): the
/// channel cannot be trusted any more and is closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingBroken {
    #[error("guest-to-host: {0}")]
    Incoming(ReadError),
    #[error("host-to-guest: {0}")]
    Outgoing(WriteError),
}

fn incoming(e: vmbus_ring::Corruption) -> RingBroken {
    RingBroken::Incoming(ReadError::Corrupt(e))
}

fn outgoing(e: vmbus_ring::Corruption) -> RingBroken {
    RingBroken::Outgoing(WriteError::Corrupt(e))
}

/// Whether a reply fits the outgoing ring.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Room {
    Now,
    /// Not now: the guest was asked to signal when it has read enough.
    Later,
    /// Larger than this ring can ever carry.
    Never,
}

/// Ring bytes of a packet with a `payload_len`-byte payload and no headers beyond
/// the descriptor: descriptor, payload padded to 8, trailer.
fn ring_len(payload_len: usize) -> usize {
    16usize
        .saturating_add(payload_len.saturating_add(7) & !7)
        .saturating_add(8)
}

#[derive(Debug)]
pub struct RingTransport<M: RingMem> {
    incoming: IncomingRing<M>,
    outgoing: OutgoingRing<M>,
    /// The guest's interrupts are masked while we drain its ring.
    polling: bool,
    /// Ring bytes the last reply that did not fit needed.
    blocked: Option<u32>,
    /// We asked the guest to signal free space.
    waiting_for_space: bool,
    /// The PD's runtime is polling (`ipc::Handler::poll`): a drained ring stays
    /// masked, so the guest does not signal what we are about to see anyway.
    keep_masked: bool,
}

/// Page numbers read from the ring in one copy.
const PFNS_PER_COPY: usize = 32;

impl<M: RingMem> RingTransport<M> {
    /// `incoming` is the guest-to-host ring, `outgoing` the host-to-guest ring.
    pub fn new(incoming: M, outgoing: M) -> Result<Self, AttachError> {
        Ok(Self {
            incoming: IncomingRing::new(incoming)?,
            outgoing: OutgoingRing::new(outgoing)?,
            polling: false,
            blocked: None,
            waiting_for_space: false,
            keep_masked: false,
        })
    }

    /// Both rings, for a streaming device that writes packets of its own (transfer
    /// pages, several per packet in) and keeps its own signalling state.
    pub fn rings(&mut self) -> (&mut IncomingRing<M>, &mut OutgoingRing<M>) {
        (&mut self.incoming, &mut self.outgoing)
    }

    /// The next packet, not yet consumed; `None` when the ring is empty.
    pub fn peek(&mut self) -> Result<Option<IncomingPacket>, RingBroken> {
        if !self.polling {
            self.incoming.mask_interrupts();
            self.polling = true;
        }
        match self.incoming.peek() {
            Ok(p) => Ok(Some(p)),
            Err(ReadError::Empty) => Ok(None),
            Err(e) => Err(RingBroken::Incoming(e)),
        }
    }

    /// Consumes the packet [`Self::peek`] returned.
    pub fn consume(&mut self) -> Result<(), RingBroken> {
        self.incoming.consume().map_err(RingBroken::Incoming)
    }

    /// Copies what a device acts on out of the ring into `buf`.
    pub fn copy<'b>(
        &self,
        header: &IncomingPacket,
        buf: &'b mut PacketBuf,
    ) -> Result<Packet<'b>, RingBroken> {
        let PacketBuf {
            limits,
            payload,
            pfns,
        } = buf;
        payload.resize(header.payload.len().min(limits.max_payload), 0);
        let n = self
            .incoming
            .copy_from(&header.payload, 0, payload)
            .map_err(incoming)?;
        payload.truncate(n);
        let buffer = match header.kind {
            IncomingKind::GpaDirect(g) => self.copy_range(&g, limits.max_pages, pfns)?,
            _ => Ok(None),
        };
        Ok(Packet {
            header: *header,
            payload,
            buffer: match buffer {
                Ok(Some((byte_count, byte_offset))) => Ok(Some(GpaRangeRef {
                    byte_count,
                    byte_offset,
                    pfns,
                })),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
        })
    }

    /// Copies the page numbers of a GPA-direct packet's only range into `pfns`.
    #[allow(clippy::type_complexity)]
    fn copy_range(
        &self,
        g: &vmbus_ring::GpaDirect,
        max_pages: usize,
        pfns: &mut alloc::vec::Vec<u64>,
    ) -> Result<Result<Option<(u32, u32)>, BufferError>, RingBroken> {
        if g.range_count != 1 {
            return Ok(Err(BufferError::TooManyRanges(g.range_count)));
        }
        // The ring checked every range when it parsed the packet; re-reading one
        // that changed since is the ring breaking.
        let range = match self.incoming.gpa_ranges(g).next() {
            Some(Ok(range)) => range,
            Some(Err(e)) => return Err(incoming(e)),
            None => return Ok(Err(BufferError::TooManyRanges(0))),
        };
        let pages = range.pfn_count();
        if pages > max_pages {
            return Ok(Err(BufferError::TooManyPages {
                pages,
                limit: max_pages,
            }));
        }
        pfns.resize(pages, 0);
        // A chunk of page numbers per ring copy, not one copy (and its range
        // arithmetic) per page number: a 64 KiB request has 16.
        let mut bytes = [0u8; 8 * PFNS_PER_COPY];
        for (chunk, at) in pfns
            .chunks_mut(PFNS_PER_COPY)
            .zip((0..).step_by(8 * PFNS_PER_COPY))
        {
            let raw = &mut bytes[..8 * chunk.len()];
            let got = self
                .incoming
                .copy_from(&range.pfns, at, raw)
                .map_err(incoming)?;
            if got != raw.len() {
                return Err(incoming(vmbus_ring::Corruption::RangesPastHeader {
                    range_count: g.range_count,
                }));
            }
            for (pfn, le) in chunk.iter_mut().zip(raw.chunks_exact(8)) {
                let mut word = [0u8; 8];
                word.copy_from_slice(le);
                *pfn = u64::from_le_bytes(word);
            }
        }
        Ok(Ok(Some((range.byte_count, range.byte_offset))))
    }

    /// Whether a reply with a `payload_len`-byte payload fits now. When it does
    /// not, [`Self::arm`] asks the guest for the space.
    pub fn room(&mut self, payload_len: usize) -> Result<Room, RingBroken> {
        let need = ring_len(payload_len);
        if need > self.outgoing.max_packet_ring_size() {
            return Ok(Room::Never);
        }
        if self.outgoing.fits(need).map_err(outgoing)? {
            // The reply is written after the request is served (for storvsp a
            // disk read): its lines move to this CPU meanwhile.
            self.outgoing.prefetch_next(need as u32);
            if self.waiting_for_space {
                self.outgoing.clear_pending_send_size();
                self.waiting_for_space = false;
            }
            Ok(Room::Now)
        } else {
            // need <= max_packet_ring_size, which is a u32 ring size.
            self.blocked = Some(need as u32);
            Ok(Room::Later)
        }
    }

    /// Writes a reply. Room was checked first, so a full ring here is a ring that
    /// lied about its read index.
    pub fn send(&mut self, reply: &Reply, payload: &[u8]) -> Result<(), RingBroken> {
        let packet = OutgoingPacket {
            transaction_id: reply.transaction_id,
            completion_requested: false,
            kind: match reply.kind {
                ReplyKind::Completion => OutgoingKind::Completion,
                ReplyKind::InBand => OutgoingKind::InBand,
            },
        };
        self.outgoing
            .write_packet(&packet, &[payload])
            .map_err(RingBroken::Outgoing)
    }

    /// Publishes what was read and written; returns whether the guest must be
    /// signalled.
    pub fn flush(&mut self) -> Result<bool, RingBroken> {
        let wrote = self.outgoing.commit().map_err(outgoing)?;
        let read = self.incoming.commit().map_err(incoming)?;
        Ok(wrote || read)
    }

    /// Whether a drained ring stays masked ([`Self::arm`]): on while the PD's
    /// runtime polls; switched off before it sleeps, and the next `arm` unmasks.
    pub fn keep_masked(&mut self, on: bool) {
        self.keep_masked = on;
    }

    /// About to wait: re-arms the wake-up (for space if a reply did not fit, else
    /// for data). Returns `true` if what we would wait for is already there, so
    /// the caller goes on instead of waiting. While polling, the data wake-up is
    /// left masked: the next poll looks at the ring itself.
    pub fn arm(&mut self) -> Result<bool, RingBroken> {
        if let Some(need) = self.blocked.take() {
            self.waiting_for_space = true;
            return self
                .outgoing
                .set_pending_send_size(need)
                .map_err(RingBroken::Outgoing);
        }
        if self.keep_masked {
            return Ok(false);
        }
        self.polling = false;
        self.incoming.unmask_interrupts().map_err(incoming)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use core::sync::atomic::{AtomicU64, Ordering};
    use std::vec::Vec;

    use ipc::{Perms, Region};
    use vmbus_ring::protocol::PAGE_SIZE;
    use vmbus_ring::{OutgoingKind, OutgoingPacket, RegionRingMem, RingMem};

    use super::*;

    fn ring(words: &[AtomicU64]) -> RegionRingMem<'_> {
        let mem = RegionRingMem::new(Region::from_atomics(words, Perms::RW)).unwrap();
        mem.control().initialize();
        mem
    }

    fn mask(mem: &RegionRingMem<'_>) -> u32 {
        mem.control().interrupt_mask().load(Ordering::SeqCst)
    }

    /// The guest's end: one packet, and whether the commit signals.
    fn guest_sends(mem: RegionRingMem<'_>, kind: OutgoingKind<'_>) -> bool {
        let mut tx = OutgoingRing::new(mem).unwrap();
        let packet = OutgoingPacket {
            transaction_id: 1,
            completion_requested: true,
            kind,
        };
        tx.write_packet(&packet, &[b"request"]).unwrap();
        tx.commit().unwrap()
    }

    /// Zeroed memory for a channel's two rings of two pages each.
    fn channel_words() -> Vec<AtomicU64> {
        (0..4 * PAGE_SIZE / 8).map(|_| AtomicU64::new(0)).collect()
    }

    /// The channel's rings over `words`, and the guest-to-host ring's memory (the
    /// guest's end writes there).
    fn channel(words: &[AtomicU64]) -> (RegionRingMem<'_>, RingTransport<RegionRingMem<'_>>) {
        let (inc, out) = words.split_at(2 * PAGE_SIZE / 8);
        let (inc, out) = (ring(inc), ring(out));
        (inc, RingTransport::new(inc, out).unwrap())
    }

    #[test]
    fn page_numbers_past_one_ring_copy_arrive_whole_and_in_order() {
        let words = channel_words();
        let (inc, mut rings) = channel(&words);
        let pfns: Vec<u64> = (0..PFNS_PER_COPY as u64 + 9)
            .map(|i| 0x1_0000_0000 + i * 7)
            .collect();
        let range = vmbus_ring::GpaRangeRef {
            byte_count: (pfns.len() * PAGE_SIZE - 100) as u32,
            byte_offset: 50,
            pfns: &pfns,
        };
        guest_sends(inc, OutgoingKind::GpaDirect(&[range]));

        let header = rings.peek().unwrap().unwrap();
        let mut buf = PacketBuf::new(crate::Limits {
            max_payload: 64,
            max_pages: 64,
        });
        let copied = rings.copy(&header, &mut buf).unwrap();
        let got = copied.buffer.unwrap().unwrap();
        assert_eq!(got.pfns, &pfns[..]);
        assert_eq!((got.byte_offset, got.byte_count), (50, range.byte_count));
    }

    #[test]
    fn a_polled_ring_stays_masked_until_the_runtime_parks() {
        let words = channel_words();
        let (inc, mut rings) = channel(&words);

        // Not polling: drained and re-armed, so the guest's next packet signals.
        assert_eq!(rings.peek().unwrap(), None);
        assert!(!rings.arm().unwrap());
        assert_eq!(mask(&inc), 0);

        // Polling: the drained ring stays masked and the guest does not signal.
        rings.keep_masked(true);
        assert_eq!(rings.peek().unwrap(), None);
        assert!(!rings.arm().unwrap());
        assert_eq!(mask(&inc), 1);
        assert!(
            !guest_sends(inc, OutgoingKind::InBand),
            "a masked reader gets no signal"
        );

        // Parking unmasks and looks again: the unsignalled packet is found.
        rings.keep_masked(false);
        assert!(rings.arm().unwrap(), "the packet sent while masked");
        assert_eq!(mask(&inc), 0);
        assert!(rings.peek().unwrap().is_some());
        rings.consume().unwrap();
        assert!(!rings.flush().unwrap());
        assert!(!rings.arm().unwrap());
        assert!(
            guest_sends(inc, OutgoingKind::InBand),
            "unmasked and empty again: signal"
        );
    }
}
