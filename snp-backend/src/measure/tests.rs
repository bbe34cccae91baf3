//! Launch-digest vectors written from the ABI spec's PAGE_INFO table (laid out by
//! hand below and hashed by an independent implementation, Python's hashlib), so
//! a wrong offset, page type, start value or chaining order changes the result.

use super::*;

fn counting_page() -> [u8; PAGE_SIZE] {
    core::array::from_fn(|i| i as u8)
}

fn hex(bytes: &[u8]) -> std::string::String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

/// One NORMAL page of bytes 0,1,..,255,0,.. at GPA 0x10_0000, from launch start.
#[test]
fn one_normal_page_at_a_known_gpa() {
    let page = counting_page();
    let ld = LaunchDigest::new();
    // DIGEST_CUR = 0 | CONTENTS = SHA-384(page) | LENGTH 0x0070 | TYPE 1 | IMI 0 |
    // VMPL3/2/1 perms 0 | reserved | GPA 0x100000.
    let expected_info = "000000000000000000000000000000000000000000000000\
                         000000000000000000000000000000000000000000000000\
                         166f9617070665894eb30e3968ee7642d7fd459089bee2cc\
                         ae3aa4ae1b658eb53e2780a0b9e10ae5efe7ed112be3bf59\
                         70000100000000000000100000000000";
    assert_eq!(
        hex(&ld.page_info(0x10_0000, &LaunchPage::Normal(&page))),
        expected_info
    );
    let mut ld = ld;
    ld.update(0x10_0000, &LaunchPage::Normal(&page));
    assert_eq!(
        hex(&ld.value()),
        "fcd01075a27fb4ad66ad0375d1910f07e220325f9329fb1861839b569b9d15ca\
         877eafd18e0f8023fba22e173c42b4d1"
    );
}

/// Every page type once, chained after the page above; the VMSA page (VMPL0,
/// EFER.SVME) at the GPA KVM launches VMSAs at.
#[test]
fn every_page_type_chained() {
    let page = counting_page();
    let mut vmsa = [0u8; PAGE_SIZE];
    vmsa[0xd0..0xd8].copy_from_slice(&(1u64 << 12).to_le_bytes());
    let mut ld = LaunchDigest::new();
    let pages = [
        (0x10_0000, LaunchPage::Normal(&page)),
        (0x10_1000, LaunchPage::Zero),
        (0x2000, LaunchPage::Unmeasured),
        (0x9_e000, LaunchPage::Secrets),
        (0x9_f000, LaunchPage::Cpuid),
        (0xffff_ffff_f000, LaunchPage::Vmsa(&vmsa)),
    ];
    for (gpa, p) in &pages {
        ld.update(*gpa, p);
    }
    assert_eq!(
        hex(&ld.value()),
        "c9e305eab1831413b81378bc3a39df8ab16580b58f40f63bd54777d4941c18ae\
         4cc03e7e76d81e4fbd0943e587c31050"
    );
}

/// Pages whose contents the firmware does not measure: only type and GPA count,
/// so two different pages of such a type give the same PAGE_INFO.
#[test]
fn only_normal_and_vmsa_pages_measure_contents() {
    let page = counting_page();
    let zero = [0u8; PAGE_SIZE];
    let ld = LaunchDigest::new();
    for p in [
        LaunchPage::Zero,
        LaunchPage::Unmeasured,
        LaunchPage::Secrets,
        LaunchPage::Cpuid,
    ] {
        assert!(ld.page_info(0, &p)[0x30..0x60].iter().all(|b| *b == 0));
    }
    for (a, b) in [
        (LaunchPage::Normal(&page), LaunchPage::Normal(&zero)),
        (LaunchPage::Vmsa(&page), LaunchPage::Vmsa(&zero)),
        (LaunchPage::Normal(&page), LaunchPage::Vmsa(&page)),
    ] {
        assert_ne!(ld.page_info(0, &a), ld.page_info(0, &b));
    }
}
