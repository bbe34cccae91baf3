//! storvsp: packets and SRBs from hostile bytes must never panic.
//!
//! Everything goes through the path the PD runs: bytes are written into a real
//! guest-to-host ring and served by the device layer's ring reader. Byte 0 picks
//! the mode. Raw mode writes length-prefixed packets into the ring as they are
//! (negotiated or not); a ring they break is set up afresh. Structured mode
//! builds a well-formed GPA-direct EXECUTE_SRB around fuzzer-chosen SRB fields,
//! CDB and page list, so the SCSI layer sees deep inputs; page numbers are small
//! so some land in guest RAM.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storvsp::harness::{Buffer, Harness, MemBackend, Srb};
use storvsp::scsi::ScsiAddress;
use storvsp_protocol::DataDirection;

const RAM_PAGES: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut c = Bytes(data);
    let mode = c.u8();
    let mut backend = MemBackend::new(256);
    backend.read_only = mode & 0x10 != 0;
    backend.unmap = mode & 0x20 == 0;
    let mut h = Harness::new(Box::new(backend), RAM_PAGES);
    if mode & 0x2 == 0 {
        h.negotiate();
    }
    // Some guest memory contents (parameter lists, write data).
    let fill = c.take(256).to_vec();
    h.write_guest(0, &fill);

    if mode & 1 == 0 {
        while !c.0.is_empty() {
            let channel = u16::from(c.u8() & 3);
            let len = usize::from(c.u16() % 2048);
            let raw = c.take(len).to_vec();
            let _ = h.send_raw(channel, &raw);
        }
        return;
    }

    while !c.0.is_empty() {
        let dir = DataDirection(c.u8() % 4);
        let cdb_len = usize::from(c.u8() % 20);
        let data_transfer_length = c.u32() % (1 << 20);
        let addr = ScsiAddress {
            path: c.u8() % 2,
            target: c.u8() % 2,
            lun: c.u8() % 3,
        };
        // The ring format keeps the offset inside the first page.
        let offset = u32::from(c.u16()) % 4096;
        let byte_count = c.u32() % (1 << 20);
        let npfn = usize::from(c.u8() % 40);
        let pfns: Vec<u64> = (0..npfn).map(|_| u64::from(c.u8() % 24)).collect();
        let cdb = c.take(cdb_len).to_vec();
        let buffer = if npfn == 0 {
            Buffer::None
        } else {
            Buffer::List {
                pfns,
                offset,
                byte_count,
            }
        };
        let srb = Srb {
            addr,
            cdb,
            dir,
            data_transfer_length,
            buffer,
        };
        let payload = srb.payload();
        if let Ok((_, Some(done))) = h.send_srb_payload(0, &srb, &payload) {
            let r = done.srb();
            // Never claim to have moved more than the guest offered.
            assert!(r.data_transfer_length <= data_transfer_length);
            assert!(usize::from(r.sense_info_length) <= 20);
        }
    }
});
