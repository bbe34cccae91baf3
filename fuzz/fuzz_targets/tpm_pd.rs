//! tpm PD: a hostile VMM and guest against the PD's handler (the engine a
//! platform without libtpms has): any calls on any channel, with the guest
//! rewriting the shared buffer between them. The PD answers every call, never
//! faults, START never stays set, and every response in the buffer is a whole
//! TPM response.
#![no_main]

use std::sync::OnceLock;

use ipc::testing::{leaked_region, FakeInit, RecordingKernel};
use ipc::{Channel, Handler, MessageInfo, MessageRegisters, PpCall, Region};
use libfuzzer_sys::fuzz_target;
use tpm::pd::{TpmPd, BUFFER, REGS, VMM_CHANNEL};
use tpm::Unsupported;
use tpm_crb::api::CRB_BASE;
use tpm_crb::command::Response;
use tpm_crb::regs;

fn regions() -> (Region<'static>, Region<'static>) {
    static R: OnceLock<(Region<'static>, Region<'static>)> = OnceLock::new();
    *R.get_or_init(|| (leaked_region(4096), leaked_region(4096)))
}

fuzz_target!(|data: &[u8]| {
    let (buffer, page) = regions();
    let _ = buffer.fill(0, 4096, 0);
    let init = FakeInit::new("tpm")
        .region(BUFFER, buffer)
        .region(REGS, page)
        .variable(VMM_CHANNEL, 0);
    let Ok(mut pd) = TpmPd::init(&init, Unsupported) else {
        return;
    };
    let mut kernel = RecordingKernel::default();
    // Whether the guest wrote the buffer after the last command's response.
    let mut rewritten = false;
    // 16-byte ops: channel, label selector, count, size, 4-byte offset, 8-byte
    // value; op[1] bit 7 writes the value into the buffer at the offset first.
    for op in data.chunks_exact(16) {
        let offset = u64::from(u32::from_le_bytes(op[4..8].try_into().unwrap()));
        let value = u64::from_le_bytes(op[8..16].try_into().unwrap());
        if op[1] & 0x80 != 0 {
            let _ = buffer.write_bytes((offset % 4096) as usize, &value.to_be_bytes());
            rewritten = true;
        }
        let commands = pd.stats().commands;
        let label = match op[1] & 3 {
            0 => tpm_crb::api::label::MMIO_READ,
            1 => tpm_crb::api::label::MMIO_WRITE,
            _ => u64::from(op[1]) << 8,
        };
        let mut mrs = MessageRegisters::new();
        mrs.set(0, CRB_BASE.wrapping_add(offset % 0x6000));
        mrs.set(1, u64::from(op[3]));
        mrs.set(2, value);
        let ch = Channel::try_new(op[0] % 62).unwrap_or(Channel::new(0));
        let msg = MessageInfo::new(label, usize::from(op[2] % 5));
        pd.protected(&mut kernel, PpCall::new(ch, msg, &mut mrs))
            .expect("the PD answers every call");
        if pd.stats().commands != commands {
            rewritten = false;
        }
        let start = page.read::<u32>(regs::CTRL_START as usize).unwrap();
        assert_eq!(start, 0, "START completes within the call");
    }
    if pd.stats().commands > 0 && !rewritten {
        let mut bytes = vec![0u8; 4096];
        buffer.read_bytes(0, &mut bytes).unwrap();
        assert!(
            Response::parse(&bytes).is_some(),
            "a whole response is left"
        );
    }
});
