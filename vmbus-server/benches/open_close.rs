//! Channel open/close rate through the server core, against the cost of just parsing
//! the same messages, measured in the same run.
//!
//! One "cycle" is what a guest driver does to bring a channel up and down: GPADL_HEADER
//! for an 8-page ring (answered with GPADL_CREATED), OPENCHANNEL (answered with
//! OPENCHANNEL_RESULT), CLOSECHANNEL, GPADL_TEARDOWN (answered with GPADL_TORNDOWN).
//! The environment does nothing, so this is the server's own cost per cycle.
//!
//! `QUICK=1` runs a short version (CI smoke).

use std::hint::black_box;
use std::time::Instant;

use vmbus_server::protocol::gpa;
use vmbus_server::protocol::messages::*;
use vmbus_server::protocol::{
    parse, FeatureFlags, GpadlId, Guid, Negotiated, OutgoingMessage, Relid, Version,
};
use vmbus_server::{
    Config, ConnectionInfo, GpadlMapping, Level, MessageTarget, OfferParams, OpenRequest, PfnRange,
    Server, ServerEnv, Status,
};

struct NullEnv {
    posted: u64,
}

impl ServerEnv for NullEnv {
    fn post_message(&mut self, _: MessageTarget, m: &OutgoingMessage) -> bool {
        self.posted += m.as_bytes().len() as u64;
        true
    }
    fn map_gpadl(&mut self, m: &GpadlMapping<'_>) -> Result<(), Status> {
        black_box(m.ranges.page_count());
        Ok(())
    }
    fn unmap_gpadl(&mut self, _: Relid, _: GpadlId) {}
    fn open_channel(&mut self, _: &OpenRequest<'_>) -> Result<(), Status> {
        Ok(())
    }
    fn close_channel(&mut self, _: Relid) {}
    fn modify_channel(&mut self, _: Relid, _: u32) -> Result<(), Status> {
        Ok(())
    }
    fn connection_changed(&mut self, _: Option<&ConnectionInfo>) {}
    fn log(&mut self, _: Level, _: core::fmt::Arguments<'_>) {}
}

fn cycle_messages(relid: Relid) -> Vec<Vec<u8>> {
    let gpadl = GpadlId(0xe1e10);
    let mut words = vec![gpa::range_header(8 * 4096, 0)];
    words.extend(0x1000..0x1008u64);
    let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let header = GpadlHeader {
        child_relid: relid,
        gpadl,
        range_buf_len: data.len() as u16,
        range_count: 1,
    };
    let open = OpenChannel {
        child_relid: relid,
        open_id: 1,
        ring_buffer_gpadl: gpadl,
        target_vp: 0,
        downstream_ring_buffer_page_offset: 4,
        user_data: [0; 120],
    };
    vec![
        OutgoingMessage::with_tail(&header, &data)
            .expect("fits")
            .as_bytes()
            .to_vec(),
        OutgoingMessage::new(&open).as_bytes().to_vec(),
        OutgoingMessage::new(&CloseChannel { child_relid: relid })
            .as_bytes()
            .to_vec(),
        OutgoingMessage::new(&GpadlTeardown {
            child_relid: relid,
            gpadl,
        })
        .as_bytes()
        .to_vec(),
    ]
}

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let cycles: u32 = if quick { 20_000 } else { 500_000 };

    let mut config = Config::new(
        2,
        vec![PfnRange {
            start: 0x100,
            count: 0x10000,
        }],
    );
    config.confidential = true;
    let mut server = Server::new(config).expect("config");
    let mut env = NullEnv { posted: 0 };
    let relid = server
        .offer(&mut env, OfferParams::device(Guid::ZERO, Guid::ZERO))
        .expect("offer");
    let contact = InitiateContact {
        version_requested: Version::V6_0.0,
        target_vcpu: 0,
        interrupt_page_or_target_info: InitiateContact::default_target_info(0x10),
        monitor_page1: 0,
        monitor_page2: 0,
    };
    server
        .handle_message(&mut env, 4, OutgoingMessage::new(&contact).as_bytes())
        .expect("contact");
    server
        .handle_message(
            &mut env,
            4,
            OutgoingMessage::new(&RequestOffers {}).as_bytes(),
        )
        .expect("offers");
    let msgs = cycle_messages(relid);

    // Baseline: parsing the cycle's messages, nothing else.
    let negotiated = Some(Negotiated {
        version: Version::V6_0,
        features: FeatureFlags::CONFIDENTIAL_CHANNELS,
    });
    let start = Instant::now();
    for _ in 0..cycles {
        for m in &msgs {
            black_box(parse(black_box(m), negotiated).expect("valid"));
        }
    }
    let parse_ns = start.elapsed().as_nanos() as f64 / f64::from(cycles);

    let start = Instant::now();
    for _ in 0..cycles {
        for m in &msgs {
            server
                .handle_message(&mut env, 4, black_box(m))
                .expect("accepted");
        }
    }
    let cycle_ns = start.elapsed().as_nanos() as f64 / f64::from(cycles);
    assert_eq!(server.gpadl_count(), 0);
    black_box(env.posted);

    println!("vmbus-server open/close ({cycles} cycles: GPADL create, open, close, teardown)");
    println!("  parse only (baseline): {parse_ns:8.1} ns/cycle");
    println!(
        "  server handling:       {cycle_ns:8.1} ns/cycle = {:.0} open/close cycles/s",
        1e9 / cycle_ns
    );
    println!("  ratio server/parse:    {:8.2}x", cycle_ns / parse_ns);
}
