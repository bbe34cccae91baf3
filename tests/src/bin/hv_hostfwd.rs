//! The host end of hvcall-pd's relay in the hvcall/synic system. It can map only the
//! shared (host-visible) part of guest memory, like the real host; it prints each
//! relayed call and the payload it finds at the forwarded GPA, and answers SUCCESS.
//!
//! Channel 0 = hvcall-pd (serves its FORWARD calls).

use hvcall_pd::api;
use hvdef::hypercall::PostMessageInput;
use hvdef::{HvStatus, HypercallCode, HypercallResult};
use ipc::{Handler, HandlerReply, Kernel, MessageInfo, PpCall, Region};
use system_tests::hv::SHARED_GPA;

struct HostFwd {
    shared: Region<'static>,
}

impl Handler for HostFwd {
    fn protected(&mut self, _: &mut dyn Kernel, pp: PpCall<'_>) -> HandlerReply {
        let call = api::decode_forward(pp.msg, pp.mrs).map_err(|_| pp.bad_request())?;
        let status = if call.control.code() == HypercallCode::POST_MESSAGE && !call.control.fast() {
            // The host reads the guest's buffer itself; a private GPA would simply
            // not be in its mapping.
            match call
                .input
                .checked_sub(SHARED_GPA)
                .and_then(|off| self.shared.read::<PostMessageInput>(off as usize).ok())
            {
                Some(p) => {
                    let len = (p.payload_size as usize).min(240);
                    println!(
                        "hostfwd: post conn={:#x} gpa={:#x} payload={:?}",
                        p.connection_id,
                        call.input,
                        String::from_utf8_lossy(&p.payload[..len])
                    );
                    HvStatus::SUCCESS
                }
                None => {
                    println!("hostfwd: post with an unreadable gpa {:#x}", call.input);
                    HvStatus::INVALID_ALIGNMENT
                }
            }
        } else {
            println!(
                "hostfwd: {:?} fast={} input={:#x}",
                call.control.code(),
                call.control.fast(),
                call.input
            );
            HvStatus::SUCCESS
        };
        pp.mrs.set(0, HypercallResult::from(status).0);
        Ok(MessageInfo::new(0, 1))
    }
}

fn main() {
    hostsim::run(|init, _| {
        Ok(HostFwd {
            shared: init.region("guest_shared")?,
        })
    })
}
