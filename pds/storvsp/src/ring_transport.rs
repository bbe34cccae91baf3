//! [`Transport`] over the `vmbus-ring` crate: the guest-to-host ring is read, the
//! host-to-guest ring carries completions.

use vmbus_ring::{
    IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing, ReadError, RingMem,
    WriteError,
};

use crate::packet::{GpaRange, IncomingPacket, PacketType, RangeError, DESCRIPTOR_SIZE};
use crate::protocol::VSTOR_PACKET_SIZE;
use crate::transport::{Received, Transport, TransportError};

/// Ring bytes of a completion with `payload_len` payload bytes: descriptor,
/// payload padded to 8, trailer.
fn completion_ring_len(payload_len: usize) -> usize {
    DESCRIPTOR_SIZE + payload_len.next_multiple_of(8) + 8
}

#[derive(Debug)]
pub struct RingTransport<M: RingMem> {
    incoming: IncomingRing<M>,
    outgoing: OutgoingRing<M>,
    /// Interrupts from the guest are masked while we drain the ring.
    polling: bool,
    /// Ring bytes the last refused completion needed.
    blocked: Option<u32>,
    /// We asked the guest to signal free space.
    waiting_for_space: bool,
}

impl<M: RingMem> RingTransport<M> {
    /// `incoming` is the guest-to-host ring, `outgoing` the host-to-guest ring.
    pub fn new(incoming: M, outgoing: M) -> Result<Self, vmbus_ring::AttachError> {
        Ok(Self {
            incoming: IncomingRing::new(incoming)?,
            outgoing: OutgoingRing::new(outgoing)?,
            polling: false,
            blocked: None,
            waiting_for_space: false,
        })
    }
}

impl<M: RingMem> Transport for RingTransport<M> {
    fn next<'b>(&mut self, scratch: &'b mut [u8]) -> Result<Option<Received<'b>>, TransportError> {
        if !self.polling {
            self.incoming.mask_interrupts();
            self.polling = true;
        }
        let p = match self.incoming.read() {
            Ok(p) => p,
            Err(ReadError::Empty) => return Ok(None),
            Err(ReadError::Corrupt(_)) => return Err(TransportError),
        };
        let (payload_buf, pfn_buf) = scratch.split_at_mut(VSTOR_PACKET_SIZE.min(scratch.len()));
        let n = self
            .incoming
            .copy_from(&p.payload, 0, payload_buf)
            .map_err(|_| TransportError)?;
        let (packet_type, buffer) = match p.kind {
            IncomingKind::InBand => (PacketType::DATA_IN_BAND, Ok(None)),
            IncomingKind::GpaDirect(g) => {
                let buffer = match g.range_count {
                    0 => Ok(None),
                    1 => match self.incoming.gpa_ranges(&g).next() {
                        Some(Ok(range)) => {
                            let count = range.pfn_count();
                            if count * 8 > pfn_buf.len() {
                                Err(RangeError::Truncated)
                            } else {
                                let mut chunk = [0u64; 32];
                                let mut at = 0;
                                while at < count {
                                    let got = self
                                        .incoming
                                        .read_pfns(&range, at, &mut chunk)
                                        .map_err(|_| TransportError)?;
                                    if got == 0 {
                                        return Err(TransportError);
                                    }
                                    for (i, pfn) in chunk[..got].iter().enumerate() {
                                        pfn_buf[(at + i) * 8..(at + i + 1) * 8]
                                            .copy_from_slice(&pfn.to_le_bytes());
                                    }
                                    at += got;
                                }
                                Ok(Some((range.byte_count, range.byte_offset, count)))
                            }
                        }
                        Some(Err(_)) => return Err(TransportError),
                        None => Err(RangeError::Truncated),
                    },
                    n => Err(RangeError::TooManyRanges(n)),
                };
                (PacketType::DATA_USING_GPA_DIRECT, buffer)
            }
            IncomingKind::Completion | IncomingKind::TransferPages(_) => {
                return Ok(Some(Received::Malformed {
                    transaction_id: p.transaction_id,
                    completion_requested: p.completion_requested,
                }));
            }
        };
        let pfn_buf: &'b [u8] = pfn_buf;
        let buffer = match buffer {
            Ok(Some((byte_count, byte_offset, count))) => {
                GpaRange::from_raw(byte_count, byte_offset, &pfn_buf[..count * 8]).map(Some)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        Ok(Some(Received::Packet(IncomingPacket {
            packet_type,
            transaction_id: p.transaction_id,
            completion_requested: p.completion_requested,
            payload: &payload_buf[..n],
            buffer,
        })))
    }

    fn can_send(&mut self, payload_len: usize) -> Result<bool, TransportError> {
        let need = completion_ring_len(payload_len);
        let free = self.outgoing.free_bytes().map_err(|_| TransportError)?;
        if need <= free {
            if self.waiting_for_space {
                self.outgoing.clear_pending_send_size();
                self.waiting_for_space = false;
            }
            Ok(true)
        } else {
            self.blocked = Some(need as u32);
            Ok(false)
        }
    }

    fn send_completion(
        &mut self,
        transaction_id: u64,
        payload: &[u8],
    ) -> Result<(), TransportError> {
        let packet = OutgoingPacket {
            transaction_id,
            completion_requested: false,
            kind: OutgoingKind::Completion,
        };
        self.outgoing
            .write_packet(&packet, &[payload])
            .map_err(|_: WriteError| TransportError)
    }

    fn flush(&mut self) -> Result<bool, TransportError> {
        let wrote = self.outgoing.commit().map_err(|_| TransportError)?;
        let read = self.incoming.commit().map_err(|_| TransportError)?;
        Ok(wrote || read)
    }

    fn arm(&mut self) -> Result<bool, TransportError> {
        if let Some(need) = self.blocked.take() {
            // Wait for space, not for data: more requests could not be answered.
            self.waiting_for_space = true;
            return self
                .outgoing
                .set_pending_send_size(need)
                .map_err(|_| TransportError);
        }
        self.polling = false;
        self.incoming
            .unmask_interrupts()
            .map_err(|_| TransportError)
    }
}
