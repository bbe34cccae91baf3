//! tdx-backend: any TDG.VP.VMCALL register set (the L2 guest's or a GHCI caller's)
//! through the GHCI parser, any host MapGPA answer, and any TDG.VP.VMCALL/VP.ENTER
//! output. A parsed call must re-encode to registers that parse to the same call;
//! a refused one gets a GHCI error status; a RETRY the decoder accepts lies strictly
//! inside the request and is page aligned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tdx_backend::cpu::Regs;
use tdx_backend::exit::{decode, L2Gprs};
use tdx_backend::vmcall::{ghci, map_gpa_reply, MapGpaReply, Vmcall};

fn regs(data: &[u8]) -> Regs {
    let mut w = [0u64; 11];
    for (i, c) in data.chunks(8).take(11).enumerate() {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        w[i] = u64::from_le_bytes(b);
    }
    Regs {
        rax: w[0],
        rcx: w[1],
        rdx: w[2],
        r8: w[3],
        r9: w[4],
        r10: w[5],
        r11: w[6],
        r12: w[7],
        r13: w[8],
        r14: w[9],
        r15: w[10],
    }
}

fuzz_target!(|data: &[u8]| {
    let r = regs(data);
    match Vmcall::parse(&r) {
        Ok(call) => assert_eq!(Vmcall::parse(&call.to_regs()), Ok(call)),
        Err(s) => assert!(s == ghci::INVALID_OPERAND || s == ghci::ALIGN_ERROR),
    }
    let (gpa, size) = (r.r12 & !0xfff, r.r13 & !0xfff);
    if let Ok(MapGpaReply::Retry { from }) = map_gpa_reply(&r, gpa, size) {
        assert!(from > gpa && from < gpa + size && from % 4096 == 0);
    }
    let _ = decode(
        &r,
        &L2Gprs {
            rax: r.r12,
            rcx: r.r13,
            rdx: r.r14,
        },
    );
});
