//! What a hypercall can cause outside hvcall-pd. The core only decides; the PD (or a
//! test) carries the effects out over channels.

use hvdef::message::HvMessage;
use hvdef::{Control, HvStatus, HypercallResult};
use synic_pd::{PostOutcome, SintTarget};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A posted message on its way to a paravisor service PD (one queue entry).
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ServiceMessage {
    pub connection_id: u32,
    pub message_type: u32,
    pub payload_size: u32,
    /// The VTL the guest posted from.
    pub vtl: u8,
    pub reserved: [u8; 3],
    pub payload: [u8; 240],
}
const _: () = assert!(core::mem::size_of::<ServiceMessage>() == 256);

impl ServiceMessage {
    /// The payload bytes, clamped: the queue is shared memory, so the consumer must
    /// not trust `payload_size` to be in range.
    pub fn payload(&self) -> &[u8] {
        let len = (self.payload_size as usize).min(self.payload.len());
        &self.payload[..len]
    }
}

/// A call relayed to the host. `input`/`output` are GPAs for slow calls (already
/// checked to be host-visible) and register values for fast ones.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct HostCall {
    pub vp: u32,
    pub control: Control,
    pub input: u64,
    pub output: u64,
}

pub trait Effects {
    /// Deliver into a SynIC message slot (synic-pd).
    fn synic_post(
        &mut self,
        target: SintTarget,
        message: &HvMessage,
    ) -> Result<PostOutcome, HvStatus>;
    /// Set a SynIC event flag (synic-pd).
    fn synic_signal(&mut self, target: SintTarget, flag: u32) -> Result<bool, HvStatus>;
    /// Queue a message for the service PD behind `channel`; INSUFFICIENT_BUFFERS
    /// when its queue is full.
    fn service_post(&mut self, channel: u8, message: &ServiceMessage) -> Result<(), HvStatus>;
    /// Notify the service PD behind `channel`.
    fn service_signal(&mut self, channel: u8) -> Result<(), HvStatus>;
    /// Relay to the host; the host's result word comes back verbatim.
    fn host_forward(&mut self, call: &HostCall) -> HypercallResult;
}
