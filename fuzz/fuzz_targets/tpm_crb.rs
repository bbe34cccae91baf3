//! tpm-crb: any sequence of guest register accesses (through the same call
//! decoding the tpm PD uses) never panics, a refused access changes nothing, and
//! START is only set by the active locality and always completed.
#![no_main]

use ipc::{MessageInfo, MessageRegisters};
use libfuzzer_sys::fuzz_target;
use tpm_crb::api::{label, Request, BUFFER_GPA, BUFFER_SIZE, CRB_BASE};
use tpm_crb::crb::{BufferLayout, Crb, Effect};

fuzz_target!(|data: &[u8]| {
    let mut crb = Crb::new(BufferLayout {
        gpa: BUFFER_GPA,
        size: BUFFER_SIZE,
    });
    // 12-byte ops: flags, size, 2-byte offset from the base, 8-byte value.
    for op in data.chunks_exact(12) {
        let write = op[0] & 1 != 0;
        let mut mrs = MessageRegisters::new();
        let offset = u64::from(u16::from_le_bytes([op[2], op[3]]));
        // Bit 1 picks a wild address instead, to hit the window checks.
        let gpa = if op[0] & 2 != 0 {
            u64::from_le_bytes(op[4..12].try_into().unwrap())
        } else {
            CRB_BASE + offset
        };
        mrs.set(0, gpa);
        mrs.set(1, u64::from(op[1]));
        mrs.set(2, u64::from_le_bytes(op[4..12].try_into().unwrap()));
        let (lbl, count) = if write {
            (label::MMIO_WRITE, 3)
        } else {
            (label::MMIO_READ, 2)
        };
        let count = if op[0] & 4 != 0 {
            usize::from(op[0] >> 5)
        } else {
            count
        };
        let Ok(request) = Request::decode(MessageInfo::new(lbl, count), &mrs) else {
            continue;
        };
        match request {
            Request::Read(a) => {
                let v = crb.read(a);
                assert!(a.size == 8 || v >> (u32::from(a.size) * 8) == 0);
            }
            Request::Write(a, v) => {
                let before = crb.image(0);
                match crb.write(a, v) {
                    Ok(Effect::Execute { locality, .. }) => {
                        assert_eq!(crb.active_locality(), Some(locality));
                        crb.complete(op[1] & 0x80 != 0);
                    }
                    Ok(Effect::None) => {}
                    Err(_) => assert_eq!(before, crb.image(0)),
                }
            }
        }
        assert!(!crb.is_started());
    }
});
