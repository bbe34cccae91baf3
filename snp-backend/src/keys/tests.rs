use proptest::prelude::*;

use super::*;

fn firmware(measurement: u8, policy: u64) -> ModelFirmware {
    ModelFirmware {
        chip_secret: [7; 32],
        measurement: [measurement; 48],
        policy,
        caller_vmpl: 0,
    }
}

#[test]
fn the_sealing_key_is_bound_to_the_launch_measurement_policy_and_chip() {
    let key = |mut fw: ModelFirmware| sealing_key(&mut fw).expect("firmware answers");
    let base = key(firmware(1, 0x30000));
    assert_eq!(base, key(firmware(1, 0x30000)), "stable across boots");
    assert_ne!(base, key(firmware(2, 0x30000)), "another image");
    assert_ne!(base, key(firmware(1, 0x30001)), "another policy");
    let mut other_chip = firmware(1, 0x30000);
    other_chip.chip_secret = [8; 32];
    assert_ne!(base, key(other_chip), "another chip");
}

#[test]
fn requests_round_trip_and_the_firmware_refuses_bad_ones() {
    let req = KeyRequest {
        root: RootKey::Vmrk,
        guest_field_select: field::ALL,
        vmpl: 2,
        guest_svn: 9,
        tcb_version: u64::MAX,
    };
    assert_eq!(KeyRequest::decode(&req.encode()), Ok(req));
    assert_eq!(
        KeyRequest::decode(&KeyRequest::SEALING.encode()),
        Ok(KeyRequest::SEALING)
    );
    let sealing = KeyRequest::SEALING.encode();
    let mut bad: std::vec::Vec<std::vec::Vec<u8>> = std::vec::Vec::new();
    for (at, bit) in [
        (0usize, 2u8),
        (0, 0x80),
        (4, 1),
        (0x0e, 0x40),
        (0x20, 1),
        (0x5f, 1),
    ] {
        let mut b = sealing;
        b[at] |= bit;
        bad.push(b.to_vec());
    }
    bad.push(sealing[..KEY_REQ_LEN - 1].to_vec());
    for b in &bad {
        let mut rsp = [0u8; KEY_RSP_LEN];
        let n = firmware(1, 0).request(MSG_KEY_REQ, b, &mut rsp).unwrap();
        assert_eq!(
            decode_response(&rsp[..n]),
            Err(KeyError::Firmware(STATUS_INVALID_PARAM)),
            "{b:02x?}"
        );
    }
    // A VMPL1 caller may not have VMPL0's key, and the model has no VMRK.
    let mut vmpl1 = firmware(1, 0);
    vmpl1.caller_vmpl = 1;
    assert_eq!(
        sealing_key(&mut vmpl1),
        Err(KeyError::Firmware(STATUS_INVALID_PARAM))
    );
    let mut rsp = [0u8; KEY_RSP_LEN];
    let vmrk = KeyRequest {
        root: RootKey::Vmrk,
        ..KeyRequest::SEALING
    };
    let n = firmware(1, 0)
        .request(MSG_KEY_REQ, &vmrk.encode(), &mut rsp)
        .unwrap();
    assert_eq!(
        decode_response(&rsp[..n]),
        Err(KeyError::Firmware(STATUS_INVALID_PARAM))
    );
}

#[test]
fn malformed_responses_are_refused() {
    for len in [0, 4, KEY_RSP_LEN - 1, KEY_RSP_LEN + 1] {
        assert_eq!(
            decode_response(&std::vec![0u8; len]),
            Err(KeyError::Malformed)
        );
    }
    let mut rsp = [0u8; KEY_RSP_LEN];
    rsp[0] = 1;
    assert_eq!(decode_response(&rsp), Err(KeyError::Firmware(1)));
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..0x80)) {
        let _ = KeyRequest::decode(&bytes);
        let _ = decode_response(&bytes);
    }
}
