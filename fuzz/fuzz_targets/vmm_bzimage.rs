//! vmm boot: a hostile bzImage or guest payload region must be refused with an
//! error, never a panic, and any plan made from one must keep its invariants
//! (writes disjoint, inside RAM or the ACPI window, initrd below its limits).
//!
//! The first 4 bytes choose the RAM size and initrd length; the rest is tried both
//! as a bzImage and as a payload region (whose kernel and command line are then
//! planned too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmm::boot::layout::{ACPI_WINDOW_END, ACPI_WINDOW_START, KERNEL_LEGACY_GPA, LOW_RAM_END};
use vmm::boot::{plan, AcpiBlob, BzImage, GuestPayload, PlanInput};

const MIB: u64 = 1 << 20;

fn check(kernel: &[u8], cmdline: &[u8], ram_size: u64, initrd_len: u64) {
    let Ok(bz) = BzImage::parse(kernel) else {
        return;
    };
    let acpi_bytes = [0u8; 64];
    let input = PlanInput {
        ram_size,
        initrd_len,
        cmdline,
        acpi: Some(AcpiBlob {
            gpa: ACPI_WINDOW_START,
            bytes: &acpi_bytes,
            rsdp_gpa: ACPI_WINDOW_START,
            // The vTPM's event log, as linux.xml places it.
            nvs: Some((0xFED4_6000, 0x4000)),
        }),
    };
    let Ok(p) = plan(&bz, &input) else {
        return;
    };
    let mut spans: Vec<(u64, u64)> = p.writes.iter().map(|w| (w.gpa, w.end())).collect();
    spans.sort_unstable();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{spans:x?}");
    for &(start, end) in &spans {
        let in_ram = end <= LOW_RAM_END || (start >= KERNEL_LEGACY_GPA && end <= ram_size);
        assert!(in_ram || (start >= ACPI_WINDOW_START && end <= ACPI_WINDOW_END));
    }
    if initrd_len != 0 {
        let last = p.initrd_gpa + initrd_len - 1;
        assert!(last <= u64::from(bz.header().initrd_addr_max) && last < ram_size);
        assert!(p.initrd_gpa >= p.kernel_reserved.1);
    }
}

fuzz_target!(|data: &[u8]| {
    let (params, rest) = data.split_at(data.len().min(4));
    let mut p = [0u8; 4];
    p[..params.len()].copy_from_slice(params);
    // Mostly sane sizes (page multiples up to 3 GiB), sometimes anything.
    let ram_size = if p[0] & 0x80 == 0 {
        (u64::from(u16::from_le_bytes([p[0], p[1]])) % 3072 + 2) * MIB
    } else {
        u64::from(u32::from_le_bytes(p)) << 8
    };
    let initrd_len = u64::from(p[2]) * u64::from(p[3]) * 0x1001;
    check(rest, b"console=ttyS0", ram_size, initrd_len);
    if let Ok(payload) = GuestPayload::parse(rest) {
        check(
            payload.kernel,
            payload.cmdline,
            ram_size,
            payload.initrd.len() as u64,
        );
    }
});
