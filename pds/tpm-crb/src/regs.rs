//! Register offsets and bits of one locality's CRB page (TCG PC Client PTP for TPM
//! 2.0, section 6.5.3: the CRB interface registers), relative to the page.

/// TPM_LOC_STATE_x: the locality state every locality's page shows.
pub const LOC_STATE: u64 = 0x00;
/// TPM_LOC_CTRL_x: request, relinquish, seize, reset establishment.
pub const LOC_CTRL: u64 = 0x08;
/// TPM_LOC_STS_x: whether this locality is granted, and whether it was seized.
pub const LOC_STS: u64 = 0x0c;
/// TPM_INTERFACE_ID_x (64 bits).
pub const INTERFACE_ID: u64 = 0x30;
/// TPM_CRB_CTRL_EXT_x (64 bits, reserved for extensions: reads zero).
pub const CTRL_EXT: u64 = 0x38;
/// TPM_CRB_CTRL_REQ_x: cmdReady / goIdle.
pub const CTRL_REQ: u64 = 0x40;
/// TPM_CRB_CTRL_STS_x: tpmSts (fatal error) / tpmIdle.
pub const CTRL_STS: u64 = 0x44;
pub const CTRL_CANCEL: u64 = 0x48;
pub const CTRL_START: u64 = 0x4c;
pub const INT_ENABLE: u64 = 0x50;
pub const INT_STS: u64 = 0x54;
pub const CTRL_CMD_SIZE: u64 = 0x58;
pub const CTRL_CMD_LADDR: u64 = 0x5c;
pub const CTRL_CMD_HADDR: u64 = 0x60;
pub const CTRL_RSP_SIZE: u64 = 0x64;
/// TPM_CRB_CTRL_RSP_ADDR_x (64 bits).
pub const CTRL_RSP_ADDR: u64 = 0x68;
/// Where the register block ends; 0x80.. would be the data buffer when a
/// platform puts it in the register page (this one puts it in its own page).
pub const REGS_END: u64 = 0x80;

pub mod loc_state {
    pub const TPM_ESTABLISHED: u32 = 1 << 0;
    pub const LOC_ASSIGNED: u32 = 1 << 1;
    pub const ACTIVE_LOCALITY_SHIFT: u32 = 2;
    pub const TPM_REG_VALID_STS: u32 = 1 << 7;
}

pub mod loc_ctrl {
    pub const REQUEST_ACCESS: u32 = 1 << 0;
    pub const RELINQUISH: u32 = 1 << 1;
    pub const SEIZE: u32 = 1 << 2;
    pub const RESET_ESTABLISHMENT: u32 = 1 << 3;
}

pub mod loc_sts {
    pub const GRANTED: u32 = 1 << 0;
    pub const BEEN_SEIZED: u32 = 1 << 1;
}

pub mod ctrl_req {
    pub const CMD_READY: u32 = 1 << 0;
    pub const GO_IDLE: u32 = 1 << 1;
}

pub mod ctrl_sts {
    /// tpmSts: the TPM hit a fatal error and needs a reset.
    pub const FATAL: u32 = 1 << 0;
    pub const IDLE: u32 = 1 << 1;
}

/// CTRL_START and CTRL_CANCEL: bit 0 invokes.
pub const INVOKE: u32 = 1 << 0;

pub mod interface_id {
    /// InterfaceType 1: CRB interface active.
    pub const TYPE_CRB: u64 = 1;
    /// InterfaceVersion 1: CRB.
    pub const VERSION_CRB: u64 = 1 << 4;
    /// CapLocality: all five localities (clear: locality 0 only).
    pub const CAP_LOCALITY: u64 = 1 << 8;
    /// CapDataXferSizeSupport (bits 11-12) = 3: 64-byte transfers.
    pub const XFER_64: u64 = 3 << 11;
    pub const CAP_CRB: u64 = 1 << 14;
    /// InterfaceSelector (bits 17-18) = 1: CRB.
    pub const SELECTOR_CRB: u64 = 1 << 17;
    /// IntfSelLock: the guest cannot switch to FIFO.
    pub const SEL_LOCK: u64 = 1 << 19;
    pub const RID_SHIFT: u32 = 24;
    pub const VID_SHIFT: u32 = 32;
    pub const DID_SHIFT: u32 = 48;
}
