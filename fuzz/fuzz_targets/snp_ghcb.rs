//! snp-backend: any GHCB MSR value and any GHCB page the host writes back. The
//! MSR decoders must round-trip what they accept; the backend, driven by a host
//! whose every answer comes from the input, must return (bounded loops), never
//! panic, and never report success for a page-state change to private unless
//! every page ended up validated.
#![no_main]

#[path = "common/bytes.rs"]
mod bytes;

use bytes::{word, Bytes};
use isolation::{
    Gpa, GpaClass, HostCall, Hypercall, Isolation, PageRange, Partition, PartitionKind, RamRange,
};
use libfuzzer_sys::fuzz_target;
use snp_backend::backend::SnpBackend;
use snp_backend::cpu::SnpCpu;
use snp_backend::ghcb_msr::{expect_response, MsrRequest, MsrResponse, PscOp};
use snp_backend::ghcb_page::{read_hv_result, Ghcb, GHCB_SIZE};
use snp_backend::rmp::{Fault, Rmp};
use snp_backend::vmsa::Vmsa;

const PAGES: usize = 16;
const VTOM: u8 = 36;
static RAM: [RamRange; 1] = [RamRange {
    start: 0,
    end: PAGES as u64 * 4096,
}];

/// A host whose answers are the fuzz input, over a real RMP model.
struct FuzzHost<'a> {
    input: Bytes<'a>,
    rmp: Rmp<PAGES>,
    ghcb: Ghcb,
}

impl SnpCpu for FuzzHost<'_> {
    type Rmp = Rmp<PAGES>;
    fn rmp(&mut self) -> &mut Rmp<PAGES> {
        &mut self.rmp
    }
    fn msr_protocol(&mut self, _value: u64) -> u64 {
        self.input.u64()
    }
    fn ghcb(&mut self) -> &mut Ghcb {
        &mut self.ghcb
    }
    fn vmgexit(&mut self, _ghcb_gpa: u64) {
        // The host rewrites a chosen window of the page and may flip RMP pages.
        let off = usize::from(
            self.input.take(2)
                .iter()
                .fold(0u16, |a, &b| a << 8 | u16::from(b)),
        ) % GHCB_SIZE;
        let len = self.input.take(1).first().copied().unwrap_or(0) as usize;
        let bytes = self.input.take(len).to_vec();
        let end = (off + bytes.len()).min(GHCB_SIZE);
        self.ghcb.0[off..end].copy_from_slice(&bytes[..end - off]);
        if let Some(&b) = self.input.take(1).first() {
            let gfn = u64::from(b) % PAGES as u64;
            if let Some(e) = self.rmp.entry_mut(gfn << 12) {
                *e = snp_backend::rmp::RmpEntry {
                    assigned: b & 0x80 != 0,
                    ..Default::default()
                };
            }
        }
    }
    fn read_shared(&mut self, _gpa: u64, buf: &mut [u8]) {
        buf.fill(0);
    }
    fn write_vmsa(&mut self, _gpa: u64, _vmsa: &Vmsa) -> Result<(), Fault> {
        Ok(())
    }
    fn read_vmsa(&mut self, _gpa: u64) -> Result<Vmsa, Fault> {
        Ok(Vmsa::default())
    }
}

fuzz_target!(|data: &[u8]| {
    let v = word(data, 0);
    if let Ok(r) = MsrRequest::decode(v) {
        assert_eq!(r.encode(), Some(v));
    }
    if let Ok(r) = MsrResponse::decode(v) {
        assert_eq!(r.encode(), v);
    }
    for req in [
        MsrRequest::SevInfo,
        MsrRequest::RegisterGhcb { gfn: 1 },
        MsrRequest::PageState {
            gfn: 1,
            op: PscOp::Shared,
        },
    ] {
        if let Ok(resp) = expect_response(req, v) {
            assert!(resp.answers(req));
        }
    }
    let mut page = Ghcb::default();
    let m = data.len().min(GHCB_SIZE);
    page.0[..m].copy_from_slice(&data[..m]);
    if let Ok(r) = read_hv_result(&page, v) {
        assert!(u64::from(r.reps_done) <= (v >> 32) & 0xfff);
    }

    let mut host = FuzzHost {
        input: Bytes(data),
        rmp: Rmp::new(0),
        ghcb: Ghcb::default(),
    };
    for gfn in 0..PAGES as u64 {
        host.rmp.entry_mut(gfn << 12).unwrap().assigned = true;
    }
    let p = Partition::new(PartitionKind::Snp { vtom_bit: VTOM }, &RAM).unwrap();
    let ghcb_gpa = Gpa(1 << VTOM | (PAGES as u64 - 1) << 12);
    let Ok(mut b) = SnpBackend::new(host, p, ghcb_gpa) else {
        return;
    };
    let r = PageRange::new(Gpa(0), 4).unwrap();
    let _ = b.accept_private(r);
    let _ = b.set_visibility(r, GpaClass::Shared);
    if b.set_visibility(r, GpaClass::Private).is_ok() {
        for gfn in 0..4u64 {
            let e = b.cpu().rmp.entry(gfn << 12).unwrap();
            assert!(e.assigned && e.validated, "success claimed for gfn {gfn}");
        }
    }
    let _ = b.call_host(HostCall::HvHypercall(Hypercall {
        control: 1 << 32 | 0x14,
        input: None,
        output: None,
    }));
    let _ = b.run_vcpu(isolation::VpIndex(0));
});
