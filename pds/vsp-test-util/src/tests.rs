use hvcall_api::RegisterStatus;
use hvdef::Vtl;
use ipc::{
    Channel, Handler, HandlerReply, IpcError, Kernel, MessageInfo, MessageRegisters, PpCall,
};
use synic_api::{Instance, Request as SynicRequest, SintTarget};
use vsp_api::{Confidentiality, VspOffer};

use super::*;

const HVCALL: Channel = Channel::new(1);
const SYNIC: Channel = Channel::new(2);

fn registration(connection_id: u32) -> (MessageInfo, MessageRegisters) {
    let mut mrs = MessageRegisters::new();
    let reg = Registration {
        connection_id,
        vtl: Vtl::VTL0,
        kind: hvcall_api::RouteKind::Service,
    };
    (reg.encode(&mut mrs), mrs)
}

#[test]
fn peers_record_registrations_and_signals_and_refuse_strangers() {
    let mut peers = Peers::new(HVCALL, SYNIC);
    let (msg, mut mrs) = registration(0x2005);
    let ok = peers.pp_call(PpCall::new(HVCALL, msg, &mut mrs)).unwrap();
    assert_eq!(ok.label(), RegisterStatus::Ok as u64);
    peers.refuse_registration = true;
    let (msg, mut mrs) = registration(0x2006);
    let refused = peers.pp_call(PpCall::new(HVCALL, msg, &mut mrs)).unwrap();
    assert_eq!(refused.label(), RegisterStatus::NotPermitted as u64);
    assert_eq!(peers.registered, [0x2005]);

    let target = SintTarget {
        vp: 0,
        instance: Instance::PARAVISOR,
        sint: 2,
    };
    let mut mrs = MessageRegisters::new();
    let msg = SynicRequest::SignalEvent { target, flag: 5 }.encode(&mut mrs);
    let signalled = peers.pp_call(PpCall::new(SYNIC, msg, &mut mrs)).unwrap();
    assert_eq!((signalled.count(), mrs.get(0), mrs.get(1)), (2, 0, 1));
    assert_eq!(peers.signals, [(target, 5)]);

    let other = MessageInfo::new(0x7777, 0);
    assert_eq!(
        peers.pp_call(PpCall::new(HVCALL, other, &mut mrs)),
        Err(IpcError::CallFailed(HVCALL))
    );
    assert_eq!(
        peers.pp_call(PpCall::new(SYNIC, other, &mut mrs)),
        Err(IpcError::CallFailed(SYNIC))
    );
    assert_eq!(
        peers.pp_call(PpCall::new(Channel::new(9), other, &mut mrs)),
        Err(IpcError::NotGranted(Channel::new(9)))
    );
}

/// A PD that offers nothing and answers every other call with its label and
/// register count as the status, and the window's first word after it.
struct Echo {
    window: Region<'static>,
}

impl Handler for Echo {
    fn protected(&mut self, _: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        let PpCall { msg, mrs, .. } = call;
        if msg.label() == vsp_api::label::GET_OFFER {
            return Ok(MessageInfo::new(vsp_api::REPLY_NONE, 0));
        }
        mrs.set(0, msg.label() << 8 | msg.count() as u64);
        mrs.set(1, self.window.read::<u64>(0).unwrap());
        Ok(MessageInfo::new(vsp_api::REPLY_OK, 2))
    }
}

#[test]
fn the_server_maps_through_the_window_and_reads_statuses() {
    let window = ipc::testing::leaked_region(PAGE_SIZE);
    let mut server = VmbusServer {
        pd: Echo { window },
        kernel: RoutingKernel::new(Peers::new(HVCALL, SYNIC)),
        vmbus: Channel::new(0),
        window,
    };
    let status = server.map(Relid(3), 9, &[4, 5], Confidentiality::NONE);
    assert_eq!(u64::from(status) >> 8, vsp_api::label::MAP_GPADL);
    let (_, mrs) = server.call(|mrs| {
        mrs.set(0, 0);
        MessageInfo::new(0x42, 1)
    });
    assert_eq!(mrs.get(1), gpa::range_header(2 * PAGE_SIZE as u32, 0));
    assert_eq!(server.offer(0), None::<VspOffer>);
}
