//! The vmbus-server PD's start, shared by the images that differ only in how much
//! guest RAM GPADLs may name. Not in the library, which every boot-test PD links
//! (most have no heap).

extern crate alloc;

use ipc::{Init, InitError, Kernel, WithVariables};
use vmbus_server::config::build;
use vmbus_server::pd::{self, VmbusPd};

/// Builds the PD from its image's configuration with `guest_ram_size` bytes of
/// guest RAM at GPA 0; a VSP slot exists only when the system description grants
/// its GPADL window.
pub fn start(
    init: &dyn Init,
    kernel: &mut dyn Kernel,
    guest_ram_size: u64,
) -> Result<VmbusPd, InitError> {
    // The first entry of a name wins: the RAM size goes before the build table.
    let mut variables = [("", 0u64); 1 + build::VARIABLES.len() + pd::MAX_VSPS];
    variables[0] = (pd::GUEST_RAM_SIZE, guest_ram_size);
    variables[1..=build::VARIABLES.len()].copy_from_slice(&build::VARIABLES);
    let mut count = 1 + build::VARIABLES.len();
    for i in 0..pd::MAX_VSPS {
        if init.region(pd::VSP_GPADL_REGIONS[i]).is_ok() {
            variables[count] = build::vsp_variable(i);
            count += 1;
        }
    }
    let init = WithVariables::new(init, &variables[..count]);
    let mut pd = VmbusPd::init(&init)?;
    // A peer that misbehaves at start is reported; the PD keeps serving.
    if let Err(e) = pd.start(kernel) {
        pd_rt::println!("vmbus_server: start: {e}");
    }
    Ok(pd)
}

/// The whole image: its heap and its entry, with `guest_ram_size` bytes of guest RAM
/// (a constant generated from the image's system description).
macro_rules! vmbus_image {
    ($guest_ram_size:expr) => {
        pd_rt::global_heap!(512 * 1024);

        pd_rt::entry!(|init, kernel| vmbus_start::start(init, kernel, $guest_ram_size));
    };
}
