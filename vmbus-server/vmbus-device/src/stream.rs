//! What a streaming device (a NIC) gets when the layer serves one of its
//! channels: more than request/reply, it writes any number of packets per packet
//! in, packets nobody asked for (received frames), and reaches the channel's
//! other GPADLs (receive and send buffers) and the kernel (to wake its backend).

use alloc::vec::Vec;

use ipc::Kernel;
use isolation::GuestMemory;
use vmbus_protocol::Relid;
use vmbus_ring::RingMem;

use crate::gpadl::GpadlTable;
use crate::packet::PacketBuf;
use crate::transport::RingTransport;

/// The channel [`crate::VmbusDevice::serve_channel`] serves: its rings, and
/// everything else serving it may use.
pub struct Serving<'s, 'm, M: RingMem> {
    pub relid: Relid,
    pub rings: &'s mut RingTransport<M>,
    /// Guest memory as the PD maps it.
    pub mem: &'s GuestMemory<'m>,
    /// The GPADLs of every channel of this VSP; a device looks up only its
    /// channel's (`get(relid, id)`) and places them with [`GuestMemory::place`].
    pub gpadls: &'s GpadlTable,
    /// Scratch of the request/reply path ([`crate::serve`]).
    pub buf: &'s mut PacketBuf,
    pub reply: &'s mut Vec<u8>,
    pub kernel: &'s mut dyn Kernel,
}

impl<M: RingMem> core::fmt::Debug for Serving<'_, '_, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Serving")
            .field("relid", &self.relid)
            .field("gpadls", &self.gpadls.len())
            .finish_non_exhaustive()
    }
}
