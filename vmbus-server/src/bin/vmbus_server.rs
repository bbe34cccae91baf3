//! host-sim entry point of vmbus-server.

fn main() {
    hostsim::run(|init, kernel| {
        let mut pd = vmbus_server::pd::VmbusPd::init(init)?;
        // A peer that misbehaves at start is reported; the PD keeps serving.
        if let Err(e) = pd.start(kernel) {
            eprintln!("vmbus_server: start: {e}");
        }
        Ok(pd)
    })
}
