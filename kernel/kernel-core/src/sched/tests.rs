use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fx {
    Ret(PdId, Ret),
    Copy(PdId, PdId, usize),
    Fault(PdId, FaultMessage),
    Unmask(u8),
    Unhandled(PdId),
}

#[derive(Default)]
struct Rec(Vec<Fx>);

impl Effects for Rec {
    fn set_return(&mut self, pd: PdId, ret: Ret) {
        self.0.push(Fx::Ret(pd, ret));
    }
    fn copy_message(&mut self, from: PdId, to: PdId, count: usize) {
        self.0.push(Fx::Copy(from, to, count));
    }
    fn write_fault(&mut self, to: PdId, fault: &FaultMessage) {
        self.0.push(Fx::Fault(to, *fault));
    }
    fn unmask_irq(&mut self, line: u8) {
        self.0.push(Fx::Unmask(line));
    }
    fn unhandled_fault(&mut self, pd: PdId, _fault: &FaultMessage) {
        self.0.push(Fx::Unhandled(pd));
    }
}

impl Rec {
    fn take(&mut self) -> Vec<Fx> {
        core::mem::take(&mut self.0)
    }
}

fn pd(priority: u8) -> PdConfig {
    PdConfig {
        priority,
        budget_us: 1000,
        period_us: 1000,
        ..PdConfig::EMPTY
    }
}

fn notify(to: PdId, bit: u8) -> Cap {
    Cap {
        notify: Some((to, bit)),
        ..Cap::default()
    }
}

/// A PD at `priority` that may run `budget_us` of each 1000 us period.
fn budgeted(priority: u8, budget_us: u64) -> PdConfig {
    PdConfig {
        budget_us,
        ..pd(priority)
    }
}

fn call(to: PdId, badge: u8) -> Cap {
    Cap {
        ppc: Some((to, badge)),
        ..Cap::default()
    }
}

fn status(s: Status) -> Ret {
    Ret::status(s)
}

/// RECV's result for a parent: its child `child_id` faulted.
fn fault_event(child_id: u64) -> Ret {
    Ret::new(Event::FAULT.0, child_id, 0, 0)
}

/// PD 0's notify went through and woke PD 1 with `bits`.
fn notified_by_0(bits: u64) -> [Fx; 2] {
    [
        Fx::Ret(0, status(Status::OK)),
        Fx::Ret(1, Ret::notification(bits)),
    ]
}

/// Both: notification bit `bit` and call badge `badge` at PD `to`.
fn notify_and_call(to: PdId, bit: u8, badge: u8) -> Cap {
    Cap {
        notify: Some((to, bit)),
        ppc: Some((to, badge)),
        irq: None,
    }
}

fn irq(line: u8) -> Cap {
    Cap {
        irq: Some(line),
        ..Cap::default()
    }
}

/// Advances the clock to `now` (us) and checks who runs then.
#[track_caller]
fn tick_runs(k: &mut Kernel, now: u64, pd: PdId) {
    k.tick(now);
    assert_eq!(k.schedule(), Some(pd), "at {now} us");
}

/// `k` booted, then `pd` woken by a notification of `bits` and running.
fn woken(mut k: Kernel, pd: PdId, bits: u64) -> (Kernel, Rec) {
    let mut fx = Rec::default();
    boot(&mut k, &mut fx);
    k.signal(&mut fx, pd, bits);
    assert_eq!(k.schedule(), Some(pd));
    (k, fx)
}

/// The [`pair`] booted, with the client woken and running.
fn client_running() -> (Kernel, Rec) {
    woken(pair(), 0, 1)
}

/// `first` runs and waits in RECV; then `next` runs.
#[track_caller]
fn waits_then(k: &mut Kernel, first: PdId, next: PdId) -> Rec {
    let mut fx = Rec::default();
    assert_eq!(k.schedule(), Some(first));
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(next));
    fx
}

/// Runs every PD's init to its first wait, highest priority first.
fn boot(k: &mut Kernel, fx: &mut Rec) {
    while let Some(cur) = k.schedule() {
        k.recv(fx);
        assert_ne!(k.current(), Some(cur));
    }
    fx.take();
}

/// Client (prio 10, id 0) and server (prio 20, id 1): client ch 2 = notify + call to
/// server (server sees it as ch 7); server ch 7 = notify back.
fn pair() -> Kernel {
    let mut client = pd(10);
    client.caps[2] = notify_and_call(1, 7, 7);
    let mut server = pd(20);
    server.caps[7] = notify(0, 2);
    Kernel::new(&[client, server])
}

#[test]
fn boot_runs_the_highest_priority_first() {
    let mut k = pair();
    assert_eq!(k.schedule(), Some(1));
    k.recv(&mut Rec::default());
    assert_eq!(k.schedule(), Some(0));
}

#[test]
fn a_call_runs_the_callee_at_once_and_the_reply_returns_to_the_caller() {
    let (mut k, mut fx) = client_running();
    fx.take();
    k.pp_call(&mut fx, 2, 0xabc, 3);
    assert_eq!(k.current(), Some(1));
    assert_eq!(k.state(0), Some(State::BlockedCall(1)));
    assert_eq!(
        fx.take(),
        [
            Fx::Copy(0, 1, 3),
            Fx::Ret(1, Ret::new(Event::CALL.0, 7, 0xabc, 3))
        ]
    );
    k.reply_recv(&mut fx, 0x55, 2, 0);
    assert_eq!(
        fx.take(),
        [
            Fx::Copy(1, 0, 2),
            Fx::Ret(0, Ret::new(Status::OK.0, 0, 0x55, 2))
        ]
    );
    assert_eq!(k.state(1), Some(State::BlockedRecv));
    assert_eq!(k.schedule(), Some(0));
}

#[test]
fn an_error_reply_fails_the_call() {
    let (mut k, mut fx) = in_call(0);
    k.reply_recv(&mut fx, 0, 0, reply::ERROR);
    assert_eq!(fx.take(), [Fx::Ret(0, status(Status::CALL_FAILED))]);
}

#[test]
fn notifying_a_higher_priority_pd_preempts_and_a_lower_one_does_not() {
    let (mut k, mut fx) = client_running();
    fx.take();
    k.notify(&mut fx, 2);
    assert_eq!(k.current(), Some(1), "the server outranks the client");
    assert_eq!(fx.take(), notified_by_0(1 << 7));
    assert_eq!(k.state(0), Some(State::Ready));
    // The server notifies back: the client is lower, so it only becomes ready.
    k.notify(&mut fx, 7);
    assert_eq!(k.current(), Some(1));
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(0));
}

#[test]
fn notifications_coalesce_while_the_receiver_is_busy() {
    let mut a = pd(30);
    a.caps[0] = notify(1, 4);
    a.caps[1] = notify(1, 9);
    let mut k = Kernel::new(&[a, pd(10)]);
    let mut fx = Rec::default();
    assert_eq!(k.schedule(), Some(0));
    k.notify(&mut fx, 0);
    k.notify(&mut fx, 1);
    k.notify(&mut fx, 0);
    k.recv(&mut fx);
    fx.take();
    assert_eq!(k.schedule(), Some(1));
    k.recv(&mut fx);
    assert_eq!(
        fx.take(),
        [Fx::Ret(1, Ret::notification((1 << 4) | (1 << 9)))]
    );
    assert_eq!(k.current(), Some(1), "it stays running to handle them");
}

#[test]
fn capability_errors_are_exact() {
    let mut a = pd(10);
    a.caps[0] = notify(1, 0);
    a.caps[1] = call(1, 0);
    a.caps[2] = irq(3);
    let mut k = Kernel::new(&[a, pd(5)]);
    let mut fx = Rec::default();
    k.schedule();
    k.notify(&mut fx, 5);
    k.notify(&mut fx, 1);
    k.notify(&mut fx, 62);
    k.pp_call(&mut fx, 0, 0, 0);
    k.pp_call(&mut fx, 1, 0, 65);
    k.irq_ack(&mut fx, 0);
    k.irq_ack(&mut fx, 2);
    k.irq_ack(&mut fx, u64::MAX);
    assert_eq!(
        fx.take(),
        [
            Fx::Ret(0, status(Status::NOT_GRANTED)),
            Fx::Ret(0, status(Status::NOTIFY_NOT_PERMITTED)),
            Fx::Ret(0, status(Status::BAD_ARGUMENT)),
            Fx::Ret(0, status(Status::CALL_NOT_PERMITTED)),
            Fx::Ret(0, status(Status::BAD_ARGUMENT)),
            Fx::Ret(0, status(Status::NOT_AN_IRQ)),
            Fx::Unmask(3),
            Fx::Ret(0, status(Status::OK)),
            Fx::Ret(0, status(Status::BAD_ARGUMENT)),
        ]
    );
}

fn page_fault() -> FaultMessage {
    FaultMessage {
        vector: 14,
        address: 0xdead_0000,
        ip: 0x40_1234,
        error_code: 4,
    }
}

#[test]
fn a_fault_without_a_parent_is_reported_and_stops_only_that_pd() {
    let mut k = pair();
    let mut fx = Rec::default();
    assert_eq!(k.schedule(), Some(1));
    k.fault(&mut fx, page_fault());
    assert_eq!(fx.take(), [Fx::Unhandled(1)]);
    assert_eq!(k.state(1), Some(State::Faulted));
    assert_eq!(k.fault_of(1), Some(page_fault()));
    assert_eq!(k.schedule(), Some(0), "the other PD keeps running");
    // Calling the stopped server fails at once; notifying it is harmless.
    k.pp_call(&mut fx, 2, 0, 0);
    k.notify(&mut fx, 2);
    assert_eq!(
        fx.take(),
        [
            Fx::Ret(0, status(Status::PEER_GONE)),
            Fx::Ret(0, status(Status::OK))
        ]
    );
    assert_eq!(k.current(), Some(0));
}

#[test]
fn a_callee_that_faults_mid_call_releases_its_caller() {
    let (mut k, mut fx) = in_call(0);
    k.fault(&mut fx, page_fault());
    assert_eq!(
        fx.take(),
        [Fx::Ret(0, status(Status::PEER_GONE)), Fx::Unhandled(1)]
    );
    assert_eq!(k.schedule(), Some(0));
}

/// Parent (prio 50, id 0) with child (prio 40, id 1, child id 3).
fn family() -> Kernel {
    let mut child = pd(40);
    child.parent = Some(0);
    child.child_id = 3;
    Kernel::new(&[pd(50), child])
}

#[test]
fn a_childs_fault_goes_to_its_parent_which_may_resume_it() {
    let mut k = family();
    let mut fx = waits_then(&mut k, 0, 1);
    k.fault(&mut fx, page_fault());
    assert_eq!(
        fx.take(),
        [Fx::Fault(0, page_fault()), Fx::Ret(0, fault_event(3))]
    );
    assert_eq!(k.schedule(), Some(0));
    k.reply_recv(&mut fx, 0, 0, reply::RESUME);
    assert_eq!(k.schedule(), Some(1), "resumed where it faulted");
    assert_eq!(k.fault_of(1), None);
}

#[test]
fn a_parent_that_declines_leaves_the_child_stopped() {
    let mut k = family();
    let mut fx = Rec::default();
    k.schedule();
    k.recv(&mut fx);
    k.schedule();
    k.fault(&mut fx, page_fault());
    k.schedule();
    k.reply_recv(&mut fx, 0, 0, 0);
    assert_eq!(k.schedule(), None);
    assert_eq!(k.state(1), Some(State::Faulted));
}

#[test]
fn a_fault_waits_for_a_busy_parent() {
    let mut k = family();
    let mut fx = Rec::default();
    // The child runs first only if the parent is busy elsewhere: block the parent
    // artificially by making it the lower one here.
    k.schedule();
    let parent = k.current();
    assert_eq!(parent, Some(0));
    // Parent is running; the child cannot run, so fault the parent's view directly:
    k.pds[1].state = State::Running;
    k.pds[0].state = State::Ready;
    k.ready.push_back(0, 50);
    k.current = Some(1);
    k.fault(&mut fx, page_fault());
    assert!(
        fx.take().is_empty(),
        "parent not waiting: nothing delivered yet"
    );
    assert_eq!(k.schedule(), Some(0));
    k.recv(&mut fx);
    assert_eq!(fx.take()[1], Fx::Ret(0, fault_event(3)));
}

#[test]
fn a_passive_pd_gets_notifications_only_on_borrowed_time() {
    let mut client = pd(10);
    client.caps[0] = notify_and_call(1, 5, 6);
    let mut server = pd(20);
    server.passive = true;
    let (mut k, mut fx) = woken(Kernel::new(&[client, server]), 0, 1);
    k.notify(&mut fx, 0);
    assert_eq!(
        k.current(),
        Some(0),
        "a passive server is not woken by a notification"
    );
    k.pp_call(&mut fx, 0, 9, 0);
    assert_eq!(k.current(), Some(1));
    fx.take();
    k.reply_recv(&mut fx, 0, 0, 0);
    assert_eq!(
        fx.take()[2],
        Fx::Ret(1, Ret::notification(1 << 5)),
        "delivered on the caller's time"
    );
    assert_eq!(k.current(), Some(1));
}

#[test]
fn an_irq_signals_its_owner_and_ack_unmasks() {
    let mut a = pd(100);
    a.caps[4] = irq(0);
    let mut k = Kernel::new(&[a, pd(1)]);
    assert_eq!(k.irq_lines(), 1);
    let mut fx = Rec::default();
    k.schedule();
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(1));
    k.irq(&mut fx, 0);
    k.irq(&mut fx, 7); // nobody's line
    assert_eq!(k.current(), Some(0), "the owner preempts");
    assert_eq!(fx.take(), [Fx::Ret(0, Ret::notification(1 << 4))]);
    k.irq_ack(&mut fx, 4);
    assert_eq!(fx.take(), [Fx::Unmask(0), Fx::Ret(0, status(Status::OK))]);
    assert_eq!(k.irq_line_of(4), Ok(0));
    assert_eq!(k.irq_line_of(5), Err(Status::NOT_GRANTED));
    assert_eq!(k.irq_line_of(99), Err(Status::BAD_ARGUMENT));
}

#[test]
fn equal_priorities_take_turns_on_each_tick() {
    let mut k = Kernel::new(&[pd(5), pd(5), pd(9)]);
    let mut fx = Rec::default();
    assert_eq!(k.schedule(), Some(2));
    k.tick(1000);
    assert_eq!(k.schedule(), Some(2), "nobody else at its priority");
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(0));
    tick_runs(&mut k, 2000, 1);
    tick_runs(&mut k, 3000, 0);
}

#[test]
fn a_pd_over_budget_waits_for_its_next_period_and_lower_ones_run() {
    let mut k = Kernel::new(&[budgeted(50, 300), pd(10)]);
    let mut fx = Rec::default();
    assert_eq!(k.schedule(), Some(0));
    k.tick(100);
    k.tick(200);
    assert_eq!(k.schedule(), Some(0), "200 of 300 us used");
    k.tick(300);
    assert!(k.any_throttled());
    assert_eq!(k.schedule(), Some(1), "the hog is out of budget");
    // A notification does not wake it early.
    k.signal(&mut fx, 0, 1);
    assert_eq!(k.current(), Some(1));
    k.tick(999);
    assert_eq!(k.current(), Some(1));
    k.tick(1000);
    assert!(!k.any_throttled());
    assert_eq!(k.schedule(), Some(0), "refilled, it preempts the lower PD");
    assert_eq!(k.state(1), Some(State::Ready));
}

#[test]
fn a_refill_after_missed_periods_lets_the_pd_run_again() {
    let mut k = Kernel::new(&[budgeted(50, 100), pd(10)]);
    k.schedule();
    tick_runs(&mut k, 100, 1);
    k.tick(5000);
    assert!(!k.any_throttled());
    assert_eq!(
        k.schedule(),
        Some(0),
        "refilled, and it outranks the running PD"
    );
    // It is charged from here: the next period starts at 6000, not at 2000.
    tick_runs(&mut k, 5100, 1);
    tick_runs(&mut k, 5999, 1);
    tick_runs(&mut k, 6000, 0);
}

#[test]
fn a_passive_server_runs_on_its_callers_budget() {
    let mut client = budgeted(20, 300);
    client.caps[0] = call(1, 0);
    let mut server = pd(30);
    server.passive = true;
    let mut k = Kernel::new(&[client, server, pd(10)]);
    let mut fx = waits_then(&mut k, 1, 0);
    k.pp_call(&mut fx, 0, 0, 0);
    assert_eq!(k.current(), Some(1));
    // The server computes for a long time: the client's budget pays.
    k.tick(100);
    k.tick(200);
    assert_eq!(k.current(), Some(1));
    k.tick(300);
    assert_eq!(
        k.schedule(),
        Some(2),
        "client out of budget: its server stops too"
    );
    assert_eq!(k.state(1), Some(State::Ready));
    assert_eq!(k.state(0), Some(State::BlockedCall(1)));
    k.tick(1000);
    assert_eq!(
        k.schedule(),
        Some(1),
        "the refill resumes the server mid-call"
    );
    k.reply_recv(&mut fx, 5, 0, 0);
    assert_eq!(k.schedule(), Some(0));
}

/// The pair with the client (0) in a call to the server (1) carrying `count` words.
fn in_call(count: u64) -> (Kernel, Rec) {
    let (mut k, mut fx) = client_running();
    k.pp_call(&mut fx, 2, 9, count);
    assert_eq!(k.current(), Some(1));
    fx.take();
    (k, fx)
}

#[test]
fn a_plain_reply_switches_straight_back_to_the_caller() {
    let (mut k, mut fx) = in_call(2);
    assert_eq!(k.fast_reply_recv(&mut fx, 4, 1, 0), Some(0));
    assert_eq!(k.current(), Some(0));
    assert_eq!(k.state(0), Some(State::Running));
    assert_eq!(k.state(1), Some(State::BlockedRecv));
    let ok = Ret::new(Status::OK.0, 0, 4, 1);
    assert_eq!(fx.take(), [Fx::Copy(1, 0, 1), Fx::Ret(0, ok)]);
}

#[test]
fn the_fast_reply_leaves_errors_resumes_and_pending_events_to_the_general_path() {
    let (mut k, mut fx) = in_call(0);
    let before = k.clone();
    for flags in [reply::ERROR, reply::RESUME] {
        assert_eq!(k.fast_reply_recv(&mut fx, 0, 0, flags), None);
    }
    k.pds[1].pending = 1;
    assert_eq!(k.fast_reply_recv(&mut fx, 0, 0, 0), None);
    k.pds[1].pending = 0;
    assert_eq!(k, before);
    assert!(fx.take().is_empty());
    assert_eq!(k.fast_reply_recv(&mut fx, 0, 0, 0), Some(0));
    // Now nothing is owed.
    k.signal(&mut fx, 1, 1);
    assert_eq!(k.fast_reply_recv(&mut fx, 0, 0, 0), None);
}

#[test]
fn fast_calls_and_notifies_keep_every_capability_check() {
    let (mut k, mut fx) = in_call(0);
    k.fast_reply_recv(&mut fx, 0, 0, 0);
    fx.take();
    let before = k.clone();
    // Channel 0 holds nothing, 62 and u64::MAX are out of range, 64 words too many.
    for (ch, count) in [(0, 0), (62, 0), (u64::MAX, 0), (2, 65)] {
        assert_eq!(k.fast_pp_call(&mut fx, ch, 0, count), None);
        if count == 0 {
            assert_eq!(k.fast_notify(&mut fx, ch), None, "channel {ch}");
        }
    }
    assert_eq!(k, before);
    assert!(fx.take().is_empty());
    assert_eq!(k.fast_pp_call(&mut fx, 2, 0, 64), Some(1));
}

#[test]
fn a_fast_notify_preempts_for_a_higher_pd_and_a_fast_recv_hands_back() {
    let (mut k, mut fx) = in_call(0);
    k.fast_reply_recv(&mut fx, 0, 0, 0);
    fx.take();
    // The server waits: the client's notify runs it at once.
    assert_eq!(k.fast_notify(&mut fx, 2), Some(1));
    assert_eq!(k.state(0), Some(State::Ready));
    assert_eq!(fx.take(), notified_by_0(1 << 7));
    // Its notify back only marks the busy client; its wait runs the client again.
    assert_eq!(k.fast_notify(&mut fx, 7), Some(1));
    assert_eq!(k.fast_recv(&mut fx), Some(0));
    // The client's wait returns the pending bit at once.
    fx.take();
    assert_eq!(k.fast_recv(&mut fx), Some(0));
    assert_eq!(fx.take(), [Fx::Ret(0, Ret::notification(1 << 2))]);
    // With nothing pending and nothing else ready, the general path idles.
    assert_eq!(k.fast_recv(&mut fx), None);
}

#[derive(Debug, Clone)]
enum Op {
    Notify(u64),
    Call(u64, u64),
    Recv,
    Reply(u64),
    Fault,
    Irq(u8),
    Ack(u64),
    Tick,
    VmHalt(u64),
    Expire(u64),
    TakePending,
    EnterGuest,
    LeaveGuest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..4).prop_map(Op::Notify),
        (0u64..4, 0u64..70).prop_map(|(c, n)| Op::Call(c, n)),
        Just(Op::Recv),
        // Mostly plain replies, so the fast path gets its share.
        prop_oneof![3 => Just(0u64), 1 => 0u64..4].prop_map(Op::Reply),
        (0u64..4, 0u64..70).prop_map(|(c, n)| Op::Call(c, n)),
        Just(Op::Fault),
        (0u8..3).prop_map(Op::Irq),
        (0u64..4).prop_map(Op::Ack),
        Just(Op::Tick),
        (0u64..3).prop_map(|d| Op::VmHalt(d * 500)),
        (0u64..2000).prop_map(Op::Expire),
        Just(Op::TakePending),
        Just(Op::EnterGuest),
        Just(Op::EnterGuest),
        Just(Op::LeaveGuest),
    ]
}

/// Four PDs, priorities 10 < 20 < 30 < 40, each able to notify every other and call
/// every higher one; PD 3 is passive, PD 2 is PD 0's child, PD 1 owns irq 1.
fn mesh() -> Kernel {
    let prios = [10, 20, 30, 40];
    let mut cfgs: Vec<PdConfig> = prios.iter().map(|&p| pd(p)).collect();
    cfgs[3].passive = true;
    cfgs[2].parent = Some(0);
    cfgs[2].child_id = 1;
    for a in 0..4u8 {
        for b in 0..4u8 {
            if a == b {
                continue;
            }
            let cap = &mut cfgs[usize::from(a)].caps[usize::from(b)];
            cap.notify = Some((b, a));
            if b > a {
                cap.ppc = Some((b, a));
            }
        }
    }
    cfgs[1].caps[3].irq = Some(1);
    cfgs[0].budget_us = 300;
    cfgs[2].budget_us = 500;
    cfgs[3].budget_us = 200;
    // PD 1 is a VMM whose guest runs below PD 0 on a 30% budget; PD 0's guest
    // asks for more than PD 0 has and gets its own priority.
    cfgs[1].guest = Some(GuestLimits {
        priority: 5,
        budget_us: 300,
        period_us: 1000,
    });
    cfgs[0].guest = Some(GuestLimits {
        priority: 200,
        budget_us: 1000,
        period_us: 1000,
    });
    Kernel::new(&cfgs)
}

fn check_invariants(k: &Kernel) -> Result<(), TestCaseError> {
    let mut running = 0;
    for i in 0..k.count {
        let p = &k.pds[i];
        match p.state {
            State::Running => {
                running += 1;
                prop_assert_eq!(k.current, Some(i as PdId));
            }
            State::Ready => prop_assert_eq!(k.ready.contains(i as PdId), !k.held(i as PdId)),
            State::BlockedCall(callee) => {
                // Its callee owes it the answer (or is the one running it down a chain).
                prop_assert_eq!(k.pds[usize::from(callee)].owes, Owes::Call(i as PdId));
                prop_assert!(!k.ready.contains(i as PdId));
            }
            State::BlockedRecv | State::Faulted | State::GuestHalted(_) => {
                prop_assert!(!k.ready.contains(i as PdId))
            }
        }
        if p.state == State::Faulted {
            prop_assert!(p.fault.is_some());
        }
    }
    prop_assert!(running <= 1);
    prop_assert_eq!(running == 1, k.current.is_some());
    // Priority: nothing ready outranks the running PD.
    if let (Some(cur), Some(top)) = (k.current, k.ready.highest()) {
        prop_assert!(top <= k.prio(cur));
    }
    Ok(())
}

/// Runs a fast path on a copy of `k` and the general path on `k`: the fast path
/// must either end exactly where the general path and the scheduler end (state,
/// effects, the PD to run), or decline without touching anything.
fn agree(
    k: &mut Kernel,
    fx: &mut Rec,
    fast: impl FnOnce(&mut Kernel, &mut Rec) -> Option<PdId>,
    general: impl FnOnce(&mut Kernel, &mut Rec),
) -> Result<(), TestCaseError> {
    let before = k.clone();
    let mut quick = k.clone();
    let mut quick_fx = Rec::default();
    let next = fast(&mut quick, &mut quick_fx);
    fx.take();
    general(k, fx);
    if next.is_some() {
        prop_assert_eq!(k.schedule(), next);
        prop_assert_eq!(&quick, &*k);
        prop_assert_eq!(&quick_fx.0, &fx.0);
    } else {
        prop_assert_eq!(&quick, &before);
        prop_assert!(quick_fx.0.is_empty());
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_event_sequences_keep_the_scheduler_consistent(ops in proptest::collection::vec(op(), 0..300)) {
        let mut k = mesh();
        let mut fx = Rec::default();
        let mut now = 0;
        for op in ops {
            if k.schedule().is_none() {
                // Idle: only an irq, a refill or a deadline can wake anyone.
                k.irq(&mut fx, 1);
                now += 1000;
                k.tick(now);
                k.expire_deadlines(&mut fx, u64::MAX);
                k.schedule();
            }
            let Some(cur) = k.current() else { break };
            // A thread running its guest makes no system calls: its VM_ENTER ends first.
            let syscall = !matches!(op, Op::Tick | Op::Irq(_) | Op::EnterGuest | Op::LeaveGuest | Op::Expire(_));
            if syscall && k.in_guest(cur) {
                k.leave_guest(cur);
                check_invariants(&k)?;
            }
            if k.current().is_none() {
                continue;
            }
            match op {
                Op::Notify(ch) => {
                    agree(&mut k, &mut fx, |k, fx| k.fast_notify(fx, ch), |k, fx| k.notify(fx, ch))?;
                }
                Op::Call(ch, n) => {
                    agree(
                        &mut k,
                        &mut fx,
                        |k, fx| k.fast_pp_call(fx, ch, 3, n),
                        |k, fx| k.pp_call(fx, ch, 3, n),
                    )?;
                }
                Op::Recv => {
                    agree(&mut k, &mut fx, |k, fx| k.fast_recv(fx), |k, fx| k.recv(fx))?;
                }
                Op::Reply(f) => {
                    agree(
                        &mut k,
                        &mut fx,
                        |k, fx| k.fast_reply_recv(fx, 7, 1, f),
                        |k, fx| k.reply_recv(fx, 7, 1, f),
                    )?;
                }
                Op::Fault => k.fault(&mut fx, page_fault()),
                Op::Irq(l) => k.irq(&mut fx, l),
                Op::Ack(ch) => k.irq_ack(&mut fx, ch),
                Op::Tick => {
                    now += 100;
                    k.tick(now);
                }
                Op::VmHalt(d) => k.vm_halt(&mut fx, d),
                Op::Expire(t) => k.expire_deadlines(&mut fx, t),
                Op::TakePending => {
                    if let Some(cur) = k.current() {
                        k.take_pending(cur);
                        prop_assert_eq!(k.pds[usize::from(cur)].pending, 0);
                    }
                }
                Op::EnterGuest => {
                    let cur = k.current();
                    k.enter_guest();
                    if let Some(c) = cur {
                        prop_assert_eq!(k.in_guest(c), k.pds[usize::from(c)].pending == 0);
                        if k.current() == Some(c) {
                            prop_assert!(k.prio(c) <= k.pds[usize::from(c)].cfg.priority);
                        }
                    }
                }
                Op::LeaveGuest => {
                    if let Some(c) = k.current() {
                        k.leave_guest(c);
                        prop_assert!(!k.in_guest(c));
                    }
                }
            }
            check_invariants(&k)?;
            for e in fx.take() {
                if let Fx::Copy(_, _, n) = e {
                    prop_assert!(n <= MESSAGE_REGISTERS);
                }
            }
        }
    }
}

/// A VMM (prio 20, id 1) and a device PD (prio 30, id 0) that notifies it on ch 0
/// (the VMM sees bit 5); a low PD (prio 5, id 2).
fn vmm_trio() -> Kernel {
    let mut dev = pd(30);
    dev.caps[0] = notify(1, 5);
    dev.caps[1] = irq(4);
    Kernel::new(&[dev, pd(20), pd(5)])
}

/// The [`vmm_trio`] booted, with the VMM woken (its notification taken) and
/// running; nothing recorded yet.
fn vmm_running() -> (Kernel, Rec) {
    let (mut k, mut fx) = woken(vmm_trio(), 1, 1);
    k.take_pending(1);
    fx.take();
    (k, fx)
}

#[test]
fn a_halted_vmm_wakes_on_a_notification_with_the_bits() {
    let mut k = vmm_trio();
    let mut fx = waits_then(&mut k, 0, 1);
    k.vm_halt(&mut fx, 0);
    assert_eq!(k.state(1), Some(State::GuestHalted(0)));
    assert_eq!(k.schedule(), Some(2), "the halted guest lets lower PDs run");
    k.expire_deadlines(&mut fx, u64::MAX);
    assert_eq!(
        k.state(1),
        Some(State::GuestHalted(0)),
        "no deadline: only a notification"
    );
    // The device's irq: it runs, notifies the VMM, waits; the VMM runs next.
    k.irq(&mut fx, 4);
    assert_eq!(k.current(), Some(0));
    fx.take();
    k.notify(&mut fx, 0);
    assert_eq!(fx.take(), notified_by_0(1 << 5));
    assert_eq!(k.state(1), Some(State::Ready));
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(1));
}

#[test]
fn a_halted_vmm_wakes_at_its_deadline_and_not_before() {
    let (mut k, mut fx) = vmm_running();
    k.vm_halt(&mut fx, 5000);
    assert!(k.any_deadline());
    assert_eq!(k.next_deadline(), Some(5000));
    k.expire_deadlines(&mut fx, 4999);
    assert_eq!(k.state(1), Some(State::GuestHalted(5000)));
    assert!(fx.take().is_empty());
    k.expire_deadlines(&mut fx, 5000);
    assert_eq!(fx.take(), [Fx::Ret(1, Ret::vm_exit())]);
    assert_eq!(k.schedule(), Some(1));
    assert!(!k.any_deadline());
    assert_eq!(k.next_deadline(), None);
}

#[test]
fn halting_with_a_notification_pending_returns_at_once() {
    let (mut k, mut fx) = woken(vmm_trio(), 1, 1 << 3);
    fx.take();
    // It was woken from RECV by that notification; another arrives while it runs.
    k.pds[1].pending = 1 << 5;
    k.vm_halt(&mut fx, 0);
    assert_eq!(fx.take(), [Fx::Ret(1, Ret::notification(1 << 5))]);
    assert_eq!(k.current(), Some(1));
}

#[test]
fn a_vmm_running_its_guest_is_preempted_and_collects_notifications_itself() {
    let (mut k, mut fx) = vmm_running();
    // The guest runs (the VMM stays Running); an irq for the device preempts it.
    k.irq(&mut fx, 4);
    assert_eq!(k.current(), Some(0));
    assert_eq!(k.state(1), Some(State::Ready));
    assert_eq!(fx.take(), [Fx::Ret(0, Ret::notification(1 << 1))]);
    k.notify(&mut fx, 0);
    assert_eq!(
        fx.take(),
        [Fx::Ret(0, status(Status::OK))],
        "no result is set for a VMM that is not waiting: it collects the bits"
    );
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(1), "the guest resumes");
    assert_eq!(k.take_pending(1), 1 << 5);
    assert_eq!(k.take_pending(1), 0);
}

/// The [`vmm_with_limits`] booted, the VMM woken and back in its guest, with the
/// PDs `ready` signalled too (they wait, outranked by the VMM when it entered).
fn guest_entered(ready: &[PdId]) -> (Kernel, Rec) {
    let mut k = vmm_with_limits();
    let mut fx = Rec::default();
    boot(&mut k, &mut fx);
    k.signal(&mut fx, 0, 1);
    for &pd in ready {
        k.signal(&mut fx, pd, 1);
    }
    assert_eq!(k.schedule(), Some(0));
    k.take_pending(0);
    k.enter_guest();
    (k, fx)
}

/// A VMM (id 0, prio 100) whose guest runs at 50 on a 300/1000 budget; a device
/// PD (id 1, prio 70) that notifies it on ch 0 (the VMM sees bit 3); a low PD (id
/// 2, prio 10).
fn vmm_with_limits() -> Kernel {
    let mut vmm = pd(100);
    vmm.guest = Some(GuestLimits {
        priority: 50,
        budget_us: 300,
        period_us: 1000,
    });
    let mut dev = pd(70);
    dev.caps[0] = notify(0, 3);
    dev.caps[1] = irq(6);
    Kernel::new(&[vmm, dev, pd(10)])
}

#[test]
fn a_guest_runs_at_its_priority_and_a_notification_lifts_the_vmm_back() {
    let (mut k, mut fx) = guest_entered(&[]);
    assert_eq!(k.current(), Some(0), "nothing outranks the guest yet");
    // The device's irq: at 70 it outranks the guest (50), not the VMM (100).
    k.irq(&mut fx, 6);
    assert_eq!(k.current(), Some(1));
    assert_eq!(k.state(0), Some(State::Ready));
    fx.take();
    // Its notification ends the VM_ENTER: the VMM is back at 100 and preempts it.
    k.notify(&mut fx, 0);
    assert_eq!(k.current(), Some(0));
    assert!(!k.in_guest(0));
    assert_eq!(k.take_pending(0), 1 << 3);
    assert_eq!(k.state(1), Some(State::Ready));
}

#[test]
fn entering_the_guest_yields_to_a_ready_pd_between_the_two_priorities() {
    let (mut k, mut fx) = guest_entered(&[1]);
    assert_eq!(k.schedule(), Some(1), "the device PD outranks the guest");
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(0), "then the guest resumes");
    assert!(k.in_guest(0));
}

#[test]
fn a_guest_out_of_budget_waits_for_its_refill_but_its_vmm_does_not() {
    let (mut k, mut fx) = guest_entered(&[2]);
    k.tick(100);
    k.tick(200);
    assert_eq!(k.current(), Some(0));
    k.tick(300);
    assert!(
        k.any_throttled(),
        "a refill will make work: the machine must not stop"
    );
    assert_eq!(
        k.schedule(),
        Some(2),
        "the guest used its 300 us: lower PDs run"
    );
    assert_eq!(k.state(0), Some(State::Ready));
    // A notification for the VMM: it runs at once, on its own budget.
    k.irq(&mut fx, 6);
    k.notify(&mut fx, 0);
    assert_eq!(k.current(), Some(0));
    assert_eq!(k.take_pending(0), 1 << 3, "VM_ENTER returned it");
    k.enter_guest();
    assert_eq!(k.current(), None, "the guest is still out of budget");
    assert_eq!(k.schedule(), Some(1), "the device PD it preempted finishes");
    k.recv(&mut fx);
    assert_eq!(k.schedule(), Some(2));
    k.tick(1000);
    assert_eq!(k.schedule(), Some(0), "refilled: the guest runs again");
    assert!(k.in_guest(0));
}

#[test]
fn a_pending_notification_keeps_the_vmm_at_its_own_priority() {
    let mut k = vmm_with_limits();
    let mut fx = Rec::default();
    boot(&mut k, &mut fx);
    k.signal(&mut fx, 0, 1);
    k.signal(&mut fx, 1, 1);
    assert_eq!(k.schedule(), Some(0));
    k.signal(&mut fx, 0, 1 << 4);
    k.enter_guest();
    assert_eq!(
        k.current(),
        Some(0),
        "its VM_ENTER returns the notification at once"
    );
    assert!(!k.in_guest(0));
    assert_eq!(k.take_pending(0), 1 << 4);
}

#[test]
fn a_value_result_carries_the_value_in_rdi_or_the_status_alone() {
    assert_eq!(Ret::value(Ok(7)), Ret::new(Status::OK.0, 7, 0, 0));
    assert_eq!(
        Ret::value(Err(Status::NOT_GRANTED)),
        Ret::status(Status::NOT_GRANTED)
    );
}
