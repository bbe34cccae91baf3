//! A top-level PD with no fault handler: reads an address nothing mapped. The
//! kernel reports the fault on the console; everyone else keeps running.
#![no_std]
#![no_main]

/// Not mapped in any PD: below the program, above page 0.
const UNMAPPED: usize = 0x1000_0000;

pd_rt::entry!(|_init, _kernel| {
    pd_rt::println!("loner: reading unmapped memory");
    // SAFETY: deliberately faults: nothing is mapped there.
    let v = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
    pd_rt::println!("loner: read {v:#x}: isolation is broken");
    Ok(metal_pds::Idle)
});
