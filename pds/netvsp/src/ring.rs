//! Serving a [`Nic`] over a channel's two rings: read what the guest wrote, copy
//! what the NIC needs out of the ring (so a guest rewriting it cannot change a
//! message between check and use), hand it over, write back, publish.
//!
//! The VMBus device layer owns ring attach and teardown; this is the part of the
//! loop that is NIC-shaped (many packets out per packet in, packets out with no
//! packet in, the network as a second source of work).

use alloc::vec::Vec;

use vmbus_ring::{
    Corruption, IncomingKind as RingKind, IncomingRing, OutgoingPacket, OutgoingRing, ReadError,
    RingMem, WriteError, PAGE_SIZE,
};

use crate::backend::Backend;
use crate::mem::{GuestBuffer, SliceBuffer};
use crate::nic::{Incoming, IncomingKind, Nic, Outbox, OutboxFull};
use crate::rndis_device::MAX_TRANSFER_SIZE;

/// NVSP payloads are 40 bytes; anything longer is padding or a lie and is cut.
const MAX_PAYLOAD: usize = 256;
/// Room asked for when the NIC waits for the guest to read: the largest packet it
/// writes (a transfer-page packet with one range and an NVSP message).
const STALL_ROOM: u32 = 128;
/// Packets between intermediate commits, so a long burst frees ring space early.
const COMMIT_EVERY: usize = 32;
/// Backend room asked for before taking a guest packet: the frames one send
/// section of Linux's batches holds. A packet with more still goes; what does
/// not fit is dropped as on a full wire.
pub const FRAMES_PER_PACKET: usize = 64;

impl<M: RingMem> Outbox for OutgoingRing<M> {
    fn send(&mut self, packet: &OutgoingPacket<'_>, payload: &[&[u8]]) -> Result<(), OutboxFull> {
        // A broken ring refuses too; `serve` sees the corruption and reports it.
        self.write_packet(packet, payload).map_err(|_| OutboxFull)
    }
}

/// Reads guest memory by page number: `(pfn, offset in page, buf)`; false if the
/// page is not the NIC's to read.
pub type ReadGpa<'a> = &'a dyn Fn(u64, usize, &mut [u8]) -> bool;

/// Why a channel must be dropped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RingError {
    Incoming(Corruption),
    Outgoing(Corruption),
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub packets: usize,
    pub frames_to_guest: usize,
    /// Guest packets were left in the ring because the backend was full.
    pub backend_full: bool,
    /// The guest must be interrupted (new packets for it, or room it waited for).
    pub signal: bool,
}

/// Scratch the serving loop reuses.
#[derive(Debug, Default)]
pub struct ServeBuffers {
    payload: Vec<u8>,
    pfns: Vec<u64>,
    gpa: SliceBuffer,
}

/// The GPA-direct bytes of a packet, bounded by what the NIC ever takes. Any page
/// it cannot read leaves the buffer empty, which the NIC refuses as malformed.
fn copy_gpa_direct<M: RingMem>(
    ring: &IncomingRing<M>,
    gpa: &vmbus_ring::GpaDirect,
    read: ReadGpa<'_>,
    bufs: &mut ServeBuffers,
) -> Result<(), Corruption> {
    let mut data = bufs.gpa.0.borrow_mut();
    data.clear();
    for range in ring.gpa_ranges(gpa) {
        let range = range?;
        let total = data.len() + range.byte_count as usize;
        if total > MAX_TRANSFER_SIZE as usize
            || range.pfn_count() > MAX_TRANSFER_SIZE as usize / PAGE_SIZE + 2
        {
            data.clear();
            return Ok(());
        }
        bufs.pfns.resize(range.pfn_count(), 0);
        ring.read_pfns(&range, 0, &mut bufs.pfns)?;
        let mut offset = range.byte_offset as usize;
        let mut left = range.byte_count as usize;
        for &pfn in &bufs.pfns {
            if left == 0 {
                break;
            }
            let n = (PAGE_SIZE - offset).min(left);
            let at = data.len();
            data.resize(at + n, 0);
            if !read(pfn, offset, &mut data[at..]) {
                data.clear();
                return Ok(());
            }
            left -= n;
            offset = 0;
        }
        if left != 0 {
            data.clear();
            return Ok(());
        }
    }
    Ok(())
}

/// Serves the primary channel until the guest's ring is empty (or the NIC waits
/// for room in the guest's), then moves what the backend has to the guest.
#[allow(clippy::too_many_arguments)]
pub fn serve<B: GuestBuffer, M: RingMem>(
    nic: &mut Nic<B>,
    incoming: &mut IncomingRing<M>,
    outgoing: &mut OutgoingRing<M>,
    read_gpa: ReadGpa<'_>,
    gpadl: &mut dyn FnMut(u32) -> Option<B>,
    backend: &mut dyn Backend,
    bufs: &mut ServeBuffers,
) -> Result<Served, RingError> {
    let rings = (incoming, outgoing);
    serve_queue(nic, 0, rings, read_gpa, gpadl, backend, bufs)
}

/// The same for queue `q` of the NIC (a vRSS sub-channel, or 0), over its rings.
#[allow(clippy::too_many_arguments)]
pub fn serve_queue<B: GuestBuffer, M: RingMem>(
    nic: &mut Nic<B>,
    q: usize,
    (incoming, outgoing): (&mut IncomingRing<M>, &mut OutgoingRing<M>),
    read_gpa: ReadGpa<'_>,
    gpadl: &mut dyn FnMut(u32) -> Option<B>,
    backend: &mut dyn Backend,
    bufs: &mut ServeBuffers,
) -> Result<Served, RingError> {
    let mut served = Served::default();
    loop {
        let mut backend_full = false;
        loop {
            if !nic.flush_on(q, outgoing) {
                if let Some(c) = outgoing.corruption() {
                    return Err(RingError::Outgoing(c));
                }
                match outgoing.set_pending_send_size(STALL_ROOM) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(WriteError::Corrupt(c)) => return Err(RingError::Outgoing(c)),
                    Err(_) => break,
                }
            }
            if !backend.has_room(FRAMES_PER_PACKET) {
                // The backend wakes us when it has room; the guest's packets wait
                // in its ring meanwhile.
                backend_full = true;
                served.backend_full = true;
                break;
            }
            let packet = match incoming.peek() {
                Ok(p) => p,
                Err(ReadError::Empty) => break,
                Err(ReadError::Corrupt(c)) => return Err(RingError::Incoming(c)),
            };
            let len = packet.payload.len().min(MAX_PAYLOAD);
            bufs.payload.resize(len, 0);
            incoming
                .copy_from(&packet.payload, 0, &mut bufs.payload)
                .map_err(RingError::Incoming)?;
            let kind = match packet.kind {
                RingKind::InBand => IncomingKind::InBand,
                RingKind::Completion => IncomingKind::Completion,
                RingKind::GpaDirect(g) => {
                    copy_gpa_direct(incoming, &g, read_gpa, bufs).map_err(RingError::Incoming)?;
                    IncomingKind::GpaDirect(&bufs.gpa)
                }
                // The guest has no business sending transfer pages: an empty buffer
                // makes the NIC refuse whatever the message claims.
                RingKind::TransferPages(_) => {
                    bufs.gpa.0.borrow_mut().clear();
                    IncomingKind::GpaDirect(&bufs.gpa)
                }
            };
            if let Err(ReadError::Corrupt(c)) = incoming.consume() {
                return Err(RingError::Incoming(c));
            }
            nic.handle_on(
                q,
                Incoming {
                    transaction_id: packet.transaction_id,
                    completion_requested: packet.completion_requested,
                    kind,
                    payload: &bufs.payload,
                },
                outgoing,
                gpadl,
                backend,
            );
            served.packets += 1;
            if served.packets.is_multiple_of(COMMIT_EVERY) {
                served.signal |= outgoing.commit().map_err(RingError::Outgoing)?;
                served.signal |= incoming.commit().map_err(RingError::Incoming)?;
            }
        }
        served.frames_to_guest += nic.poll_rx_on(q, outgoing, backend);
        if nic.is_stalled_on(q) {
            if let Ok(true) = outgoing.set_pending_send_size(STALL_ROOM) {
                continue;
            }
        } else {
            outgoing.clear_pending_send_size();
        }
        served.signal |= outgoing.commit().map_err(RingError::Outgoing)?;
        served.signal |= incoming.commit().map_err(RingError::Incoming)?;
        // The guest may have written after our last look without signalling, since
        // it saw the ring not yet drained: look once more before sleeping.
        if backend_full
            || nic.is_stalled_on(q)
            || incoming.is_empty().map_err(RingError::Incoming)?
        {
            return Ok(served);
        }
    }
}

/// A page-granular reader over one region at `base_pfn`, for [`serve`].
pub fn region_reader<'r>(
    region: &'r ipc::Region<'r>,
    base_pfn: u64,
) -> impl Fn(u64, usize, &mut [u8]) -> bool + 'r {
    move |pfn, offset, buf| {
        let Some(page) = pfn.checked_sub(base_pfn) else {
            return false;
        };
        let Some(at) = usize::try_from(page)
            .ok()
            .and_then(|p| p.checked_mul(PAGE_SIZE))
            .and_then(|a| a.checked_add(offset))
        else {
            return false;
        };
        region.read_bytes(at, buf).is_ok()
    }
}
