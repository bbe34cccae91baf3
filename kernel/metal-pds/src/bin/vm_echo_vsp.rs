//! The echo VSP on the bare-metal runtime, with its image's build-time
//! configuration.
#![no_std]
#![no_main]

use echo_vsp::config::build;
use ipc::WithVariables;

pd_rt::global_heap!(256 * 1024);

pd_rt::entry!(|init, kernel| {
    let init = WithVariables::new(init, &build::VARIABLES);
    let pd = echo_vsp::init(&init)?;
    // vmbus-server may have asked for offers before this PD was up; tell it again.
    if let Err(e) = pd.announce(kernel) {
        pd_rt::println!("echo_vsp: announcing the offer: {e}");
    }
    Ok(pd)
});
