//! Opcodes and the bounded accessors CDB decoding uses.

use super::Sense;

/// SCSI operation codes this target knows about.
pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const READ6: u8 = 0x08;
    pub const WRITE6: u8 = 0x0A;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SENSE6: u8 = 0x1A;
    pub const READ_CAPACITY10: u8 = 0x25;
    pub const READ10: u8 = 0x28;
    pub const WRITE10: u8 = 0x2A;
    pub const SYNCHRONIZE_CACHE10: u8 = 0x35;
    pub const WRITE_SAME10: u8 = 0x41;
    pub const UNMAP: u8 = 0x42;
    pub const MODE_SENSE10: u8 = 0x5A;
    pub const READ16: u8 = 0x88;
    pub const WRITE16: u8 = 0x8A;
    pub const SYNCHRONIZE_CACHE16: u8 = 0x91;
    pub const WRITE_SAME16: u8 = 0x93;
    pub const SERVICE_ACTION_IN16: u8 = 0x9E;
    pub const REPORT_LUNS: u8 = 0xA0;
    pub const READ12: u8 = 0xA8;
    pub const WRITE12: u8 = 0xAA;

    /// SERVICE ACTION IN(16) service action.
    pub const SA_READ_CAPACITY16: u8 = 0x10;
}

/// CDB length implied by the opcode's group code; `None` for vendor groups.
pub fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

/// A CDB whose length has been checked against its opcode, with big-endian field
/// accessors that cannot index out of bounds.
#[derive(Copy, Clone, Debug)]
pub struct Cdb<'a>(&'a [u8]);

impl<'a> Cdb<'a> {
    /// Accepts `bytes` if it is at least as long as the opcode's CDB length.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Sense> {
        let opcode = *bytes.first().ok_or(Sense::INVALID_FIELD_IN_CDB)?;
        let need = cdb_len(opcode).ok_or(Sense::INVALID_COMMAND_OPCODE)?;
        if bytes.len() < need {
            return Err(Sense::INVALID_FIELD_IN_CDB);
        }
        Ok(Self(&bytes[..need]))
    }

    pub fn opcode(&self) -> u8 {
        self.u8(0)
    }

    pub fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }

    fn be(&self, at: usize, n: usize) -> u64 {
        (at..at + n).fold(0u64, |acc, i| acc << 8 | u64::from(self.u8(i)))
    }

    pub fn u16(&self, at: usize) -> u16 {
        self.be(at, 2) as u16
    }

    pub fn u24(&self, at: usize) -> u32 {
        self.be(at, 3) as u32
    }

    pub fn u32(&self, at: usize) -> u32 {
        self.be(at, 4) as u32
    }

    pub fn u64(&self, at: usize) -> u64 {
        self.be(at, 8)
    }

    pub fn bit(&self, at: usize, bit: u8) -> bool {
        self.u8(at) >> bit & 1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lengths_and_short_cdbs() {
        assert_eq!(cdb_len(op::INQUIRY), Some(6));
        assert_eq!(cdb_len(op::READ10), Some(10));
        assert_eq!(cdb_len(op::MODE_SENSE10), Some(10));
        assert_eq!(cdb_len(op::READ16), Some(16));
        assert_eq!(cdb_len(op::REPORT_LUNS), Some(12));
        assert_eq!(cdb_len(0x60), None);
        assert_eq!(Cdb::new(&[]).unwrap_err(), Sense::INVALID_FIELD_IN_CDB);
        assert_eq!(
            Cdb::new(&[op::READ10, 0, 0]).unwrap_err(),
            Sense::INVALID_FIELD_IN_CDB
        );
        let c = Cdb::new(&[op::READ16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0, 0, 0]).unwrap();
        assert_eq!(c.u64(2), 0x0102030405060708);
        assert_eq!(c.u32(10), 0x100);
        assert_eq!(c.u8(99), 0);
    }
}
