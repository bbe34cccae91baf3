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

use hvdef::cpuid::IsolationType;
use hvdef::message::HvMessage;
use hvdef::{HvStatus, HypercallResult, Vtl};
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, Init, InitError, InitExt, Kernel, MessageInfo,
    MessageRegisters, Perms, Producer, TryEnqueueError,
};
use synic_pd::{PostOutcome, SintTarget};

use crate::api::{self, label, MsrReply, RegisterStatus, Registration, RouteKind};
use crate::config::Config;
use crate::effects::{Effects, HostCall, ServiceMessage};
use crate::gateway::HvcallCore;
use crate::guest::GuestMemory;
use crate::msr::MsrError;
use crate::route::{Route, RouteError};

pub const GUEST_RAM: &str = "guest_ram";
pub const GUEST_RAM_GPA: &str = "guest_ram_gpa";
pub const GUEST_SHARED: &str = "guest_shared";
pub const GUEST_SHARED_GPA: &str = "guest_shared_gpa";
pub const VP_COUNT: &str = "vp_count";
pub const ISOLATION: &str = "isolation";
pub const SHARED_GPA_BOUNDARY: &str = "shared_gpa_boundary";
pub const CONFIDENTIAL_VMBUS: &str = "confidential_vmbus";
pub const MAX_GUEST_VTL: &str = "max_guest_vtl";
pub const SYNIC_CHANNEL: &str = "synic_channel";
pub const HOST_CHANNEL: &str = "host_channel";
pub const VCPU_CHANNELS: &str = "vcpu_channels";
pub const SYNIC_PORT_CHANNELS: &str = "synic_port_channels";
pub const HOST_ROUTE_CHANNELS: &str = "host_route_channels";

pub const MAX_SERVICES: usize = 4;
pub const SERVICE_CHANNEL_VARS: [&str; MAX_SERVICES] = [
    "service0_channel",
    "service1_channel",
    "service2_channel",
    "service3_channel",
];
pub const SERVICE_QUEUE_REGIONS: [&str; MAX_SERVICES] = [
    "service0_queue",
    "service1_queue",
    "service2_queue",
    "service3_queue",
];
pub const SERVICE_CONNECTION_VARS: [&str; MAX_SERVICES] = [
    "service0_connections",
    "service1_connections",
    "service2_connections",
    "service3_connections",
];
pub const SERVICE_QUEUE_CAPACITY: u32 = 32;

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
}

impl<const VPS: usize, const ROUTES: usize> core::fmt::Debug for HvcallPd<VPS, ROUTES> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HvcallPd")
            .field("core", &self.core)
            .field("synic", &self.synic)
            .field("host", &self.host)
            .field("vcpu_channels", &self.vcpu_channels)
            .finish_non_exhaustive()
    }
}

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
        mem.add(
            init.variable(GUEST_RAM_GPA)?,
            init.region_with(GUEST_RAM, Perms::RW)?,
        );
        if let Some(shared) = init.optional(init.region_with(GUEST_SHARED, Perms::RW))? {
            mem.add(init.variable(GUEST_SHARED_GPA)?, shared);
        }
        let mut services: [Option<Service>; MAX_SERVICES] = [None, None, None, None];
        for (i, slot) in services.iter_mut().enumerate() {
            let Some(channel) = init.optional(init.channel(SERVICE_CHANNEL_VARS[i]))? else {
                continue;
            };
            let region_name = SERVICE_QUEUE_REGIONS[i];
            let queue = match init.optional(init.region_with(region_name, Perms::RW))? {
                None => None,
                Some(region) => {
                    Some(Producer::new(region, SERVICE_QUEUE_CAPACITY).map_err(|_| {
                        InitError::RegionTooSmall {
                            name: region_name,
                            needed: ipc::Queue::<ServiceMessage>::layout_size(
                                SERVICE_QUEUE_CAPACITY,
                            )
                            .unwrap_or(usize::MAX),
                            granted: region.len(),
                        }
                    })?)
                }
            };
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
        })
    }

    pub fn core(&self) -> &HvcallCore<VPS, ROUTES> {
        &self.core
    }

    fn is_service(&self, ch: Channel) -> bool {
        self.services.iter().flatten().any(|s| s.channel == ch)
    }

    fn register(&mut self, ch: Channel, reg: &Registration) -> RegisterStatus {
        let permitted = match reg.kind {
            RouteKind::Service => self
                .services
                .iter()
                .flatten()
                .any(|s| s.channel == ch && s.connections.contains(&reg.connection_id)),
            RouteKind::SynicMessage { target, .. } | RouteKind::SynicEvent { target, .. } => {
                self.synic_port_channels.contains(ch) && target.vp < self.core.config().vp_count
            }
            RouteKind::Host => self.host_route_channels.contains(ch) && self.host.is_some(),
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
            destination: reg.destination(ch),
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
        synic_pd::api::post_message(self.kernel, self.synic, target, message)
            .unwrap_or(Err(DEAD_PEER))
    }

    fn synic_signal(&mut self, target: SintTarget, flag: u32) -> Result<bool, HvStatus> {
        synic_pd::api::signal_event(self.kernel, self.synic, target, flag).unwrap_or(Err(DEAD_PEER))
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
        let mut mrs = MessageRegisters::new();
        let msg = api::encode_forward(call, &mut mrs);
        match host.pp_call(self.kernel, msg, &mut mrs) {
            Ok(_) => HypercallResult(mrs.get(0)),
            Err(_) => HypercallResult::from(DEAD_PEER),
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
        for ch in channels.iter() {
            if !self.is_service(ch) {
                return Err(HandlerError::UnexpectedNotification(ch));
            }
        }
        Ok(())
    }

    fn protected(
        &mut self,
        kernel: &mut dyn Kernel,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        let bad = HandlerError::BadRequest {
            channel: ch,
            label: msg.label(),
        };
        let from_vcpu = self.vcpu_channels.contains(ch);
        match msg.label() {
            label::HYPERCALL if from_vcpu => {
                let req = api::decode_hypercall(msg, mrs).map_err(|_| bad)?;
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
                Ok(api::encode_outcome(outcome, mrs))
            }
            label::CPUID if from_vcpu => {
                if msg.count() < 3 || u32::try_from(mrs.get(0)).is_err() {
                    return Err(bad);
                }
                let leaf = u32::try_from(mrs.get(1)).map_err(|_| bad)?;
                let subleaf = u32::try_from(mrs.get(2)).map_err(|_| bad)?;
                match self.core.cpuid(leaf, subleaf) {
                    Some(regs) => {
                        for (i, r) in regs.iter().enumerate() {
                            mrs.set(i, *r as u64);
                        }
                        Ok(MessageInfo::new(api::REPLY_COMPLETE, 4))
                    }
                    None => Ok(MessageInfo::new(api::REPLY_NOT_HANDLED, 0)),
                }
            }
            label::READ_MSR | label::WRITE_MSR if from_vcpu => {
                let write = msg.label() == label::WRITE_MSR;
                if msg.count() < if write { 4 } else { 3 } {
                    return Err(bad);
                }
                let vp = u32::try_from(mrs.get(0)).map_err(|_| bad)?;
                let vtl = u8::try_from(mrs.get(1))
                    .ok()
                    .and_then(Vtl::new)
                    .ok_or(bad)?;
                let msr = u32::try_from(mrs.get(2)).map_err(|_| bad)?;
                self.core.check_caller(vp, vtl).map_err(|_| bad)?;
                let result = if write {
                    self.core
                        .write_msr(&self.mem, vp, vtl, msr, mrs.get(3))
                        .map(|()| 0)
                } else {
                    self.core.read_msr(vp, vtl, msr)
                };
                Ok(match result {
                    Ok(v) => {
                        mrs.set(0, v);
                        MessageInfo::new(MsrReply::Ok as u64, 1)
                    }
                    Err(MsrError::Gp) => MessageInfo::new(MsrReply::Gp as u64, 0),
                    Err(MsrError::NotMine) => MessageInfo::new(MsrReply::NotMine as u64, 0),
                })
            }
            label::INITIAL_CONTEXT if from_vcpu => {
                if msg.count() < 2 {
                    return Err(bad);
                }
                let vp = u32::try_from(mrs.get(0)).map_err(|_| bad)?;
                let vtl = u8::try_from(mrs.get(1))
                    .ok()
                    .and_then(Vtl::new)
                    .ok_or(bad)?;
                Ok(match self.core.initial_context(vp, vtl) {
                    Some(ctx) => {
                        let ctx = *ctx;
                        api::encode_context(&ctx, mrs)
                    }
                    None => MessageInfo::new(api::REPLY_NOT_HANDLED, 0),
                })
            }
            label::REGISTER_CONNECTION => {
                let status = match Registration::decode(msg, mrs) {
                    Ok(reg) => self.register(ch, &reg),
                    Err(_) => RegisterStatus::Invalid,
                };
                Ok(MessageInfo::new(status as u64, 0))
            }
            label::UNREGISTER_CONNECTION => {
                let status = match api::decode_unregister(msg, mrs) {
                    Ok((conn, vtl)) => match self.core.unregister_route(vtl, conn, ch.index()) {
                        Ok(_) => RegisterStatus::Ok,
                        Err(_) => RegisterStatus::NotFound,
                    },
                    Err(_) => RegisterStatus::Invalid,
                };
                Ok(MessageInfo::new(status as u64, 0))
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
