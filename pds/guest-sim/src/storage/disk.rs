//! The guest's storvsc: the one client ([`storvsc_client::Storvsc`]) over the
//! channel's rings, signalling storvsp through HvSignalEvent and waiting for its
//! interrupt on the vCPU.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use storvsc_client::{ClientError, GuestBuf, Host, Reply, Request, Storvsc};
use storvsp_protocol::DataDirection;
use synic_pd::Instance;
use vmbus_protocol::Relid;
use vmbus_ring::GpadlRingMem;

use crate::time::Poller;
use crate::vcpu::Vcpu;
use crate::{Failure, Result};

type Ring = GpadlRingMem<'static, Vec<u64>>;

/// Longest poll for completions: storvsp serves a queue of eight 64 KiB
/// requests one after another (~80 µs of file I/O on an idle host), and a
/// guest that gave up sooner would sleep once per batch and have storvsp
/// signal it.
const COMPLETION_POLL: core::time::Duration = core::time::Duration::from_micros(200);

/// The vCPU as the client's host: a signal is HvSignalEvent on the channel's
/// connection, a wait is the channel's event flag on the paravisor SynIC.
struct VcpuHost<'v, 'k> {
    vcpu: &'v mut Vcpu<'k>,
    poller: &'v mut Poller,
    relid: Relid,
    connection_id: u32,
    instance: Instance,
}

impl Host for VcpuHost<'_, '_> {
    fn signal(&mut self) -> core::result::Result<(), String> {
        let s = self.vcpu.signal(self.connection_id, 0).map_err(|e| e.0)?;
        if !s.is_success() {
            return Err(format!("HvSignalEvent on {:#x}: {s:?}", self.connection_id));
        }
        Ok(())
    }

    fn wait(&mut self) -> core::result::Result<(), String> {
        self.vcpu
            .wait_event(self.instance, self.relid.0, "a storvsp completion")
            .map_err(|e| e.0)
    }

    fn poll(&mut self, ready: &mut dyn FnMut() -> bool) -> bool {
        self.poller.poll(ready)
    }
}

fn failure(e: ClientError) -> Failure {
    Failure(format!("storvsc: {e}"))
}

/// The open storage channel.
pub(crate) struct Disk {
    pub client: Storvsc<Ring>,
    poller: Poller,
    relid: Relid,
    connection_id: u32,
    instance: Instance,
}

impl Disk {
    /// Initializes both rings' control pages (guest-to-host first, `split` pages
    /// each) and attaches to them.
    pub fn attach(
        vcpu: &Vcpu<'_>,
        pfns: &[u64],
        split: usize,
        relid: Relid,
        connection_id: u32,
        instance: Instance,
    ) -> Result<Self> {
        let mem = |pages: &[u64]| {
            GpadlRingMem::new(vcpu.ram, pages.to_vec())
                .map_err(|e| Failure(format!("ring memory: {e}")))
        };
        let (tx, rx) = (mem(&pfns[..split])?, mem(&pfns[split..])?);
        vmbus_ring::RingMem::control(&tx).initialize();
        vmbus_ring::RingMem::control(&rx).initialize();
        Ok(Self {
            client: Storvsc::new(tx, rx).map_err(|e| Failure(format!("rings: {e}")))?,
            poller: Poller::up_to(COMPLETION_POLL),
            relid,
            connection_id,
            instance,
        })
    }

    /// The client's host for one call, and the client (borrowed apart).
    fn split<'v, 'k>(
        &'v mut self,
        vcpu: &'v mut Vcpu<'k>,
    ) -> (&'v mut Storvsc<Ring>, VcpuHost<'v, 'k>) {
        let host = VcpuHost {
            vcpu,
            poller: &mut self.poller,
            relid: self.relid,
            connection_id: self.connection_id,
            instance: self.instance,
        };
        (&mut self.client, host)
    }

    pub fn run(&mut self, vcpu: &mut Vcpu<'_>, reqs: &[Request<'_>]) -> Result<Vec<Reply>> {
        let (client, mut host) = self.split(vcpu);
        client.run(&mut host, reqs).map_err(failure)
    }

    pub fn srb(
        &mut self,
        vcpu: &mut Vcpu<'_>,
        cdb: &[u8],
        dir: DataDirection,
        buf: Option<&GuestBuf>,
    ) -> Result<Reply> {
        let (client, mut host) = self.split(vcpu);
        client.srb(&mut host, cdb, dir, buf).map_err(failure)
    }

    pub fn negotiate(
        &mut self,
        vcpu: &mut Vcpu<'_>,
        versions: &[storvsp_protocol::ProtocolVersion],
    ) -> Result<storvsc_client::Negotiated> {
        let (client, mut host) = self.split(vcpu);
        client.negotiate(&mut host, versions).map_err(failure)
    }
}
