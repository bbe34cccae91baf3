//! NDIS object identifiers Linux's `rndis_filter.c` queries and sets, and the NDIS
//! objects some of them carry.

use alloc::vec::Vec;
use zerocopy::byteorder::little_endian::{U16, U32};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// An NDIS object identifier: what a QUERY or SET names. Open: a guest may ask
/// for any; the named ones are those Linux's `rndis_filter.c` uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Oid(pub u32);

impl Oid {
    pub const GEN_SUPPORTED_LIST: Self = Self(0x0001_0101);
    pub const GEN_HARDWARE_STATUS: Self = Self(0x0001_0102);
    pub const GEN_MEDIA_SUPPORTED: Self = Self(0x0001_0103);
    pub const GEN_MEDIA_IN_USE: Self = Self(0x0001_0104);
    /// The largest frame without its Ethernet header: the MTU Linux caps itself to.
    pub const GEN_MAXIMUM_FRAME_SIZE: Self = Self(0x0001_0106);
    /// Units of 100 bit/s.
    pub const GEN_LINK_SPEED: Self = Self(0x0001_0107);
    pub const GEN_TRANSMIT_BUFFER_SPACE: Self = Self(0x0001_0108);
    pub const GEN_RECEIVE_BUFFER_SPACE: Self = Self(0x0001_0109);
    pub const GEN_VENDOR_ID: Self = Self(0x0001_010c);
    pub const GEN_VENDOR_DESCRIPTION: Self = Self(0x0001_010d);
    pub const GEN_CURRENT_PACKET_FILTER: Self = Self(0x0001_010e);
    pub const GEN_CURRENT_LOOKAHEAD: Self = Self(0x0001_010f);
    pub const GEN_DRIVER_VERSION: Self = Self(0x0001_0110);
    pub const GEN_MAXIMUM_TOTAL_SIZE: Self = Self(0x0001_0111);
    pub const GEN_MAC_OPTIONS: Self = Self(0x0001_0113);
    /// 0 connected, 1 disconnected.
    pub const GEN_MEDIA_CONNECT_STATUS: Self = Self(0x0001_0114);
    pub const GEN_MAXIMUM_SEND_PACKETS: Self = Self(0x0001_0115);
    pub const GEN_VENDOR_DRIVER_VERSION: Self = Self(0x0001_0116);
    pub const GEN_RECEIVE_SCALE_CAPABILITIES: Self = Self(0x0001_0203);
    pub const GEN_RECEIVE_SCALE_PARAMETERS: Self = Self(0x0001_0204);
    /// Linux sets "NetworkAddress" through it to change the MAC.
    pub const GEN_RNDIS_CONFIG_PARAMETER: Self = Self(0x0001_021b);
    pub const GEN_FRIENDLY_NAME: Self = Self(0x0002_0116);
    pub const GEN_XMIT_OK: Self = Self(0x0002_0101);
    pub const GEN_RCV_OK: Self = Self(0x0002_0102);
    pub const GEN_XMIT_ERROR: Self = Self(0x0002_0103);
    pub const GEN_RCV_ERROR: Self = Self(0x0002_0104);
    pub const GEN_RCV_NO_BUFFER: Self = Self(0x0002_0105);
    pub const P802_3_PERMANENT_ADDRESS: Self = Self(0x0101_0101);
    pub const P802_3_CURRENT_ADDRESS: Self = Self(0x0101_0102);
    pub const P802_3_MULTICAST_LIST: Self = Self(0x0101_0103);
    pub const P802_3_MAXIMUM_LIST_SIZE: Self = Self(0x0101_0104);
    pub const OFFLOAD_ENCAPSULATION: Self = Self(0x0101_010a);
    pub const TCP_OFFLOAD_CURRENT_CONFIG: Self = Self(0xfc01_020b);
    pub const TCP_OFFLOAD_PARAMETERS: Self = Self(0xfc01_020c);
    pub const TCP_OFFLOAD_HARDWARE_CAPABILITIES: Self = Self(0xfc01_020d);
}

/// `NDIS_PACKET_TYPE_*` bits of GEN_CURRENT_PACKET_FILTER.
pub mod filter {
    pub const DIRECTED: u32 = 0x1;
    pub const MULTICAST: u32 = 0x2;
    pub const ALL_MULTICAST: u32 = 0x4;
    pub const BROADCAST: u32 = 0x8;
    pub const PROMISCUOUS: u32 = 0x20;
}

/// `NDIS_OBJECT_TYPE_*`.
pub const OBJECT_TYPE_DEFAULT: u8 = 0x80;
pub const OBJECT_TYPE_RSS_CAPABILITIES: u8 = 0x88;
pub const OBJECT_TYPE_RSS_PARAMETERS: u8 = 0x89;
pub const OBJECT_TYPE_OFFLOAD: u8 = 0xa7;

wire_structs! {
    mod header;

    pub struct ObjectHeader {
        pub object_type: u8,
        pub revision: u8,
        pub size: U16,
    }
}

/// `struct ndis_offload` as Linux lays it out (revision 3, 156 bytes): the
/// checksum, LSO, IPsec, RSC and encapsulation capabilities, all as raw words.
/// Linux needs at least the 6.0 part (112 bytes) and type [`OBJECT_TYPE_OFFLOAD`].
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned,
)]
#[repr(C)]
pub struct Offload {
    pub header: ObjectHeader,
    /// ip4 tx encap/caps, ip4 rx encap/caps, ip6 tx encap/caps, ip6 rx encap/caps.
    pub checksum: [U32; 8],
    pub lso_v1: [U32; 4],
    pub ipsec_v1: [U32; 7],
    pub lso_v2: [U32; 7],
    pub flags: U32,
    pub ipsec_v2: [u8; 32],
    pub rsc: [u8; 4],
    pub encapsulation_gre: [U32; 2],
}

pub const OFFLOAD_SIZE: usize = size_of::<Offload>();
/// What Linux requires at least (`offsetof(struct ndis_offload, ipsecv2)`).
pub const OFFLOAD_SIZE_6_0: usize = 112;
pub const OFFLOAD_REVISION_3: u8 = 3;

wire_structs! {
    mod rss;

    /// `struct ndis_recv_scale_cap`.
    pub struct ReceiveScaleCapabilities {
        pub header: ObjectHeader,
        pub capabilities: U32,
        pub interrupt_messages: U32,
        pub receive_queues: U32,
        pub indirection_table_entries: U16,
    }

    /// `struct ndis_recv_scale_param` (revision 2): the indirection table and hash
    /// key follow at the offsets it names, counted from the object's start.
    pub struct ReceiveScaleParameters {
        pub header: ObjectHeader,
        pub flags: U16,
        pub base_cpu: U16,
        pub hash_info: U32,
        /// Bytes, 4 per entry.
        pub indirection_table_size: U16,
        pub reserved0: U16,
        pub indirection_table_offset: U32,
        pub hash_key_size: U16,
        pub reserved1: U16,
        pub hash_key_offset: U32,
        pub processor_masks_offset: U32,
        pub processor_masks: U32,
        pub processor_masks_entry_size: U32,
    }
}

/// `NDIS_RSS_PARAM_FLAG_*` of [`ReceiveScaleParameters::flags`]: which parts a
/// set leaves as they were, or RSS off.
pub mod rss_flags {
    pub const HASH_INFO_UNCHANGED: u16 = 0x0002;
    pub const ITABLE_UNCHANGED: u16 = 0x0004;
    pub const HASH_KEY_UNCHANGED: u16 = 0x0008;
    pub const DISABLE_RSS: u16 = 0x0020;
}

/// `NDIS_HASH_*` bits of [`ReceiveScaleParameters::hash_info`].
pub mod hash {
    /// The function, in the low byte: Toeplitz is the only one.
    pub const FUNCTION_MASK: u32 = 0xff;
    pub const TOEPLITZ: u32 = 0x1;
    /// Packet types hashed by their addresses alone.
    pub const IPV4: u32 = 0x100;
    pub const IPV6: u32 = 0x400;
    /// Packet types hashed by addresses and ports.
    pub const TCP_IPV4: u32 = 0x200;
    pub const TCP_IPV6: u32 = 0x1000;
    pub const UDP_IPV4: u32 = 0x4000;
    pub const UDP_IPV6: u32 = 0x8000;
}

/// OID_GEN_RECEIVE_SCALE_PARAMETERS as Linux's `rndis_set_rss_param_msg` lays it
/// out: the fixed part with `flags`, the indirection `table` right after it, the
/// `key` after the table, appended to `out`.
pub fn rss_parameters(flags: u16, hash_info: u32, table: &[u32], key: &[u8], out: &mut Vec<u8>) {
    let fixed = size_of::<ReceiveScaleParameters>();
    let table_bytes = 4 * table.len();
    let p = ReceiveScaleParameters {
        header: ObjectHeader {
            object_type: OBJECT_TYPE_RSS_PARAMETERS,
            revision: RSS_REVISION_2,
            size: U16::new(fixed as u16),
        },
        flags: U16::new(flags),
        base_cpu: U16::new(0),
        hash_info: U32::new(hash_info),
        indirection_table_size: U16::new(table_bytes as u16),
        reserved0: U16::new(0),
        indirection_table_offset: U32::new(fixed as u32),
        hash_key_size: U16::new(key.len() as u16),
        reserved1: U16::new(0),
        hash_key_offset: U32::new((fixed + table_bytes) as u32),
        processor_masks_offset: U32::new(0),
        processor_masks: U32::new(0),
        processor_masks_entry_size: U32::new(0),
    };
    out.extend_from_slice(p.as_bytes());
    table
        .iter()
        .for_each(|e| out.extend_from_slice(&e.to_le_bytes()));
    out.extend_from_slice(key);
}

/// `NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2` / `..._PARAMETERS_REVISION_2`.
pub const RSS_REVISION_2: u8 = 2;
/// The Toeplitz key length NDIS and Linux use.
pub const RSS_HASH_KEY_SIZE: usize = 40;

/// `NDIS_RSS_CAPS_*` of [`ReceiveScaleCapabilities::capabilities`]: Toeplitz
/// over TCP and UDP on both IP versions.
pub const RSS_CAPS_TOEPLITZ_TCP_UDP: u32 = 0x1 | 0x100 | 0x200 | 0x800 | 0x1000;

const _: () = {
    assert!(OFFLOAD_SIZE == 156);
    assert!(size_of::<ReceiveScaleCapabilities>() == 18);
    assert!(size_of::<ReceiveScaleParameters>() == 40);
};
