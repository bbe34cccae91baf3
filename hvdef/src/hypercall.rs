//! The hypercall ABI: call codes, the RCX control word, the RAX result word, and the
//! input/output structures guests place in their hypercall pages.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::HvStatus;

/// A hypercall call code (bits 0..16 of the control word).
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HypercallCode(pub u16);

crate::named_values! {
    HypercallCode debug("{}", "HypercallCode({:#06x})") {
        FLUSH_VIRTUAL_ADDRESS_SPACE = 0x0002 => "HvCallFlushVirtualAddressSpace",
        FLUSH_VIRTUAL_ADDRESS_LIST = 0x0003 => "HvCallFlushVirtualAddressList",
        MODIFY_VTL_PROTECTION_MASK = 0x000C => "HvCallModifyVtlProtectionMask",
        ENABLE_PARTITION_VTL = 0x000D => "HvCallEnablePartitionVtl",
        ENABLE_VP_VTL = 0x000F => "HvCallEnableVpVtl",
        VTL_CALL = 0x0011 => "HvCallVtlCall",
        VTL_RETURN = 0x0012 => "HvCallVtlReturn",
        GET_VP_REGISTERS = 0x0050 => "HvCallGetVpRegisters",
        SET_VP_REGISTERS = 0x0051 => "HvCallSetVpRegisters",
        POST_MESSAGE = 0x005C => "HvCallPostMessage",
        SIGNAL_EVENT = 0x005D => "HvCallSignalEvent",
        /// An isolated guest shares pages with the host (or takes them back); a rep
        /// list of GPA page numbers.
        MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY = 0x00DB => "HvCallModifySparseGpaPageHostVisibility",
    }
}

/// The hypercall input value a guest passes in RCX.
///
/// | bits  | field                         |
/// |-------|-------------------------------|
/// | 0-15  | call code                     |
/// | 16    | fast (register-based input)   |
/// | 17-26 | variable header size, qwords  |
/// | 27-30 | reserved, must be zero        |
/// | 31    | nested (for the L0 hypervisor)|
/// | 32-43 | rep count                     |
/// | 44-47 | reserved, must be zero        |
/// | 48-59 | rep start index               |
/// | 60-63 | reserved, must be zero        |
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Control(pub u64);

impl Control {
    const FAST: u64 = 1 << 16;
    const NESTED: u64 = 1 << 31;
    /// (shift, mask) of the multi-bit fields.
    const VARHDR: (u32, u64) = (17, 0x3FF);
    const REP_COUNT: (u32, u64) = (32, 0xFFF);
    const REP_START: (u32, u64) = (48, 0xFFF);
    /// Bits 27-30, 44-47 and 60-63.
    pub const RESERVED_MASK: u64 = (0xF << 27) | (0xF << 44) | (0xF << 60);
    /// The largest rep count or start index the 12-bit fields hold.
    pub const MAX_REPS: u16 = 0xFFF;

    pub const fn new(code: HypercallCode) -> Self {
        Self(code.0 as u64)
    }

    pub const fn code(self) -> HypercallCode {
        HypercallCode(self.0 as u16)
    }

    pub const fn fast(self) -> bool {
        self.0 & Self::FAST != 0
    }

    /// Variable header size in 8-byte units.
    pub const fn variable_header_qwords(self) -> u16 {
        self.field(Self::VARHDR)
    }

    pub const fn nested(self) -> bool {
        self.0 & Self::NESTED != 0
    }

    pub const fn rep_count(self) -> u16 {
        self.field(Self::REP_COUNT)
    }

    pub const fn rep_start(self) -> u16 {
        self.field(Self::REP_START)
    }

    /// The reserved bits the guest set (zero for a well-formed control word).
    pub const fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }

    pub const fn with_fast(self, fast: bool) -> Self {
        self.with_flag(Self::FAST, fast)
    }

    pub const fn with_variable_header_qwords(self, qwords: u16) -> Self {
        self.with_field(Self::VARHDR, qwords)
    }

    pub const fn with_nested(self, nested: bool) -> Self {
        self.with_flag(Self::NESTED, nested)
    }

    /// Counts past [`Self::MAX_REPS`] are cut to the field's 12 bits.
    pub const fn with_rep_count(self, count: u16) -> Self {
        self.with_field(Self::REP_COUNT, count)
    }

    pub const fn with_rep_start(self, start: u16) -> Self {
        self.with_field(Self::REP_START, start)
    }

    const fn field(self, (shift, mask): (u32, u64)) -> u16 {
        ((self.0 >> shift) & mask) as u16
    }

    const fn with_field(self, (shift, mask): (u32, u64), value: u16) -> Self {
        Self((self.0 & !(mask << shift)) | ((value as u64 & mask) << shift))
    }

    const fn with_flag(self, flag: u64, on: bool) -> Self {
        Self((self.0 & !flag) | if on { flag } else { 0 })
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("code", &self.code())
            .field("fast", &self.fast())
            .field("varhdr_qwords", &self.variable_header_qwords())
            .field("rep_count", &self.rep_count())
            .field("rep_start", &self.rep_start())
            .field("reserved", &format_args!("{:#x}", self.reserved_bits()))
            .finish()
    }
}

/// The hypercall result a guest reads from RAX: status in bits 0-15, reps completed in
/// bits 32-43, everything else zero.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct HypercallResult(pub u64);

impl HypercallResult {
    pub const SUCCESS: Self = Self(0);

    pub const fn new(status: HvStatus, reps_completed: u16) -> Self {
        Self(status.0 as u64 | ((reps_completed as u64 & 0xFFF) << 32))
    }

    pub const fn status(self) -> HvStatus {
        HvStatus(self.0 as u16)
    }

    pub const fn reps_completed(self) -> u16 {
        ((self.0 >> 32) & 0xFFF) as u16
    }
}

impl From<HvStatus> for HypercallResult {
    fn from(status: HvStatus) -> Self {
        Self::new(status, 0)
    }
}

impl fmt::Debug for HypercallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} reps={}", self.status(), self.reps_completed())
    }
}

/// Largest payload a posted message carries.
pub const HV_MESSAGE_PAYLOAD_MAX: usize = 240;

/// HvCallPostMessage input (slow call, 256 bytes).
#[repr(C)]
#[derive(Copy, Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PostMessageInput {
    pub connection_id: u32,
    pub reserved: u32,
    pub message_type: u32,
    pub payload_size: u32,
    pub payload: [u8; HV_MESSAGE_PAYLOAD_MAX],
}
const _: () = assert!(core::mem::size_of::<PostMessageInput>() == 256);

impl PostMessageInput {
    /// The input a guest posts `payload` with; `None` when it exceeds
    /// [`HV_MESSAGE_PAYLOAD_MAX`].
    pub fn new(connection_id: u32, message_type: u32, payload: &[u8]) -> Option<Self> {
        let mut input = Self {
            connection_id,
            reserved: 0,
            message_type,
            payload_size: u32::try_from(payload.len()).ok()?,
            payload: [0; HV_MESSAGE_PAYLOAD_MAX],
        };
        input
            .payload
            .get_mut(..payload.len())?
            .copy_from_slice(payload);
        Some(input)
    }
}

/// HvCallSignalEvent input: 8 bytes, which Linux passes as a fast call in RDX.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SignalEventInput {
    pub connection_id: u32,
    pub flag_number: u16,
    pub reserved: u16,
}
const _: () = assert!(core::mem::size_of::<SignalEventInput>() == 8);

impl SignalEventInput {
    /// The control word of the fast call Linux makes.
    pub const FAST_CONTROL: Control = Control::new(HypercallCode::SIGNAL_EVENT).with_fast(true);

    pub const fn new(connection_id: u32, flag_number: u16) -> Self {
        Self {
            connection_id,
            flag_number,
            reserved: 0,
        }
    }

    pub const fn from_u64(v: u64) -> Self {
        Self {
            connection_id: v as u32,
            flag_number: (v >> 32) as u16,
            reserved: (v >> 48) as u16,
        }
    }

    pub const fn to_u64(self) -> u64 {
        self.connection_id as u64 | (self.flag_number as u64) << 32 | (self.reserved as u64) << 48
    }
}

/// HvCallEnablePartitionVtl input.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EnablePartitionVtlInput {
    pub partition_id: u64,
    pub target_vtl: u8,
    /// Bit 0 enables MBEC; the others are reserved.
    pub flags: u8,
    pub reserved_z0: u16,
    pub reserved_z1: u32,
}
const _: () = assert!(core::mem::size_of::<EnablePartitionVtlInput>() == 16);

impl EnablePartitionVtlInput {
    pub const FLAG_ENABLE_MBEC: u8 = 1;
    pub const FLAGS_RESERVED: u8 = !Self::FLAG_ENABLE_MBEC;
}

/// An x64 segment register as hypercall inputs carry it.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SegmentRegister {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub attributes: u16,
}
const _: () = assert!(core::mem::size_of::<SegmentRegister>() == 16);

/// An x64 descriptor-table register (IDTR/GDTR) as hypercall inputs carry it.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct TableRegister {
    pub pad: [u16; 3],
    pub limit: u16,
    pub base: u64,
}
const _: () = assert!(core::mem::size_of::<TableRegister>() == 16);

/// `HV_INITIAL_VP_CONTEXT` (x64): where a VP starts on its first entry to a VTL.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct InitialVpContextX64 {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cs: SegmentRegister,
    pub ds: SegmentRegister,
    pub es: SegmentRegister,
    pub fs: SegmentRegister,
    pub gs: SegmentRegister,
    pub ss: SegmentRegister,
    pub tr: SegmentRegister,
    pub ldtr: SegmentRegister,
    pub idtr: TableRegister,
    pub gdtr: TableRegister,
    pub efer: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub msr_cr_pat: u64,
}
const _: () = assert!(core::mem::size_of::<InitialVpContextX64>() == 224);

/// HvCallEnableVpVtl input (x64).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EnableVpVtlInput {
    pub partition_id: u64,
    pub vp_index: u32,
    pub target_vtl: u8,
    pub reserved: [u8; 3],
    pub context: InitialVpContextX64,
}
const _: () = assert!(core::mem::size_of::<EnableVpVtlInput>() == 240);

/// The fixed header of HvCallGetVpRegisters / HvCallSetVpRegisters (rep calls).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GetSetVpRegistersHeader {
    pub partition_id: u64,
    pub vp_index: u32,
    /// An `HV_INPUT_VTL` byte.
    pub input_vtl: u8,
    pub reserved: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<GetSetVpRegistersHeader>() == 16);

/// Header of HvCallModifySparseGpaPageHostVisibility; the rep list of GPA page
/// numbers (u64) follows.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModifyHostVisibilityHeader {
    pub partition_id: u64,
    /// [`host_visibility`] bits.
    pub host_visibility: u32,
    pub reserved: u32,
}
const _: () = assert!(core::mem::size_of::<ModifyHostVisibilityHeader>() == 16);

/// `HV_MAP_GPA_*` access the host gets to a page (0 = private again).
pub mod host_visibility {
    pub const READABLE: u32 = 1;
    pub const WRITABLE: u32 = 2;
    pub const MASK: u32 = READABLE | WRITABLE;
}

/// `HV_REGISTER_NAME`.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HvRegisterName(pub u32);

impl HvRegisterName {
    pub const HYPERCALL: Self = Self(0x0009_0001);
    pub const GUEST_OS_ID: Self = Self(0x0009_0002);
    pub const VP_INDEX: Self = Self(0x0009_0003);
    pub const VSM_CODE_PAGE_OFFSETS: Self = Self(0x000D_0002);
    pub const VSM_VP_STATUS: Self = Self(0x000D_0003);
    pub const VSM_PARTITION_STATUS: Self = Self(0x000D_0004);
}

impl fmt::Debug for HvRegisterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HvRegisterName({:#010x})", self.0)
    }
}

/// `HV_REGISTER_VALUE`: 128 bits, of which most registers use the low 64.
#[repr(C)]
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct HvRegisterValue {
    pub low: u64,
    pub high: u64,
}
const _: () = assert!(core::mem::size_of::<HvRegisterValue>() == 16);

impl From<u64> for HvRegisterValue {
    fn from(low: u64) -> Self {
        Self { low, high: 0 }
    }
}

/// One element of HvCallSetVpRegisters: a name and the value to store.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HvRegisterAssoc {
    pub name: HvRegisterName,
    pub reserved: [u32; 3],
    pub value: HvRegisterValue,
}
const _: () = assert!(core::mem::size_of::<HvRegisterAssoc>() == 32);

/// `HvRegisterVsmVpStatus`: which VTL a VP runs in and which it has enabled.
pub const fn vsm_vp_status(active_vtl: u8, enabled_vtl_set: u16) -> u64 {
    (active_vtl as u64 & 0xF) | (enabled_vtl_set as u64) << 16
}

/// `HvRegisterVsmPartitionStatus`: the partition's enabled VTLs and the highest one.
pub const fn vsm_partition_status(enabled_vtl_set: u16, maximum_vtl: u8) -> u64 {
    enabled_vtl_set as u64 | (maximum_vtl as u64 & 0xF) << 16
}

/// `HvRegisterVsmCodePageOffsets`: where the VTL call and return sequences sit in the
/// hypercall page.
pub const fn vsm_code_page_offsets(call_offset: u16, return_offset: u16) -> u64 {
    (call_offset as u64 & 0xFFF) | (return_offset as u64 & 0xFFF) << 12
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_fields_sit_where_linux_puts_them() {
        // Linux: HV_HYPERCALL_FAST_BIT 16, VARHEAD_OFFSET 17, REP_COMP_OFFSET 32,
        // REP_START_OFFSET 48.
        let c = Control(0x005C | 1 << 16 | 3 << 17 | 5 << 32 | 2 << 48);
        assert_eq!(c.code(), HypercallCode::POST_MESSAGE);
        assert!(c.fast());
        assert_eq!(c.variable_header_qwords(), 3);
        assert_eq!(c.rep_count(), 5);
        assert_eq!(c.rep_start(), 2);
        assert_eq!(c.reserved_bits(), 0);
        assert!(!c.nested());
    }

    #[test]
    fn the_setters_write_only_their_field() {
        let all = Control(!Control::RESERVED_MASK);
        let c = all
            .with_fast(false)
            .with_nested(false)
            .with_variable_header_qwords(1)
            .with_rep_count(Control::MAX_REPS + 1)
            .with_rep_start(7);
        assert_eq!(c.code(), HypercallCode(0xFFFF));
        assert!(!c.fast() && !c.nested());
        assert_eq!(c.variable_header_qwords(), 1);
        assert_eq!(c.rep_count(), 0, "cut to 12 bits");
        assert_eq!(c.rep_start(), 7);
        assert_eq!(c.reserved_bits(), 0);
        let back = c.with_fast(true).with_nested(true);
        assert_eq!(back.0 & (1 << 16 | 1 << 31), 1 << 16 | 1 << 31);
    }

    #[test]
    fn call_codes_print_their_tlfs_names() {
        let name = |c| std::format!("{c:?}");
        assert_eq!(name(HypercallCode::POST_MESSAGE), "HvCallPostMessage");
        assert_eq!(
            name(HypercallCode::MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY),
            "HvCallModifySparseGpaPageHostVisibility"
        );
        assert_eq!(name(HypercallCode(0x7777)), "HypercallCode(0x7777)");
        assert_eq!(HvStatus(0x0012).name(), Some("INVALID_CONNECTION_ID"));
        assert_eq!(HvStatus(0x0001).name(), None);
    }

    #[test]
    fn every_reserved_bit_is_reported() {
        for bit in (27..31).chain(44..48).chain(60..64) {
            assert_ne!(Control(1 << bit).reserved_bits(), 0, "bit {bit}");
        }
        for bit in (0..27).chain(31..44).chain(48..60) {
            assert_eq!(Control(1 << bit).reserved_bits(), 0, "bit {bit}");
        }
    }

    #[test]
    fn result_word_layout() {
        let r = HypercallResult::new(HvStatus::INVALID_PARAMETER, 7);
        assert_eq!(r.0, 5 | 7 << 32);
        assert_eq!(r.status(), HvStatus::INVALID_PARAMETER);
        assert_eq!(r.reps_completed(), 7);
    }

    #[test]
    fn signal_event_fast_input_round_trips() {
        // Linux: connection id in bits 0-31, flag number in bits 32-47.
        let v = 0x0000_0015_0000_0007u64;
        let s = SignalEventInput::from_u64(v);
        assert_eq!(s.connection_id, 7);
        assert_eq!(s.flag_number, 0x15);
        assert_eq!(s.reserved, 0);
        assert_eq!(s.to_u64(), v);
        assert_eq!(s.as_bytes(), &v.to_le_bytes());
        assert_eq!(SignalEventInput::new(7, 0x15), s);
        assert!(SignalEventInput::FAST_CONTROL.fast());
        assert_eq!(
            SignalEventInput::FAST_CONTROL.code(),
            HypercallCode::SIGNAL_EVENT
        );
    }

    #[test]
    fn post_message_input_holds_up_to_240_payload_bytes() {
        let p = PostMessageInput::new(9, 1, b"hi").unwrap();
        assert_eq!((p.connection_id, p.message_type, p.payload_size), (9, 1, 2));
        assert_eq!(&p.payload[..3], b"hi\0");
        let full = [0xAB; HV_MESSAGE_PAYLOAD_MAX];
        assert_eq!(PostMessageInput::new(1, 1, &full).unwrap().payload, full);
        assert!(PostMessageInput::new(1, 1, &[0; HV_MESSAGE_PAYLOAD_MAX + 1]).is_none());
    }

    proptest! {
        #[test]
        fn control_builders_round_trip(code: u16, fast: bool, varhdr in 0u16..0x400,
                                       count in 0u16..0x1000, start in 0u16..0x1000) {
            let c = Control::new(HypercallCode(code))
                .with_fast(fast)
                .with_variable_header_qwords(varhdr)
                .with_rep_count(count)
                .with_rep_start(start);
            prop_assert_eq!(c.code(), HypercallCode(code));
            prop_assert_eq!(c.fast(), fast);
            prop_assert_eq!(c.variable_header_qwords(), varhdr);
            prop_assert_eq!(c.rep_count(), count);
            prop_assert_eq!(c.rep_start(), start);
            prop_assert_eq!(c.reserved_bits(), 0);
        }

        #[test]
        fn decoding_any_word_never_panics(v: u64) {
            let c = Control(v);
            let _ = (c.code(), c.fast(), c.variable_header_qwords(), c.rep_count(),
                     c.rep_start(), c.reserved_bits(), c.nested());
            prop_assert!(c.rep_count() <= Control::MAX_REPS);
        }
    }
}
