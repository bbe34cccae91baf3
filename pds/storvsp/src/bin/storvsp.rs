//! host-sim entry point of the storvsp PD.
//!
//! Channel ids are this PD's build-time configuration; the system description must
//! give storvsp these ids:
//!
//! | id | peer         | role                                                     |
//! |----|--------------|----------------------------------------------------------|
//! | 0  | vmbus-server | calls us ([`vmbus_server::vsp`]); we notify on offer changes |
//! | 1  | hvcall-pd    | we call it (signal connection registration); it notifies on guest signals |
//! | 2  | synic-pd     | we call it (SIGNAL_EVENT to interrupt the guest)          |
//!
//! Regions: `guest_ram` (rw, guest RAM from GPA 0), `gpadl_window` (r), and `disk`
//! (rw) unless `STORVSP_IMAGE` names a disk image file, which is then the disk.

use ipc::{Init, InitError, Region};
use storvsp::pd::{self, StorvspPd};
use storvsp::FileBackend;

struct WithConstants<'a> {
    runtime: &'a dyn Init,
}

impl Init for WithConstants<'_> {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        self.runtime.region(setvar)
    }
    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        match name {
            pd::VMBUS_CHANNEL => Ok(0),
            pd::HVCALL_CHANNEL => Ok(1),
            pd::SYNIC_CHANNEL => Ok(2),
            pd::GUEST_RAM_GPA => Ok(0),
            _ => self.runtime.variable(name),
        }
    }
    fn pd_name(&self) -> &str {
        self.runtime.pd_name()
    }
}

fn main() {
    hostsim::run(|init, _kernel| {
        let init = WithConstants { runtime: init };
        let backend = match std::env::var_os("STORVSP_IMAGE") {
            Some(path) => match FileBackend::open(&path, false) {
                Ok(b) => Some(Box::new(b) as Box<dyn storvsp::Backend + Send>),
                Err(e) => {
                    eprintln!("storvsp: cannot open {}: {e}", path.to_string_lossy());
                    return Err(InitError::MissingRegion(pd::DISK));
                }
            },
            None => None,
        };
        StorvspPd::init(&init, backend)
    })
}
