//! `ipc::Init` over the info page the builder wrote for this PD.
#![allow(unsafe_code)]

use core::ptr::NonNull;

use ipc::{InitError, Perms, Region};
use kernel_abi::image::perms;
use kernel_abi::info::{InfoPage, PAGE_LEN};

#[derive(Debug)]
pub struct RtInit {
    info: InfoPage<'static>,
}

impl RtInit {
    /// # Safety
    /// `info` must be the address of this PD's info page as passed at entry: mapped
    /// read-only for the PD's lifetime and never written again.
    pub unsafe fn new(info: u64) -> Option<Self> {
        // SAFETY: per the contract above, PAGE_LEN readable bytes that never change.
        let page: &'static [u8] =
            unsafe { core::slice::from_raw_parts(info as *const u8, PAGE_LEN) };
        InfoPage::parse(page).map(|info| Self { info })
    }

    pub fn name(&self) -> &str {
        kernel_abi::name_str(&self.info.header.name).unwrap_or("?")
    }
}

impl ipc::Init for RtInit {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        let r = self
            .info
            .region(setvar)
            .ok_or(InitError::MissingRegion(setvar))?;
        let base = NonNull::new(r.vaddr as *mut u8).ok_or(InitError::MissingRegion(setvar))?;
        let p = r.perms as u32;
        let granted = Perms {
            read: p & perms::R != 0,
            write: p & perms::W != 0,
            execute: p & perms::X != 0,
        };
        let len = usize::try_from(r.size).map_err(|_| InitError::MissingRegion(setvar))?;
        // SAFETY: the kernel mapped [vaddr, vaddr+size) with these perms for the PD's
        // lifetime (the builder wrote both the map and this entry from the same
        // system.xml <map>); vaddr is page aligned; others reach it only from their
        // own address spaces.
        Ok(unsafe { Region::from_raw_parts(base, len, granted) })
    }

    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        self.info
            .variable(name)
            .ok_or(InitError::MissingVariable(name))
    }

    fn pd_name(&self) -> &str {
        self.name()
    }
}
