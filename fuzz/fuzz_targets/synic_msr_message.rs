//! synic-pd: any sequence of MSR writes/reads, posts, signals and guest-side slot
//! frees or scribbles must never panic, keep every queue within its bound, and
//! only ever request real vectors of unmasked, non-polling SINTs. The request
//! decoder sees the raw bytes as message registers.
#![no_main]

use std::sync::atomic::AtomicU64;

use hvdef::message::{HvMessage, HvMessageType};
use hvdef::msr::HV_X64_MSR_SINT0;
use hvdef::synic::SintRegister;
use ipc::{MessageInfo, MessageRegisters, Perms, Region};
use libfuzzer_sys::fuzz_target;
use synic_pd::api::Request;
use synic_pd::{GuestMemory, Instance, InterruptRequest, InterruptSink, SintTarget, Synic};

const DEPTH: usize = 3;
const RAM_GPA: u64 = 0x10_0000;

#[derive(Default)]
struct Irqs(Vec<InterruptRequest>);

impl InterruptSink for Irqs {
    fn request_interrupt(&mut self, r: InterruptRequest) {
        self.0.push(r);
    }
}

fuzz_target!(|data: &[u8]| {
    let ram: Vec<AtomicU64> = (0..4 * 512).map(|_| AtomicU64::new(0)).collect();
    let region = Region::from_atomics(&ram, Perms::RW);
    let mem = GuestMemory::private(RAM_GPA, region).expect("page-aligned RAM");
    let mut synic = Box::new(Synic::<2, DEPTH>::new(2).unwrap());
    let mut irqs = Irqs::default();

    for op in data.chunks(12) {
        let mut b = [0u8; 12];
        b[..op.len()].copy_from_slice(op);
        let vp = u32::from(b[1] % 3);
        let inst = Instance::new(b[2] % 2).unwrap_or(Instance::PARAVISOR);
        let value = u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
        let msr = 0x4000_0080 + u32::from(b[3] % 0x24);
        match b[0] % 8 {
            0 => {
                let _ = synic.read_msr(vp, inst, msr);
            }
            1 => {
                let _ = synic.write_msr(&mem, &mut irqs, vp, inst, msr, value);
            }
            2 => {
                // Page-register writes that point into RAM, so delivery paths run.
                let gpn = (RAM_GPA >> 12) + value % 5;
                let v = gpn << 12 | value >> 63;
                let _ = synic.write_msr(&mem, &mut irqs, vp, inst, 0x4000_0082 + u32::from(b[3] & 1), v);
            }
            3 => {
                let mut m = HvMessage::new(HvMessageType(value as u32), value >> 32, &[]).unwrap();
                m.header.payload_size = b[3];
                let t = SintTarget { vp, instance: inst, sint: b[3] % 17 };
                let _ = synic.post_message(&mem, &mut irqs, t, &m);
            }
            4 => {
                let t = SintTarget { vp, instance: inst, sint: b[3] % 17 };
                let _ = synic.signal_event(&mem, &mut irqs, t, value as u32 % 2100);
            }
            5 => {
                // The guest frees a slot.
                let off = (value as usize % (4 * 4096)) & !0xFF;
                if let Ok(a) = region.atomic_u32(off) {
                    a.store(0, std::sync::atomic::Ordering::SeqCst);
                }
            }
            6 => {
                let off = (value as usize >> 8) % (4 * 4096 - 4) & !3;
                let _ = region.write(off, &(value as u32));
            }
            _ => {
                // The guest acknowledges with EOM.
                let _ = synic.write_msr(&mem, &mut irqs, vp, inst, 0x4000_0084, 0);
            }
        }
        for vp in 0..2 {
            for inst in [Instance::PARAVISOR, Instance::HYPERVISOR] {
                for sint in 0..16 {
                    assert!(synic.queued(SintTarget { vp, instance: inst, sint }) <= DEPTH);
                }
            }
        }
        for r in irqs.0.drain(..) {
            assert!(r.vector >= 16);
            let sint = SintRegister(synic.read_msr(r.vp, r.instance, HV_X64_MSR_SINT0 + u32::from(r.sint)).unwrap());
            assert!(!sint.masked() && !sint.polling());
            assert_eq!(sint.vector(), r.vector);
        }
    }

    let mut mrs = MessageRegisters::new();
    for (i, chunk) in data.chunks(8).take(64).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        mrs.set(i, u64::from_le_bytes(w));
    }
    let label = 0x5300 + u64::from(data.first().copied().unwrap_or(0) % 6);
    if let Ok(req) = Request::decode(MessageInfo::new(label, data.len() % 70), &mrs) {
        let mut again = MessageRegisters::new();
        let info = req.encode(&mut again);
        assert_eq!(Request::decode(info, &again), Ok(req));
    }
});
