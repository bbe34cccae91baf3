//! pds/pd-echo's server, unchanged, on the bare-metal runtime.
#![no_std]
#![no_main]

pd_rt::entry!(|init, kernel| {
    let mut server = pd_echo::Server::new(init)?;
    if let Err(e) = server.start(kernel) {
        pd_rt::println!("echo_server: {e}");
    }
    Ok(server)
});
