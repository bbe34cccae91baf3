//! snp-backend: any page-state-change descriptor (header and entries) as either
//! side reads it from the GHCB shared buffer. Whatever parses must re-encode to
//! the same entry bits, and entry indices past `end_entry` are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snp_backend::psc::{self, Psc, PscEntry, MAX_ENTRIES};

fuzz_target!(|data: &[u8]| {
    let Ok(d) = Psc::parse(data) else { return };
    assert!(usize::from(d.end_entry) < MAX_ENTRIES);
    assert!(d.cur_entry <= d.end_entry + 1);
    assert!(d.entry(d.end_entry + 1).is_err());
    let mut good = Vec::new();
    for i in 0..=d.end_entry {
        let off = psc::HEADER + usize::from(i) * 8;
        let raw = u64::from_le_bytes(data[off..off + 8].try_into().unwrap());
        match d.entry(i) {
            Ok(e) => {
                assert_eq!(e.encode(), raw);
                assert_eq!(PscEntry::decode(raw), Ok(e));
                good.push(e);
            }
            Err(_) => assert!(PscEntry::decode(raw).is_err()),
        }
    }
    if !good.is_empty() {
        let mut buf = [0u8; 0x7f0];
        let len = psc::write(&mut buf, &good).unwrap();
        let again = Psc::parse(&buf[..len]).unwrap();
        assert_eq!(usize::from(again.end_entry) + 1, good.len());
        assert_eq!(again.cur_entry, 0);
    }
});
