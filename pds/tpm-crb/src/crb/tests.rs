use proptest::prelude::*;

use super::*;
use crate::regs::*;

const BUFFER: BufferLayout = BufferLayout {
    gpa: 0x1_fed4_5000,
    size: 0x1000,
};

fn crb() -> Crb {
    Crb::new(BUFFER)
}

fn read(c: &mut Crb, offset: u64, size: u64) -> u64 {
    c.read(Access::new(offset, size).unwrap())
}

fn write(c: &mut Crb, offset: u64, size: u64, value: u64) -> Result<Effect, AccessError> {
    c.write(Access::new(offset, size)?, value)
}

#[test]
fn accesses_are_checked_before_they_reach_a_register() {
    type Checked = Result<(u8, u64), AccessError>;
    let table: &[(u64, u64, Checked)] = &[
        (0x00, 4, Ok((0, 0x00))),
        (0x30, 8, Ok((0, 0x30))),
        (0x7c, 4, Ok((0, 0x7c))),
        (0x78, 8, Ok((0, 0x78))),
        (0x41, 1, Ok((0, 0x41))),
        (0x00, 0, Err(AccessError::Size)),
        (0x00, 3, Err(AccessError::Size)),
        (0x00, 16, Err(AccessError::Size)),
        (0x41, 2, Err(AccessError::Alignment)),
        (0x44, 8, Err(AccessError::Alignment)),
        (0x80, 4, Err(AccessError::Offset)),
        (0xffc, 4, Err(AccessError::Offset)),
        (0x1000, 4, Err(AccessError::Locality)),
        (0x4040, 4, Err(AccessError::Locality)),
        (0x5000, 4, Err(AccessError::Offset)),
        (u64::MAX, 1, Err(AccessError::Offset)),
    ];
    for &(offset, size, want) in table {
        let got = Access::new(offset, size).map(|a| (a.locality, a.offset));
        assert_eq!(got, want, "offset {offset:#x} size {size}");
    }
}

#[test]
fn reset_state_reads_as_linux_expects() {
    let mut c = crb();
    let state = read(&mut c, LOC_STATE, 4) as u32;
    assert_eq!(
        state & loc_state::TPM_REG_VALID_STS,
        loc_state::TPM_REG_VALID_STS
    );
    assert_eq!(state & loc_state::LOC_ASSIGNED, 0);
    assert_eq!(read(&mut c, LOC_STS, 4), 0);
    assert_eq!(read(&mut c, CTRL_STS, 4) as u32, ctrl_sts::IDLE);
    let id = read(&mut c, INTERFACE_ID, 8);
    assert_eq!(id & 0xf, 1, "CRB interface active");
    assert_eq!((id >> 4) & 0xf, 1, "CRB interface version");
    assert_eq!(id & interface_id::CAP_LOCALITY, 0, "locality 0 only");
    assert_eq!((id >> 17) & 3, 1, "CRB selected");
    assert_eq!((id >> 32) as u16, VENDOR_ID);
    // The buffer registers, in pieces and whole, as Linux's crb_map_io reads them.
    assert_eq!(read(&mut c, CTRL_CMD_SIZE, 4), 0x1000);
    assert_eq!(read(&mut c, CTRL_RSP_SIZE, 4), 0x1000);
    assert_eq!(read(&mut c, CTRL_CMD_LADDR, 4), 0xfed4_5000);
    assert_eq!(read(&mut c, CTRL_CMD_HADDR, 4), 1);
    assert_eq!(read(&mut c, CTRL_RSP_ADDR, 8), BUFFER.gpa);
    assert_eq!(read(&mut c, CTRL_RSP_ADDR + 4, 4), 1);
    assert_eq!(read(&mut c, CTRL_CMD_LADDR + 1, 1), 0x50);
    assert_eq!(read(&mut c, INTERFACE_ID + 4, 2), u64::from(VENDOR_ID));
}

#[test]
fn linux_probe_and_one_command() {
    let mut c = crb();
    // crb_map_io: cmdReady before any locality is requested.
    assert_eq!(write(&mut c, CTRL_REQ, 4, 1), Ok(Effect::None));
    assert_eq!(read(&mut c, CTRL_REQ, 4), 0, "cmdReady completes at once");
    assert!(!c.is_idle());
    // START without the locality is refused and starts nothing.
    assert_eq!(write(&mut c, CTRL_START, 4, 1), Err(AccessError::NotActive));
    assert_eq!(read(&mut c, CTRL_START, 4), 0);
    // crb_request_locality, then crb_send.
    assert_eq!(write(&mut c, LOC_CTRL, 4, 1), Ok(Effect::None));
    let want = u64::from(loc_state::LOC_ASSIGNED | loc_state::TPM_REG_VALID_STS);
    assert_eq!(read(&mut c, LOC_STATE, 4) & want, want);
    assert_eq!(read(&mut c, LOC_STS, 4), u64::from(loc_sts::GRANTED));
    assert_eq!(write(&mut c, CTRL_CANCEL, 4, 0), Ok(Effect::None));
    assert_eq!(
        write(&mut c, CTRL_START, 4, 1),
        Ok(Effect::Execute {
            locality: 0,
            cancelled: false
        })
    );
    assert_eq!(read(&mut c, CTRL_START, 4), 1);
    // A second START while one runs does nothing.
    assert_eq!(write(&mut c, CTRL_START, 4, 1), Ok(Effect::None));
    c.complete(false);
    assert_eq!(read(&mut c, CTRL_START, 4), 0);
    assert_eq!(read(&mut c, CTRL_STS, 4), 0);
    // goIdle, relinquish.
    write(&mut c, CTRL_REQ, 4, 2).unwrap();
    assert!(c.is_idle());
    write(&mut c, LOC_CTRL, 4, 2).unwrap();
    assert_eq!(c.active_locality(), None);
    assert_eq!(c.stats().commands, 1);
    assert_eq!(c.stats().refused, 1);
}

#[test]
fn cancel_set_before_start_is_reported_with_the_start() {
    let mut c = crb();
    write(&mut c, LOC_CTRL, 4, 1).unwrap();
    write(&mut c, CTRL_CANCEL, 4, 1).unwrap();
    assert_eq!(read(&mut c, CTRL_CANCEL, 4), 1);
    assert_eq!(
        write(&mut c, CTRL_START, 1, 1),
        Ok(Effect::Execute {
            locality: 0,
            cancelled: true
        })
    );
}

#[test]
fn read_only_and_narrow_writes() {
    let mut c = crb();
    for reg in [
        LOC_STATE,
        LOC_STS,
        INTERFACE_ID,
        CTRL_STS,
        CTRL_CMD_SIZE,
        CTRL_CMD_LADDR,
        CTRL_RSP_ADDR,
    ] {
        assert_eq!(
            write(&mut c, reg, 4, 0),
            Err(AccessError::ReadOnly),
            "{reg:#x}"
        );
    }
    assert_eq!(
        write(&mut c, INTERFACE_ID, 8, 0),
        Err(AccessError::ReadOnly)
    );
    assert_eq!(read(&mut c, CTRL_CMD_LADDR, 4), 0xfed4_5000, "unchanged");
    // A byte write to LOC_CTRL's low byte requests the locality.
    write(&mut c, LOC_CTRL, 1, 1).unwrap();
    assert_eq!(c.active_locality(), Some(0));
    // Interrupt enable keeps only defined bits; status is write-1-to-clear of nothing.
    write(&mut c, INT_ENABLE, 4, 0xffff_ffff).unwrap();
    assert_eq!(read(&mut c, INT_ENABLE, 4), 0x8000_000f);
    write(&mut c, INT_STS, 4, 0xffff_ffff).unwrap();
    assert_eq!(read(&mut c, INT_STS, 4), 0);
    // An 8-byte write over CANCEL and START does both, START last.
    assert_eq!(
        write(&mut c, CTRL_CANCEL, 8, 1 << 32),
        Ok(Effect::Execute {
            locality: 0,
            cancelled: false
        })
    );
}

#[test]
fn a_fatal_completion_stays_until_reset() {
    let mut c = crb();
    write(&mut c, LOC_CTRL, 4, 1).unwrap();
    write(&mut c, CTRL_START, 4, 1).unwrap();
    c.complete(true);
    assert_eq!(
        read(&mut c, CTRL_STS, 4) as u32 & ctrl_sts::FATAL,
        ctrl_sts::FATAL
    );
    write(&mut c, CTRL_REQ, 4, 1).unwrap();
    assert!(c.is_fatal());
}

#[test]
fn the_image_is_what_reads_return() {
    let mut c = crb();
    write(&mut c, LOC_CTRL, 4, 1).unwrap();
    let image = c.image(0);
    for off in (0..REGS_END).step_by(4) {
        let want = u32::from_le_bytes(image[off as usize..off as usize + 4].try_into().unwrap());
        assert_eq!(read(&mut c, off, 4), u64::from(want), "{off:#x}");
    }
}

proptest! {
    /// Any access sequence: no panic, refused writes change nothing a read sees,
    /// and START is only ever set by the active locality.
    #[test]
    fn any_access_sequence_keeps_the_invariants(
        ops in proptest::collection::vec((any::<bool>(), 0u64..0x5100, 0u64..10, any::<u64>()), 0..64)
    ) {
        let mut c = crb();
        for (is_write, offset, size, value) in ops {
            let Ok(access) = Access::new(offset, size) else { continue };
            if is_write {
                let before = c.image(0);
                match c.write(access, value) {
                    Ok(Effect::Execute { locality, .. }) => {
                        prop_assert_eq!(c.active_locality(), Some(locality));
                        prop_assert!(c.is_started());
                        c.complete(false);
                    }
                    Ok(Effect::None) => {}
                    Err(_) => prop_assert_eq!(before, c.image(0)),
                }
            } else {
                let v = c.read(access);
                prop_assert!(access.size == 8 || v >> (u32::from(access.size) * 8) == 0);
            }
            prop_assert!(!c.is_started());
        }
    }
}
