//! A [`Transport`] wired straight into a vmbus-server core in the same process: what
//! the client posts is handled at once, and what the server posts waits in an inbox.
//! Mapping and opening always succeed unless a test sets a failure.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use vmbus_protocol::{GpadlId, OutgoingMessage, Relid};
use vmbus_server::{
    Confidentiality, ConnectionInfo, GpadlMapping, Level, MessageError, MessageTarget, OpenRequest,
    Server, ServerEnv, Status,
};

use crate::{Transport, TransportError};

/// What the server asked of its environment, for tests to inspect.
#[derive(Default)]
pub struct LoopbackEnv {
    pub inbox: VecDeque<(MessageTarget, Vec<u8>)>,
    /// Messages the server has posted in total.
    pub sent_count: usize,
    pub mapped: BTreeMap<GpadlId, (Relid, Vec<u64>, Confidentiality)>,
    pub open: BTreeMap<Relid, OpenedChannel>,
    pub closed: BTreeSet<Relid>,
    pub connection: Option<ConnectionInfo>,
    pub logs: Vec<(Level, String)>,
    pub fail_open: Option<Status>,
}

/// An open request as the VSP saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedChannel {
    pub ring_pfns: Vec<u64>,
    pub downstream_page_offset: u32,
    pub target_vp: u32,
    pub confidentiality: Confidentiality,
    pub signal_connection_id: u32,
}

impl fmt::Debug for LoopbackEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackEnv")
            .field("inbox", &self.inbox.len())
            .field("mapped", &self.mapped.keys())
            .field("open", &self.open.keys())
            .finish_non_exhaustive()
    }
}

impl ServerEnv for LoopbackEnv {
    fn post_message(&mut self, target: MessageTarget, message: &OutgoingMessage) -> bool {
        self.inbox.push_back((target, message.as_bytes().to_vec()));
        self.sent_count += 1;
        true
    }

    fn map_gpadl(&mut self, m: &GpadlMapping<'_>) -> Result<(), Status> {
        self.mapped.insert(
            m.gpadl,
            (m.relid, m.ranges.pfns().collect(), m.confidentiality),
        );
        Ok(())
    }

    fn unmap_gpadl(&mut self, _relid: Relid, gpadl: GpadlId) {
        self.mapped.remove(&gpadl);
    }

    fn open_channel(&mut self, r: &OpenRequest<'_>) -> Result<(), Status> {
        if let Some(status) = self.fail_open {
            return Err(status);
        }
        self.closed.remove(&r.relid);
        self.open.insert(
            r.relid,
            OpenedChannel {
                ring_pfns: r.ring.pfns().collect(),
                downstream_page_offset: r.downstream_page_offset,
                target_vp: r.target_vp,
                confidentiality: r.confidentiality,
                signal_connection_id: r.signal_connection_id,
            },
        );
        Ok(())
    }

    fn close_channel(&mut self, relid: Relid) {
        self.open.remove(&relid);
        self.closed.insert(relid);
    }

    fn modify_channel(&mut self, relid: Relid, target_vp: u32) -> Result<(), Status> {
        if let Some(o) = self.open.get_mut(&relid) {
            o.target_vp = target_vp;
        }
        Ok(())
    }

    fn connection_changed(&mut self, connection: Option<&ConnectionInfo>) {
        self.connection = connection.copied();
    }

    fn log(&mut self, level: Level, args: fmt::Arguments<'_>) {
        self.logs.push((level, args.to_string()));
    }
}

/// The server core and its environment, reachable through [`Transport`].
#[derive(Debug)]
pub struct Loopback {
    pub server: Server,
    pub env: LoopbackEnv,
    /// Every message the client posted, with its connection id.
    pub posted: Vec<(u32, Vec<u8>)>,
}

impl Loopback {
    pub fn new(server: Server) -> Self {
        Self {
            server,
            env: LoopbackEnv::default(),
            posted: Vec::new(),
        }
    }
}

impl Transport for Loopback {
    fn post(&mut self, connection_id: u32, message: &[u8]) -> Result<(), TransportError> {
        self.posted.push((connection_id, message.to_vec()));
        match self
            .server
            .handle_message(&mut self.env, connection_id, message)
        {
            Err(MessageError::Busy) => Err(TransportError::Busy),
            Err(MessageError::WrongConnectionId { .. }) => Err(TransportError::InvalidConnection),
            // A refused message is the server's business: the guest sees only the
            // answer (or none), as on real hardware.
            _ => Ok(()),
        }
    }

    fn receive(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.env.inbox.pop_front().map(|(_, b)| b))
    }
}
