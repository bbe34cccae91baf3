//! The server's side effects. The server decides; an implementation of [`ServerEnv`]
//! does: the PD adapter posts messages through synic-pd and calls VSP PDs, the tests
//! record everything.
//!
//! Calls into VSPs are synchronous (a protected call to a higher-priority VSP PD in the
//! real system), so every guest request is answered before `handle_message` returns
//! and no half-open states exist in the server.

use core::fmt;

use vmbus_protocol::gpa::GpaRanges;
use vmbus_protocol::messages::UserDefinedData;
use vmbus_protocol::{FeatureFlags, GpadlId, OutgoingMessage, Relid, Version};

/// Where a message to the guest goes: a VP, the SINT on it, and which of the VP's two
/// SynICs (seed 001): a Confidential VMBus connection lives entirely on the
/// paravisor's SynIC; any other connection on the relay of the hypervisor's, the one a
/// guest unaware of Confidential VMBus reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MessageTarget {
    pub vp: u32,
    pub sint: u8,
    pub paravisor_synic: bool,
}

impl MessageTarget {
    /// Before a connection names one: VP 0, the VMBus SINT, the hypervisor's SynIC.
    pub const DEFAULT: Self = Self {
        vp: 0,
        sint: vmbus_protocol::MESSAGE_SINT,
        paravisor_synic: false,
    };
}

pub use vsp_api::Confidentiality;

/// The negotiated connection, as the SynIC and signalling layers need it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub version: Version,
    pub features: FeatureFlags,
    /// Where channel messages go.
    pub target: MessageTarget,
    /// The connection id the guest posts to from now on.
    pub message_connection_id: u32,
    /// Pre-Win8 guests' shared interrupt page (GPA).
    pub interrupt_page: Option<u64>,
    /// The guest's monitor pages (GPAs), if it gave them.
    pub monitor_pages: Option<(u64, u64)>,
}

/// A complete, validated GPADL, as the channel's VSP is to map it.
#[derive(Copy, Clone, Debug)]
pub struct GpadlMapping<'a> {
    pub relid: Relid,
    pub gpadl: GpadlId,
    pub ranges: GpaRanges<'a>,
    pub confidentiality: Confidentiality,
}

/// What a VSP needs to open its side of a channel.
#[derive(Copy, Clone, Debug)]
pub struct OpenRequest<'a> {
    pub relid: Relid,
    /// The offer's sub-channel index (0: a primary channel).
    pub subchannel_index: u16,
    pub open_id: u32,
    pub ring_gpadl: GpadlId,
    /// The ring GPADL's pages: guest-to-host ring first, host-to-guest ring from
    /// `downstream_page_offset` on.
    pub ring: GpaRanges<'a>,
    pub downstream_page_offset: u32,
    pub target_vp: u32,
    /// The SINT channel interrupts arrive on (the connection's message SINT).
    pub target_sint: u8,
    /// Interrupt through the paravisor's SynIC (a Confidential VMBus connection)
    /// rather than the hypervisor's.
    pub paravisor_synic: bool,
    pub user_data: &'a UserDefinedData,
    /// What the guest signals the VSP through (HvSignalEvent connection id).
    pub signal_connection_id: u32,
    /// The event flag the VSP sets to interrupt the guest (the relid).
    pub event_flag: u32,
    pub confidentiality: Confidentiality,
    pub version: Version,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// A failed VSP or mapping operation: the NTSTATUS the guest is answered with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Status(pub u32);

pub trait ServerEnv {
    /// Hands a message to the SynIC for `target`. Returns false if the slot is busy;
    /// the server keeps the message and retries in [`crate::Server::flush`].
    fn post_message(&mut self, target: MessageTarget, message: &OutgoingMessage) -> bool;

    /// Called once after a batch of posted messages, to kick the SynIC once.
    fn signal(&mut self) {}

    /// A GPADL is complete and valid; make its pages available to the channel's VSP.
    fn map_gpadl(&mut self, mapping: &GpadlMapping<'_>) -> Result<(), Status>;

    fn unmap_gpadl(&mut self, relid: Relid, gpadl: GpadlId);

    /// The guest opened a channel; the VSP starts serving its rings.
    fn open_channel(&mut self, request: &OpenRequest<'_>) -> Result<(), Status>;

    /// The channel is closed (by the guest, a rescind or an unload): the VSP stops
    /// touching its rings before this returns.
    fn close_channel(&mut self, relid: Relid);

    /// Interrupts for the channel go to `target_vp` from now on.
    fn modify_channel(&mut self, relid: Relid, target_vp: u32) -> Result<(), Status>;

    /// The guest connected (`Some`) or disconnected (`None`).
    fn connection_changed(&mut self, connection: Option<&ConnectionInfo>);

    fn log(&mut self, level: Level, args: fmt::Arguments<'_>);
}
