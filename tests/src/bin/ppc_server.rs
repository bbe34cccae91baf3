//! Serves the protected calls in `system_tests::label` on any channel.
#![allow(unsafe_code)]

use ipc::{ChannelSet, Handler, HandlerError, HandlerReply, Kernel, MessageInfo, PpCall, Region};
use system_tests::{label, MARKER_OFFSET};

struct Server {
    rw: Option<Region<'static>>,
}

impl Handler for Server {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }

    fn protected(&mut self, _: &mut dyn Kernel, call: PpCall<'_>) -> HandlerReply {
        let PpCall { ch, msg, mrs } = call;
        match msg.label() {
            label::ADD if msg.count() == 2 => {
                mrs.set(0, mrs.get(0).wrapping_add(mrs.get(1)));
                Ok(MessageInfo::new(0, 1))
            }
            label::WRITE_MARKER if msg.count() == 1 => {
                let rw = self.rw.ok_or(HandlerError::UnexpectedCall(ch))?;
                rw.write(MARKER_OFFSET, &mrs.get(0))?;
                Ok(MessageInfo::new(0, 0))
            }
            label::CRASH => {
                let wild = 0x10 as *mut u64;
                // SAFETY: none; this write is meant to fault (page 0 is never mapped),
                // to show a callee's death reaches the caller as PeerGone.
                unsafe { wild.write_volatile(1) };
                Ok(MessageInfo::new(0, 0))
            }
            other => Err(HandlerError::BadRequest {
                channel: ch,
                label: other,
            }),
        }
    }
}

fn main() {
    hostsim::run(|init, _| {
        Ok(Server {
            rw: init.region("rw_region").ok(),
        })
    })
}
