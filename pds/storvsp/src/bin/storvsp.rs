//! host-sim entry point of the storvsp PD.
//!
//! Channel ids and region names: [`storvsp::config::build`].
//!
//! Regions: `guest_ram` (rw, guest RAM from GPA 0), `gpadl_window` (r), and `disk`
//! (rw). On the host the disk is file I/O on the object behind `disk`
//! ([`hostsim::region_file`]): pread/pwrite, fdatasync for SYNCHRONIZE CACHE and
//! hole punching for UNMAP. That object is a memfd (a RAM disk) unless the
//! supervisor backs the region with an image file (`paravisor sim
//! --region-file <mr>=disk.img`).

use ipc::{Init, InitError, WithVariables};
use storvsp::config::build;
use storvsp::device::{self, DISK};
use storvsp::FileBackend;

fn main() {
    hostsim::run(|init, _kernel| {
        let init = WithVariables::new(init, &build::VARIABLES);
        // The grant itself must be there and writable, whichever way we reach it.
        let disk = init.region(DISK)?;
        if !disk.perms().covers(ipc::Perms::RW) {
            return Err(InitError::RegionPerms {
                name: DISK,
                needed: ipc::Perms::RW,
            });
        }
        let backend = match hostsim::region_file(DISK).map(|f| FileBackend::from_file(f, false)) {
            Some(Ok(b)) => Some(Box::new(b) as Box<dyn storvsp::Backend + Send>),
            Some(Err(e)) => {
                eprintln!("storvsp: the disk region's file: {e}");
                return Err(InitError::MissingRegion(DISK));
            }
            // No file behind it: the mapping is the disk.
            None => None,
        };
        let how = if backend.is_some() {
            "file I/O on the region's backing object"
        } else {
            "through the mapping"
        };
        let vsp = device::init(&init, backend)?;
        println!(
            "storvsp: disk of {} blocks of 512 bytes, {how}",
            disk.len() / 512
        );
        Ok(vsp)
    })
}
