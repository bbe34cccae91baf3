//! The wording of every error the runtime and PDs print: log lines and test
//! expectations elsewhere match on it.

use ipc::{
    Channel, Child, HandlerError, InitError, IpcError, Perms, QueueError, RegionError,
    TryEnqueueError,
};

#[test]
fn every_error_variant_says_what_it_always_said() {
    let ch = Channel::new(3);
    let region = RegionError::ReadOnly;
    let queue = QueueError::BadCapacity(3);
    let cases: &[(&dyn core::fmt::Display, &str)] = &[
        (
            &IpcError::NotGranted(ch),
            "channel 3 is not granted to this PD",
        ),
        (
            &IpcError::NotifyNotPermitted(ch),
            "channel 3 does not allow notify from this end",
        ),
        (
            &IpcError::CallNotPermitted(ch),
            "channel 3 does not allow pp calls from this end",
        ),
        (&IpcError::NotAnIrq(ch), "channel 3 is not an irq"),
        (&IpcError::PeerGone(ch), "the peer on channel 3 is gone"),
        (
            &IpcError::CallFailed(ch),
            "the protected call on channel 3 failed in the callee",
        ),
        (&IpcError::Transport, "runtime transport error"),
        (
            &HandlerError::UnexpectedNotification(ch),
            "unexpected notification on channel 3",
        ),
        (
            &HandlerError::UnexpectedCall(ch),
            "unexpected protected call on channel 3",
        ),
        (
            &HandlerError::BadRequest {
                channel: ch,
                label: 0x1a,
            },
            "bad request label 0x1a on channel 3",
        ),
        (
            &HandlerError::UnhandledFault(Child(2)),
            "unhandled fault in child 2",
        ),
        (
            &HandlerError::PeerMisbehaved(ch),
            "peer on channel 3 broke the queue protocol",
        ),
        (
            &HandlerError::Ipc(IpcError::Transport),
            "runtime transport error",
        ),
        (
            &HandlerError::Region(region),
            "write to a region mapped read-only",
        ),
        (
            &InitError::MissingRegion("ram"),
            "no region mapped with setvar_vaddr=\"ram\"",
        ),
        (
            &InitError::RegionTooSmall {
                name: "ram",
                needed: 0x2000,
                granted: 0x1000,
            },
            "region ram is 0x1000 bytes, needs 0x2000",
        ),
        (
            &InitError::RegionPerms {
                name: "ram",
                needed: Perms::RW,
            },
            "region ram must be mapped with perms \"rw\"",
        ),
        (&InitError::MissingChannel(ch), "channel 3 is not granted"),
        (
            &InitError::MissingVariable("vps"),
            "variable vps is not set",
        ),
        (
            &InitError::InvalidVariable {
                name: "vps",
                value: 0x40,
            },
            "variable vps = 0x40 is out of range",
        ),
        (&queue, "queue capacity 3 is not a power of two"),
        (
            &QueueError::RegionTooSmall {
                needed: 0x200,
                len: 0x100,
            },
            "queue needs 0x200 bytes, region has 0x100",
        ),
        (
            &QueueError::Misaligned { address: 0x1002 },
            "queue region at 0x1002 is not 4-byte aligned",
        ),
        (&QueueError::ReadOnly, "queue region is mapped read-only"),
        (
            &QueueError::PeerMisbehaved {
                peer_index: 0x20,
                own_index: 0x4,
            },
            "queue peer published impossible index 0x20 (ours is 0x4)",
        ),
        (
            &QueueError::Region(region),
            "queue region access: write to a region mapped read-only",
        ),
        (&TryEnqueueError::Full(7u8), "queue is full"),
        (
            &TryEnqueueError::<u8>::Queue(queue),
            "queue capacity 3 is not a power of two",
        ),
        (
            &RegionError::OutOfBounds {
                offset: 0x10,
                len: 0x8,
                region_len: 0x10,
            },
            "access 0x10+0x8 outside a region of 0x10 bytes",
        ),
        (
            &RegionError::Misaligned {
                offset: 0x3,
                align: 8,
            },
            "offset 0x3 is not 8-byte aligned",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), *message);
    }
}
