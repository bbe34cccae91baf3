//! Serving one channel: packets in, replies out, until the guest's ring is empty
//! or ours is full.

use alloc::vec::Vec;

use isolation::GuestMemory;
use vmbus_protocol::Relid;
use vmbus_ring::RingMem;

use crate::device::{Request, VmbusDevice};
use crate::packet::PacketBuf;
use crate::transport::{RingBroken, RingTransport, Room};

/// What one [`serve`] call did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Packets taken from the ring.
    pub packets: usize,
    /// Packets dropped because their reply could never fit the outgoing ring.
    pub dropped: usize,
    /// The guest must be signalled (new replies, or space it waited for).
    pub signal: bool,
}

/// Publish replies at least this often while a busy guest keeps the ring full.
const FLUSH_EVERY: usize = 32;

/// Serves channel `relid` until its incoming ring is empty and re-armed, or a
/// reply does not fit and the guest was asked to say when it has room.
pub fn serve<D: VmbusDevice + ?Sized, M: RingMem>(
    device: &mut D,
    relid: Relid,
    rings: &mut RingTransport<M>,
    mem: &GuestMemory<'_>,
    buf: &mut PacketBuf,
    reply: &mut Vec<u8>,
) -> Result<Served, RingBroken> {
    let mut done = Served::default();
    loop {
        let mut batch = 0;
        while let Some(header) = rings.peek()? {
            let room = device.reply_room(&header);
            if let Some(room) = room {
                match rings.room(room)? {
                    Room::Now => {}
                    Room::Later => break,
                    Room::Never => {
                        rings.consume()?;
                        done.dropped += 1;
                        continue;
                    }
                }
            }
            let packet = rings.copy(&header, buf)?;
            reply.clear();
            let answer = device.packet(Request { relid, packet, mem }, reply);
            rings.consume()?;
            // Only a reply whose room was reserved is sent: one the device did not
            // announce could find the ring full with the request already done.
            if let (Some(answer), Some(_)) = (answer, room) {
                rings.send(&answer, reply)?;
            }
            done.packets += 1;
            batch += 1;
            if batch == FLUSH_EVERY {
                done.signal |= rings.flush()?;
                batch = 0;
            }
        }
        done.signal |= rings.flush()?;
        if !rings.arm()? {
            return Ok(done);
        }
    }
}
