use proptest::prelude::*;
use std::format;

use super::*;

fn header(tag: u16, size: u32, code: u32) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[..2].copy_from_slice(&tag.to_be_bytes());
    b[2..6].copy_from_slice(&size.to_be_bytes());
    b[6..].copy_from_slice(&code.to_be_bytes());
    b
}

#[test]
fn headers_are_checked_against_the_bytes_copied() {
    let startup = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0];
    let mut long = [0xaau8; 64];
    long[..12].copy_from_slice(&startup);
    type Parsed = Result<(u16, CommandCode, usize), ResponseCode>;
    let table: &[(&[u8], Parsed)] = &[
        (&startup, Ok((0x8001, CommandCode::STARTUP, 12))),
        (&long, Ok((0x8001, CommandCode::STARTUP, 12))),
        (
            &header(0x8002, 10, 0x17e),
            Ok((0x8002, CommandCode(0x17e), 10)),
        ),
        (&[], Err(ResponseCode::COMMAND_SIZE)),
        (&startup[..9], Err(ResponseCode::COMMAND_SIZE)),
        (&startup[..11], Err(ResponseCode::COMMAND_SIZE)),
        (&header(0x8001, 9, 0x144), Err(ResponseCode::COMMAND_SIZE)),
        (&header(0x8001, 0, 0x144), Err(ResponseCode::COMMAND_SIZE)),
        (
            &header(0x8001, u32::MAX, 0x144),
            Err(ResponseCode::COMMAND_SIZE),
        ),
        (&header(0x00c1, 10, 0x99), Err(ResponseCode::BAD_TAG)),
        (&header(0x8003, 10, 0x144), Err(ResponseCode::BAD_TAG)),
        (&header(0, 10, 0), Err(ResponseCode::BAD_TAG)),
    ];
    for (bytes, want) in table {
        let got = Command::parse(bytes).map(|c| (c.tag, c.code, c.bytes.len()));
        assert_eq!(&got, want, "{bytes:02x?}");
    }
}

#[test]
fn error_responses_are_ten_bytes_with_the_right_tag() {
    let r = error_response(&header(0x8001, 10, 0x144), ResponseCode::FAILURE);
    assert_eq!(r, header(0x8001, 10, 0x101));
    let parsed = Response::parse(&r).unwrap();
    assert_eq!(parsed.code, ResponseCode::FAILURE);
    assert_eq!(parsed.bytes.len(), 10);
    let r12 = error_response(&header(0x00c1, 10, 0x99), ResponseCode::BAD_TAG);
    assert_eq!(r12, header(0x00c4, 10, 0x1e));
    assert_eq!(format!("{:?}", ResponseCode(0x9a2)), "TPM_RC(0x9a2)");
}

#[test]
fn responses_that_lie_about_their_size_are_refused() {
    assert!(Response::parse(&header(0x8001, 11, 0)).is_none());
    assert!(Response::parse(&header(0x8001, 9, 0)).is_none());
    assert!(Response::parse(&[0x80, 0x01]).is_none());
}

proptest! {
    #[test]
    fn parse_never_panics_and_never_reads_past_the_buffer(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(c) = Command::parse(&bytes) {
            prop_assert!(c.bytes.len() >= HEADER_SIZE && c.bytes.len() <= bytes.len());
            prop_assert_eq!(c.bytes.len() as u32, u32::from_be_bytes(bytes[2..6].try_into().unwrap()));
        }
        if let Some(r) = Response::parse(&bytes) {
            prop_assert!(r.bytes.len() <= bytes.len());
        }
    }
}
