//! MRTD vectors written from the TDX Module ABI leaf descriptions (blocks laid out
//! by hand below, hashed by an independent implementation, Python's hashlib): a
//! wrong block name, GPA offset, chunk size or order changes the result.

use super::*;

fn hex(bytes: &[u8]) -> std::string::String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

fn counting_page() -> [u8; PAGE_SIZE] {
    core::array::from_fn(|i| i as u8)
}

#[test]
fn an_empty_build_is_the_hash_of_nothing() {
    assert_eq!(
        hex(&Mrtd::new().value()),
        "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da\
         274edebfe76f65fbd51ad2f14898b95b"
    );
}

/// "MEM.PAGE.ADD", zero padding to byte 16, GPA 0x100000 little endian, zeros.
#[test]
fn the_page_add_block_is_name_then_gpa() {
    let mut expected = std::string::String::from("4d454d2e504147452e41444400000000");
    expected.push_str("0000100000000000");
    expected.push_str(&"00".repeat(128 - 24));
    assert_eq!(hex(&block(b"MEM.PAGE.ADD", 0x10_0000)), expected);
}

/// One measured page of bytes 0,1,..,255,0,.. at GPA 0x10_0000.
#[test]
fn one_measured_page_at_a_known_gpa() {
    let mut m = Mrtd::new();
    m.add_page(0x10_0000, &counting_page(), true);
    assert_eq!(
        hex(&m.value()),
        "cf98422a450932eeec23fff0b83aeb2e321d9ca86a51787fb2cb8ffa01b90d5b\
         edc4dfdc424a019e39250cfd60ebf1af"
    );
}

/// Then an unmeasured page (PAGE.ADD only) and a reset page at 0xFFFFF000 holding
/// `mov eax, 0x100000; jmp eax` at the reset vector.
#[test]
fn unmeasured_and_reset_pages_chained() {
    let mut m = Mrtd::new();
    m.add_page(0x10_0000, &counting_page(), true);
    m.add_page(0x2000, &counting_page(), false);
    let mut reset = [0u8; PAGE_SIZE];
    reset[0xff0..0xff7].copy_from_slice(&[0xb8, 0, 0, 0x10, 0, 0xff, 0xe0]);
    m.add_page(0xffff_f000, &reset, true);
    assert_eq!(
        hex(&m.value()),
        "63b9ba65c0f78530a4ceb998016a754f410ec47ad563269abf111dff33f6ee6d\
         31cc9894d03762d28e50f44044796c11"
    );
}

/// An unmeasured page's contents do not count; a measured page's do.
#[test]
fn contents_count_only_when_measured() {
    let run = |page: &[u8; PAGE_SIZE], measured| {
        let mut m = Mrtd::new();
        m.add_page(0x1000, page, measured);
        m.value()
    };
    let a = counting_page();
    let b = [0u8; PAGE_SIZE];
    assert_eq!(run(&a, false), run(&b, false));
    assert_ne!(run(&a, true), run(&b, true));
    assert_ne!(run(&a, true), run(&a, false));
}
