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
