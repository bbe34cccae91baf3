//! Which backend a netvsp PD runs on, from what its system description grants:
//! the frame queues ([`build::FRAMES_OUT`], [`build::FRAMES_IN`], peer on
//! [`build::BACKEND`]) when both are mapped, else a loopback. One rule for the
//! host-sim and the bare-metal image.

use alloc::boxed::Box;

use ipc::{Channel, InitError, InitExt, Perms};

use super::queue::QueueBackend;
use super::{Backend, Loopback};
use crate::config::build;

/// The backend, and the channel its peer notifies on (None for a loopback).
pub fn granted(
    init: &impl InitExt,
    loopback_frames: usize,
) -> Result<(Box<dyn Backend>, Option<Channel>), InitError> {
    let out = init.optional(init.region_with(build::FRAMES_OUT, Perms::RW))?;
    let inp = init.optional(init.region_with(build::FRAMES_IN, Perms::RW))?;
    let (Some(out), Some(inp)) = (out, inp) else {
        return Ok((Box::new(Loopback::new(loopback_frames)), None));
    };
    let q =
        QueueBackend::new(out, inp, build::QUEUE_SLOTS).map_err(|_| InitError::RegionTooSmall {
            name: build::FRAMES_OUT,
            needed: QueueBackend::region_size(build::QUEUE_SLOTS).unwrap_or(usize::MAX),
            granted: out.len().min(inp.len()),
        })?;
    Ok((Box::new(q), Some(build::BACKEND)))
}

/// The line a netvsp PD prints once it is up: its MAC and which backend it got
/// (`backend_channel` as [`granted`] returned it).
#[derive(Clone, Copy, Debug)]
pub struct Started {
    pub mac: [u8; 6],
    pub backend_channel: Option<Channel>,
}

impl core::fmt::Display for Started {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.mac;
        let backend = if self.backend_channel.is_some() {
            "frame queues"
        } else {
            "loopback"
        };
        write!(
            f,
            "MAC {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}, {backend}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn started_line_names_the_mac_and_the_backend() {
        let mac = [0x00, 0x15, 0x5d, 0x0a, 0xbc, 0x01];
        let queues = Started {
            mac,
            backend_channel: Some(build::BACKEND),
        };
        assert_eq!(queues.to_string(), "MAC 00:15:5d:0a:bc:01, frame queues");
        let loopback = Started {
            mac,
            backend_channel: None,
        };
        assert_eq!(loopback.to_string(), "MAC 00:15:5d:0a:bc:01, loopback");
    }
}
