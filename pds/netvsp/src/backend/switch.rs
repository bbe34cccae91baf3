//! An in-memory learning switch: each port is a [`Backend`]; a frame goes to the
//! port its destination MAC was last seen on, or to every other port when the
//! destination is unknown, broadcast or multicast. Port queues are bounded: a port
//! nobody drains drops frames (counted) instead of growing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

use super::Backend;

/// Frames waiting per port before the switch drops.
pub const PORT_QUEUE: usize = 4096;

#[derive(Debug, Default)]
struct Port {
    frames: VecDeque<Vec<u8>>,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Inner {
    ports: Vec<Port>,
    learned: HashMap<[u8; 6], usize>,
}

/// The switch; clone it to hand out ports from several places.
#[derive(Clone, Debug, Default)]
pub struct Switch {
    inner: Arc<Mutex<Inner>>,
}

/// One port of a [`Switch`].
#[derive(Debug)]
pub struct SwitchPort {
    inner: Arc<Mutex<Inner>>,
    index: usize,
}

impl Switch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn port(&self) -> SwitchPort {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.ports.push(Port::default());
        SwitchPort {
            inner: self.inner.clone(),
            index: inner.ports.len() - 1,
        }
    }

    /// Frames dropped at full port queues, all ports together.
    pub fn dropped(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.ports.iter().map(|p| p.dropped).sum()
    }
}

impl Backend for SwitchPort {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        let (Some(dst), Some(src)) = (frame.get(..6), frame.get(6..12)) else {
            return false;
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let src: [u8; 6] = src.try_into().unwrap_or_default();
        if src[0] & 1 == 0 {
            inner.learned.insert(src, self.index);
        }
        let dst: [u8; 6] = dst.try_into().unwrap_or_default();
        let to = match inner.learned.get(&dst) {
            Some(&port) if dst[0] & 1 == 0 => Some(port),
            _ => None,
        };
        let mut delivered = false;
        for (i, port) in inner.ports.iter_mut().enumerate() {
            if i == self.index || to.is_some_and(|t| t != i) {
                continue;
            }
            if port.frames.len() >= PORT_QUEUE {
                port.dropped += 1;
                continue;
            }
            port.frames.push_back(frame.to_vec());
            delivered = true;
        }
        delivered
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let port = inner.ports.get_mut(self.index)?;
        super::pop_fitting(&mut port.frames, buf, &mut port.dropped)
    }
}
