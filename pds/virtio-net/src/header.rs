//! The virtio-net header in front of every frame (virtio 1.x, 5.1.6:
//! `virtio_net_hdr` with `num_buffers`, 12 bytes once VERSION_1 is agreed).

pub const HEADER_LEN: usize = 12;
/// The shortest Ethernet frame we pass on: destination, source, type.
pub const MIN_FRAME: usize = 14;

const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NetHeader {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
    pub num_buffers: u16,
}

/// Why a received buffer carries no frame we pass on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than an Ethernet header after the virtio-net header.
    Runt,
    /// The header asks for an offload we did not negotiate.
    Offload,
}

impl NetHeader {
    pub fn read(b: &[u8; HEADER_LEN]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
            num_buffers: u16_at(10),
        }
    }

    pub fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        for (i, v) in [
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
            self.num_buffers,
        ]
        .into_iter()
        .enumerate()
        {
            b[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// The frame in a received buffer (`buf`, of which the device says it wrote
/// `written` bytes): its range in `buf`, or why it is dropped. `written` past
/// the buffer or short of the header is the caller's error (the used ring
/// lied), checked before.
pub fn rx_frame(buf: &[u8], written: usize) -> Result<core::ops::Range<usize>, Drop> {
    let (Some(head), Some(_)) = (buf.first_chunk::<HEADER_LEN>(), buf.get(..written)) else {
        return Err(Drop::Runt);
    };
    let header = NetHeader::read(head);
    if header.gso_type != GSO_NONE || header.flags & F_NEEDS_CSUM != 0 {
        return Err(Drop::Offload);
    }
    if written < HEADER_LEN + MIN_FRAME {
        return Err(Drop::Runt);
    }
    Ok(HEADER_LEN..written)
}
