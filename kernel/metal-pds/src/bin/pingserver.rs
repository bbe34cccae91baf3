//! A passive PD serving protected calls: increments registers, reads the shared
//! page (mapped read-only here), or fails on request.
#![no_std]
#![no_main]

use ipc::{Handler, HandlerError, HandlerReply, Kernel, MessageInfo, PpCall, Region};
use metal_pds::*;

struct Ping {
    shared: Region<'static>,
}

impl Handler for Ping {
    fn protected(&mut self, _: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        let PpCall { ch, msg, mrs } = call;
        if ch != PINGSERVER_CALLER {
            return Err(HandlerError::UnexpectedCall(ch));
        }
        match msg.label() {
            LABEL_INCREMENT => {
                for i in 0..msg.count() {
                    mrs.set(i, mrs.get(i) + 1);
                }
                Ok(MessageInfo::new(LABEL_INCREMENT + 1, msg.count()))
            }
            LABEL_READ_SHARED => {
                mrs.set(0, self.shared.read::<u64>(0)?);
                Ok(MessageInfo::new(0, 1))
            }
            label => Err(HandlerError::BadRequest { channel: ch, label }),
        }
    }
}

pd_rt::entry!(|init, _kernel| Ok(Ping {
    shared: init.region(SHARED)?,
}));
