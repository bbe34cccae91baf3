//! What a hypercall can cause outside hvcall-pd. The core only decides; the PD (or a
//! test) carries the effects out over channels.

use hvdef::message::HvMessage;
use hvdef::{HvStatus, HypercallResult};
use synic_api::{PostOutcome, SintTarget};

pub use hvcall_api::{HostCall, ServiceMessage};

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
