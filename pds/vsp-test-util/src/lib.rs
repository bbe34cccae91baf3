//! What a VSP PD's tests play around it: vmbus-server calling in on its channel
//! ([`VmbusServer`]: offers, GPADL maps through the window, opens) and hvcall-pd
//! and synic-pd answering the PD's own calls ([`Peers`], which records them).
//! One rig, so every VSP's tests drive the device layer the same way.

use hvcall_api::{self as hvapi, RegisterStatus, Registration};
use ipc::testing::{Route, RoutingKernel};
use ipc::{Channel, Handler, IpcError, MessageInfo, MessageRegisters, PpCall, PpReply, Region};
use synic_api::{Request as SynicRequest, SintTarget};
use vmbus_protocol::gpa;
use vmbus_protocol::{GpadlId, Relid};
use vmbus_ring::PAGE_SIZE;
use vsp_api::{self as vsp, Confidentiality, MapGpadl, VspOffer};

/// hvcall-pd and synic-pd as far as a VSP calls them: connection registrations
/// and event signals succeed and are recorded; registrations are refused while
/// `refuse_registration` is set.
#[derive(Debug)]
pub struct Peers {
    pub hvcall: Channel,
    pub synic: Channel,
    pub registered: Vec<u32>,
    pub unregistered: Vec<u32>,
    pub signals: Vec<(SintTarget, u32)>,
    pub refuse_registration: bool,
}

impl Peers {
    pub fn new(hvcall: Channel, synic: Channel) -> Self {
        Self {
            hvcall,
            synic,
            registered: Vec::new(),
            unregistered: Vec::new(),
            signals: Vec::new(),
            refuse_registration: false,
        }
    }

    fn hvcall(&mut self, msg: MessageInfo, mrs: &MessageRegisters) -> Result<u64, IpcError> {
        let failed = |_| IpcError::CallFailed(self.hvcall);
        match msg.label() {
            hvapi::label::REGISTER_CONNECTION => {
                let reg = Registration::decode(msg, mrs).map_err(failed)?;
                if self.refuse_registration {
                    return Ok(RegisterStatus::NotPermitted as u64);
                }
                self.registered.push(reg.connection_id);
            }
            hvapi::label::UNREGISTER_CONNECTION => {
                let (conn, _) = hvapi::decode_unregister(msg, mrs).map_err(failed)?;
                self.unregistered.push(conn);
            }
            _ => return Err(IpcError::CallFailed(self.hvcall)),
        }
        Ok(RegisterStatus::Ok as u64)
    }
}

impl Route for Peers {
    fn pp_call(&mut self, call: PpCall<'_>) -> PpReply {
        let PpCall { ch, msg, mrs } = call;
        if ch == self.hvcall {
            return self
                .hvcall(msg, mrs)
                .map(|status| MessageInfo::new(status, 0));
        }
        if ch != self.synic {
            return Err(IpcError::NotGranted(ch));
        }
        match SynicRequest::decode(msg, mrs) {
            Ok(SynicRequest::SignalEvent { target, flag }) => {
                self.signals.push((target, flag));
                mrs.set(0, 0); // HV_STATUS_SUCCESS
                mrs.set(1, 1); // newly set
                Ok(MessageInfo::new(0, 2))
            }
            _ => Err(IpcError::CallFailed(ch)),
        }
    }
}

/// vmbus-server's side of one VSP PD: its calls come in on `vmbus`, the GPADL
/// lists it writes go to `window` (its read-write view of what the PD reads).
#[derive(Debug)]
pub struct VmbusServer<H> {
    pub pd: H,
    pub kernel: RoutingKernel<Peers>,
    pub vmbus: Channel,
    pub window: Region<'static>,
}

impl<H: Handler> VmbusServer<H> {
    /// One call to the PD; its reply and registers. The PD answers every call.
    pub fn call(
        &mut self,
        encode: impl FnOnce(&mut MessageRegisters) -> MessageInfo,
    ) -> (MessageInfo, MessageRegisters) {
        let mut mrs = MessageRegisters::new();
        let msg = encode(&mut mrs);
        let reply = self
            .pd
            .protected(&mut self.kernel, PpCall::new(self.vmbus, msg, &mut mrs));
        (reply.expect("a VSP call is answered"), mrs)
    }

    /// A call answered with a status reply; the VMBus status in it.
    pub fn status(&mut self, encode: impl FnOnce(&mut MessageRegisters) -> MessageInfo) -> u32 {
        let (reply, mrs) = self.call(encode);
        assert_eq!(reply.label(), vsp::REPLY_OK, "a status reply");
        mrs.get(0) as u32
    }

    /// The offer in `slot`, if the PD makes one.
    pub fn offer(&mut self, slot: usize) -> Option<VspOffer> {
        let (reply, mrs) = self.call(|mrs| vsp::GetOffer { slot }.encode(mrs));
        VspOffer::decode(reply, &mrs).expect("an offer reply")
    }

    /// MAP_GPADL of one range over `pfns`; the status.
    pub fn map(
        &mut self,
        relid: Relid,
        gpadl: u32,
        pfns: &[u64],
        confidentiality: Confidentiality,
    ) -> u32 {
        let header = gpa::range_header((pfns.len() * PAGE_SIZE) as u32, 0);
        let list = core::iter::once(header).chain(pfns.iter().copied());
        let words = vsp::write_window(&self.window, list).expect("the list fits the window");
        let map = MapGpadl {
            relid,
            gpadl: GpadlId(gpadl),
            range_count: 1,
            words,
            confidentiality,
        };
        self.status(|mrs| map.encode(mrs))
    }
}

#[cfg(test)]
mod tests;
