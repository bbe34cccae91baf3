//! Receive-side scaling (vRSS): which of the NIC's channels a received frame goes
//! to. The guest sets a Toeplitz key, the packet types to hash and an indirection
//! table (OID_GEN_RECEIVE_SCALE_PARAMETERS); a frame's hash over its addresses
//! (and ports, for the TCP/UDP types enabled) picks a table entry, the entry a
//! channel. Frames that are not IP, or whose type is not hashed, go to channel 0,
//! as Hyper-V's switch sends them.
//!
//! The parameters are guest bytes: every length, offset and entry is checked
//! before any of it replaces the current setting, so a bad set leaves the last
//! good one in force.

use alloc::vec::Vec;

use netvsp_protocol::oid::{self, hash, rss_flags, ReceiveScaleParameters};
use netvsp_protocol::rndis::Status;
use zerocopy::FromBytes;

/// Indirection table entries advertised (Linux's ITAB_NUM) and the most taken
/// (Linux's ITAB_NUM_MAX).
pub const TABLE_ENTRIES: u16 = 128;
pub const MAX_TABLE_ENTRIES: usize = 256;
pub const KEY_SIZE: usize = oid::RSS_HASH_KEY_SIZE;

/// Why a parameter set was refused; [`RssError::status`] is what the guest hears.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RssError {
    /// Shorter than the fixed part, or than its own header claims.
    Truncated,
    /// Not an RSS parameters object.
    WrongObject,
    /// A hash function other than Toeplitz.
    HashFunction,
    /// Not whole entries, none, or more than [`MAX_TABLE_ENTRIES`].
    TableSize,
    /// The table or key lies (partly) outside the object or over its fixed part.
    Placement,
    /// An entry names a channel the NIC cannot have.
    TableEntry(u32),
    KeySize,
    /// "Unchanged" for a part that was never set.
    NothingToKeep,
}

impl RssError {
    pub fn status(self) -> Status {
        match self {
            Self::Truncated => Status::INVALID_LENGTH,
            _ => Status::INVALID_DATA,
        }
    }
}

/// The guest's RSS setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    enabled: bool,
    key: Option<[u8; KEY_SIZE]>,
    /// `NDIS_HASH_*` packet types (the function bits cleared).
    types: Option<u32>,
    table: Vec<u8>,
}

/// The part of a `len`-byte object at `offset`, if it lies past the fixed part
/// and inside the object.
fn part(info: &[u8], offset: u32, len: usize) -> Result<&[u8], RssError> {
    let start = usize::try_from(offset).map_err(|_| RssError::Placement)?;
    if start < size_of::<ReceiveScaleParameters>() {
        return Err(RssError::Placement);
    }
    start
        .checked_add(len)
        .and_then(|end| info.get(start..end))
        .ok_or(RssError::Placement)
}

impl Rss {
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The indirection table in force (channel per entry).
    pub fn table(&self) -> &[u8] {
        &self.table
    }

    /// Applies an OID_GEN_RECEIVE_SCALE_PARAMETERS set whose entries may name
    /// channels `0..queues`.
    pub fn set(&mut self, info: &[u8], queues: u32) -> Result<(), RssError> {
        let (p, _) =
            ReceiveScaleParameters::read_from_prefix(info).map_err(|_| RssError::Truncated)?;
        if p.header.object_type != oid::OBJECT_TYPE_RSS_PARAMETERS || p.header.revision < 1 {
            return Err(RssError::WrongObject);
        }
        let size = usize::from(p.header.size.get());
        if size > info.len() {
            return Err(RssError::Truncated);
        }
        if size < size_of::<ReceiveScaleParameters>() {
            return Err(RssError::WrongObject);
        }
        let flags = p.flags.get();
        if flags & rss_flags::DISABLE_RSS != 0 {
            self.enabled = false;
            return Ok(());
        }
        let types = if flags & rss_flags::HASH_INFO_UNCHANGED != 0 {
            self.types.ok_or(RssError::NothingToKeep)?
        } else {
            let info = p.hash_info.get();
            match info & hash::FUNCTION_MASK {
                // No function: RSS off, as NDIS defines it.
                0 => {
                    self.enabled = false;
                    return Ok(());
                }
                hash::TOEPLITZ => info & !hash::FUNCTION_MASK,
                _ => return Err(RssError::HashFunction),
            }
        };
        let table = if flags & rss_flags::ITABLE_UNCHANGED != 0 {
            if self.table.is_empty() {
                return Err(RssError::NothingToKeep);
            }
            None
        } else {
            let bytes = usize::from(p.indirection_table_size.get());
            if bytes == 0 || bytes % 4 != 0 || bytes / 4 > MAX_TABLE_ENTRIES {
                return Err(RssError::TableSize);
            }
            let raw = part(info, p.indirection_table_offset.get(), bytes)?;
            let table = raw
                .chunks_exact(4)
                .map(|e| {
                    let q = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                    u8::try_from(q)
                        .ok()
                        .filter(|_| q < queues)
                        .ok_or(RssError::TableEntry(q))
                })
                .collect::<Result<Vec<u8>, _>>()?;
            Some(table)
        };
        let key = if flags & rss_flags::HASH_KEY_UNCHANGED != 0 {
            self.key.ok_or(RssError::NothingToKeep)?
        } else {
            if usize::from(p.hash_key_size.get()) != KEY_SIZE {
                return Err(RssError::KeySize);
            }
            let raw = part(info, p.hash_key_offset.get(), KEY_SIZE)?;
            let mut key = [0; KEY_SIZE];
            key.copy_from_slice(raw);
            key
        };
        if let Some(table) = table {
            self.table = table;
        }
        self.key = Some(key);
        self.types = Some(types);
        self.enabled = true;
        Ok(())
    }

    /// The channel for a received frame: 0 unless RSS is on and hashes its type.
    pub fn queue(&self, frame: &[u8]) -> u32 {
        let (Some(key), Some(types)) = (&self.key, self.types) else {
            return 0;
        };
        if !self.enabled || self.table.is_empty() {
            return 0;
        }
        let mut input = [0u8; 36];
        let Some(n) = hash_input(frame, types, &mut input) else {
            return 0;
        };
        let h = toeplitz(key, &input[..n]);
        let at = h as usize % self.table.len();
        self.table.get(at).map_or(0, |&q| u32::from(q))
    }
}

/// The Toeplitz hash of `input` under `key` (Microsoft's RSS definition: for every
/// set input bit, XOR in the 32 key bits starting at that bit's position).
pub fn toeplitz(key: &[u8; KEY_SIZE], input: &[u8]) -> u32 {
    let mut window = u64::from_be_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let mut result = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= (window >> (32 - bit)) as u32;
            }
        }
        window = (window << 8) | u64::from(key.get(i + 8).copied().unwrap_or(0));
    }
    result
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// Writes the hash input of `frame` into `out` (source address, destination
/// address, then source and destination port when its transport's type is
/// hashed); its length, or `None` when the frame's type is not hashed.
pub fn hash_input(frame: &[u8], types: u32, out: &mut [u8; 36]) -> Option<usize> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    if ethertype == 0x8100 {
        at += 4;
        ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    }
    let ip = frame.get(at + 2..)?;
    let (addrs, proto, l4, whole, v4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0xf) * 4;
            if ip[0] >> 4 != 4 || ihl < 20 {
                return None;
            }
            let fragment = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?) & 0x3fff;
            // A fragment after the first has no ports: hash it by address.
            (ip.get(12..20)?, *ip.get(9)?, ihl, fragment == 0, true)
        }
        0x86dd => {
            if *ip.first()? >> 4 != 6 {
                return None;
            }
            (ip.get(8..40)?, *ip.get(6)?, 40, true, false)
        }
        _ => return None,
    };
    let (addr_type, tcp_type, udp_type) = if v4 {
        (hash::IPV4, hash::TCP_IPV4, hash::UDP_IPV4)
    } else {
        (hash::IPV6, hash::TCP_IPV6, hash::UDP_IPV6)
    };
    let n = addrs.len();
    out[..n].copy_from_slice(addrs);
    let ports_hashed = whole
        && ((proto == TCP && types & tcp_type != 0) || (proto == UDP && types & udp_type != 0));
    if ports_hashed {
        if let Some(ports) = ip.get(l4..l4 + 4) {
            out[n..n + 4].copy_from_slice(ports);
            return Some(n + 4);
        }
    }
    (types & addr_type != 0).then_some(n)
}

#[cfg(test)]
mod tests;
