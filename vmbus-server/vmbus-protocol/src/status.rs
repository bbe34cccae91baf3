//! NTSTATUS values carried in result messages. Linux treats any nonzero status as a
//! failure; these are the values Windows hosts use, so guests log something familiar.

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_UNSUCCESSFUL: u32 = 0xC000_0001;
pub const STATUS_INVALID_PARAMETER: u32 = 0xC000_000D;
pub const STATUS_INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
pub const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;
pub const STATUS_DEVICE_NOT_CONNECTED: u32 = 0xC000_009D;
pub const STATUS_CONNECTION_REFUSED: u32 = 0xC000_0236;
