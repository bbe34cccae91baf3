//! The SCSI controller behind one storvsp instance: routes each request to the
//! logical unit its path/target/lun names, and answers for the ones that are not
//! there the way a scanning guest needs.

use alloc::vec::Vec;

use super::cdb::{op, Cdb};
use super::disk::{data_in, DiskConfig, ScsiDisk};
use super::inquiry;
use super::{ScsiOutcome, ScsiStatus, Sense};
use crate::data_buffer::DataBuffer;
use storvsp_protocol::{DataDirection, SrbStatus};

/// Where a logical unit sits on the controller.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScsiAddress {
    pub path: u8,
    pub target: u8,
    pub lun: u8,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AlreadyAttached(pub ScsiAddress);

#[derive(Debug, Default)]
pub struct Controller {
    disks: Vec<(ScsiAddress, ScsiDisk)>,
    /// Identity reported for absent logical units.
    absent: DiskConfig,
}

impl Controller {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn attach(&mut self, addr: ScsiAddress, disk: ScsiDisk) -> Result<(), AlreadyAttached> {
        if self.disks.iter().any(|(a, _)| *a == addr) {
            return Err(AlreadyAttached(addr));
        }
        let at = self.disks.partition_point(|(a, _)| *a < addr);
        self.disks.insert(at, (addr, disk));
        Ok(())
    }

    pub fn disk_mut(&mut self, addr: ScsiAddress) -> Option<&mut ScsiDisk> {
        self.disks
            .iter_mut()
            .find(|(a, _)| *a == addr)
            .map(|(_, d)| d)
    }

    /// Executes `cdb` for the logical unit at `addr`.
    pub fn execute(
        &mut self,
        addr: ScsiAddress,
        cdb: &[u8],
        dir: DataDirection,
        data: &dyn DataBuffer,
    ) -> ScsiOutcome {
        if cdb.first() == Some(&op::REPORT_LUNS) {
            return ScsiOutcome::from_result(self.report_luns(addr, cdb, dir, data));
        }
        if let Some(disk) = self.disk_mut(addr) {
            return disk.execute(cdb, dir, data);
        }
        if cdb.first() == Some(&op::INQUIRY) {
            return ScsiOutcome::from_result(self.absent_inquiry(cdb, dir, data));
        }
        // Linux drops the device on INVALID_LUN; the sense says the same in SCSI.
        ScsiOutcome {
            status: ScsiStatus::CHECK_CONDITION,
            srb_status: SrbStatus::INVALID_LUN,
            sense: Some(Sense::LUN_NOT_SUPPORTED),
            tx: 0,
        }
    }

    /// Lists the LUNs of `addr`'s path and target (empty when none are there).
    fn report_luns(
        &self,
        addr: ScsiAddress,
        cdb: &[u8],
        dir: DataDirection,
        data: &dyn DataBuffer,
    ) -> Result<usize, Sense> {
        let cdb = Cdb::new(cdb)?;
        match cdb.u8(2) {
            0x00 | 0x02 => {}
            0x01 => {} // well-known LUNs only: we have none, so the list is empty
            _ => return Err(Sense::invalid_cdb_field(2, None)),
        }
        let alloc = cdb.u32(6) as usize;
        if alloc < 4 {
            return Err(Sense::invalid_cdb_field(6, None));
        }
        let mut list = Vec::with_capacity(8 + 8 * self.disks.len());
        list.extend_from_slice(&[0u8; 8]);
        if cdb.u8(2) != 0x01 {
            for (a, _) in &self.disks {
                if a.path == addr.path && a.target == addr.target {
                    // Peripheral device addressing, single level.
                    list.extend_from_slice(&[0, a.lun, 0, 0, 0, 0, 0, 0]);
                }
            }
        }
        let len = (list.len() - 8) as u32;
        list[0..4].copy_from_slice(&len.to_be_bytes());
        data_in(dir, data, &list, alloc)
    }

    /// Standard INQUIRY for a missing LUN says "no device here" (qualifier 3), so
    /// a scan moves on; VPD pages of a missing LUN do not exist.
    fn absent_inquiry(
        &self,
        cdb: &[u8],
        dir: DataDirection,
        data: &dyn DataBuffer,
    ) -> Result<usize, Sense> {
        let cdb = Cdb::new(cdb)?;
        if cdb.bit(1, 0) || cdb.bit(1, 1) {
            return Err(Sense::LUN_NOT_SUPPORTED);
        }
        if cdb.u8(2) != 0 {
            return Err(Sense::invalid_cdb_field(2, None));
        }
        let d = inquiry::standard(inquiry::NO_LUN, &self.absent);
        data_in(dir, data, &d, usize::from(cdb.u16(3)))
    }
}
