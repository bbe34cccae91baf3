//! A packet copied out of the ring: the ring's own [`IncomingPacket`] (id,
//! completion flag, kind) plus copies of the bytes a device acts on. Copying
//! before anyone interprets the bytes means the guest rewriting its ring cannot
//! change a request between its checks and its use.

use alloc::vec::Vec;

use vmbus_ring::{GpaRangeRef, IncomingPacket};

use crate::device::Limits;

/// Why a GPA-direct packet's buffer was not handed over. The packet itself is;
/// the device answers it with an error.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BufferError {
    /// More than one range (storage clients send exactly one).
    TooManyRanges(u32),
    /// The range lists more pages than the device's [`Limits::max_pages`].
    TooManyPages { pages: usize, limit: usize },
}

/// One packet as the device sees it.
#[derive(Copy, Clone, Debug)]
pub struct Packet<'a> {
    pub header: IncomingPacket,
    /// The payload (padding included), cut to [`Limits::max_payload`].
    pub payload: &'a [u8],
    /// The first GPA range with its page numbers; `Ok(None)` for packets that are
    /// not GPA-direct.
    pub buffer: Result<Option<GpaRangeRef<'a>>, BufferError>,
}

impl Packet<'_> {
    pub fn transaction_id(&self) -> u64 {
        self.header.transaction_id
    }

    pub fn completion_requested(&self) -> bool {
        self.header.completion_requested
    }
}

/// Where packets are copied to; reused for every packet of a PD.
#[derive(Clone, Debug)]
pub struct PacketBuf {
    pub(crate) limits: Limits,
    pub(crate) payload: Vec<u8>,
    pub(crate) pfns: Vec<u64>,
}

impl PacketBuf {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            payload: Vec::new(),
            pfns: Vec::new(),
        }
    }
}
