//! netvsp: a NIC fed hostile packets, send-buffer contents, GPA-direct buffers,
//! bogus completions and a ring that fills up at random must never panic, and
//! everything it writes to the guest must stay inside what the guest gave it: a
//! transfer range inside one receive section, completions of NVSP size.
//!
//! Byte 0 bit 0 runs Linux's bring-up first (with 3 vRSS sub-channels granted),
//! so most inputs reach the data path. Each operation picks a queue (the primary
//! or a sub-channel, opened and closed at random) to act on.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netvsp::backend::{Backend, Loopback};
use netvsp::{Config, GuestBuffer, Incoming, IncomingKind, Nic, Outbox, OutboxFull, SliceBuffer};
use netvsp_protocol::nvsp::{self, u32le, Message, Version};
use netvsp_protocol::rndis;
use vmbus_ring::{OutgoingKind, OutgoingPacket};

const RECEIVE_LEN: usize = 8 * 4096;
const SEND_LEN: usize = 4 * 6144;

/// The guest's ring: refuses when the fuzzer says so, checks what is written.
struct Ring {
    refuse: bool,
    written: u64,
}

impl Outbox for Ring {
    fn send(&mut self, p: &OutgoingPacket<'_>, payload: &[&[u8]]) -> Result<(), OutboxFull> {
        if self.refuse {
            return Err(OutboxFull);
        }
        let len: usize = payload.iter().map(|p| p.len()).sum();
        assert!(len <= nvsp::MESSAGE_SIZE);
        if let OutgoingKind::TransferPages { ranges, .. } = p.kind {
            for r in ranges {
                let (start, count) = (r.byte_offset as usize, r.byte_count as usize);
                assert!(count <= 1728 && start % 1728 == 0 && start + count <= RECEIVE_LEN);
            }
        }
        self.written += 1;
        Ok(())
    }
}

fn bring_up<'a>(
    nic: &mut Nic<&'a SliceBuffer>,
    ring: &mut Ring,
    send: &SliceBuffer,
    lookup: &mut dyn FnMut(u32) -> Option<&'a SliceBuffer>,
    lb: &mut Loopback,
) {
    let mut msgs = vec![
        Message::Init(nvsp::Init {
            min_version: u32le(Version::V61.0),
            max_version: u32le(Version::V61.0),
        })
        .encode(),
        Message::SendReceiveBuffer(nvsp::SendBuffer {
            gpadl: u32le(1),
            id: nvsp::RECEIVE_BUFFER_ID.into(),
        })
        .encode(),
        Message::SendSendBuffer(nvsp::SendBuffer {
            gpadl: u32le(2),
            id: 0.into(),
        })
        .encode(),
        Message::Subchannel(nvsp::SubchannelRequest {
            op: u32le(nvsp::SUBCHANNEL_ALLOCATE),
            count: u32le(3),
        })
        .encode(),
    ];
    // RNDIS INITIALIZE and the packet filter, from send sections 0 and 1.
    let mut init = Vec::new();
    rndis::encode(
        rndis::MessageType::INITIALIZE,
        &[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0],
        &[],
        &mut init,
    );
    let mut filter = Vec::new();
    rndis::oid_request(
        rndis::MessageType::SET,
        2,
        netvsp_protocol::oid::Oid::GEN_CURRENT_PACKET_FILTER,
        &0x2fu32.to_le_bytes(),
        &mut filter,
    );
    for (section, m) in [(0u32, &init), (1, &filter)] {
        let _ = send.write_at(section as usize * 6144, m);
        msgs.push(
            Message::SendRndisPacket(nvsp::SendRndisPacket {
                channel_type: u32le(1),
                section_index: u32le(section),
                section_size: u32le(m.len() as u32),
            })
            .encode(),
        );
    }
    for (tid, m) in msgs.iter().enumerate() {
        let packet = Incoming {
            transaction_id: tid as u64,
            completion_requested: true,
            kind: IncomingKind::InBand,
            payload: m,
        };
        nic.handle(packet, ring, lookup, lb);
    }
}

fuzz_target!(|data: &[u8]| {
    let (receive, send) = (SliceBuffer::new(RECEIVE_LEN), SliceBuffer::new(SEND_LEN));
    let (receive, send) = (&receive, &send);
    let mut lookup = |id: u32| match id {
        1 => Some(receive),
        2 => Some(send),
        _ => None,
    };
    let mut c = Bytes(data);
    let mut nic: Nic<&SliceBuffer> = Nic::new(Config::new([0, 0x15, 0x5d, 1, 2, 3]));
    let mut ring = Ring {
        refuse: false,
        written: 0,
    };
    let mut lb = Loopback::new(32);
    if c.u8() & 1 == 1 {
        bring_up(&mut nic, &mut ring, send, &mut lookup, &mut lb);
    }
    let gpa = SliceBuffer::new(0);
    for _ in 0..256 {
        if c.0.is_empty() {
            break;
        }
        let op = c.u8();
        ring.refuse = op & 0x80 != 0;
        let q = usize::from((op >> 4) & 3);
        let tid = u64::from(c.u16());
        match op & 7 {
            0 | 1 => {
                let len = usize::from(c.u8() % 48);
                let payload = c.take(len).to_vec();
                let packet = Incoming {
                    transaction_id: tid,
                    completion_requested: op & 8 != 0,
                    kind: IncomingKind::InBand,
                    payload: &payload,
                };
                nic.handle_on(q, packet, &mut ring, &mut lookup, &mut lb);
            }
            2 => {
                let packet = Incoming {
                    transaction_id: tid,
                    completion_requested: false,
                    kind: IncomingKind::Completion,
                    payload: &[],
                };
                nic.handle_on(q, packet, &mut ring, &mut lookup, &mut lb);
            }
            3 => {
                let at = usize::from(c.u16()) % SEND_LEN;
                let len = usize::from(c.u16() % 512);
                let bytes = c.take(len).to_vec();
                let _ = send.write_at(at, &bytes);
            }
            4 => {
                let len = usize::from(c.u16() % 2048);
                *gpa.0.borrow_mut() = c.take(len).to_vec();
                let m = Message::SendRndisPacket(nvsp::SendRndisPacket {
                    channel_type: u32le(u32::from(c.u8() & 1)),
                    section_index: u32le(nvsp::NO_SECTION),
                    section_size: u32le(0),
                })
                .encode();
                let packet = Incoming {
                    transaction_id: tid,
                    completion_requested: true,
                    kind: IncomingKind::GpaDirect(&gpa),
                    payload: &m,
                };
                nic.handle_on(q, packet, &mut ring, &mut lookup, &mut lb);
            }
            5 => {
                let len = usize::from(c.u16() % 1600);
                let frame = c.take(len).to_vec();
                lb.transmit(&frame);
                nic.poll_rx_on(q, &mut ring, &mut lb);
            }
            6 => nic.set_link(op & 8 != 0),
            _ if op & 8 != 0 => {
                if !nic.open_queue(q) {
                    nic.close_queue(q);
                }
            }
            _ => {
                nic.flush_on(q, &mut ring);
                let _ = nic.take_woken();
            }
        }
        assert!(nic.sections_out() <= RECEIVE_LEN / 1728);
    }
});
