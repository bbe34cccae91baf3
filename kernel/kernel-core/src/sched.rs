//! PD states and the transitions system calls, faults and interrupts cause.
//!
//! Microkit semantics on one CPU: fixed priorities, the highest ready PD runs, FIFO
//! within a priority. A protected call switches straight to the callee (priorities
//! strictly increase along calls, so the callee is the highest runnable PD) and the
//! reply switches back; nothing else runs in between. A passive PD runs on its own
//! time only until its first wait; afterwards only calls run it, and notifications
//! to it wait until it next waits while serving a call.
//!
//! A fault stops the faulting PD only: its pending caller gets `PEER_GONE`, and the
//! fault goes to its parent as an event (or, with no parent, to the console).
//!
//! Time: on every timer tick the running PD is charged; a PD whose budget is below
//! its period and is used up stops (throttled) until its next period starts, and
//! PDs of equal priority take turns, one tick each. A passive PD serving a call runs
//! on its caller's budget (down the call chain to the first PD that is not passive):
//! when that is used up, the server stops where it is until the caller's refill.

use kernel_abi::image::{CapDesc, CHANNELS, MAX_PDS};
use kernel_abi::syscall::{reply, Event, FaultMessage, Status, MESSAGE_REGISTERS};

use crate::ReadyQueue;

/// A PD's index in the system image.
pub type PdId = u8;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Running,
    /// In RECV or REPLY_RECV, waiting for a notification, call or child fault.
    BlockedRecv,
    /// Waiting for the reply of a call into this PD.
    BlockedCall(PdId),
    /// Stopped by a fault until its parent resumes it.
    Faulted,
    /// In `VM_ENTER` with the HALTED flag: its guest waits (like HLT) for a
    /// notification to the VMM or the deadline (a TSC value; 0 = none). While a
    /// VMM runs its guest without that flag it is simply `Running` (or `Ready` when
    /// preempted): the glue resumes the guest instead of the PD's frame.
    GuestHalted(u64),
}

/// What one channel id lets a PD do. Empty for ids it was not given.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Cap {
    /// (PD to signal, bit to set there).
    pub notify: Option<(PdId, u8)>,
    /// (PD to call, channel id the callee sees).
    pub ppc: Option<(PdId, u8)>,
    pub irq: Option<u8>,
}

impl Cap {
    /// No rights: a channel id the PD was not given.
    pub const NONE: Self = Self {
        notify: None,
        ppc: None,
        irq: None,
    };

    /// From an image descriptor that `SystemImage::parse` has checked.
    pub fn from_desc(d: &CapDesc) -> Self {
        Self {
            notify: (d.flags & CapDesc::NOTIFY != 0).then_some((d.notify_pd, d.notify_bit)),
            ppc: (d.flags & CapDesc::PPC != 0).then_some((d.ppc_pd, d.ppc_badge)),
            irq: (d.flags & CapDesc::IRQ != 0).then_some(d.irq),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PdConfig {
    pub priority: u8,
    pub passive: bool,
    /// Microseconds of CPU per period; `budget_us >= period_us` means unlimited.
    pub budget_us: u64,
    pub period_us: u64,
    pub parent: Option<PdId>,
    pub child_id: u8,
    pub caps: [Cap; CHANNELS],
    /// For a VMM: the bounds of its guest (system.xml `<virtual_machine>`).
    pub guest: Option<GuestLimits>,
}

impl PdConfig {
    /// Priority 0, no budget, no capabilities, no parent, no guest: what a PD has
    /// before its image descriptor fills it in.
    pub const EMPTY: Self = Self {
        priority: 0,
        passive: false,
        budget_us: 0,
        period_us: 0,
        parent: None,
        child_id: 0,
        caps: [Cap::NONE; CHANNELS],
        guest: None,
    };
}

/// What bounds a VMM's guest. While the VMM's thread runs its guest (between
/// [`Kernel::enter_guest`] and [`Kernel::leave_guest`]) it runs at `priority` when
/// that is below the PD's own, and is charged to this budget as well as its own:
/// a guest out of budget waits for its refill while the VMM itself (its exits,
/// its notifications) still runs on its own budget at its own priority.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GuestLimits {
    pub priority: u8,
    /// `budget_us >= period_us` means unlimited.
    pub budget_us: u64,
    pub period_us: u64,
}

/// What a PD owes after RECV returned a call or a fault: the next REPLY_RECV answers it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Owes {
    Nothing,
    Call(PdId),
    Fault(PdId),
}

#[derive(Copy, Clone, Debug)]
#[cfg_attr(test, derive(PartialEq))]
struct Pd {
    cfg: PdConfig,
    state: State,
    /// Notification and irq bits not yet delivered.
    pending: u64,
    /// Children (by PD index) whose fault is not yet delivered.
    pending_faults: u64,
    owes: Owes,
    fault: Option<FaultMessage>,
    /// Has waited at least once (a passive PD then stops running on its own time).
    waited: bool,
    /// Budget used in the current period, and when the next period starts.
    consumed: u64,
    refill_at: u64,
    /// Out of budget: runnable PDs stay off the ready queue until the refill.
    throttled: bool,
    /// A passive PD stopped mid-call because the PD whose time it ran on is out of
    /// budget; it continues at that PD's refill.
    parked_on: Option<PdId>,
    /// Its thread runs its guest (`VM_ENTER` in progress, not halted).
    in_guest: bool,
    /// The guest's budget used in its period, its next refill, and whether it is
    /// used up (then the PD stays off the ready queue while `in_guest`).
    guest_consumed: u64,
    guest_refill_at: u64,
    guest_throttled: bool,
}

/// System call results: rax, rdi, rsi, rdx.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ret {
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
}

impl Ret {
    /// rax, then the three result registers in their ABI order.
    pub fn new(rax: u64, rdi: u64, rsi: u64, rdx: u64) -> Self {
        Self { rax, rdi, rsi, rdx }
    }

    pub fn status(s: Status) -> Self {
        Self {
            rax: s.0,
            ..Self::default()
        }
    }

    /// A call that answers with one value: OK and the value in rdi, or the
    /// refusal's status alone.
    pub fn value(result: Result<u64, Status>) -> Self {
        match result {
            Ok(value) => Self::new(Status::OK.0, value, 0, 0),
            Err(s) => Self::status(s),
        }
    }

    /// RECV's result (or `VM_ENTER`'s) for the notified channel ids `bits`.
    pub fn notification(bits: u64) -> Self {
        Self {
            rax: Event::NOTIFICATION.0,
            rsi: bits,
            ..Self::default()
        }
    }

    /// `VM_ENTER`'s result when the guest exited (the exit is in the IPC buffer).
    pub fn vm_exit() -> Self {
        Self {
            rax: Event::VM_EXIT.0,
            ..Self::default()
        }
    }
}

/// The hardware side of a transition, done by the glue.
pub trait Effects {
    /// Sets a PD's system call results (it resumes with them).
    fn set_return(&mut self, pd: PdId, ret: Ret);
    /// Copies `count` message registers from one IPC buffer to another.
    fn copy_message(&mut self, from: PdId, to: PdId, count: usize);
    /// Writes a child's fault into a parent's IPC buffer.
    fn write_fault(&mut self, to: PdId, fault: &FaultMessage);
    fn unmask_irq(&mut self, line: u8);
    /// A fault no parent handles; the glue reports it with the PD's name.
    fn unhandled_fault(&mut self, pd: PdId, fault: &FaultMessage);
}

#[derive(Clone, Debug)]
#[cfg_attr(test, derive(PartialEq))]
pub struct Kernel {
    pds: [Pd; MAX_PDS],
    count: usize,
    current: Option<PdId>,
    ready: ReadyQueue,
    irq_owner: [Option<(PdId, u8)>; 16],
    /// Microseconds since boot at the last tick.
    now: u64,
}

const IDLE_PD: Pd = Pd {
    cfg: PdConfig::EMPTY,
    state: State::Faulted,
    pending: 0,
    pending_faults: 0,
    owes: Owes::Nothing,
    fault: None,
    waited: false,
    consumed: 0,
    refill_at: 0,
    throttled: false,
    parked_on: None,
    in_guest: false,
    guest_consumed: 0,
    guest_refill_at: 0,
    guest_throttled: false,
};

impl Kernel {
    /// All PDs start ready, in image order within a priority. At most [`MAX_PDS`];
    /// configs past that are ignored (the image parser refuses them earlier).
    pub fn new(configs: &[PdConfig]) -> Self {
        let mut k = Self {
            pds: [IDLE_PD; MAX_PDS],
            count: configs.len().min(MAX_PDS),
            current: None,
            ready: ReadyQueue::default(),
            irq_owner: [None; 16],
            now: 0,
        };
        for (i, cfg) in configs.iter().take(MAX_PDS).enumerate() {
            k.pds[i] = Pd {
                cfg: *cfg,
                state: State::Ready,
                refill_at: cfg.period_us,
                guest_refill_at: cfg.guest.map_or(0, |g| g.period_us),
                ..IDLE_PD
            };
            k.ready.push_back(i as PdId, cfg.priority);
            for (ch, cap) in cfg.caps.iter().enumerate() {
                if let Some(line) = cap.irq {
                    if let Some(slot) = k.irq_owner.get_mut(usize::from(line)) {
                        *slot = Some((i as PdId, ch as u8));
                    }
                }
            }
        }
        k
    }

    pub fn current(&self) -> Option<PdId> {
        self.current
    }

    pub fn state(&self, pd: PdId) -> Option<State> {
        self.pd(pd).map(|p| p.state)
    }

    pub fn fault_of(&self, pd: PdId) -> Option<FaultMessage> {
        self.pd(pd).and_then(|p| p.fault)
    }

    /// Irq lines some PD holds (bit per line), for the glue to unmask at boot.
    pub fn irq_lines(&self) -> u16 {
        self.irq_owner
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_some())
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    fn pd(&self, pd: PdId) -> Option<&Pd> {
        self.pds.get(..self.count)?.get(usize::from(pd))
    }

    /// The priority `pd` runs at now: its guest's, while it runs that and it is
    /// the lower.
    #[inline]
    fn prio(&self, pd: PdId) -> u8 {
        let p = &self.pds[usize::from(pd)];
        if !p.in_guest {
            return p.cfg.priority;
        }
        p.cfg
            .guest
            .map_or(p.cfg.priority, |g| g.priority.min(p.cfg.priority))
    }

    /// Whether a runnable `pd` must wait for a budget refill (its own, its caller's
    /// for a parked passive server, or its guest's while it runs that).
    #[inline]
    fn held(&self, pd: PdId) -> bool {
        let p = &self.pds[usize::from(pd)];
        p.throttled || p.parked_on.is_some() || (p.in_guest && p.guest_throttled)
    }

    /// `VM_ENTER` (not halted) on the current PD: its thread now runs its guest, at
    /// the guest's priority and on its budget too. It stops at once if the guest is
    /// out of budget or a ready PD outranks the guest.
    pub fn enter_guest(&mut self) {
        let Some(cur) = self.current else { return };
        let c = usize::from(cur);
        // A notification already pending ends the VM_ENTER before the guest runs.
        if self.pds[c].pending != 0 {
            return;
        }
        self.pds[c].in_guest = true;
        if self.pds[c].guest_throttled {
            self.pds[c].state = State::Ready;
            self.current = None;
            return;
        }
        let prio = self.prio(cur);
        if self.ready.highest().is_some_and(|top| top > prio) {
            self.pds[c].state = State::Ready;
            self.ready.push_front(cur, prio);
            self.current = None;
        }
    }

    /// `pd`'s `VM_ENTER` ends (or is about to: a notification arrived): back to its
    /// own priority and budget, preempting the current PD if it now outranks it.
    pub fn leave_guest(&mut self, pd: PdId) {
        if usize::from(pd) >= self.count || !self.pds[usize::from(pd)].in_guest {
            return;
        }
        let queued = self.ready.contains(pd);
        if queued {
            self.ready.remove(pd, self.prio(pd));
        }
        let was_held = self.held(pd);
        self.pds[usize::from(pd)].in_guest = false;
        if self.pds[usize::from(pd)].state == State::Ready && (queued || was_held) {
            self.wake(pd, true);
        }
    }

    /// Whether `pd`'s thread runs its guest.
    pub fn in_guest(&self, pd: PdId) -> bool {
        self.pd(pd).is_some_and(|p| p.in_guest)
    }

    /// The PD to run: the current one, else the highest ready. `None`: idle.
    pub fn schedule(&mut self) -> Option<PdId> {
        if self.current.is_none() {
            let next = self.ready.pop_highest()?;
            self.run(next);
        }
        self.current
    }

    /// `pd` runs now: `current` and the `Running` state change together, here.
    #[inline(always)]
    fn run(&mut self, pd: PdId) -> PdId {
        self.pds[usize::from(pd)].state = State::Running;
        self.current = Some(pd);
        pd
    }

    /// `pd` takes the CPU from `cur` (priority `cur_prio`), which goes back to the
    /// front of its ready queue: it was running, so it goes first among its peers.
    #[inline(always)]
    fn preempt(&mut self, cur: PdId, cur_prio: u8, pd: PdId) -> PdId {
        self.pds[usize::from(cur)].state = State::Ready;
        self.ready.push_front(cur, cur_prio);
        self.run(pd)
    }

    /// Makes `pd` ready; it preempts the current PD if its priority is higher. A
    /// throttled PD waits for its refill instead.
    fn wake(&mut self, pd: PdId, front: bool) {
        let prio = self.prio(pd);
        if self.held(pd) {
            self.pds[usize::from(pd)].state = State::Ready;
            return;
        }
        match self.current {
            Some(cur) if prio > self.prio(cur) => {
                self.preempt(cur, self.prio(cur), pd);
            }
            _ => {
                self.pds[usize::from(pd)].state = State::Ready;
                if front {
                    self.ready.push_front(pd, prio);
                } else {
                    self.ready.push_back(pd, prio);
                }
            }
        }
    }

    /// A passive PD that has waited runs only on a caller's time.
    fn runs_on_own_time(&self, pd: PdId) -> bool {
        let p = &self.pds[usize::from(pd)];
        !(p.cfg.passive && p.waited)
    }

    /// Hands `pd` its oldest kind of pending event, if any: notifications first, then
    /// child faults (lowest PD index first).
    fn deliver_pending<E: Effects + ?Sized>(&mut self, fx: &mut E, pd: PdId) -> bool {
        let i = usize::from(pd);
        if self.pds[i].pending != 0 {
            let bits = core::mem::take(&mut self.pds[i].pending);
            fx.set_return(pd, Ret::notification(bits));
            return true;
        }
        if self.pds[i].pending_faults != 0 {
            let child = self.pds[i].pending_faults.trailing_zeros() as PdId;
            self.pds[i].pending_faults &= !(1 << child);
            let fault = self.pds[usize::from(child)].fault.unwrap_or_default();
            fx.write_fault(pd, &fault);
            let child_id = u64::from(self.pds[usize::from(child)].cfg.child_id);
            fx.set_return(pd, Ret::new(Event::FAULT.0, child_id, 0, 0));
            self.pds[i].owes = Owes::Fault(child);
            return true;
        }
        false
    }

    /// Sets notification bits on `pd`, waking it if it waits on its own time.
    fn signal<E: Effects + ?Sized>(&mut self, fx: &mut E, pd: PdId, bits: u64) {
        self.pds[usize::from(pd)].pending |= bits;
        // The notification ends its VM_ENTER: it handles it at its own priority.
        if self.pds[usize::from(pd)].in_guest {
            self.leave_guest(pd);
        }
        let state = self.pds[usize::from(pd)].state;
        if let State::GuestHalted(_) = state {
            let bits = core::mem::take(&mut self.pds[usize::from(pd)].pending);
            fx.set_return(pd, Ret::notification(bits));
            self.wake(pd, false);
        } else if state == State::BlockedRecv
            && self.runs_on_own_time(pd)
            && self.deliver_pending(fx, pd)
        {
            self.wake(pd, false);
        }
    }

    /// `VM_ENTER` with the HALTED flag: the current PD waits for a notification or
    /// `deadline` (TSC; 0 = none). Notifications already pending end it at once.
    pub fn vm_halt<E: Effects + ?Sized>(&mut self, fx: &mut E, deadline: u64) {
        let Some(cur) = self.current else { return };
        let c = usize::from(cur);
        if self.pds[c].pending != 0 {
            let bits = core::mem::take(&mut self.pds[c].pending);
            return fx.set_return(cur, Ret::notification(bits));
        }
        self.pds[c].state = State::GuestHalted(deadline);
        self.current = None;
    }

    /// Wakes every halted VMM whose deadline is at or before `now` (TSC): its
    /// `VM_ENTER` returns `Event::VM_EXIT`.
    pub fn expire_deadlines<E: Effects + ?Sized>(&mut self, fx: &mut E, now: u64) {
        for i in 0..self.count {
            if let State::GuestHalted(d) = self.pds[i].state {
                if d != 0 && d <= now {
                    fx.set_return(i as PdId, Ret::vm_exit());
                    self.wake(i as PdId, false);
                }
            }
        }
    }

    /// The earliest deadline a halted VMM waits for.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pds[..self.count]
            .iter()
            .filter_map(|p| match p.state {
                State::GuestHalted(d) if d != 0 => Some(d),
                _ => None,
            })
            .min()
    }

    /// Whether a halted VMM waits for a deadline (then a timer tick can make work).
    pub fn any_deadline(&self) -> bool {
        self.pds[..self.count]
            .iter()
            .any(|p| matches!(p.state, State::GuestHalted(d) if d != 0))
    }

    /// Takes `pd`'s pending notification bits: a VMM running its guest sees them as
    /// `VM_ENTER`'s result, checked by the glue after every exit and resumption.
    pub fn take_pending(&mut self, pd: PdId) -> u64 {
        self.pds
            .get_mut(..self.count)
            .and_then(|p| p.get_mut(usize::from(pd)))
            .map_or(0, |p| core::mem::take(&mut p.pending))
    }

    #[inline(always)]
    fn cap(&self, pd: PdId, ch: u64) -> Result<Cap, Status> {
        let ch = usize::try_from(ch).map_err(|_| Status::BAD_ARGUMENT)?;
        let cap = *self.pds[usize::from(pd)]
            .cfg
            .caps
            .get(ch)
            .ok_or(Status::BAD_ARGUMENT)?;
        if cap.is_empty() {
            return Err(Status::NOT_GRANTED);
        }
        Ok(cap)
    }

    /// The fast paths' lookup: a reference, no copy and no emptiness check (an
    /// empty slot has no right, so the caller's `?` on the right it needs refuses
    /// it the same way). `cap`'s copy and status cost the PPC round trip about 20
    /// instructions, past its bound in the boot test.
    #[inline(always)]
    fn fast_cap(&self, pd: PdId, ch: u64) -> Option<&Cap> {
        self.pds[usize::from(pd)]
            .cfg
            .caps
            .get(usize::try_from(ch).ok()?)
    }

    pub fn notify<E: Effects + ?Sized>(&mut self, fx: &mut E, ch: u64) {
        let Some(cur) = self.current else { return };
        let target = match self.cap(cur, ch) {
            Ok(Cap {
                notify: Some(t), ..
            }) => t,
            Ok(_) => return fx.set_return(cur, Ret::status(Status::NOTIFY_NOT_PERMITTED)),
            Err(s) => return fx.set_return(cur, Ret::status(s)),
        };
        fx.set_return(cur, Ret::status(Status::OK));
        self.signal(fx, target.0, 1 << target.1);
    }

    pub fn pp_call<E: Effects + ?Sized>(&mut self, fx: &mut E, ch: u64, label: u64, count: u64) {
        let Some(cur) = self.current else { return };
        let (callee, badge) = match self.cap(cur, ch) {
            Ok(Cap { ppc: Some(t), .. }) => t,
            Ok(_) => return fx.set_return(cur, Ret::status(Status::CALL_NOT_PERMITTED)),
            Err(s) => return fx.set_return(cur, Ret::status(s)),
        };
        let count = match usize::try_from(count) {
            Ok(n) if n <= MESSAGE_REGISTERS => n,
            _ => return fx.set_return(cur, Ret::status(Status::BAD_ARGUMENT)),
        };
        // The callee outranks every runnable PD, so unless it is stopped by a fault
        // (or stuck behind one further down a call chain) it is waiting.
        if callee == cur || self.pds[usize::from(callee)].state != State::BlockedRecv {
            return fx.set_return(cur, Ret::status(Status::PEER_GONE));
        }
        self.deliver_call(fx, cur, (callee, badge), label, count);
    }

    /// A checked call: the message goes to the callee, which runs now.
    #[inline(always)]
    fn deliver_call<E: Effects + ?Sized>(
        &mut self,
        fx: &mut E,
        cur: PdId,
        (callee, badge): (PdId, u8),
        label: u64,
        count: usize,
    ) {
        fx.copy_message(cur, callee, count);
        fx.set_return(
            callee,
            Ret::new(Event::CALL.0, u64::from(badge), label, count as u64),
        );
        self.pds[usize::from(callee)].owes = Owes::Call(cur);
        self.pds[usize::from(cur)].state = State::BlockedCall(callee);
        self.run(callee);
    }

    /// A plain reply's message and result, to its caller.
    #[inline(always)]
    fn deliver_reply<E: Effects + ?Sized>(
        fx: &mut E,
        cur: PdId,
        caller: PdId,
        label: u64,
        count: usize,
    ) {
        fx.copy_message(cur, caller, count);
        fx.set_return(caller, Ret::new(Status::OK.0, 0, label, count as u64));
    }

    /// RECV. A PD that still owes a caller an answer fails that call rather than
    /// leave the caller blocked for ever.
    pub fn recv<E: Effects + ?Sized>(&mut self, fx: &mut E) {
        self.reply_recv(fx, 0, 0, reply::ERROR);
    }

    pub fn reply_recv<E: Effects + ?Sized>(
        &mut self,
        fx: &mut E,
        label: u64,
        count: u64,
        flags: u64,
    ) {
        let Some(cur) = self.current else { return };
        let count = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(MESSAGE_REGISTERS);
        match core::mem::replace(&mut self.pds[usize::from(cur)].owes, Owes::Nothing) {
            Owes::Call(caller)
                if self.pds[usize::from(caller)].state == State::BlockedCall(cur) =>
            {
                if flags & reply::ERROR != 0 {
                    fx.set_return(caller, Ret::status(Status::CALL_FAILED));
                } else {
                    Self::deliver_reply(fx, cur, caller, label, count);
                }
                // It was running when it called: it goes first among its peers.
                self.wake(caller, true);
            }
            Owes::Fault(child)
                if flags & reply::RESUME != 0
                    && self.pds[usize::from(child)].state == State::Faulted =>
            {
                self.pds[usize::from(child)].fault = None;
                self.wake(child, false);
            }
            _ => {}
        }
        self.wait(fx);
    }

    /// The fast path of PP_CALL: the common case (a granted call to a waiting
    /// callee) with the same capability and argument checks, and the same result
    /// as [`Self::pp_call`] (property-tested). Returns the PD to run now, or `None`
    /// having touched nothing, for the general path to decide (and report).
    #[inline(always)]
    pub fn fast_pp_call<E: Effects + ?Sized>(
        &mut self,
        fx: &mut E,
        ch: u64,
        label: u64,
        count: u64,
    ) -> Option<PdId> {
        let cur = self.current?;
        let (callee, badge) = self.fast_cap(cur, ch)?.ppc?;
        if count > MESSAGE_REGISTERS as u64
            || callee == cur
            || self.pds[usize::from(callee)].state != State::BlockedRecv
        {
            return None;
        }
        self.deliver_call(fx, cur, (callee, badge), label, count as usize);
        Some(callee)
    }

    /// The fast path of REPLY_RECV, seL4-style: a plain reply to a caller that is
    /// the one to run next switches straight to it, without queueing it only to
    /// pick it again. It does exactly what [`Self::reply_recv`] followed by
    /// [`Self::schedule`] would (property-tested) and returns the caller, or
    /// touches nothing and returns `None` when any condition of the common case
    /// fails: an error or resume flag, nothing owed, a caller not blocked on this
    /// PD, an event already pending for this PD, a caller held by its budget, or a
    /// ready PD that the caller does not outrank.
    #[inline(always)]
    pub fn fast_reply_recv<E: Effects + ?Sized>(
        &mut self,
        fx: &mut E,
        label: u64,
        count: u64,
        flags: u64,
    ) -> Option<PdId> {
        let cur = self.current?;
        let c = usize::from(cur);
        let Owes::Call(caller) = self.pds[c].owes else {
            return None;
        };
        let prio = self.prio(caller);
        if flags != 0
            || self.pds[usize::from(caller)].state != State::BlockedCall(cur)
            || self.pds[c].pending != 0
            || self.pds[c].pending_faults != 0
            || self.held(caller)
            || prio > self.prio(cur)
            || self.ready.highest().is_some_and(|top| top > prio)
        {
            return None;
        }
        let count = count.min(MESSAGE_REGISTERS as u64) as usize;
        Self::deliver_reply(fx, cur, caller, label, count);
        let p = &mut self.pds[c];
        p.owes = Owes::Nothing;
        p.waited = true;
        p.state = State::BlockedRecv;
        Some(self.run(caller))
    }

    /// The fast path of RECV with nothing owed: a pending notification comes back
    /// at once, or the PD blocks and the highest ready PD runs. As [`Self::recv`]
    /// then [`Self::schedule`] (property-tested); `None`, having touched nothing,
    /// when something is owed, a child's fault is the next event or nothing else
    /// could run (the general path idles).
    #[inline(always)]
    pub fn fast_recv<E: Effects + ?Sized>(&mut self, fx: &mut E) -> Option<PdId> {
        let cur = self.current?;
        let c = usize::from(cur);
        if self.pds[c].owes != Owes::Nothing {
            return None;
        }
        // Notifications go before child faults, as in `deliver_pending`.
        if self.pds[c].pending != 0 {
            self.pds[c].waited = true;
            let bits = core::mem::take(&mut self.pds[c].pending);
            fx.set_return(cur, Ret::notification(bits));
            return Some(cur);
        }
        if self.pds[c].pending_faults != 0 {
            return None;
        }
        let next = self.ready.pop_highest()?;
        self.pds[c].waited = true;
        self.pds[c].state = State::BlockedRecv;
        Some(self.run(next))
    }

    /// The fast path of NOTIFY to a PD not in `VM_ENTER`: as [`Self::notify`]
    /// then [`Self::schedule`] (property-tested), the same capability check;
    /// returns the PD to run (the notifier, or the notified one if it preempts),
    /// or `None` having touched nothing.
    #[inline(always)]
    pub fn fast_notify<E: Effects + ?Sized>(&mut self, fx: &mut E, ch: u64) -> Option<PdId> {
        let cur = self.current?;
        let (target, bit) = self.fast_cap(cur, ch)?.notify?;
        let t = usize::from(target);
        if self.pds[t].in_guest || matches!(self.pds[t].state, State::GuestHalted(_)) {
            return None;
        }
        let wakes = self.pds[t].state == State::BlockedRecv && self.runs_on_own_time(target);
        if wakes && self.held(target) {
            return None;
        }
        fx.set_return(cur, Ret::status(Status::OK));
        let bits = self.pds[t].pending | 1 << bit;
        if !wakes {
            self.pds[t].pending = bits;
            return Some(cur);
        }
        self.pds[t].pending = 0;
        fx.set_return(target, Ret::notification(bits));
        let prio = self.prio(target);
        let cur_prio = self.prio(cur);
        if prio > cur_prio {
            Some(self.preempt(cur, cur_prio, target))
        } else {
            self.pds[t].state = State::Ready;
            self.ready.push_back(target, prio);
            Some(cur)
        }
    }

    fn wait<E: Effects + ?Sized>(&mut self, fx: &mut E) {
        let Some(cur) = self.current else { return };
        self.pds[usize::from(cur)].waited = true;
        if self.deliver_pending(fx, cur) {
            return;
        }
        self.pds[usize::from(cur)].state = State::BlockedRecv;
        self.current = None;
    }

    pub fn irq_ack<E: Effects + ?Sized>(&mut self, fx: &mut E, ch: u64) {
        let Some(cur) = self.current else { return };
        match self.cap(cur, ch) {
            Ok(Cap {
                irq: Some(line), ..
            }) => {
                fx.unmask_irq(line);
                fx.set_return(cur, Ret::status(Status::OK));
            }
            Ok(_) => fx.set_return(cur, Ret::status(Status::NOT_AN_IRQ)),
            Err(s) => fx.set_return(cur, Ret::status(s)),
        }
    }

    /// The irq line behind the current PD's channel `ch`, if it holds one there.
    pub fn irq_line_of(&self, ch: u64) -> Result<u8, Status> {
        let cur = self.current.ok_or(Status::NOT_GRANTED)?;
        self.cap(cur, ch)?.irq.ok_or(Status::NOT_AN_IRQ)
    }

    /// An irq line fired (the glue has masked it until the owner acks).
    pub fn irq<E: Effects + ?Sized>(&mut self, fx: &mut E, line: u8) {
        if let Some(Some((pd, ch))) = self.irq_owner.get(usize::from(line)).copied() {
            self.signal(fx, pd, 1 << ch);
        }
    }

    /// Whether any PD waits for a refill (then a timer tick can make work).
    pub fn any_throttled(&self) -> bool {
        self.pds[..self.count]
            .iter()
            .any(|p| p.throttled || (p.in_guest && p.guest_throttled))
    }

    /// A timer tick at `now_us` since boot: refill budgets whose period started,
    /// charge the running PD, throttle it when its budget is gone, and rotate PDs of
    /// equal priority.
    pub fn tick(&mut self, now_us: u64) {
        let elapsed = now_us.saturating_sub(self.now);
        self.now = now_us;
        for i in 0..self.count {
            let p = &mut self.pds[i];
            if p.cfg.budget_us >= p.cfg.period_us || p.refill_at > now_us {
                continue;
            }
            p.consumed = 0;
            // Catch up on whole periods missed while idle.
            let behind = (now_us - p.refill_at) / p.cfg.period_us.max(1) + 1;
            p.refill_at += behind * p.cfg.period_us.max(1);
            if p.throttled {
                p.throttled = false;
                self.requeue(i as PdId);
                for j in 0..self.count {
                    if self.pds[j].parked_on == Some(i as PdId) {
                        self.pds[j].parked_on = None;
                        self.requeue(j as PdId);
                    }
                }
            }
        }
        for i in 0..self.count {
            let p = &mut self.pds[i];
            let Some(g) = p.cfg.guest else { continue };
            if g.budget_us >= g.period_us || p.guest_refill_at > now_us {
                continue;
            }
            p.guest_consumed = 0;
            let behind = (now_us - p.guest_refill_at) / g.period_us.max(1) + 1;
            p.guest_refill_at += behind * g.period_us.max(1);
            if p.guest_throttled {
                p.guest_throttled = false;
                self.requeue(i as PdId);
            }
        }
        let Some(cur) = self.current else { return };
        let c = usize::from(cur);
        let payer = self.payer(cur);
        let p = &mut self.pds[usize::from(payer)];
        let mut stop = false;
        if p.cfg.budget_us < p.cfg.period_us {
            p.consumed += elapsed;
            if p.consumed >= p.cfg.budget_us {
                p.throttled = true;
                if payer != cur {
                    self.pds[c].parked_on = Some(payer);
                }
                stop = true;
            }
        }
        let p = &mut self.pds[c];
        if let Some(g) = p
            .cfg
            .guest
            .filter(|g| g.budget_us < g.period_us && p.in_guest)
        {
            p.guest_consumed += elapsed;
            if p.guest_consumed >= g.budget_us {
                p.guest_throttled = true;
                stop = true;
            }
        }
        if stop {
            self.pds[c].state = State::Ready;
            self.current = None;
            return;
        }
        let prio = self.prio(cur);
        match self.ready.highest() {
            // A refilled PD outranks the running one.
            Some(top) if top > prio => {
                self.pds[c].state = State::Ready;
                self.ready.push_front(cur, prio);
                self.current = None;
            }
            Some(top) if top == prio => {
                self.pds[c].state = State::Ready;
                self.ready.push_back(cur, prio);
                self.current = None;
            }
            _ => {}
        }
    }

    /// Puts a `Ready` PD that no budget holds back on the ready queue.
    fn requeue(&mut self, pd: PdId) {
        if self.pds[usize::from(pd)].state == State::Ready && !self.held(pd) {
            self.ready.push_back(pd, self.prio(pd));
        }
    }

    /// Whose budget pays while `pd` runs: its own, or for a passive PD serving a
    /// call, that of the first PD down the call chain that is not passive.
    fn payer(&self, pd: PdId) -> PdId {
        let mut p = pd;
        for _ in 0..self.count {
            let d = &self.pds[usize::from(p)];
            match d.owes {
                Owes::Call(caller) if d.cfg.passive && d.waited => p = caller,
                _ => break,
            }
        }
        p
    }

    /// The current PD faulted: stop it, release its caller, tell its parent.
    pub fn fault<E: Effects + ?Sized>(&mut self, fx: &mut E, fault: FaultMessage) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let i = usize::from(cur);
        self.pds[i].state = State::Faulted;
        self.pds[i].fault = Some(fault);
        if let Owes::Call(caller) = core::mem::replace(&mut self.pds[i].owes, Owes::Nothing) {
            if self.pds[usize::from(caller)].state == State::BlockedCall(cur) {
                fx.set_return(caller, Ret::status(Status::PEER_GONE));
                self.wake(caller, true);
            }
        }
        match self.pds[i].cfg.parent {
            Some(parent) if usize::from(parent) < self.count => {
                let p = usize::from(parent);
                self.pds[p].pending_faults |= 1 << cur;
                if self.pds[p].state == State::BlockedRecv
                    && self.runs_on_own_time(parent)
                    && self.deliver_pending(fx, parent)
                {
                    self.wake(parent, false);
                }
            }
            _ => fx.unhandled_fault(cur, &fault),
        }
    }
}

#[cfg(test)]
mod tests;
