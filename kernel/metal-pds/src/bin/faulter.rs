//! selftest's child: writes to the shared page, which it may only read. The kernel
//! stops it and reports the page fault to selftest.
#![no_std]
#![no_main]

use metal_pds::SHARED;

pd_rt::entry!(|init, _kernel| {
    let shared = init.region(SHARED)?;
    pd_rt::println!("faulter: writing to a page mapped read-only");
    let p = shared.base_address();
    // SAFETY: deliberately faults: the page is mapped without write rights.
    unsafe { core::ptr::write_volatile(p as *mut u64, 1) };
    pd_rt::println!("faulter: the write went through: isolation is broken");
    Ok(metal_pds::Idle)
});
