//! A stand-in for vmbus-server in the hvcall/synic system: at start it registers the
//! connections of `system_tests::hv` with hvcall-pd (SynIC message and event ports,
//! one service connection to itself, one host relay), tells the guest it is ready,
//! then prints every message its service queue delivers.
//!
//! Channels: 0 = hvcall-pd as its service 4, the slot for a peer that is no VSP (notifications
//! in), 1 = the guest (notify), 2 = hvcall-pd's port-manager channel (SynIC port and
//! host routes). hvcall-pd grants each right on its own channel id, so the two
//! roles are two channels.

use hvcall_pd::api::{self, RegisterStatus, Registration, RouteKind};
use hvcall_pd::pd::SERVICE_QUEUE_CAPACITY;
use hvcall_pd::ServiceMessage;
use hvdef::Vtl;
use ipc::{Channel, ChannelSet, Consumer, Handler, HandlerError, InitError, Kernel};
use synic_pd::{Instance, SintTarget};
use system_tests::hv::*;

const HVCALL: Channel = Channel::new(0);
const GUEST: Channel = Channel::new(1);
const PORTS: Channel = Channel::new(2);

struct Portd {
    queue: Consumer<'static, ServiceMessage>,
    received: u64,
}

impl Handler for Portd {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        if !channels.contains(HVCALL) {
            return Err(HandlerError::UnexpectedNotification(GUEST));
        }
        loop {
            while let Some(m) = self
                .queue
                .dequeue()
                .map_err(|_| HandlerError::PeerMisbehaved(HVCALL))?
            {
                self.received += 1;
                println!(
                    "portd: service message conn={:#x} type={} vtl={} payload={:?}",
                    m.connection_id,
                    m.message_type,
                    m.vtl,
                    String::from_utf8_lossy(m.payload())
                );
            }
            // Sleep only once hvcall-pd has promised to wake us (sDDF re-check).
            if self
                .queue
                .prepare_to_sleep()
                .map_err(|_| HandlerError::PeerMisbehaved(HVCALL))?
            {
                if self.received > 0 {
                    // Tell the guest its service message arrived.
                    GUEST.notify(kernel)?;
                }
                return Ok(());
            }
        }
    }
}

fn register(kernel: &mut dyn Kernel, connection_id: u32, kind: RouteKind) -> Result<(), InitError> {
    let reg = Registration {
        connection_id,
        vtl: Vtl::VTL0,
        kind,
    };
    let ch = if kind == RouteKind::Service {
        HVCALL
    } else {
        PORTS
    };
    match api::register_connection(kernel, ch, &reg) {
        Ok(Some(RegisterStatus::Ok)) => Ok(()),
        other => {
            eprintln!("portd: registering {connection_id:#x} failed: {other:?}");
            Err(InitError::MissingChannel(ch))
        }
    }
}

fn main() {
    hostsim::run(|init, kernel| {
        let region = init.region("service_queue")?;
        let mut queue = Consumer::new(region, SERVICE_QUEUE_CAPACITY).map_err(|_| {
            InitError::RegionTooSmall {
                name: "service_queue",
                needed: 0,
                granted: region.len(),
            }
        })?;
        let sint2 = |instance| SintTarget {
            vp: 0,
            instance,
            sint: 2,
        };
        register(
            kernel,
            CONN_PV_MESSAGE,
            RouteKind::SynicMessage {
                target: sint2(Instance::PARAVISOR),
                port_id: CONN_PV_MESSAGE,
            },
        )?;
        register(
            kernel,
            CONN_PV_EVENT,
            RouteKind::SynicEvent {
                target: sint2(Instance::PARAVISOR),
                flag_base: 0,
                flag_count: 2048,
            },
        )?;
        register(
            kernel,
            CONN_HV_MESSAGE,
            RouteKind::SynicMessage {
                target: sint2(Instance::HYPERVISOR),
                port_id: CONN_HV_MESSAGE,
            },
        )?;
        register(kernel, CONN_SERVICE, RouteKind::Service)?;
        register(kernel, CONN_HOST, RouteKind::Host)?;
        let _ = queue.prepare_to_sleep();
        GUEST
            .notify(kernel)
            .map_err(|_| InitError::MissingChannel(GUEST))?;
        Ok(Portd { queue, received: 0 })
    })
}
