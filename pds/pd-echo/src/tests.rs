//! Drives both handlers in one thread over in-memory regions and a kernel that only
//! records notifications: the schedule is deterministic, so a lost wake-up
//! shows up as "nobody has a pending notification but the client is not done".

use super::*;
use ipc::testing::{leaked_region, FakeInit, RecordingKernel};

fn queue_bytes() -> usize {
    Queue::<u64>::layout_size(CAPACITY).unwrap()
}

/// Both PDs see the same request and reply queues, as system.xml maps them.
fn with_regions(request: Region<'static>, reply: Region<'static>) -> FakeInit {
    FakeInit::new("test")
        .region(REQUEST_REGION, request)
        .region(REPLY_REGION, reply)
}

fn fake_init() -> FakeInit {
    with_regions(leaked_region(queue_bytes()), leaked_region(queue_bytes()))
}

/// Takes what `k` recorded since the last look: whether the peer was signalled,
/// adding the count to `total`. Only the peer may be signalled.
fn signalled(k: &mut RecordingKernel, total: &mut u64) -> bool {
    let got = k.take_notified();
    assert!(got.iter().all(|&ch| ch == PEER), "notified {got:?}");
    *total += got.len() as u64;
    !got.is_empty()
}

fn peer() -> ChannelSet {
    [PEER].into_iter().collect()
}

/// Runs the pair to completion; returns (notifications client->server, server->client).
fn run_pair(count: u64) -> (u64, u64) {
    run_pair_started(count, false)
}

/// [`run_pair`] with the choice of which side starts first.
fn run_pair_started(count: u64, client_first: bool) -> (u64, u64) {
    let init = fake_init();
    let mut client = Client::new(&init, count).unwrap();
    let mut server = Server::new(&init).unwrap();
    let (mut ck, mut sk) = (RecordingKernel::default(), RecordingKernel::default());
    let (mut to_server, mut to_client) = (0, 0);
    if client_first {
        client.start(&mut ck).unwrap();
        server.start(&mut sk).unwrap();
    } else {
        server.start(&mut sk).unwrap();
        client.start(&mut ck).unwrap();
    }
    while !client.is_done() {
        if signalled(&mut ck, &mut to_server) {
            server.notified(&mut sk, peer()).unwrap();
        } else if signalled(&mut sk, &mut to_client) {
            client.notified(&mut ck, peer()).unwrap();
        } else {
            panic!("lost wake-up: client at {} of {count}", client.received());
        }
    }
    assert_eq!(client.received(), count);
    assert_eq!(server.echoed(), count);
    (to_server, to_client)
}

#[test]
fn every_number_comes_back_once_in_order() {
    run_pair(100_000);
}

#[test]
fn the_client_may_start_before_the_server() {
    run_pair_started(5000, true);
}

#[test]
fn small_and_empty_runs_finish() {
    run_pair(0);
    run_pair(1);
    run_pair(u64::from(CAPACITY) + 1);
}

#[test]
fn signal_avoidance_keeps_notifications_per_batch_not_per_message() {
    let count = 200_000;
    let (to_server, to_client) = run_pair(count);
    // One wake-up per batch at most each way, far below one per message.
    assert!(to_server <= count / BATCH as u64 + 2, "{to_server}");
    assert!(to_client <= count / BATCH as u64 + 2, "{to_client}");
}

#[test]
fn a_lost_or_reordered_reply_is_caught() {
    let init = fake_init();
    let mut client = Client::new(&init, 10).unwrap();
    let mut ck = RecordingKernel::default();
    client.start(&mut ck).unwrap();
    // A server that drops request 0 and echoes the rest.
    let mut requests =
        Consumer::<u64>::new(Init::region(&init, REQUEST_REGION).unwrap(), CAPACITY).unwrap();
    let mut replies =
        Producer::<u64>::new(Init::region(&init, REPLY_REGION).unwrap(), CAPACITY).unwrap();
    let mut buf = [0u64; 16];
    let n = requests.dequeue_batch(&mut buf).unwrap();
    assert_eq!(n, 10);
    replies.enqueue_batch(&buf[1..n]).unwrap();
    assert_eq!(
        client.notified(&mut ck, peer()),
        Err(HandlerError::PeerMisbehaved(PEER))
    );
    assert_eq!(
        client.mismatch(),
        Some(Mismatch {
            expected: 0,
            got: 1
        })
    );
}

#[test]
fn misconfigured_regions_are_init_errors() {
    let small = with_regions(leaked_region(64), leaked_region(queue_bytes()));
    assert!(matches!(
        Client::new(&small, 1),
        Err(InitError::RegionTooSmall {
            name: REQUEST_REGION,
            ..
        })
    ));
    let read_only = with_regions(
        leaked_region(queue_bytes()).restrict(Perms::R),
        leaked_region(queue_bytes()),
    );
    assert_eq!(
        Server::new(&read_only).unwrap_err(),
        InitError::RegionPerms {
            name: REQUEST_REGION,
            needed: Perms::RW
        }
    );
}

#[test]
fn notifications_on_other_channels_are_refused() {
    let init = fake_init();
    let mut server = Server::new(&init).unwrap();
    let other: ChannelSet = [Channel::new(5)].into_iter().collect();
    assert_eq!(
        server.notified(&mut RecordingKernel::default(), other),
        Err(HandlerError::UnexpectedNotification(Channel::new(5)))
    );
}
