//! Fixed-format sense data (SPC-4 4.5.3) and the sense codes this target reports.

/// SPC sense keys.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SenseKey(pub u8);

impl SenseKey {
    pub const NO_SENSE: Self = Self(0x0);
    pub const NOT_READY: Self = Self(0x2);
    pub const MEDIUM_ERROR: Self = Self(0x3);
    pub const HARDWARE_ERROR: Self = Self(0x4);
    pub const ILLEGAL_REQUEST: Self = Self(0x5);
    pub const UNIT_ATTENTION: Self = Self(0x6);
    pub const DATA_PROTECT: Self = Self(0x7);
    pub const ABORTED_COMMAND: Self = Self(0xB);
}

/// Length of the fixed-format sense data we return.
pub const FIXED_SENSE_LEN: usize = 18;

/// What went wrong, as sense key / additional sense code / qualifier, plus an
/// optional sense-key-specific field pointer into the CDB or parameter list.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: SenseKey,
    pub asc: u8,
    pub ascq: u8,
    /// Field pointer for ILLEGAL REQUEST: (in_cdb, byte, bit).
    pub field: Option<FieldPointer>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FieldPointer {
    /// The error is in the CDB (else in the parameter data).
    pub in_cdb: bool,
    pub byte: u16,
    pub bit: Option<u8>,
}

impl Sense {
    pub const fn new(key: SenseKey, asc: u8, ascq: u8) -> Self {
        Self {
            key,
            asc,
            ascq,
            field: None,
        }
    }

    pub const NO_SENSE: Self = Self::new(SenseKey::NO_SENSE, 0, 0);
    pub const INVALID_COMMAND_OPCODE: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x20, 0);
    pub const LBA_OUT_OF_RANGE: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x21, 0);
    pub const INVALID_FIELD_IN_CDB: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x24, 0);
    pub const LUN_NOT_SUPPORTED: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x25, 0);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x26, 0);
    pub const PARAMETER_LIST_LENGTH_ERROR: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x1A, 0);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Self = Self::new(SenseKey::ILLEGAL_REQUEST, 0x39, 0);
    pub const WRITE_PROTECTED: Self = Self::new(SenseKey::DATA_PROTECT, 0x27, 0);
    pub const SPACE_ALLOCATION_FAILED: Self = Self::new(SenseKey::DATA_PROTECT, 0x27, 0x07);
    pub const UNRECOVERED_READ_ERROR: Self = Self::new(SenseKey::MEDIUM_ERROR, 0x11, 0);
    pub const WRITE_ERROR: Self = Self::new(SenseKey::MEDIUM_ERROR, 0x0C, 0);
    pub const INTERNAL_TARGET_FAILURE: Self = Self::new(SenseKey::HARDWARE_ERROR, 0x44, 0);
    /// The SRB's data direction disagrees with what the command moves.
    pub const DATA_PHASE_ERROR: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x00);
    /// The command returns more data than the SRB's buffer holds.
    pub const DATA_IN_OVERFLOW: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x08);
    /// The page list describes fewer bytes than the SRB's data transfer length.
    pub const DATA_IN_DESCRIPTOR_OVERFLOW: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x09);
    /// A data-in page is outside the guest memory this PD may touch.
    pub const DATA_IN_BUFFER_ERROR: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x0A);
    pub const DATA_OUT_OVERFLOW: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x0B);
    pub const DATA_OUT_DESCRIPTOR_OVERFLOW: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x0C);
    pub const DATA_OUT_BUFFER_ERROR: Self = Self::new(SenseKey::ABORTED_COMMAND, 0x4B, 0x0D);

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit` if one bit is wrong).
    pub const fn invalid_cdb_field(byte: u16, bit: Option<u8>) -> Self {
        Self {
            field: Some(FieldPointer {
                in_cdb: true,
                byte,
                bit,
            }),
            ..Self::INVALID_FIELD_IN_CDB
        }
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte`.
    pub const fn invalid_parameter_field(byte: u16) -> Self {
        Self {
            field: Some(FieldPointer {
                in_cdb: false,
                byte,
                bit: None,
            }),
            ..Self::INVALID_FIELD_IN_PARAMETER_LIST
        }
    }

    /// Fixed-format sense data, current error.
    pub fn to_fixed(&self) -> [u8; FIXED_SENSE_LEN] {
        let mut s = [0u8; FIXED_SENSE_LEN];
        s[0] = 0x70;
        s[2] = self.key.0 & 0x0f;
        s[7] = (FIXED_SENSE_LEN - 8) as u8;
        s[12] = self.asc;
        s[13] = self.ascq;
        if let Some(f) = self.field {
            // SKSV, C/D, BPV + bit pointer, then the field pointer.
            s[15] = 0x80 | if f.in_cdb { 0x40 } else { 0 } | f.bit.map_or(0, |b| 0x08 | (b & 0x7));
            s[16..18].copy_from_slice(&f.byte.to_be_bytes());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format_layout() {
        let s = Sense::invalid_cdb_field(2, Some(0)).to_fixed();
        assert_eq!(s[0], 0x70);
        assert_eq!(s[2], 0x05);
        assert_eq!(s[7], 10);
        assert_eq!((s[12], s[13]), (0x24, 0x00));
        assert_eq!(s[15], 0x80 | 0x40 | 0x08);
        assert_eq!(&s[16..18], &[0, 2]);
        let s = Sense::LBA_OUT_OF_RANGE.to_fixed();
        assert_eq!((s[2], s[12], s[13], s[15]), (5, 0x21, 0, 0));
    }
}
