//! Protocol negotiation and the packet-level state machine, per version and out
//! of order, as Linux's storvsc drives it.

use std::sync::{Arc, Mutex};

use storvsp::harness::{Harness, MemBackend, Srb};
use storvsp::state_machine::{Completion, SubChannelError, SubChannels};
use storvsp::ProtocolState;
use storvsp_protocol::{
    ChannelProperties, NtStatus, Operation, ProtocolVersion, SrbStatus, VersionPayload,
    VSTOR_PACKET_SIZE,
};
use vmbus_ring::{OutgoingKind, OutgoingPacket};
use zerocopy::{FromBytes, IntoBytes};

fn harness() -> Harness {
    Harness::new(Box::new(MemBackend::new(64)), 16)
}

fn version_body(v: ProtocolVersion) -> Vec<u8> {
    VersionPayload {
        major_minor: v.0,
        revision: 0,
    }
    .as_bytes()
    .to_vec()
}

#[test]
fn linux_negotiates_the_newest_version() {
    let mut h = harness();
    h.negotiate();
    assert_eq!(
        h.vsp.state(),
        ProtocolState::Ready {
            version: ProtocolVersion::WIN10,
            subchannels: 0
        }
    );
}

#[test]
fn each_supported_version_is_accepted_alone() {
    for v in [
        ProtocolVersion::WIN10,
        ProtocolVersion::WIN8_1,
        ProtocolVersion::WIN8,
    ] {
        let mut h = harness();
        assert_eq!(h.negotiate_with(&[v]), Some(v), "{v:?}");
        assert!(matches!(h.vsp.state(), ProtocolState::Ready { version, .. } if version == v));
        // And I/O works at that version.
        let c = h.srb(&Srb::none(&[0; 6]));
        assert_eq!(c.srb().scsi_status, 0, "{v:?}");
    }
}

#[test]
fn newer_unknown_versions_fall_back() {
    // A kernel that knows a newer "10.0" first tries it, then 6.2.
    let mut h = harness();
    let offered = [
        ProtocolVersion::new(10, 0),
        ProtocolVersion::WIN10,
        ProtocolVersion::WIN8_1,
    ];
    assert_eq!(h.negotiate_with(&offered), Some(ProtocolVersion::WIN10));
}

#[test]
fn pre_win8_versions_are_refused_and_echoed() {
    let mut h = harness();
    h.control(Operation::BEGIN_INITIALIZATION, &[]);
    for v in [
        ProtocolVersion::WIN7,
        ProtocolVersion::WIN6,
        ProtocolVersion(0),
    ] {
        let c = h.control(Operation::QUERY_PROTOCOL_VERSION, &version_body(v));
        assert_eq!(c.header().operation, Operation::COMPLETE_IO);
        assert_eq!(c.header().status, NtStatus::REVISION_MISMATCH);
        let (echo, _) = VersionPayload::read_from_prefix(&c.bytes()[12..]).unwrap();
        assert_eq!(echo.major_minor, v.0);
        assert_eq!(h.vsp.state(), ProtocolState::QueryVersion);
    }
    // A good version still works afterwards.
    let c = h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN8),
    );
    assert_eq!(c.header().status, NtStatus::SUCCESS);
}

#[test]
fn properties_report_transfer_size_and_channels() {
    #[derive(Debug)]
    struct Fake(Arc<Mutex<Vec<u16>>>);
    impl SubChannels for Fake {
        fn max_subchannels(&self) -> u16 {
            3
        }
        fn enable(&mut self, count: u16) -> Result<(), SubChannelError> {
            self.0.lock().unwrap().push(count);
            Ok(())
        }
    }
    let enabled = Arc::new(Mutex::new(Vec::new()));
    let mut h = harness();
    h.subchannels = Box::new(Fake(enabled.clone()));
    h.control(Operation::BEGIN_INITIALIZATION, &[]);
    h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN10),
    );
    let c = h.control(Operation::QUERY_PROPERTIES, &[]);
    assert_eq!(c.header().status, NtStatus::SUCCESS);
    let (p, _) = ChannelProperties::read_from_prefix(&c.bytes()[12..]).unwrap();
    assert_eq!(p.max_channel_count, 3);
    assert_eq!(p.flags & 1, 1, "multi-channel");
    assert_eq!(p.max_transfer_bytes, 512 * 1024);
    // Sub-channels before ready (not what Linux does, but allowed once).
    let sc_packet = 2u16.to_le_bytes();
    assert_eq!(
        h.control(Operation::CREATE_SUB_CHANNELS, &sc_packet)
            .header()
            .status,
        NtStatus::SUCCESS
    );
    assert_eq!(
        h.control(Operation::CREATE_SUB_CHANNELS, &sc_packet)
            .header()
            .status,
        NtStatus::INVALID_DEVICE_STATE
    );
    h.control(Operation::END_INITIALIZATION, &[]);
    assert_eq!(
        h.vsp.state(),
        ProtocolState::Ready {
            version: ProtocolVersion::WIN10,
            subchannels: 2
        }
    );
    // After END_INITIALIZATION, as Linux sends it; too many is refused.
    let c = h.control(Operation::CREATE_SUB_CHANNELS, &3u16.to_le_bytes());
    assert_eq!(c.header().status, NtStatus::SUCCESS);
    let c = h.control(Operation::CREATE_SUB_CHANNELS, &4u16.to_le_bytes());
    assert_eq!(c.header().status, NtStatus::INVALID_PARAMETER);
    assert_eq!(*enabled.lock().unwrap(), vec![2, 3]);
    // Sub-channels carry I/O, but not control operations.
    let c = h.srb_on(2, &Srb::none(&[0; 6]));
    assert_eq!(c.srb().scsi_status, 0);
    let c = h.control_on(2, Operation::CREATE_SUB_CHANNELS, &1u16.to_le_bytes());
    assert_eq!(c.header().status, NtStatus::INVALID_DEVICE_STATE);
}

#[test]
fn no_multichannel_without_subchannels() {
    let mut h = harness();
    h.control(Operation::BEGIN_INITIALIZATION, &[]);
    h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN8),
    );
    let c = h.control(Operation::QUERY_PROPERTIES, &[]);
    let (p, _) = ChannelProperties::read_from_prefix(&c.bytes()[12..]).unwrap();
    assert_eq!((p.max_channel_count, p.flags), (0, 0));
    let c = h.control(Operation::CREATE_SUB_CHANNELS, &1u16.to_le_bytes());
    assert_eq!(c.header().status, NtStatus::INVALID_PARAMETER);
}

#[test]
fn out_of_order_operations_change_nothing() {
    let mut h = harness();
    let bad = NtStatus::INVALID_DEVICE_STATE;
    // Before BEGIN_INITIALIZATION.
    for op in [
        Operation::QUERY_PROTOCOL_VERSION,
        Operation::QUERY_PROPERTIES,
        Operation::END_INITIALIZATION,
        Operation::RESET_BUS,
    ] {
        assert_eq!(
            h.control(op, &version_body(ProtocolVersion::WIN10))
                .header()
                .status,
            bad
        );
        assert_eq!(h.vsp.state(), ProtocolState::Begin);
    }
    let c = h.srb(&Srb::none(&[0; 6]));
    assert_eq!(c.header().status, bad);
    // BEGIN on a sub-channel is not a negotiation.
    assert_eq!(
        h.control_on(1, Operation::BEGIN_INITIALIZATION, &[])
            .header()
            .status,
        bad
    );
    h.control(Operation::BEGIN_INITIALIZATION, &[]);
    assert_eq!(
        h.control(Operation::BEGIN_INITIALIZATION, &[])
            .header()
            .status,
        bad
    );
    assert_eq!(
        h.control(Operation::QUERY_PROPERTIES, &[]).header().status,
        bad
    );
    h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN10),
    );
    assert_eq!(
        h.control(Operation::END_INITIALIZATION, &[])
            .header()
            .status,
        bad
    );
    h.control(Operation::QUERY_PROPERTIES, &[]);
    assert_eq!(h.srb(&Srb::none(&[0; 6])).header().status, bad);
    h.control(Operation::END_INITIALIZATION, &[]);
    // Ready: host-to-guest operations and unknown ones are refused.
    assert_eq!(
        h.control(Operation::ENUMERATE_BUS, &[]).header().status,
        bad
    );
    assert_eq!(
        h.control(Operation::REMOVE_DEVICE, &[]).header().status,
        bad
    );
    assert_eq!(
        h.control(Operation(99), &[]).header().status,
        NtStatus::INVALID_DEVICE_REQUEST
    );
    for op in [
        Operation::RESET_LUN,
        Operation::RESET_ADAPTER,
        Operation::RESET_BUS,
    ] {
        assert_eq!(h.control(op, &[]).header().status, NtStatus::SUCCESS);
    }
    assert!(matches!(h.vsp.state(), ProtocolState::Ready { .. }));
    // Closing the primary channel starts over.
    h.vsp.reset();
    assert_eq!(h.vsp.state(), ProtocolState::Begin);
    h.negotiate();
}

#[test]
fn completions_mirror_the_request_size() {
    let mut h = harness();
    // A pre-Windows-8 client sends 48-byte packets during negotiation.
    let mut p = [0u8; 48];
    p[0] = Operation::BEGIN_INITIALIZATION.0 as u8;
    p[4] = 1;
    let c = h.send_in_band(0, 5, &p).unwrap();
    assert_eq!(c.bytes().len(), 48);
    assert_eq!(c.header().status, NtStatus::SUCCESS);
    // Linux's 64-byte packets get 64-byte completions.
    let c = h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN10),
    );
    assert_eq!(c.bytes().len(), VSTOR_PACKET_SIZE);
}

/// What Linux's storvsc needs to fail a request at once rather than let it time
/// out: a COMPLETE_IO no shorter than its `vstor_packet` (shorter ones are dropped
/// as "Invalid pkt"), an error NT status, and an SRB status that is not success.
fn assert_linux_sees_a_failure(c: &Completion, id: u64) {
    assert_eq!(c.transaction_id, id);
    assert_eq!(c.bytes().len(), VSTOR_PACKET_SIZE, "packet {id}");
    assert_eq!(c.header().operation, Operation::COMPLETE_IO);
    assert_eq!(c.header().status, NtStatus::INVALID_PARAMETER);
    let srb = c.srb();
    assert_eq!(srb.srb_status, SrbStatus::ERROR.0, "packet {id}");
    assert_eq!(srb.data_transfer_length, 0);
}

/// A packet with the descriptor `kind`, asking for a completion or not.
fn packet(id: u64, kind: OutgoingKind<'_>, completion_requested: bool) -> OutgoingPacket<'_> {
    OutgoingPacket {
        transaction_id: id,
        completion_requested,
        kind,
    }
}

#[test]
fn malformed_packets_get_error_completions() {
    let mut h = harness();
    h.negotiate();
    // Shorter than a vstor header.
    let c = h.send_in_band(0, 9, &[3, 0, 0, 0]).unwrap();
    assert_linux_sees_a_failure(&c, 9);
    // An SRB too short to hold the CDB.
    let mut p = [0u8; 24];
    p[0] = 3;
    let c = h.send_in_band(0, 10, &p).unwrap();
    assert_linux_sees_a_failure(&c, 10);
    // A completion packet from the guest.
    let c = h.send_packet(0, &packet(12, OutgoingKind::Completion, true), &[0u8; 64]);
    assert_linux_sees_a_failure(&c.unwrap().unwrap(), 12);
    // No completion requested: none sent.
    let c = h.send_packet(0, &packet(13, OutgoingKind::InBand, false), &[0u8; 64]);
    assert!(c.unwrap().is_none());
    assert!(h.vsp.stats().refused >= 4);
    // The channel still works.
    assert_eq!(h.srb(&Srb::none(&[0; 6])).srb().scsi_status, 0);
}

#[test]
fn a_lying_descriptor_breaks_the_ring_not_the_protocol() {
    let mut h = harness();
    h.negotiate();
    let mut raw = [0u8; 16 + 64];
    raw[0] = 6; // in-band
    raw[2] = 2; // header of 16 bytes
    raw[4] = 0xff; // len8 past what was written
    raw[6] = 1; // completion requested
    raw[8] = 11;
    // Too short for even a descriptor, too.
    for raw in [&raw[..], &[0u8; 8][..]] {
        let before = h.broken_rings;
        assert!(h.send_raw(0, raw).is_err());
        assert_eq!(h.broken_rings, before + 1);
        assert!(h.completions(0).is_empty(), "nothing answered");
    }
    // The protocol state survives a broken ring: only the channel is lost.
    assert!(matches!(h.vsp.state(), ProtocolState::Ready { .. }));
    assert_eq!(h.srb(&Srb::none(&[0; 6])).srb().scsi_status, 0);
}

#[test]
fn refusals_are_full_size_before_and_during_negotiation() {
    // Before any version is agreed, and mid-negotiation, a refusal is still a
    // whole packet: the guest's wait for its init request must end.
    let mut h = harness();
    let refuse_in_this_state = |h: &mut Harness, id: u64| {
        let c = h.send_in_band(0, id, &[1, 0]).unwrap();
        assert_linux_sees_a_failure(&c, id);
        // A short EXECUTE_SRB before the protocol is ready.
        let mut p = [0u8; 40];
        p[0] = Operation::EXECUTE_SRB.0 as u8;
        let c = h.send_in_band(0, id + 100, &p).unwrap();
        assert_eq!(c.bytes().len(), VSTOR_PACKET_SIZE);
        assert_eq!(c.header().status, NtStatus::INVALID_DEVICE_STATE);
        assert_eq!(c.srb().srb_status, SrbStatus::ERROR.0);
    };
    refuse_in_this_state(&mut h, 20);
    assert_eq!(h.vsp.state(), ProtocolState::Begin);
    h.control(Operation::BEGIN_INITIALIZATION, &[]);
    refuse_in_this_state(&mut h, 21);
    assert_eq!(h.vsp.state(), ProtocolState::QueryVersion);
    let c = h.control(
        Operation::QUERY_PROTOCOL_VERSION,
        &version_body(ProtocolVersion::WIN8),
    );
    assert_eq!(c.header().status, NtStatus::SUCCESS);
    refuse_in_this_state(&mut h, 22);
}

#[test]
fn serving_stops_when_the_ring_is_full() {
    let mut h = harness();
    h.negotiate();
    // Requests too short for a header take 32 ring bytes; each refusal takes 88 of
    // the 12 KiB ring back.
    let request = packet(0, OutgoingKind::InBand, true);
    let mut queued = 0;
    while h.queue(
        0,
        &OutgoingPacket {
            transaction_id: queued,
            ..request
        },
        &[3, 0, 0, 0],
    ) {
        queued += 1;
    }
    let first = h.serve(0).unwrap();
    assert!(first.signal);
    assert!(first.packets < queued as usize, "stopped at a full ring");
    // Nothing was taken without room to answer it: as the guest reads, the rest
    // is served, in order.
    let mut ids: Vec<u64> = Vec::new();
    let mut served = first.packets;
    loop {
        let answered = h.completions(0);
        assert!(!answered.is_empty());
        ids.extend(answered.iter().map(|c| c.transaction_id));
        if served == queued as usize {
            break;
        }
        let more = h.serve(0).unwrap();
        assert!(more.packets > 0 && more.signal);
        served += more.packets;
    }
    assert_eq!(ids, (0..queued).collect::<Vec<_>>());
}
