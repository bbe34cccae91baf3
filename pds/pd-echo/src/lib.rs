//! The echo pair: a client streams sequence numbers to a server through one SPSC
//! queue and checks that they come back, in order and exactly once, through a
//! second. Both sides use sDDF signal avoidance, so a notification is sent only
//! when the other side asked for one before going to sleep.
//!
//! The logic is runtime-neutral (`no_std`, only `ipc`); `src/bin/` holds the
//! host-sim entry points.
#![no_std]

#[cfg(test)]
extern crate std;

use ipc::{
    Channel, ChannelSet, Consumer, Handler, HandlerError, Init, InitError, Kernel, Perms, Producer,
    Queue, QueueError, Region,
};

/// `setvar_vaddr` of the client-to-server queue region.
pub const REQUEST_REGION: &str = "echo_request";
/// `setvar_vaddr` of the server-to-client queue region.
pub const REPLY_REGION: &str = "echo_reply";
/// Each PD's id for the channel to the other one (system.xml).
pub const PEER: Channel = Channel::new(0);
/// Entries per queue; both regions must hold `Queue::<u64>::layout_size(CAPACITY)`.
pub const CAPACITY: u32 = 4096;
/// Entries moved per queue operation.
const BATCH: usize = 256;

fn queue_err(e: QueueError) -> HandlerError {
    match e {
        QueueError::Region(r) => HandlerError::Region(r),
        _ => HandlerError::PeerMisbehaved(PEER),
    }
}

/// Maps a queue that will not attach onto what system.xml got wrong.
fn attach_err(name: &'static str, region: &Region<'_>, e: QueueError) -> InitError {
    match e {
        QueueError::ReadOnly => InitError::RegionPerms {
            name,
            needed: Perms::RW,
        },
        _ => InitError::RegionTooSmall {
            name,
            needed: Queue::<u64>::layout_size(CAPACITY).unwrap_or(usize::MAX),
            granted: region.len(),
        },
    }
}

fn producer(init: &dyn Init, name: &'static str) -> Result<Producer<'static, u64>, InitError> {
    let region = init.region(name)?;
    Producer::new(region, CAPACITY).map_err(|e| attach_err(name, &region, e))
}

fn consumer(init: &dyn Init, name: &'static str) -> Result<Consumer<'static, u64>, InitError> {
    let region = init.region(name)?;
    Consumer::new(region, CAPACITY).map_err(|e| attach_err(name, &region, e))
}

/// A reply that was not the next sequence number: lost, duplicated or reordered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: u64,
    pub got: u64,
}

pub struct Client {
    requests: Producer<'static, u64>,
    replies: Consumer<'static, u64>,
    count: u64,
    next_send: u64,
    next_expect: u64,
    mismatch: Option<Mismatch>,
    buf: [u64; BATCH],
}

ipc::debug_fields!(Client: count, next_send, next_expect);

impl Client {
    /// A client that will send `count` sequence numbers, 0 first.
    pub fn new(init: &dyn Init, count: u64) -> Result<Self, InitError> {
        Ok(Self {
            requests: producer(init, REQUEST_REGION)?,
            replies: consumer(init, REPLY_REGION)?,
            count,
            next_send: 0,
            next_expect: 0,
            mismatch: None,
            buf: [0; BATCH],
        })
    }

    /// Sends the first batch; afterwards the client runs on notifications.
    pub fn start(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        self.pump(kernel)
    }

    pub fn is_done(&self) -> bool {
        self.next_expect == self.count
    }

    /// Replies received and verified so far.
    pub fn received(&self) -> u64 {
        self.next_expect
    }

    pub fn mismatch(&self) -> Option<Mismatch> {
        self.mismatch
    }

    fn pump(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        if self.mismatch.is_some() {
            return Err(HandlerError::PeerMisbehaved(PEER));
        }
        loop {
            let mut notify = false;
            let got = self
                .replies
                .dequeue_batch(&mut self.buf)
                .map_err(queue_err)?;
            for &value in &self.buf[..got] {
                if value != self.next_expect {
                    self.mismatch = Some(Mismatch {
                        expected: self.next_expect,
                        got: value,
                    });
                    return Err(HandlerError::PeerMisbehaved(PEER));
                }
                self.next_expect += 1;
            }
            if got > 0 {
                notify |= self.replies.take_signal_request();
            }
            let want = (self.count - self.next_send).min(BATCH as u64) as usize;
            for (i, slot) in self.buf[..want].iter_mut().enumerate() {
                *slot = self.next_send + i as u64;
            }
            let sent = self
                .requests
                .enqueue_batch(&self.buf[..want])
                .map_err(queue_err)?;
            self.next_send += sent as u64;
            if sent > 0 {
                notify |= self.requests.take_signal_request();
            }
            if notify {
                kernel.notify(PEER)?;
            }
            if self.is_done() {
                return Ok(());
            }
            if got > 0 || sent > 0 {
                continue;
            }
            // Stalled: no replies, and nothing to send or no room. Ask to be woken,
            // then re-check so an entry that raced the request is not slept on.
            let mut sleep = self.replies.prepare_to_sleep().map_err(queue_err)?;
            if sleep && self.next_send < self.count {
                sleep = self.requests.prepare_to_sleep().map_err(queue_err)?;
            }
            if sleep {
                return Ok(());
            }
        }
    }
}

/// Both ends do the same on a signal from the other: move what the queues allow.
macro_rules! pump_on_signal {
    ($($end:ty),*) => {$(
        impl Handler for $end {
            fn notified(
                &mut self,
                kernel: &mut dyn Kernel,
                channels: ChannelSet,
            ) -> Result<(), HandlerError> {
                channels.only_from(|c| c == PEER)?;
                self.pump(kernel)
            }
        }
    )*};
}

pub struct Server {
    requests: Consumer<'static, u64>,
    replies: Producer<'static, u64>,
    echoed: u64,
    buf: [u64; BATCH],
}

ipc::debug_fields!(Server: echoed);

impl Server {
    pub fn new(init: &dyn Init) -> Result<Self, InitError> {
        Ok(Self {
            requests: consumer(init, REQUEST_REGION)?,
            replies: producer(init, REPLY_REGION)?,
            echoed: 0,
            buf: [0; BATCH],
        })
    }

    /// Echoes whatever arrived before this PD ran and asks to be woken for more;
    /// without it a zero-filled queue never asks the client for a signal.
    pub fn start(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        self.pump(kernel)
    }

    pub fn echoed(&self) -> u64 {
        self.echoed
    }

    fn pump(&mut self, kernel: &mut dyn Kernel) -> Result<(), HandlerError> {
        loop {
            // Take no more requests than there is room to answer, so nothing waits
            // in this PD's memory between the queues.
            let room = self.replies.free_slots().map_err(queue_err)? as usize;
            let n = if room > 0 {
                let window = room.min(BATCH);
                self.requests
                    .dequeue_batch(&mut self.buf[..window])
                    .map_err(queue_err)?
            } else {
                0
            };
            if n > 0 {
                let sent = self
                    .replies
                    .enqueue_batch(&self.buf[..n])
                    .map_err(queue_err)?;
                if sent != n {
                    // Only this PD produces replies, so the room it saw cannot shrink.
                    return Err(HandlerError::PeerMisbehaved(PEER));
                }
                self.echoed += n as u64;
                let notify =
                    self.requests.take_signal_request() | self.replies.take_signal_request();
                if notify {
                    kernel.notify(PEER)?;
                }
                continue;
            }
            let sleep = if room == 0 {
                self.replies.prepare_to_sleep().map_err(queue_err)?
            } else {
                self.requests.prepare_to_sleep().map_err(queue_err)?
            };
            if sleep {
                return Ok(());
            }
        }
    }
}

pump_on_signal!(Client, Server);

#[cfg(test)]
mod tests;
