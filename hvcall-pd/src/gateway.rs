//! The hypercall gateway state machine: decode and validate a hypercall exactly as
//! the TLFS specifies, run it against the partition's VTL and register state and the
//! connection table, and tell the vCPU PD what to put in RAX.
//!
//! Status precedence follows the TLFS "common hypercall status codes": reserved
//! control bits and bad rep fields are INVALID_HYPERCALL_INPUT, unknown codes
//! INVALID_HYPERCALL_CODE, and an input or output list that is unaligned, spans a
//! page or lies outside guest memory is INVALID_ALIGNMENT. (OpenVMM answers the page
//! span with INVALID_HYPERCALL_INPUT; the TLFS table lists it under alignment, and
//! this gateway follows the TLFS.)

use hvdef::hypercall::{
    host_visibility, EnablePartitionVtlInput, EnableVpVtlInput, GetSetVpRegistersHeader,
    HvRegisterAssoc, HvRegisterName, HvRegisterValue, InitialVpContextX64,
    ModifyHostVisibilityHeader, PostMessageInput, SignalEventInput,
};
use hvdef::message::{HvMessage, HvMessageHeader, HvMessageType, SINT_EVENT_FLAGS};
use hvdef::msr::HypercallMsr;
use hvdef::vtl::HvInputVtl;
use hvdef::{
    HvStatus, HypercallCode, HypercallResult, Vtl, HV_PAGE_SIZE, HV_PARTITION_ID_SELF,
    HV_VP_INDEX_SELF,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::config::Config;
use crate::effects::{Effects, HostCall, ServiceMessage};
use crate::guest::GuestMemory;
use crate::route::{Destination, Route, RouteError, RouteTable};

pub use hvcall_api::{HypercallRequest, Outcome};

/// The vCPU PD sent something impossible: a bug or a compromised peer, not a guest
/// error, so it is not answered with a hypercall status.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum PeerError {
    InvalidVp,
    /// The VP cannot be running in that VTL: it is not enabled there.
    VtlNotEnabled,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ConfigError {
    VpCount { requested: u32, max: usize },
}

/// The shape of a call's input and output, from the TLFS call tables.
#[derive(Copy, Clone, Debug)]
enum Shape {
    Simple {
        input: usize,
        output: usize,
    },
    Rep {
        header: usize,
        input_element: usize,
        output_element: usize,
    },
    /// VTL call/return: no memory input, special completion.
    VtlSwitch,
}

/// A simple call that takes a `T` and writes no output.
const fn input_only<T>() -> Shape {
    Shape::Simple {
        input: size_of::<T>(),
        output: 0,
    }
}

fn shape_of(code: HypercallCode) -> Option<Shape> {
    Some(match code {
        HypercallCode::POST_MESSAGE => input_only::<PostMessageInput>(),
        HypercallCode::SIGNAL_EVENT => input_only::<SignalEventInput>(),
        HypercallCode::ENABLE_PARTITION_VTL => input_only::<EnablePartitionVtlInput>(),
        HypercallCode::ENABLE_VP_VTL => input_only::<EnableVpVtlInput>(),
        HypercallCode::GET_VP_REGISTERS => Shape::Rep {
            header: size_of::<GetSetVpRegistersHeader>(),
            input_element: size_of::<HvRegisterName>(),
            output_element: size_of::<HvRegisterValue>(),
        },
        HypercallCode::SET_VP_REGISTERS => Shape::Rep {
            header: size_of::<GetSetVpRegistersHeader>(),
            input_element: size_of::<HvRegisterAssoc>(),
            output_element: 0,
        },
        HypercallCode::MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY => Shape::Rep {
            header: size_of::<ModifyHostVisibilityHeader>(),
            input_element: size_of::<u64>(),
            output_element: 0,
        },
        HypercallCode::VTL_CALL | HypercallCode::VTL_RETURN => Shape::VtlSwitch,
        _ => return None,
    })
}

/// How a handler finished: a status plus, for rep calls, the absolute number of
/// elements completed (`rep_start` + those done in this call).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum CallDone {
    Status(HvStatus, u16),
    Switch(Vtl),
}

const FAST_INPUT_MAX: usize = 16;
const PAGE: usize = HV_PAGE_SIZE as usize;

/// Layout of the hypercall page this gateway writes: the plain hypercall sequence at
/// 0, the VTL call sequence at [`VTL_CALL_OFFSET`], VTL return at
/// [`VTL_RETURN_OFFSET`]. The VTL sequences move RCX (the caller's input) to RAX and
/// load the call code into RCX, as Hyper-V's do.
pub const VTL_CALL_OFFSET: u16 = 0x04;
pub const VTL_RETURN_OFFSET: u16 = 0x10;

/// Per-VTL registers (each VTL has its own guest OS id and hypercall page).
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct VtlRegisters {
    pub(crate) guest_os_id: u64,
    pub(crate) hypercall: HypercallMsr,
}

#[derive(Copy, Clone, Debug)]
struct VpState {
    /// VTLs enabled on this VP (bit n = VTL n); VTL0 always.
    enabled: u8,
    /// Where each VTL starts on its first entry (HvCallEnableVpVtl).
    initial: [Option<InitialVpContextX64>; Vtl::COUNT],
}

impl VpState {
    const fn new() -> Self {
        Self {
            enabled: Vtl::VTL0.bit(),
            initial: [None; Vtl::COUNT],
        }
    }
}

pub struct HvcallCore<const VPS: usize, const ROUTES: usize> {
    cfg: Config,
    routes: RouteTable<ROUTES>,
    /// VTLs enabled for the partition (HvCallEnablePartitionVtl).
    partition_vtls: u8,
    vps: [VpState; VPS],
    pub(crate) regs: [VtlRegisters; Vtl::COUNT],
}

impl<const VPS: usize, const ROUTES: usize> core::fmt::Debug for HvcallCore<VPS, ROUTES> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HvcallCore")
            .field("cfg", &self.cfg)
            .field("routes", &self.routes.len())
            .field("partition_vtls", &self.partition_vtls)
            .finish_non_exhaustive()
    }
}

/// The highest VTL in `set` strictly below `below`.
fn highest_below(set: u8, below: Vtl) -> Option<Vtl> {
    (0..below.get()).rev().find_map(|v| {
        let vtl = Vtl::new(v)?;
        (set & vtl.bit() != 0).then_some(vtl)
    })
}

/// The lowest VTL in `set` strictly above `above`.
fn lowest_above(set: u8, above: Vtl) -> Option<Vtl> {
    (above.get() + 1..=Vtl::MAX.get()).find_map(|v| {
        let vtl = Vtl::new(v)?;
        (set & vtl.bit() != 0).then_some(vtl)
    })
}

/// TLFS enable rule: a VTL may enable any lower VTL, and a higher one only if it is
/// the highest VTL enabled (in `enabled`) below that target.
fn may_enable(enabled: u8, caller: Vtl, target: Vtl) -> bool {
    target < caller || highest_below(enabled, target) == Some(caller)
}

impl<const VPS: usize, const ROUTES: usize> HvcallCore<VPS, ROUTES> {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        if cfg.vp_count == 0 || cfg.vp_count as usize > VPS {
            return Err(ConfigError::VpCount {
                requested: cfg.vp_count,
                max: VPS,
            });
        }
        Ok(Self {
            cfg,
            routes: RouteTable::new(),
            partition_vtls: Vtl::VTL0.bit(),
            vps: [VpState::new(); VPS],
            regs: [VtlRegisters::default(); Vtl::COUNT],
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn cpuid(&self, leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
        crate::cpuid::cpuid(&self.cfg, leaf, subleaf)
    }

    pub fn register_route(&mut self, route: Route) -> Result<(), RouteError> {
        self.routes.insert(route)
    }

    pub fn unregister_route(
        &mut self,
        vtl: Vtl,
        connection_id: u32,
        owner: u8,
    ) -> Result<Route, RouteError> {
        self.routes.remove(vtl, connection_id, owner)
    }

    pub fn routes(&self) -> &RouteTable<ROUTES> {
        &self.routes
    }

    /// VTLs enabled on `vp` (bit n = VTL n).
    pub fn vp_enabled_vtls(&self, vp: u32) -> Option<u8> {
        self.vp(vp).map(|s| s.enabled)
    }

    pub fn partition_enabled_vtls(&self) -> u8 {
        self.partition_vtls
    }

    /// The context `vtl` starts in on `vp`, as its enabler supplied it.
    pub fn initial_context(&self, vp: u32, vtl: Vtl) -> Option<&InitialVpContextX64> {
        self.vp(vp)?.initial.get(vtl.index())?.as_ref()
    }

    fn vp(&self, vp: u32) -> Option<&VpState> {
        if vp >= self.cfg.vp_count {
            return None;
        }
        self.vps.get(vp as usize)
    }

    /// Checks that the vCPU PD's report is possible.
    pub(crate) fn check_caller(&self, vp: u32, vtl: Vtl) -> Result<(), PeerError> {
        let state = self.vp(vp).ok_or(PeerError::InvalidVp)?;
        if state.enabled & vtl.bit() == 0 {
            return Err(PeerError::VtlNotEnabled);
        }
        Ok(())
    }

    pub fn hypercall(
        &mut self,
        mem: &GuestMemory<'_>,
        fx: &mut dyn Effects,
        req: HypercallRequest,
    ) -> Result<Outcome, PeerError> {
        self.check_caller(req.vp, req.vtl)?;
        Ok(match self.run(mem, fx, &req) {
            CallDone::Status(status, reps) => Outcome::Complete(HypercallResult::new(status, reps)),
            CallDone::Switch(vtl) => Outcome::SwitchVtl(vtl),
        })
    }

    fn run(
        &mut self,
        mem: &GuestMemory<'_>,
        fx: &mut dyn Effects,
        req: &HypercallRequest,
    ) -> CallDone {
        let c = req.control;
        let fail = |s| CallDone::Status(s, 0);
        // The nested bit asks for the L0 hypervisor; there is none behind this one.
        if c.reserved_bits() != 0 || c.nested() {
            return fail(HvStatus::INVALID_HYPERCALL_INPUT);
        }
        let Some(shape) = shape_of(c.code()) else {
            return fail(HvStatus::INVALID_HYPERCALL_CODE);
        };
        let (input_len, output_len, output_element) = match shape {
            Shape::VtlSwitch => {
                if c.rep_count() != 0 || c.rep_start() != 0 || c.variable_header_qwords() != 0 {
                    return fail(HvStatus::INVALID_HYPERCALL_INPUT);
                }
                return self.vtl_switch(req);
            }
            Shape::Simple { input, output } => {
                if c.rep_count() != 0 || c.rep_start() != 0 || c.variable_header_qwords() != 0 {
                    return fail(HvStatus::INVALID_HYPERCALL_INPUT);
                }
                (input, output, 0)
            }
            Shape::Rep {
                header,
                input_element,
                output_element,
            } => {
                if c.rep_count() == 0
                    || c.rep_start() >= c.rep_count()
                    || c.variable_header_qwords() != 0
                {
                    return fail(HvStatus::INVALID_HYPERCALL_INPUT);
                }
                let n = c.rep_count() as usize;
                (
                    header + input_element * n,
                    output_element * n,
                    output_element,
                )
            }
        };
        // From here on a rep call's failure reports the reps done before this call.
        let rep_fail = |s| CallDone::Status(s, c.rep_start());

        // Fast calls never need the page-sized buffers; zeroing 8 KiB would cost more
        // than the rest of an HvSignalEvent.
        let mut fast_buf = [0u8; FAST_INPUT_MAX];
        let mut page_buf;
        let mut output_buf;
        let input: &[u8] = if c.fast() {
            // Fast calls carry at most RDX:R8 and have no output registers here
            // (XMM fast calls are not advertised in CPUID 0x40000003 EDX).
            if input_len > FAST_INPUT_MAX || output_len != 0 {
                return rep_fail(HvStatus::INVALID_HYPERCALL_INPUT);
            }
            fast_buf[..8].copy_from_slice(&req.rdx.to_le_bytes());
            fast_buf[8..].copy_from_slice(&req.r8.to_le_bytes());
            &fast_buf[..input_len]
        } else {
            let input = match check_buffer(mem, req.rdx, input_len) {
                Ok(r) => r,
                Err(s) => return rep_fail(s),
            };
            if let Err(s) = check_buffer(mem, req.r8, output_len) {
                return rep_fail(s);
            }
            page_buf = [0u8; PAGE];
            if let Some(region) = input {
                if region.read_bytes(0, &mut page_buf[..input_len]).is_err() {
                    return rep_fail(HvStatus::INVALID_ALIGNMENT);
                }
            }
            &page_buf[..input_len]
        };
        let output: &mut [u8] = if output_len == 0 {
            &mut []
        } else {
            output_buf = [0u8; PAGE];
            &mut output_buf[..output_len]
        };

        let done = match c.code() {
            HypercallCode::POST_MESSAGE => self.route_call::<PostMessageInput>(mem, fx, req, input),
            HypercallCode::SIGNAL_EVENT => self.route_call::<SignalEventInput>(mem, fx, req, input),
            HypercallCode::ENABLE_PARTITION_VTL => simple(self.enable_partition_vtl(req, input)),
            HypercallCode::ENABLE_VP_VTL => simple(self.enable_vp_vtl(req, input)),
            HypercallCode::GET_VP_REGISTERS => reps(req, self.get_vp_registers(req, input, output)),
            HypercallCode::SET_VP_REGISTERS => reps(req, self.set_vp_registers(mem, req, input)),
            HypercallCode::MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY => {
                reps(req, self.modify_host_visibility(mem, req, input))
            }
            _ => fail(HvStatus::INVALID_HYPERCALL_CODE),
        };

        // Write back: for rep calls the elements completed in this call (even on
        // failure, so partial progress is visible), for simple calls everything on
        // success and nothing on failure.
        if let CallDone::Status(status, reps) = done {
            if !c.fast() && output_len != 0 {
                let range = if output_element != 0 {
                    let start = c.rep_start() as usize * output_element;
                    let end = (reps as usize * output_element).max(start);
                    start..end
                } else if status.is_success() {
                    0..output_len
                } else {
                    0..0
                };
                if !range.is_empty() {
                    let written = mem
                        .range(req.r8 + range.start as u64, range.len())
                        .and_then(|r| r.write_bytes(0, &output[range]).ok());
                    if written.is_none() {
                        return CallDone::Status(HvStatus::INVALID_ALIGNMENT, reps);
                    }
                }
            }
        }
        done
    }

    // ---- HvCallPostMessage / HvCallSignalEvent ---------------------------------

    /// HvPostMessage and HvSignalEvent: the guest's route for the input's
    /// connection decides; a host route relays the call, any other gets the input
    /// delivered.
    fn route_call<T: RoutedInput>(
        &mut self,
        mem: &GuestMemory<'_>,
        fx: &mut dyn Effects,
        req: &HypercallRequest,
        input: &[u8],
    ) -> CallDone {
        let Ok(call) = T::read_from_bytes(input) else {
            return CallDone::Status(HvStatus::INVALID_HYPERCALL_INPUT, 0);
        };
        let Some(connection_id) = call.connection() else {
            return CallDone::Status(HvStatus::INVALID_PARAMETER, 0);
        };
        let Some(route) = self.routes.lookup(req.vtl, connection_id).copied() else {
            return CallDone::Status(HvStatus::INVALID_CONNECTION_ID, 0);
        };
        if route.destination == Destination::Host {
            return self.forward(mem, fx, req, input.len() as u64);
        }
        CallDone::Status(call.deliver(req.vtl, fx, route.destination), 0)
    }

    /// Relays the call to the host. Seed 000's rule: the host may only be handed
    /// buffers it can already see; a slow call whose input lies in private memory is
    /// refused here and never reaches the host channel.
    fn forward(
        &mut self,
        mem: &GuestMemory<'_>,
        fx: &mut dyn Effects,
        req: &HypercallRequest,
        input_len: u64,
    ) -> CallDone {
        if !req.control.fast() && !mem.host_visible(req.rdx, input_len) {
            return CallDone::Status(HvStatus::ACCESS_DENIED, 0);
        }
        let result = fx.host_forward(&HostCall {
            vp: req.vp,
            control: req.control,
            input: req.rdx,
            output: req.r8,
        });
        // The host answers only for itself: keep its status, drop anything else it
        // put in the word (reps make no sense for these simple calls).
        CallDone::Status(result.status(), 0)
    }

    // ---- VSM: enable, call, return -----------------------------------------------

    fn enable_partition_vtl(
        &mut self,
        req: &HypercallRequest,
        input: &[u8],
    ) -> Result<(), HvStatus> {
        let inp = own_partition_input(input, |i: &EnablePartitionVtlInput| i.partition_id)?;
        let Some(target) = Vtl::new(inp.target_vtl) else {
            return Err(HvStatus::INVALID_PARAMETER);
        };
        // MBEC is not offered; reserved bits must be clear.
        if inp.flags != 0 || inp.reserved_z0 != 0 || inp.reserved_z1 != 0 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        // VTLs above the guest's maximum belong to the paravisor.
        if target > self.cfg.max_guest_vtl {
            return Err(HvStatus::ACCESS_DENIED);
        }
        if self.partition_vtls & target.bit() != 0 {
            return Err(HvStatus::VTL_ALREADY_ENABLED);
        }
        if !may_enable(self.partition_vtls, req.vtl, target) {
            return Err(HvStatus::ACCESS_DENIED);
        }
        self.partition_vtls |= target.bit();
        Ok(())
    }

    fn enable_vp_vtl(&mut self, req: &HypercallRequest, input: &[u8]) -> Result<(), HvStatus> {
        let inp = own_partition_input(input, |i: &EnableVpVtlInput| i.partition_id)?;
        let vp = if inp.vp_index == HV_VP_INDEX_SELF {
            req.vp
        } else {
            inp.vp_index
        };
        if self.vp(vp).is_none() {
            return Err(HvStatus::INVALID_VP_INDEX);
        }
        let Some(target) = Vtl::new(inp.target_vtl) else {
            return Err(HvStatus::INVALID_PARAMETER);
        };
        if inp.reserved != [0; 3] {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        if target > self.cfg.max_guest_vtl {
            return Err(HvStatus::ACCESS_DENIED);
        }
        if self.partition_vtls & target.bit() == 0 {
            return Err(HvStatus::INVALID_VTL_STATE);
        }
        // Once some VP runs the target VTL, only that VTL or a higher one may bring
        // it up elsewhere; before that the TLFS enable rule applies.
        let in_use = self.vps[..self.cfg.vp_count as usize]
            .iter()
            .any(|s| s.enabled & target.bit() != 0);
        let allowed = if in_use {
            req.vtl >= target
        } else {
            may_enable(self.partition_vtls, req.vtl, target)
        };
        let Some(state) = self.vps.get_mut(vp as usize) else {
            return Err(HvStatus::INVALID_VP_INDEX);
        };
        if state.enabled & target.bit() != 0 {
            return Err(HvStatus::VTL_ALREADY_ENABLED);
        }
        if !allowed {
            return Err(HvStatus::ACCESS_DENIED);
        }
        state.enabled |= target.bit();
        if let Some(slot) = state.initial.get_mut(target.index()) {
            *slot = Some(inp.context);
        }
        Ok(())
    }

    /// VTL call goes up to the next enabled VTL, VTL return down to the next enabled
    /// one. Without such a VTL the call is not allowed from the caller's VTL.
    fn vtl_switch(&mut self, req: &HypercallRequest) -> CallDone {
        let enabled = self.vp(req.vp).map_or(0, |s| s.enabled);
        let target = if req.control.code() == HypercallCode::VTL_CALL {
            lowest_above(enabled, req.vtl)
        } else {
            highest_below(enabled, req.vtl)
        };
        match target {
            Some(vtl) => CallDone::Switch(vtl),
            None => CallDone::Status(HvStatus::ACCESS_DENIED, 0),
        }
    }

    // ---- HvCallGetVpRegisters / HvCallSetVpRegisters -----------------------------

    /// Reads and validates a Get/SetVpRegisters header: the VP and the VTL whose
    /// registers are meant, and the rep list after the header. A VTL may reach its
    /// own registers and those of lower VTLs only.
    fn register_target<'a>(
        &self,
        req: &HypercallRequest,
        input: &'a [u8],
    ) -> Result<(u32, Vtl, &'a [u8]), HvStatus> {
        let (hdr, list) = GetSetVpRegistersHeader::read_from_prefix(input)
            .map_err(|_| HvStatus::INVALID_HYPERCALL_INPUT)?;
        if hdr.partition_id != HV_PARTITION_ID_SELF {
            return Err(HvStatus::INVALID_PARTITION_ID);
        }
        let vp = if hdr.vp_index == HV_VP_INDEX_SELF {
            req.vp
        } else {
            hdr.vp_index
        };
        let state = self.vp(vp).ok_or(HvStatus::INVALID_VP_INDEX)?;
        if hdr.reserved != [0; 3] {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        let target = HvInputVtl(hdr.input_vtl)
            .resolve(req.vtl)
            .ok_or(HvStatus::INVALID_PARAMETER)?;
        if target > req.vtl {
            return Err(HvStatus::ACCESS_DENIED);
        }
        if state.enabled & target.bit() == 0 {
            return Err(HvStatus::INVALID_VTL_STATE);
        }
        Ok((vp, target, list))
    }

    fn get_register(&self, vp: u32, vtl: Vtl, name: HvRegisterName) -> Result<u64, HvStatus> {
        let regs = self
            .regs
            .get(vtl.index())
            .ok_or(HvStatus::INVALID_PARAMETER)?;
        let state = self.vp(vp).ok_or(HvStatus::INVALID_VP_INDEX)?;
        Ok(match name {
            HvRegisterName::GUEST_OS_ID => regs.guest_os_id,
            HvRegisterName::HYPERCALL => regs.hypercall.0,
            HvRegisterName::VP_INDEX => vp as u64,
            HvRegisterName::VSM_VP_STATUS => {
                hvdef::hypercall::vsm_vp_status(vtl.get(), state.enabled as u16)
            }
            HvRegisterName::VSM_PARTITION_STATUS => hvdef::hypercall::vsm_partition_status(
                self.partition_vtls as u16,
                self.cfg.max_guest_vtl.get(),
            ),
            HvRegisterName::VSM_CODE_PAGE_OFFSETS => {
                hvdef::hypercall::vsm_code_page_offsets(VTL_CALL_OFFSET, VTL_RETURN_OFFSET)
            }
            _ => return Err(HvStatus::INVALID_PARAMETER),
        })
    }

    /// An isolated guest shares private pages with the host or takes them back.
    /// Only an isolated partition may ask, only for itself, and only for pages of
    /// its private RAM (below the shared boundary). On this platform private and
    /// shared are the same memory seen at two GPAs (the alias above the vTOM is
    /// mapped from the same region), so there is nothing to convert: the call
    /// checks every page and completes. A platform with hardware isolation would
    /// change page ownership here (PVALIDATE/RMP on SNP, MapGPA on TDX).
    fn modify_host_visibility(
        &mut self,
        mem: &GuestMemory<'_>,
        req: &HypercallRequest,
        input: &[u8],
    ) -> Result<CallDone, HvStatus> {
        let boundary = mem.shared_boundary().ok_or(HvStatus::ACCESS_DENIED)?;
        let (header, rest) = ModifyHostVisibilityHeader::read_from_prefix(input)
            .map_err(|_| HvStatus::INVALID_HYPERCALL_INPUT)?;
        if header.partition_id != HV_PARTITION_ID_SELF {
            return Err(HvStatus::ACCESS_DENIED);
        }
        if header.host_visibility & !host_visibility::MASK != 0 || header.reserved != 0 {
            return Err(HvStatus::INVALID_PARAMETER);
        }
        Ok(each_rep(req, rest, |page: u64| {
            let gpa = page.checked_mul(HV_PAGE_SIZE);
            let private_ram = gpa.is_some_and(|gpa| {
                gpa < boundary && mem.range(gpa, HV_PAGE_SIZE as usize).is_some()
            });
            private_ram.then_some(()).ok_or(HvStatus::INVALID_PARAMETER)
        }))
    }

    fn get_vp_registers(
        &mut self,
        req: &HypercallRequest,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<CallDone, HvStatus> {
        let (vp, vtl, rest) = self.register_target(req, input)?;
        let mut slots = output
            .chunks_exact_mut(size_of::<HvRegisterValue>())
            .skip(req.control.rep_start().into());
        Ok(each_rep(req, rest, |name: HvRegisterName| {
            let value = HvRegisterValue::from(self.get_register(vp, vtl, name)?);
            let slot = slots.next().ok_or(HvStatus::INVALID_HYPERCALL_INPUT)?;
            slot.copy_from_slice(value.as_bytes());
            Ok(())
        }))
    }

    fn set_vp_registers(
        &mut self,
        mem: &GuestMemory<'_>,
        req: &HypercallRequest,
        input: &[u8],
    ) -> Result<CallDone, HvStatus> {
        let (vp, vtl, rest) = self.register_target(req, input)?;
        Ok(each_rep(req, rest, |assoc: HvRegisterAssoc| {
            if assoc.reserved != [0; 3] || assoc.value.high != 0 {
                return Err(HvStatus::INVALID_PARAMETER);
            }
            let msr = match assoc.name {
                HvRegisterName::GUEST_OS_ID => hvdef::msr::HV_X64_MSR_GUEST_OS_ID,
                HvRegisterName::HYPERCALL => hvdef::msr::HV_X64_MSR_HYPERCALL,
                // VP index and the VSM status registers are read-only.
                _ => return Err(HvStatus::INVALID_PARAMETER),
            };
            self.write_msr(mem, vp, vtl, msr, assoc.value.low)
                .map_err(|_| HvStatus::INVALID_PARAMETER)
        }))
    }
}

/// TLFS buffer rules for slow calls: an empty list is not touched; a non-empty one
/// must be 8-byte aligned, must not span pages, and must be guest memory.
fn check_buffer<'a>(
    mem: &GuestMemory<'a>,
    gpa: u64,
    len: usize,
) -> Result<Option<ipc::Region<'a>>, HvStatus> {
    if len == 0 {
        return Ok(None);
    }
    if !gpa.is_multiple_of(8) {
        return Err(HvStatus::INVALID_ALIGNMENT);
    }
    let in_page = PAGE - (gpa % HV_PAGE_SIZE) as usize;
    if len > in_page {
        return Err(HvStatus::INVALID_ALIGNMENT);
    }
    mem.range(gpa, len)
        .map(Some)
        .ok_or(HvStatus::INVALID_ALIGNMENT)
}

/// Rep element `index` of a rep hypercall's input list, or `None` when the guest's
/// input ends before it.
fn rep_element<T: FromBytes>(list: &[u8], index: u16) -> Option<T> {
    let at = usize::from(index) * size_of::<T>();
    list.get(at..at + size_of::<T>())
        .and_then(|bytes| T::read_from_bytes(bytes).ok())
}

/// Runs `each` on the rep elements `rep_start..rep_count` of `list` in order. The
/// first failure completes the call with its status and the reps done before it.
fn each_rep<T: FromBytes>(
    req: &HypercallRequest,
    list: &[u8],
    mut each: impl FnMut(T) -> Result<(), HvStatus>,
) -> CallDone {
    let count = req.control.rep_count();
    for i in req.control.rep_start()..count {
        let Some(element) = rep_element::<T>(list, i) else {
            return CallDone::Status(HvStatus::INVALID_HYPERCALL_INPUT, i);
        };
        if let Err(status) = each(element) {
            return CallDone::Status(status, i);
        }
    }
    CallDone::Status(HvStatus::SUCCESS, count)
}

/// A hypercall input that goes wherever the guest's route for its connection leads.
trait RoutedInput: FromBytes + KnownLayout + Immutable {
    /// The connection, or `None` when a field is invalid (INVALID_PARAMETER).
    fn connection(&self) -> Option<u32>;
    /// Hands the input to a paravisor destination (a host route is relayed before).
    fn deliver(&self, vtl: Vtl, fx: &mut dyn Effects, to: Destination) -> HvStatus;
}

impl RoutedInput for PostMessageInput {
    fn connection(&self) -> Option<u32> {
        let valid = self.reserved == 0
            && HvMessageType(self.message_type).guest_postable()
            && self.payload_size as usize <= self.payload.len();
        valid.then_some(self.connection_id)
    }

    fn deliver(&self, vtl: Vtl, fx: &mut dyn Effects, to: Destination) -> HvStatus {
        let size = self.payload_size as usize;
        match to {
            Destination::Service { channel } => {
                let mut entry = ServiceMessage {
                    connection_id: self.connection_id,
                    message_type: self.message_type,
                    payload_size: self.payload_size,
                    vtl: vtl.get(),
                    reserved: [0; 3],
                    payload: [0; 240],
                };
                entry.payload[..size].copy_from_slice(&self.payload[..size]);
                delivered(fx.service_post(channel, &entry))
            }
            Destination::SynicMessage { target, port_id } => {
                let mut m = HvMessage {
                    header: HvMessageHeader {
                        message_type: HvMessageType(self.message_type),
                        payload_size: size as u8,
                        flags: 0,
                        reserved: 0,
                        sender: port_id as u64,
                    },
                    ..HvMessage::default()
                };
                m.payload[..size].copy_from_slice(&self.payload[..size]);
                delivered(fx.synic_post(target, &m))
            }
            Destination::SynicEvent { .. } | Destination::Host => HvStatus::INVALID_PORT_ID,
        }
    }
}

impl RoutedInput for SignalEventInput {
    fn connection(&self) -> Option<u32> {
        (self.reserved == 0).then_some(self.connection_id)
    }

    fn deliver(&self, _: Vtl, fx: &mut dyn Effects, to: Destination) -> HvStatus {
        match to {
            Destination::Service { channel } => delivered(fx.service_signal(channel)),
            Destination::SynicEvent {
                target,
                flag_base,
                flag_count,
            } => {
                let flag = flag_base as u32 + self.flag_number as u32;
                if self.flag_number >= flag_count || flag >= SINT_EVENT_FLAGS {
                    HvStatus::INVALID_PARAMETER
                } else {
                    delivered(fx.synic_signal(target, flag))
                }
            }
            Destination::SynicMessage { .. } | Destination::Host => HvStatus::INVALID_PORT_ID,
        }
    }
}

/// A simple call's input, which must name the caller's own partition.
fn own_partition_input<T: FromBytes + KnownLayout + Immutable>(
    input: &[u8],
    partition_id: impl FnOnce(&T) -> u64,
) -> Result<T, HvStatus> {
    let input = T::read_from_bytes(input).map_err(|_| HvStatus::INVALID_HYPERCALL_INPUT)?;
    if partition_id(&input) != HV_PARTITION_ID_SELF {
        return Err(HvStatus::INVALID_PARTITION_ID);
    }
    Ok(input)
}

/// A rep call's completion; a header it refused completes no rep.
fn reps(req: &HypercallRequest, done: Result<CallDone, HvStatus>) -> CallDone {
    done.unwrap_or_else(|status| CallDone::Status(status, req.control.rep_start()))
}

/// A simple call's completion: its status, no reps.
fn simple(result: Result<(), HvStatus>) -> CallDone {
    CallDone::Status(delivered(result), 0)
}

/// A delivery's status for the guest: SUCCESS once it happened, whatever it
/// reported (a post's slot state, whether a flag was newly set).
fn delivered<T>(result: Result<T, HvStatus>) -> HvStatus {
    result.err().unwrap_or(HvStatus::SUCCESS)
}
