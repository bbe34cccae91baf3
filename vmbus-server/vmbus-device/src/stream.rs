//! What a streaming device (a NIC) gets when the layer serves one of its
//! channels: more than request/reply, it writes any number of packets per packet
//! in, packets nobody asked for (received frames), and reaches the channel's
//! other GPADLs (receive and send buffers) and the kernel (to wake its backend).

use alloc::vec::Vec;

use ipc::Kernel;
use isolation::GuestMemory;

use crate::gpadl::GpadlTable;
use crate::packet::PacketBuf;

/// Everything [`crate::VmbusDevice::serve_channel`] may use besides the rings.
pub struct Serving<'s, 'm> {
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

impl core::fmt::Debug for Serving<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Serving")
            .field("gpadls", &self.gpadls.len())
            .finish_non_exhaustive()
    }
}
