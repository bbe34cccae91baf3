//! host-sim entry point of the echo server: echoes until the system is stopped.

fn main() {
    hostsim::run(|init, kernel| {
        let mut server = pd_echo::Server::new(init)?;
        // A broken queue is the client's fault; report it and keep serving.
        if let Err(e) = server.start(kernel) {
            eprintln!("echo_server: {e}");
        }
        Ok(server)
    })
}
