//! The FADT (signature "FACP"), revision 6, hardware-reduced: no PM1 blocks, PM
//! timer, GPEs or SCI. Linux then also skips the legacy PIC and the PIT timer
//! check (arch/x86/kernel/acpi/boot.c, acpi_reduced_hw_init), neither of which the
//! VMM emulates, and powers off through the sleep control register.

use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::sdt::{table, Gas, HEADER_LEN};
use super::{SLEEP_CONTROL_PORT, SLEEP_STATUS_PORT};

const REVISION: u8 = 6;
/// ACPI 6.5.
const MINOR_REVISION: u8 = 5;
/// WBINVD works (required on IA-PC).
const FLAG_WBINVD: u32 = 1 << 0;
/// No fixed-feature power or sleep button.
const FLAG_PWR_BUTTON: u32 = 1 << 4;
const FLAG_SLP_BUTTON: u32 = 1 << 5;
const FLAG_HW_REDUCED_ACPI: u32 = 1 << 20;
/// IAPC_BOOT_ARCH: no VGA. The 8042 bit stays clear so Linux does not probe a
/// keyboard controller; the CMOS RTC bit stays clear: the RTC ports are served.
const BOOT_ARCH_NO_VGA: u16 = 1 << 2;

/// The FADT body after the SDT header (ACPI 6.5 table 5.9).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct FadtBody {
    pub firmware_ctrl: U32,
    pub dsdt: U32,
    pub reserved0: u8,
    pub preferred_pm_profile: u8,
    pub sci_int: U16,
    pub smi_cmd: U32,
    pub acpi_enable: u8,
    pub acpi_disable: u8,
    pub s4bios_req: u8,
    pub pstate_cnt: u8,
    pub pm1a_evt_blk: U32,
    pub pm1b_evt_blk: U32,
    pub pm1a_cnt_blk: U32,
    pub pm1b_cnt_blk: U32,
    pub pm2_cnt_blk: U32,
    pub pm_tmr_blk: U32,
    pub gpe0_blk: U32,
    pub gpe1_blk: U32,
    pub pm1_evt_len: u8,
    pub pm1_cnt_len: u8,
    pub pm2_cnt_len: u8,
    pub pm_tmr_len: u8,
    pub gpe0_blk_len: u8,
    pub gpe1_blk_len: u8,
    pub gpe1_base: u8,
    pub cst_cnt: u8,
    pub p_lvl2_lat: U16,
    pub p_lvl3_lat: U16,
    pub flush_size: U16,
    pub flush_stride: U16,
    pub duty_offset: u8,
    pub duty_width: u8,
    pub day_alrm: u8,
    pub mon_alrm: u8,
    pub century: u8,
    pub iapc_boot_arch: U16,
    pub reserved1: u8,
    pub flags: U32,
    pub reset_reg: Gas,
    pub reset_value: u8,
    pub arm_boot_arch: U16,
    pub minor_version: u8,
    pub x_firmware_ctrl: U64,
    pub x_dsdt: U64,
    pub x_pm1a_evt_blk: Gas,
    pub x_pm1b_evt_blk: Gas,
    pub x_pm1a_cnt_blk: Gas,
    pub x_pm1b_cnt_blk: Gas,
    pub x_pm2_cnt_blk: Gas,
    pub x_pm_tmr_blk: Gas,
    pub x_gpe0_blk: Gas,
    pub x_gpe1_blk: Gas,
    pub sleep_control_reg: Gas,
    pub sleep_status_reg: Gas,
    pub hypervisor_vendor_id: U64,
}

pub(crate) const FADT_LEN: usize = 276;

const _: () = {
    use core::mem::offset_of;
    assert!(HEADER_LEN + offset_of!(FadtBody, iapc_boot_arch) == 109);
    assert!(HEADER_LEN + offset_of!(FadtBody, flags) == 112);
    assert!(HEADER_LEN + offset_of!(FadtBody, minor_version) == 131);
    assert!(HEADER_LEN + offset_of!(FadtBody, x_dsdt) == 140);
    assert!(HEADER_LEN + offset_of!(FadtBody, sleep_control_reg) == 244);
    assert!(HEADER_LEN + offset_of!(FadtBody, sleep_status_reg) == 256);
    assert!(HEADER_LEN + core::mem::size_of::<FadtBody>() == FADT_LEN);
};

/// The FADT pointing at the DSDT at `dsdt_gpa`. The 32-bit DSDT field stays 0:
/// X_DSDT alone is used, and two differing values would draw a firmware warning.
pub(crate) fn fadt(dsdt_gpa: u64) -> Vec<u8> {
    let mut body = FadtBody::new_zeroed();
    body.iapc_boot_arch = U16::new(BOOT_ARCH_NO_VGA);
    body.flags = U32::new(FLAG_WBINVD | FLAG_PWR_BUTTON | FLAG_SLP_BUTTON | FLAG_HW_REDUCED_ACPI);
    body.minor_version = MINOR_REVISION;
    body.x_dsdt = U64::new(dsdt_gpa);
    body.sleep_control_reg = Gas::io_byte(SLEEP_CONTROL_PORT);
    body.sleep_status_reg = Gas::io_byte(SLEEP_STATUS_PORT);
    table(b"FACP", REVISION, body.as_bytes())
}
