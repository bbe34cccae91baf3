//! Never waits: spins for ever. With a budget below its period the kernel throttles
//! it, so the lower-priority PDs (loner, faulter) still run; without budgets they
//! would starve and the self-test would never finish.
#![no_std]
#![no_main]

pd_rt::entry!(|_init, _kernel| {
    pd_rt::println!("spinner: spinning for ever on a 20% budget");
    loop {
        core::hint::spin_loop();
    }
    #[allow(unreachable_code)]
    Ok(metal_pds::Idle)
});
