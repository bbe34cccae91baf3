//! The PD adapter's start-up checks against what system.xml granted, and which
//! peers may wake it.

use hvcall_pd::ServiceMessage;
use ipc::testing::{leaked_region, FakeInit, RecordingKernel};
use ipc::{Channel, ChannelSet, Handler, HandlerError, InitError, Queue};
use vmbus_server::config::build;
use vmbus_server::pd::{self, VmbusPd};

fn init() -> FakeInit {
    let queue = leaked_region(
        Queue::<ServiceMessage>::layout_size(hvcall_pd::pd::SERVICE_QUEUE_CAPACITY)
            .expect("layout"),
    );
    build::VARIABLES
        .iter()
        .fold(FakeInit::new("vmbus"), |i, &(name, value)| {
            i.variable(name, value)
        })
        .region(pd::SERVICE_QUEUE, queue)
}

#[test]
fn the_build_configuration_starts_and_a_shared_window_needs_its_size() {
    assert!(VmbusPd::init(&init()).is_ok());
    // Without the shared window the server starts too (GPADLs then name RAM only).
    let mut no_shared = FakeInit::new("vmbus");
    for &(name, value) in &build::VARIABLES {
        if name != pd::GUEST_SHARED_GPA && name != pd::GUEST_SHARED_SIZE {
            no_shared = no_shared.variable(name, value);
        }
    }
    let queue = leaked_region(0x3000);
    assert!(VmbusPd::init(&no_shared.region(pd::SERVICE_QUEUE, queue)).is_ok());

    let mut sizeless = FakeInit::new("vmbus");
    for &(name, value) in &build::VARIABLES {
        if name != pd::GUEST_SHARED_SIZE {
            sizeless = sizeless.variable(name, value);
        }
    }
    let queue = leaked_region(0x3000);
    assert_eq!(
        VmbusPd::init(&sizeless.region(pd::SERVICE_QUEUE, queue)).unwrap_err(),
        InitError::MissingVariable(pd::GUEST_SHARED_SIZE)
    );
    let unaligned = init().variable(pd::GUEST_SHARED_GPA, build::GUEST_SHARED_GPA + 8);
    assert_eq!(
        VmbusPd::init(&unaligned).unwrap_err(),
        InitError::InvalidVariable {
            name: pd::GUEST_SHARED_GPA,
            value: build::GUEST_SHARED_GPA + 8
        }
    );
}

#[test]
fn hvcall_and_synic_may_wake_it_strangers_may_not() {
    let mut pd = VmbusPd::init(&init()).expect("init");
    let mut k = RecordingKernel::default();
    for ch in [build::HVCALL, build::SYNIC] {
        assert_eq!(pd.notified(&mut k, ChannelSet::from_iter([ch])), Ok(()));
    }
    let stranger = Channel::new(9);
    assert_eq!(
        pd.notified(&mut k, ChannelSet::from_iter([stranger])),
        Err(HandlerError::UnexpectedNotification(stranger))
    );
}
