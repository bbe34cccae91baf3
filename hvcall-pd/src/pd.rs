//! hvcall-pd as an `ipc` protection domain.
//!
//! What system.xml must grant (the `setvar_vaddr`/`setvar` names):
//! - region [`GUEST_RAM`] (rw) at variable [`GUEST_RAM_GPA`], optionally
//!   [`GUEST_SHARED`] at [`GUEST_SHARED_GPA`]: guest memory for input/output pages and
//!   the hypercall page;
//! - partition variables [`VP_COUNT`], [`ISOLATION`] (0 none, 2 SNP, 3 TDX),
//!   [`SHARED_GPA_BOUNDARY`] (0 for none), [`CONFIDENTIAL_VMBUS`] (0/1),
//!   [`MAX_GUEST_VTL`];
//! - [`SYNIC_CHANNEL`] (pp to synic-pd) and optionally [`HOST_CHANNEL`] (pp to the
//!   host-forward PD);
//! - channel bitmasks: [`VCPU_CHANNELS`] (may send exits), [`SYNIC_PORT_CHANNELS`]
//!   (may route connections into a SynIC), [`HOST_ROUTE_CHANNELS`] (may route
//!   connections to the host);
//! - per service PD `i` (up to [`MAX_SERVICES`]): variable `service<i>_channel`,
//!   optionally region `service<i>_queue`, an `ipc::queue` of [`ServiceMessage`] with
//!   [`SERVICE_QUEUE_CAPACITY`] entries, and optionally variable
//!   `service<i>_connections` (see [`connection_range`]). Only these channels may
//!   register service routes, only to themselves and only for connection ids in
//!   their range. A service without a queue takes signals only (a VSP's channel
//!   signals): a message posted to its connection fails with INVALID_PORT_ID.
//! - optionally [`GRANT_CHANNEL`] (vmbus-server) and [`VSP_CHANNEL_VARS`] (the
//!   channel of VSP slot `i`, as vmbus-server numbers its VSPs): a VSP may route to
//!   itself only the signal connections vmbus-server granted its open channels
//!   ([`vsp_api::ChannelGrants`]); anything else is NotPermitted, from the first
//!   call on (whether or not vmbus-server has called yet). A grant also drops any
//!   other peer's route on the granted connection.

use hvcall_api::{
    label, ConnectionGrant as GrantRequest, ConnectionRevoke, CpuidReply, CpuidRequest,
    ForwardReply, HypercallReply, HypercallRequest, InitialContextReply, InitialContextRequest,
    MsrResult, ReadMsrRequest, RegisterStatus, Registration, RouteKind, Unregistration,
    WriteMsrRequest,
};
use hvdef::cpuid::IsolationType;
use hvdef::message::HvMessage;
use hvdef::{HvStatus, HypercallResult, Vtl};
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, HandlerReply, Init, InitError, InitExt, Kernel,
    MessageInfo, MessageRegisters, PpCall, Producer, TryEnqueueError,
};
use synic_api::{PostOutcome, SintTarget};

use crate::config::Config;
use crate::effects::{Effects, HostCall, ServiceMessage};
use crate::gateway::HvcallCore;
use vsp_api::{ChannelGrants, GrantError, VspChannels};

use crate::guest::GuestMemory;
use crate::msr::MsrError;
use crate::route::{Destination, Route, RouteError};

pub use ipc::guest_names::*;
pub const ISOLATION: &str = "isolation";
pub const SHARED_GPA_BOUNDARY: &str = "shared_gpa_boundary";
pub const CONFIDENTIAL_VMBUS: &str = "confidential_vmbus";
pub const MAX_GUEST_VTL: &str = "max_guest_vtl";
pub const SYNIC_CHANNEL: &str = "synic_channel";
pub const HOST_CHANNEL: &str = "host_channel";
pub const VCPU_CHANNELS: &str = "vcpu_channels";
pub const SYNIC_PORT_CHANNELS: &str = "synic_port_channels";
pub const HOST_ROUTE_CHANNELS: &str = "host_route_channels";

pub const MAX_SERVICES: usize = 5;
pub const SERVICE_CHANNEL_VARS: [&str; MAX_SERVICES] =
    ipc::numbered_names!("service", "_channel", [0, 1, 2, 3, 4]);
pub const SERVICE_QUEUE_REGIONS: [&str; MAX_SERVICES] =
    ipc::numbered_names!("service", "_queue", [0, 1, 2, 3, 4]);
pub const SERVICE_CONNECTION_VARS: [&str; MAX_SERVICES] =
    ipc::numbered_names!("service", "_connections", [0, 1, 2, 3, 4]);
pub use hvcall_api::SERVICE_QUEUE_CAPACITY;
pub use vsp_api::{GRANT_CHANNEL, VSP_CHANNEL_VARS};

/// The value of a `service<i>_connections` variable: the service may claim
/// connection ids `first..=last` (packed as `first | last << 32`). Without the
/// variable it may claim any id.
pub const fn connection_range(first: u32, last: u32) -> u64 {
    first as u64 | (last as u64) << 32
}

struct Service {
    channel: Channel,
    /// `None`: a signal-only service.
    queue: Option<Producer<'static, ServiceMessage>>,
    connections: core::ops::RangeInclusive<u32>,
}

pub struct HvcallPd<const VPS: usize, const ROUTES: usize> {
    core: HvcallCore<VPS, ROUTES>,
    mem: GuestMemory<'static>,
    synic: Channel,
    host: Option<Channel>,
    vcpu_channels: ChannelSet,
    synic_port_channels: ChannelSet,
    host_route_channels: ChannelSet,
    services: [Option<Service>; MAX_SERVICES],
    /// Which channel is which VSP slot; vmbus-server alone grants.
    vsps: VspChannels,
    /// The signal connection (and VTL) each VSP channel was granted.
    grants: ChannelGrants<(u32, Vtl)>,
}

ipc::debug_fields!(HvcallPd<VPS, ROUTES>: core, synic, host, vcpu_channels, ..);

fn config_from(init: &dyn Init) -> Result<Config, InitError> {
    let vp_count = init.variable(VP_COUNT)?;
    let isolation = init.variable(ISOLATION)?;
    let boundary = init.variable(SHARED_GPA_BOUNDARY)?;
    let cvmbus = init.variable(CONFIDENTIAL_VMBUS)?;
    let max_vtl = init.variable(MAX_GUEST_VTL)?;
    let invalid = |name, value| InitError::InvalidVariable { name, value };
    Ok(Config {
        vp_count: u32::try_from(vp_count).map_err(|_| invalid(VP_COUNT, vp_count))?,
        isolation: match isolation {
            0 => IsolationType::NONE,
            2 => IsolationType::SNP,
            3 => IsolationType::TDX,
            v => return Err(invalid(ISOLATION, v)),
        },
        shared_gpa_boundary: (boundary != 0).then_some(boundary),
        confidential_vmbus: match cvmbus {
            0 => false,
            1 => true,
            v => return Err(invalid(CONFIDENTIAL_VMBUS, v)),
        },
        max_guest_vtl: u8::try_from(max_vtl)
            .ok()
            .and_then(Vtl::new)
            .ok_or(invalid(MAX_GUEST_VTL, max_vtl))?,
    })
}

impl<const VPS: usize, const ROUTES: usize> HvcallPd<VPS, ROUTES> {
    pub fn init(init: &dyn Init) -> Result<Self, InitError> {
        let cfg = config_from(init)?;
        let core = HvcallCore::new(cfg).map_err(|_| InitError::InvalidVariable {
            name: VP_COUNT,
            value: cfg.vp_count as u64,
        })?;
        let mut mem = GuestMemory::new(cfg.shared_gpa_boundary);
        let windows = init.guest_windows()?;
        for window in core::iter::once(windows.ram).chain(windows.shared) {
            mem.add(window.gpa, window.region)
                .map_err(|_| window.refused())?;
        }
        let mut services: [Option<Service>; MAX_SERVICES] = Default::default();
        for (i, slot) in services.iter_mut().enumerate() {
            let Some(channel) = init.optional(init.channel(SERVICE_CHANNEL_VARS[i]))? else {
                continue;
            };
            let queue =
                init.optional(init.queue(SERVICE_QUEUE_REGIONS[i], SERVICE_QUEUE_CAPACITY))?;
            let connections = match init.optional(init.variable(SERVICE_CONNECTION_VARS[i]))? {
                None => 0..=u32::MAX,
                Some(v) => {
                    let (first, last) = (v as u32, (v >> 32) as u32);
                    if first > last {
                        return Err(InitError::InvalidVariable {
                            name: SERVICE_CONNECTION_VARS[i],
                            value: v,
                        });
                    }
                    first..=last
                }
            };
            *slot = Some(Service {
                channel,
                queue,
                connections,
            });
        }
        Ok(Self {
            core,
            mem,
            synic: init.channel(SYNIC_CHANNEL)?,
            host: init.optional(init.channel(HOST_CHANNEL))?,
            vcpu_channels: init.channel_set(VCPU_CHANNELS)?,
            synic_port_channels: init.channel_set(SYNIC_PORT_CHANNELS)?,
            host_route_channels: init.channel_set(HOST_ROUTE_CHANNELS)?,
            services,
            vsps: VspChannels::init(init)?,
            grants: ChannelGrants::new(|a, b| a == b),
        })
    }

    pub fn core(&self) -> &HvcallCore<VPS, ROUTES> {
        &self.core
    }

    fn is_service(&self, ch: Channel) -> bool {
        self.services.iter().flatten().any(|s| s.channel == ch)
    }

    /// GRANT_CONNECTION / REVOKE_CONNECTION from vmbus-server.
    fn grant(&mut self, ch: Channel, msg: MessageInfo, mrs: &MessageRegisters) -> RegisterStatus {
        if !self.vsps.is_authority(ch) {
            return RegisterStatus::NotPermitted;
        }
        if let Ok(r) = ConnectionRevoke::decode(msg, mrs) {
            let Ok((connection_id, vtl)) = self.grants.revoke(r.vsp, r.relid) else {
                return RegisterStatus::NotFound;
            };
            // A VSP that did not unregister (it crashed, or its ring broke) loses
            // the route with the grant, so the guest's doorbells stop reaching it.
            if let Some(owner) = self.vsps.channel(r.vsp) {
                let _ = self
                    .core
                    .unregister_route(vtl, connection_id, owner.index());
            }
            return RegisterStatus::Ok;
        }
        let Ok(g) = GrantRequest::decode(msg, mrs) else {
            return RegisterStatus::Invalid;
        };
        let Some(grantee) = self.vsps.channel(g.vsp) else {
            return RegisterStatus::Invalid;
        };
        match self.grants.grant(g.vsp, g.relid, (g.connection_id, g.vtl)) {
            Ok(()) => {
                self.evict_squatter(g.connection_id, g.vtl, grantee);
                RegisterStatus::Ok
            }
            Err(GrantError::Taken) => RegisterStatus::Duplicate,
            Err(GrantError::Full) => RegisterStatus::Full,
            Err(GrantError::NotFound) => RegisterStatus::NotFound,
        }
    }

    /// A granted connection belongs to the grantee: a route another peer made on it
    /// earlier (a service whose range covers VSP connections, a port manager) is
    /// dropped, so nothing claimed before vmbus-server granted keeps the doorbells.
    fn evict_squatter(&mut self, connection_id: u32, vtl: Vtl, grantee: Channel) {
        let squatter = self
            .core
            .routes()
            .lookup(vtl, connection_id)
            .map(|r| r.owner)
            .filter(|&owner| owner != grantee.index());
        if let Some(owner) = squatter {
            let _ = self.core.unregister_route(vtl, connection_id, owner);
        }
    }

    fn register(&mut self, ch: Channel, reg: &Registration) -> RegisterStatus {
        let wanted = (reg.connection_id, reg.vtl);
        // Any other peer keeps off what vmbus-server granted a VSP (see
        // `evict_squatter` for what it held before the grant).
        let granted = match self.vsps.slot_of(ch) {
            Some(vsp) => self.grants.holds(vsp, |&granted| granted == wanted),
            None => !self.grants.any(|&granted| granted == wanted),
        };
        let permitted = match reg.kind {
            RouteKind::Service => {
                granted
                    && self
                        .services
                        .iter()
                        .flatten()
                        .any(|s| s.channel == ch && s.connections.contains(&reg.connection_id))
            }
            RouteKind::SynicMessage { target, .. } | RouteKind::SynicEvent { target, .. } => {
                granted
                    && self.synic_port_channels.contains(ch)
                    && target.vp < self.core.config().vp_count
            }
            RouteKind::Host => {
                granted && self.host_route_channels.contains(ch) && self.host.is_some()
            }
        };
        if !permitted {
            return RegisterStatus::NotPermitted;
        }
        if let RouteKind::SynicEvent {
            flag_base,
            flag_count,
            ..
        } = reg.kind
        {
            if flag_count == 0
                || flag_base as u32 + flag_count as u32 > hvdef::message::SINT_EVENT_FLAGS
            {
                return RegisterStatus::Invalid;
            }
        }
        let route = Route {
            connection_id: reg.connection_id,
            vtl: reg.vtl,
            destination: destination(reg.kind, ch),
            owner: ch.index(),
        };
        match self.core.register_route(route) {
            Ok(()) => RegisterStatus::Ok,
            Err(RouteError::Duplicate) => RegisterStatus::Duplicate,
            Err(RouteError::Full) => RegisterStatus::Full,
            Err(RouteError::NotFound) => RegisterStatus::NotFound,
        }
    }
}

/// The destination a registration makes, for a caller on `channel`.
fn destination(kind: RouteKind, channel: Channel) -> Destination {
    match kind {
        RouteKind::Service => Destination::Service {
            channel: channel.index(),
        },
        RouteKind::SynicMessage { target, port_id } => {
            Destination::SynicMessage { target, port_id }
        }
        RouteKind::SynicEvent {
            target,
            flag_base,
            flag_count,
        } => Destination::SynicEvent {
            target,
            flag_base,
            flag_count,
        },
        RouteKind::Host => Destination::Host,
    }
}

/// Carries the core's effects out over this PD's channels.
struct PdEffects<'a> {
    kernel: &'a mut dyn Kernel,
    synic: Channel,
    host: Option<Channel>,
    services: &'a mut [Option<Service>; MAX_SERVICES],
}

/// A destination PD that does not answer is treated like a port whose owner is not
/// active (TLFS: INVALID_PORT_ID); the guest sees an error, not a hang.
const DEAD_PEER: HvStatus = HvStatus::INVALID_PORT_ID;

impl Effects for PdEffects<'_> {
    fn synic_post(
        &mut self,
        target: SintTarget,
        message: &HvMessage,
    ) -> Result<PostOutcome, HvStatus> {
        synic_api::post_message(self.kernel, self.synic, target, message).unwrap_or(Err(DEAD_PEER))
    }

    fn synic_signal(&mut self, target: SintTarget, flag: u32) -> Result<bool, HvStatus> {
        synic_api::signal_event(self.kernel, self.synic, target, flag).unwrap_or(Err(DEAD_PEER))
    }

    fn service_post(&mut self, channel: u8, message: &ServiceMessage) -> Result<(), HvStatus> {
        let Some(service) = self
            .services
            .iter_mut()
            .flatten()
            .find(|s| s.channel.index() == channel)
        else {
            return Err(DEAD_PEER);
        };
        // A signal-only service has no message port: as for an event port.
        let Some(queue) = service.queue.as_mut() else {
            return Err(HvStatus::INVALID_PORT_ID);
        };
        match queue.try_enqueue(*message) {
            Ok(()) => {}
            Err(TryEnqueueError::Full(_)) => return Err(HvStatus::INSUFFICIENT_BUFFERS),
            Err(TryEnqueueError::Queue(_)) => return Err(DEAD_PEER),
        }
        if queue.take_signal_request() {
            service.channel.notify(self.kernel).map_err(|_| DEAD_PEER)?;
        }
        Ok(())
    }

    fn service_signal(&mut self, channel: u8) -> Result<(), HvStatus> {
        let ch = Channel::try_new(channel).ok_or(DEAD_PEER)?;
        ch.notify(self.kernel).map_err(|_| DEAD_PEER)
    }

    fn host_forward(&mut self, call: &HostCall) -> HypercallResult {
        let Some(host) = self.host else {
            return HypercallResult::from(DEAD_PEER);
        };
        match ipc::wire::call::<_, ForwardReply>(self.kernel, host, call) {
            Ok(Ok(reply)) => reply.result,
            _ => HypercallResult::from(DEAD_PEER),
        }
    }
}

impl<const VPS: usize, const ROUTES: usize> Handler for HvcallPd<VPS, ROUTES> {
    fn notified(
        &mut self,
        _kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        // Service PDs notify when they have drained their queue; nothing waits on
        // that here (a full queue fails the guest's post with INSUFFICIENT_BUFFERS
        // and the guest retries), so only known services may do it.
        channels.only_from(|ch| self.is_service(ch))
    }

    fn protected(&mut self, kernel: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        let bad = call.bad_request();
        let PpCall { ch, msg, mrs } = call;
        let from_vcpu = self.vcpu_channels.contains(ch);
        match msg.label() {
            label::HYPERCALL if from_vcpu => {
                let req = HypercallRequest::decode(msg, mrs).map_err(|_| bad)?;
                let Self {
                    core,
                    mem,
                    synic,
                    host,
                    services,
                    ..
                } = self;
                let mut fx = PdEffects {
                    kernel,
                    synic: *synic,
                    host: *host,
                    services,
                };
                let outcome = core.hypercall(mem, &mut fx, req).map_err(|_| bad)?;
                Ok(HypercallReply::from(outcome).encode(mrs))
            }
            label::CPUID if from_vcpu => {
                let req = CpuidRequest::decode(msg, mrs).map_err(|_| bad)?;
                let reply = match self.core.cpuid(req.leaf, req.subleaf) {
                    Some([eax, ebx, ecx, edx]) => CpuidReply::Leaf { eax, ebx, ecx, edx },
                    None => CpuidReply::NotHandled,
                };
                Ok(reply.encode(mrs))
            }
            label::READ_MSR | label::WRITE_MSR if from_vcpu => {
                let (vp, vtl, msr, write) = if msg.label() == label::WRITE_MSR {
                    let r = WriteMsrRequest::decode(msg, mrs).map_err(|_| bad)?;
                    (r.vp, r.vtl, r.msr, Some(r.value))
                } else {
                    let r = ReadMsrRequest::decode(msg, mrs).map_err(|_| bad)?;
                    (r.vp, r.vtl, r.msr, None)
                };
                self.core.check_caller(vp, vtl).map_err(|_| bad)?;
                let result = match write {
                    Some(value) => self
                        .core
                        .write_msr(&self.mem, vp, vtl, msr, value)
                        .map(|()| 0),
                    None => self.core.read_msr(vp, vtl, msr),
                };
                let reply = match result {
                    Ok(value) => MsrResult::Ok { value },
                    Err(MsrError::Gp) => MsrResult::Gp,
                    Err(MsrError::NotMine) => MsrResult::NotMine,
                };
                Ok(reply.encode(mrs))
            }
            label::INITIAL_CONTEXT if from_vcpu => {
                let req = InitialContextRequest::decode(msg, mrs).map_err(|_| bad)?;
                let reply = match self.core.initial_context(req.vp, req.vtl) {
                    Some(ctx) => InitialContextReply::Context { context: *ctx },
                    None => InitialContextReply::NotHandled,
                };
                Ok(reply.encode(mrs))
            }
            label::REGISTER_CONNECTION => {
                let status = match Registration::decode(msg, mrs) {
                    Ok(reg) => self.register(ch, &reg),
                    Err(_) => RegisterStatus::Invalid,
                };
                Ok(status.encode(mrs))
            }
            label::UNREGISTER_CONNECTION => {
                let status = match Unregistration::decode(msg, mrs) {
                    Ok(u) => match self
                        .core
                        .unregister_route(u.vtl, u.connection_id, ch.index())
                    {
                        Ok(_) => RegisterStatus::Ok,
                        Err(_) => RegisterStatus::NotFound,
                    },
                    Err(_) => RegisterStatus::Invalid,
                };
                Ok(status.encode(mrs))
            }
            label::GRANT_CONNECTION | label::REVOKE_CONNECTION => {
                Ok(self.grant(ch, msg, mrs).encode(mrs))
            }
            label::HYPERCALL
            | label::CPUID
            | label::READ_MSR
            | label::WRITE_MSR
            | label::INITIAL_CONTEXT => Err(HandlerError::UnexpectedCall(ch)),
            _ => Err(bad),
        }
    }
}
