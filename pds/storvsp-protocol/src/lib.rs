//! The storvsc/storvsp wire format: the `vstor_packet` every VMBus packet on a
//! storage channel carries, and the payloads that share its union.
//!
//! Sizes are pinned to what Linux's `drivers/scsi/storvsc_drv.c` lays out: a
//! 12-byte header plus a 52-byte payload area (64 bytes) since Windows 8, where the
//! SRB grew a 16-byte extension; pre-Windows-8 SRBs stop at 36 bytes.
//!
//! Its own crate so that a storvsc client (tests, guest-sim, benches) links the
//! wire format, not the VSP.
#![no_std]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A storvsc protocol version, `major << 8 | minor`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    pub const WIN6: Self = Self::new(2, 0);
    pub const WIN7: Self = Self::new(4, 2);
    /// The oldest version we speak: the SRB has its Windows 8 extension from here on.
    pub const WIN8: Self = Self::new(5, 1);
    pub const WIN8_1: Self = Self::new(6, 0);
    pub const WIN10: Self = Self::new(6, 2);

    /// What this VSP accepts, newest first (Linux proposes in the same order).
    pub const SUPPORTED: [Self; 3] = [Self::WIN10, Self::WIN8_1, Self::WIN8];

    pub const fn new(major: u8, minor: u8) -> Self {
        Self((major as u16) << 8 | minor as u16)
    }

    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// How many bytes of SRB a client of this version sends.
    pub fn srb_size(self) -> usize {
        if self >= Self::WIN8 {
            VMSCSI_REQUEST_SIZE
        } else {
            VMSCSI_REQUEST_SIZE_PRE_WIN8
        }
    }
}

/// `enum vstor_packet_operation`, open: a guest may send any value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct Operation(pub u32);

impl Operation {
    pub const COMPLETE_IO: Self = Self(1);
    pub const REMOVE_DEVICE: Self = Self(2);
    pub const EXECUTE_SRB: Self = Self(3);
    pub const RESET_LUN: Self = Self(4);
    pub const RESET_ADAPTER: Self = Self(5);
    pub const RESET_BUS: Self = Self(6);
    pub const BEGIN_INITIALIZATION: Self = Self(7);
    pub const END_INITIALIZATION: Self = Self(8);
    pub const QUERY_PROTOCOL_VERSION: Self = Self(9);
    pub const QUERY_PROPERTIES: Self = Self(10);
    pub const ENUMERATE_BUS: Self = Self(11);
    pub const FCHBA_DATA: Self = Self(12);
    pub const CREATE_SUB_CHANNELS: Self = Self(13);
    pub const EVENT_NOTIFICATION: Self = Self(14);
}

/// The NTSTATUS the VSP puts in `vstor_packet.status`. Linux only checks it for
/// zero; Windows guests map it to I/O errors.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct NtStatus(pub u32);

impl NtStatus {
    pub const SUCCESS: Self = Self(0);
    pub const BUFFER_OVERFLOW: Self = Self(0x8000_0005);
    pub const UNSUCCESSFUL: Self = Self(0xC000_0001);
    pub const INVALID_PARAMETER: Self = Self(0xC000_000D);
    pub const INVALID_DEVICE_REQUEST: Self = Self(0xC000_0010);
    pub const REVISION_MISMATCH: Self = Self(0xC000_0059);
    pub const DEVICE_DOES_NOT_EXIST: Self = Self(0xC000_00C0);
    pub const INVALID_DEVICE_STATE: Self = Self(0xC000_0184);
    pub const IO_DEVICE_ERROR: Self = Self(0xC000_0185);
}

/// `vstor_packet.flags`: the client wants a completion.
pub const REQUEST_COMPLETION_FLAG: u32 = 0x1;

/// The fixed head of every `vstor_packet`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VstorHeader {
    pub operation: Operation,
    pub flags: u32,
    pub status: NtStatus,
}

pub const VSTOR_HEADER_SIZE: usize = 12;
/// The payload union (`buffer[0x34]` in Linux).
pub const VSTOR_PAYLOAD_SIZE: usize = 0x34;
/// A whole `vstor_packet` as every current client sends it.
pub const VSTOR_PACKET_SIZE: usize = VSTOR_HEADER_SIZE + VSTOR_PAYLOAD_SIZE;

pub const CDB_SIZE: usize = 0x10;
pub const SENSE_BUFFER_SIZE: usize = 0x14;
pub const PRE_WIN8_SENSE_BUFFER_SIZE: usize = 0x12;

/// `struct vmscsi_request` with the Windows 8 extension (packed in Linux; every field
/// is naturally aligned here, so `repr(C)` has no padding).
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VmscsiRequest {
    pub length: u16,
    pub srb_status: u8,
    pub scsi_status: u8,
    pub port_number: u8,
    pub path_id: u8,
    pub target_id: u8,
    pub lun: u8,
    pub cdb_length: u8,
    pub sense_info_length: u8,
    pub data_in: u8,
    pub reserved: u8,
    pub data_transfer_length: u32,
    /// The CDB on the way in, sense data on the way out.
    pub cdb_or_sense: [u8; SENSE_BUFFER_SIZE],
    // The Windows 8 extension.
    pub reserve: u16,
    pub queue_tag: u8,
    pub queue_action: u8,
    pub srb_flags: u32,
    pub time_out_value: u32,
    pub queue_sort_key: u32,
}

impl VmscsiRequest {
    /// (sense key, ASC, ASCQ) of the fixed-format sense data a completion
    /// carries; zeros when it carries none.
    pub fn sense(&self) -> (u8, u8, u8) {
        if self.sense_info_length == 0 {
            return (0, 0, 0);
        }
        let s = &self.cdb_or_sense;
        (s[2] & 0xf, s[12], s[13])
    }
}

pub const VMSCSI_REQUEST_SIZE: usize = 52;
/// The extension a Windows 8 host added; older clients send this much less.
pub const VMSCSI_WIN8_EXTENSION_SIZE: usize = 16;
pub const VMSCSI_REQUEST_SIZE_PRE_WIN8: usize = VMSCSI_REQUEST_SIZE - VMSCSI_WIN8_EXTENSION_SIZE;

/// `vmscsi_request.data_in`, named from the initiator's point of view.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DataDirection(pub u8);

impl DataDirection {
    /// Data-out: guest memory to the disk.
    pub const WRITE: Self = Self(0);
    /// Data-in: the disk to guest memory.
    pub const READ: Self = Self(1);
    pub const UNKNOWN: Self = Self(2);
}

/// SRB flag bits the VSP looks at.
pub const SRB_FLAGS_DISABLE_AUTOSENSE: u32 = 0x20;

/// `vmscsi_request.srb_status` values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SrbStatus(pub u8);

impl SrbStatus {
    pub const PENDING: Self = Self(0x00);
    pub const SUCCESS: Self = Self(0x01);
    pub const ABORTED: Self = Self(0x02);
    pub const ERROR: Self = Self(0x04);
    pub const INVALID_REQUEST: Self = Self(0x06);
    pub const SELECTION_TIMEOUT: Self = Self(0x0A);
    pub const DATA_OVERRUN: Self = Self(0x12);
    pub const INVALID_LUN: Self = Self(0x20);
    /// Flag: `sense_data` holds valid sense.
    pub const AUTOSENSE_VALID: u8 = 0x80;
}

/// `struct vmstorage_channel_properties`, the QUERY_PROPERTIES answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ChannelProperties {
    pub reserved: u32,
    pub max_channel_count: u16,
    pub reserved1: u16,
    pub flags: u32,
    pub max_transfer_bytes: u32,
    pub reserved2: u64,
}

pub const STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL: u32 = 0x1;

/// `struct vmstorage_protocol_version`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VersionPayload {
    pub major_minor: u16,
    pub revision: u16,
}

/// The storvsc interface (class) GUID as the offer's `if_type` carries it, in the
/// mixed-endian byte order VMBus uses on the wire.
pub const SCSI_INTERFACE_ID: [u8; 16] = [
    0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f,
];

const _: () = {
    assert!(core::mem::size_of::<VstorHeader>() == VSTOR_HEADER_SIZE);
    assert!(core::mem::size_of::<VmscsiRequest>() == VMSCSI_REQUEST_SIZE);
    assert!(VMSCSI_REQUEST_SIZE == VSTOR_PAYLOAD_SIZE);
    assert!(VMSCSI_REQUEST_SIZE_PRE_WIN8 == 36);
    assert!(VSTOR_PACKET_SIZE == 64);
    assert!(core::mem::size_of::<ChannelProperties>() == 24);
    assert!(core::mem::size_of::<VersionPayload>() == 4);
    assert!(core::mem::offset_of!(VmscsiRequest, data_transfer_length) == 12);
    assert!(core::mem::offset_of!(VmscsiRequest, cdb_or_sense) == 16);
    assert!(core::mem::offset_of!(VmscsiRequest, srb_flags) == 40);
};

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn sense_is_read_only_when_the_completion_says_it_carries_some() {
        let mut srb = VmscsiRequest::new_zeroed();
        srb.cdb_or_sense[2] = 0xf5; // the upper bits are flags, not the key
        srb.cdb_or_sense[12] = 0x21;
        srb.cdb_or_sense[13] = 0x01;
        assert_eq!(srb.sense(), (0, 0, 0));
        srb.sense_info_length = SENSE_BUFFER_SIZE as u8;
        assert_eq!(srb.sense(), (5, 0x21, 0x01));
    }

    #[test]
    fn versions_order_and_srb_sizes() {
        assert_eq!(ProtocolVersion::WIN8.0, 0x0501);
        assert_eq!(ProtocolVersion::WIN8_1.0, 0x0600);
        assert_eq!(ProtocolVersion::WIN10.0, 0x0602);
        assert!(ProtocolVersion::WIN10 > ProtocolVersion::WIN8_1);
        assert_eq!(ProtocolVersion::WIN8.srb_size(), 52);
        assert_eq!(ProtocolVersion::WIN7.srb_size(), 36);
        assert!(!ProtocolVersion::WIN7.is_supported());
        assert!(ProtocolVersion::WIN8.is_supported());
    }

    #[test]
    fn srb_field_offsets_match_linux_packing() {
        let mut srb = VmscsiRequest::new_zeroed();
        srb.data_transfer_length = 0x11223344;
        srb.srb_flags = 0xAABBCCDD;
        srb.lun = 7;
        let b = srb.as_bytes();
        assert_eq!(b[7], 7);
        assert_eq!(&b[12..16], &0x11223344u32.to_le_bytes());
        assert_eq!(&b[40..44], &0xAABBCCDDu32.to_le_bytes());
    }
}
