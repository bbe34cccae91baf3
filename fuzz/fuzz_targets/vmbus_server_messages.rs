//! Channel messages (and VSP actions) into the vmbus-server state machine. The input
//! is a script: each step is an opcode byte and its operands, so the fuzzer can reach
//! deep states (connected, GPADLs mapped, channels open) and then mutate from there.
//! After every step the server's invariants must hold and the fake environment's view
//! (mapped GPADLs, open channels) must match the server's.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use vmbus_server::protocol::{parse, GpadlId, Guid, Negotiated, OutgoingMessage, Relid, Version};
use vmbus_server::vsp;
use vmbus_server::{
    ChannelState, Config, ConnectionInfo, GpadlMapping, Level, MessageTarget, OfferParams,
    OfferSource, OpenRequest, PfnRange, RelidRequest, Server, ServerEnv, Status,
};

#[derive(Default)]
struct Env {
    busy: bool,
    mapped: BTreeMap<GpadlId, Relid>,
    open: BTreeSet<Relid>,
    fail: bool,
}

impl ServerEnv for Env {
    fn post_message(&mut self, target: MessageTarget, message: &OutgoingMessage) -> bool {
        assert!(target.sint < 16);
        let any = Negotiated {
            version: Version::V6_0,
            features: vmbus_server::protocol::FeatureFlags(u32::MAX),
        };
        assert!(
            parse(message.as_bytes(), Some(any)).is_ok(),
            "server sent garbage"
        );
        !self.busy
    }

    fn map_gpadl(&mut self, m: &GpadlMapping<'_>) -> Result<(), Status> {
        assert!(m.ranges.page_count() > 0);
        if self.fail {
            return Err(Status(0xC000_0001));
        }
        assert!(self.mapped.insert(m.gpadl, m.relid).is_none());
        Ok(())
    }

    fn unmap_gpadl(&mut self, relid: Relid, gpadl: GpadlId) {
        assert_eq!(self.mapped.remove(&gpadl), Some(relid));
    }

    fn open_channel(&mut self, request: &OpenRequest<'_>) -> Result<(), Status> {
        if self.fail {
            return Err(Status(0xC000_0001));
        }
        assert!(self.open.insert(request.relid));
        Ok(())
    }

    fn close_channel(&mut self, relid: Relid) {
        assert!(self.open.remove(&relid));
    }

    fn modify_channel(&mut self, relid: Relid, _: u32) -> Result<(), Status> {
        assert!(self.open.contains(&relid));
        Ok(())
    }

    fn connection_changed(&mut self, _: Option<&ConnectionInfo>) {}

    fn log(&mut self, _: Level, _: core::fmt::Arguments<'_>) {}
}

fn check(server: &Server, env: &Env) {
    server.check_invariants().expect("server invariants");
    let mapped: BTreeMap<GpadlId, Relid> = server.gpadls().collect();
    assert_eq!(mapped, env.mapped);
    for relid in &env.open {
        assert!(matches!(
            server.channel_state(*relid),
            Some(ChannelState::Open { .. })
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = Config::new(
        4,
        vec![PfnRange {
            start: 0x100,
            count: 0x1000,
        }],
    );
    config.confidential = data.first().is_some_and(|b| b & 1 != 0);
    config.limits.max_gpadls = 64;
    config.limits.max_gpadl_pages = 4096;
    config.limits.max_pending_messages = 32;
    let mut server = Server::new(config).expect("config");
    let mut env = Env::default();
    let mut rest = data.get(1..).unwrap_or(&[]);
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let n = n.min(rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        (n > 0).then(|| head.to_vec())
    };
    while let Some(op) = take(1).map(|b| b[0]) {
        match op & 7 {
            0..=3 => {
                let len = take(1).map_or(0, |b| b[0] as usize);
                let bytes = take(len).unwrap_or_default();
                let conn = match op >> 3 & 3 {
                    0 | 1 => 4,
                    2 => 1,
                    _ => u32::from(op >> 5),
                };
                let _ = server.handle_message(&mut env, conn, &bytes);
            }
            4 => {
                let arg = take(1).map_or(0, |b| b[0]);
                let mut p = OfferParams::device(
                    Guid::ZERO,
                    Guid::from_fields(u32::from(arg & 3), 0, 0, [0; 8]),
                );
                if arg & 4 != 0 {
                    p.source = OfferSource::Relay;
                }
                if arg & 8 != 0 {
                    p.relid = RelidRequest::Fixed(Relid(u32::from(arg >> 4)));
                }
                let _ = server.offer(&mut env, p);
            }
            5 => {
                let relid = take(1).map_or(0, |b| b[0] & 7);
                let _ = server.revoke(&mut env, Relid(u32::from(relid)));
            }
            6 => {
                env.busy = !env.busy;
                server.flush(&mut env);
            }
            _ => match op >> 3 & 3 {
                0 => env.fail = !env.fail,
                1 => server.reset(&mut env),
                _ => server.flush(&mut env),
            },
        }
        check(&server, &env);
    }

    // The same bytes as a VSP-contract call or reply, under every label.
    let mut mrs = ipc::MessageRegisters::new();
    for (i, chunk) in data.chunks(8).take(64).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        mrs.set(i, u64::from_le_bytes(w));
    }
    let count = data.len() % 70;
    for label in
        (vsp::label::GET_OFFER..=vsp::label::MODIFY).chain([vsp::REPLY_OK, vsp::REPLY_NONE])
    {
        let msg = ipc::MessageInfo::new(label, count);
        if let Ok(req) = vsp::VspRequest::decode(msg, &mrs) {
            let mut again = ipc::MessageRegisters::new();
            let info = req.encode(&mut again);
            assert_eq!(vsp::VspRequest::decode(info, &again), Ok(req));
        }
        if let Ok(Some(offer)) = vsp::VspOffer::decode(msg, &mrs) {
            let mut again = ipc::MessageRegisters::new();
            let info = offer.encode(&mut again);
            assert_eq!(vsp::VspOffer::decode(info, &again), Ok(Some(offer)));
        }
        let _ = vsp::StatusReply::decode(msg, &mrs);
    }
});
