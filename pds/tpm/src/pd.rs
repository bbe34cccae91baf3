//! The tpm PD: the CRB interface ([`tpm_crb::crb`]) in front of an [`Engine`],
//! behind the `ipc` runtime.
//!
//! What system configuration must grant (names are `setvar_vaddr`/`setvar`):
//! - region [`BUFFER`] (rw): the command/response buffer, also mapped into the VM
//!   at [`tpm_crb::api::BUFFER_GPA`] (the guest writes commands there directly);
//! - region [`REGS`] (rw, optional): locality 0's register page, mapped read-only
//!   into the VM at [`tpm_crb::api::CRB_BASE`]; this PD keeps the register block
//!   current there after every call so guest reads need no exit;
//! - regions [`MEASUREMENTS`] (r) and [`EVENT_LOG`] (rw, mapped read-only into the
//!   VM at [`tpm_crb::api::LOG_GPA`]), optional: measured boot's input and output;
//! - variable [`VMM_CHANNEL`]: the VMM PD's channel, the only one whose calls
//!   reach the registers.
//!
//! A command is copied out of the shared buffer before its header is read (the
//! guest may change the buffer at any time), and the response is written back
//! before START clears, so the guest never sees a half-written response as done.

use alloc::vec;
use alloc::vec::Vec;

use ipc::{Channel, Handler, Init, InitError, InitExt, Kernel, Perms, PpCall, Region};
use mmio_device_api::Answer;
use tpm_crb::api::{Request, Status, BUFFER_GPA, BUFFER_SIZE, LOG_SIZE};
use tpm_crb::command::{error_response, Command, ResponseCode};
use tpm_crb::crb::{BufferLayout, Crb, Effect};

#[cfg(feature = "seal")]
use crate::commands;
use crate::engine::{Engine, EngineError};
use crate::eventlog::LogFull;
use crate::measured_boot::{self, BootError, ListError, EVENT_LOG, MEASUREMENTS};
#[cfg(feature = "seal")]
use crate::seal::NONCE_BYTES;
#[cfg(feature = "seal")]
use crate::state::Store;

pub const BUFFER: &str = "crb_buffer";
pub const REGS: &str = "crb_regs";
pub const VMM_CHANNEL: &str = "vmm_channel";

/// Refusals logged before only powers of two are.
const LOG_FIRST: u64 = 8;

/// Counters for logs and tests.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PdStats {
    pub commands: u64,
    /// Commands refused before the engine (bad header, cancelled).
    pub refused_commands: u64,
    /// Register calls refused.
    pub refused_calls: u64,
    pub engine_failures: u64,
}

pub struct TpmPd<E> {
    crb: Crb,
    engine: E,
    buffer: Region<'static>,
    regs: Option<Region<'static>>,
    measurements: Option<Region<'static>>,
    event_log: Option<Region<'static>>,
    vmm: Channel,
    #[cfg(feature = "seal")]
    store: Option<Store>,
    command: Vec<u8>,
    response: Vec<u8>,
    stats: PdStats,
}

impl<E> core::fmt::Debug for TpmPd<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TpmPd")
            .field("crb", &self.crb)
            .field("vmm", &self.vmm)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> TpmPd<E> {
    pub fn init(init: &dyn Init, engine: E) -> Result<Self, InitError> {
        let vmm = init.channel(VMM_CHANNEL)?;
        let buffer = init.region_with(BUFFER, Perms::RW)?;
        let size = buffer.len().min(BUFFER_SIZE as usize);
        if size < tpm_crb::command::HEADER_SIZE {
            return Err(InitError::RegionTooSmall {
                name: BUFFER,
                needed: BUFFER_SIZE as usize,
                granted: buffer.len(),
            });
        }
        let regs = init.optional(init.region_with(REGS, Perms::RW))?;
        let measurements = init.optional(init.region_with(MEASUREMENTS, Perms::R))?;
        let event_log = init.optional(init.region_with(EVENT_LOG, Perms::RW))?;
        let pd = Self {
            crb: Crb::new(BufferLayout {
                gpa: BUFFER_GPA,
                size: size as u32,
            }),
            engine,
            buffer,
            regs,
            measurements,
            event_log,
            vmm,
            #[cfg(feature = "seal")]
            store: None,
            command: vec![0; size],
            response: vec![0; size],
            stats: PdStats::default(),
        };
        pd.publish();
        Ok(pd)
    }

    /// Saves the engine's permanent state to `store` from now on (and now).
    #[cfg(feature = "seal")]
    pub fn with_store(mut self, kernel: &mut dyn Kernel, store: Store) -> Self {
        log(
            kernel,
            format_args!(
                "state sealed under the {} (generation {})",
                store.platform_key(),
                store.generation()
            ),
        );
        self.store = Some(store);
        self.persist(kernel);
        self
    }

    #[cfg(feature = "seal")]
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Seals the engine's permanent state if it changed. The nonce comes from
    /// the TPM's own random number generator.
    #[cfg(feature = "seal")]
    fn persist(&mut self, kernel: &mut dyn Kernel) {
        if self.store.is_none() || !self.engine.has_dirty_state() {
            return;
        }
        let random = self.run_internal(&commands::get_random(NONCE_BYTES as u16));
        let nonce = random
            .ok()
            .as_deref()
            .and_then(commands::random_bytes)
            .and_then(|b| <[u8; NONCE_BYTES]>::try_from(b).ok());
        // Before Startup the TPM has no RNG to offer: the state stays dirty and
        // is saved after the next command that finds one.
        let Some(nonce) = nonce else {
            return;
        };
        let (Some(state), Some(store)) = (self.engine.take_dirty_state(), self.store.as_mut())
        else {
            return;
        };
        if let Err(e) = store.save(&state, nonce) {
            log(kernel, format_args!("state not saved: {e:?}"));
        }
    }

    pub fn stats(&self) -> PdStats {
        self.stats
    }

    pub fn crb(&self) -> &Crb {
        &self.crb
    }

    pub fn engine_mut(&mut self) -> &mut E {
        &mut self.engine
    }

    /// Runs one command from this PD itself (measured boot), outside the guest's
    /// buffer; returns the response bytes.
    pub fn run_internal(&mut self, command: &[u8]) -> Result<Vec<u8>, EngineError> {
        let parsed = Command::parse(command).map_err(|_| EngineError::Fatal)?;
        let mut out = vec![0; self.response.len()];
        let n = self.engine.execute(0, parsed, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Measured boot (see [`crate::measured_boot`]): when a measurement list is
    /// granted (an all-zero one is empty: [`measured_boot::parse_region`]), starts the TPM, extends PCR 0 with every PD image's hash and
    /// writes the event log to its region. Run once, before the guest; on an
    /// error the PD must not serve (its PCRs would not describe this boot).
    /// Returns the number of images measured.
    pub fn measured_boot(&mut self, kernel: &mut dyn Kernel) -> Result<usize, BootError> {
        let Some(region) = self.measurements else {
            return Ok(0);
        };
        let mut bytes = vec![0; region.len()];
        region
            .read_bytes(0, &mut bytes)
            .map_err(|_| BootError::List(ListError::BadMagic))?;
        let list = measured_boot::parse_region(&bytes).map_err(BootError::List)?;
        let capacity = self.event_log.map_or(LOG_SIZE as usize, |r| r.len());
        let events = measured_boot::measure(|c| self.run_internal(c).ok(), &list, capacity)?;
        if let Some(r) = self.event_log {
            r.write_bytes(0, events.bytes())
                .map_err(|_| BootError::Log(LogFull))?;
        }
        if list.is_empty() {
            log(
                kernel,
                format_args!(
                    "no measurement list laid out: started, PCR {} stays zero",
                    measured_boot::PCR
                ),
            );
        }
        log(
            kernel,
            format_args!(
                "measured {} PD images into PCR {}; event log {} bytes",
                list.len(),
                measured_boot::PCR,
                events.bytes().len()
            ),
        );
        Ok(list.len())
    }

    /// Copies the register block to the guest's read-only view.
    fn publish(&self) {
        if let Some(regs) = self.regs {
            // A region smaller than the block was refused by nobody; write what fits.
            let image = self.crb.image(0);
            let n = image.len().min(regs.len());
            let _ = regs.write_bytes(0, &image[..n]);
        }
    }

    /// Runs the command in the shared buffer and leaves its response there.
    /// Returns whether the engine failed fatally.
    fn execute(&mut self, kernel: &mut dyn Kernel, locality: u8, cancelled: bool) -> bool {
        self.stats.commands += 1;
        if self.buffer.read_bytes(0, &mut self.command).is_err() {
            return true;
        }
        let refused = if cancelled {
            Some(ResponseCode::CANCELED)
        } else {
            Command::parse(&self.command).err()
        };
        let (len, fatal) = match refused {
            Some(rc) => {
                self.stats.refused_commands += 1;
                let r = error_response(&self.command, rc);
                self.response[..r.len()].copy_from_slice(&r);
                (r.len(), false)
            }
            None => {
                let Ok(command) = Command::parse(&self.command) else {
                    return true;
                };
                match self.engine.execute(locality, command, &mut self.response) {
                    Ok(n) => (n, false),
                    Err(e) => {
                        self.stats.engine_failures += 1;
                        log(
                            kernel,
                            format_args!("engine failed: {e:?}; TPM in failure mode"),
                        );
                        let r = error_response(&self.command, ResponseCode::FAILURE);
                        self.response[..r.len()].copy_from_slice(&r);
                        (r.len(), e == EngineError::Fatal)
                    }
                }
            }
        };
        self.buffer.write_bytes(0, &self.response[..len]).is_err() || fatal
    }

    fn serve(&mut self, kernel: &mut dyn Kernel, request: Request) -> Result<u64, Status> {
        match request {
            Request::Read(access) => Ok(self.crb.read(access)),
            Request::Write(access, value) => match self.crb.write(access, value)? {
                Effect::None => Ok(0),
                Effect::Execute {
                    locality,
                    cancelled,
                } => {
                    let fatal = self.execute(kernel, locality, cancelled);
                    #[cfg(feature = "seal")]
                    self.persist(kernel);
                    self.crb.complete(fatal);
                    Ok(0)
                }
            },
        }
    }
}

fn log(kernel: &mut dyn Kernel, args: core::fmt::Arguments<'_>) {
    mmio_device_api::log(kernel, "tpm", args);
}

// Notifications keep ipc's default: this PD only serves calls.
impl<E: Engine> Handler for TpmPd<E> {
    mmio_device_api::protected!();
}

impl<E: Engine> TpmPd<E> {
    /// One call from `ch`: only the VMM's accesses are served; a refusal is
    /// counted and logged (the first few, then at powers of two).
    fn call(&mut self, kernel: &mut dyn Kernel, call: &PpCall<'_>) -> Answer<Status> {
        let PpCall { ch, msg, ref mrs } = *call;
        let result = if ch == self.vmm {
            Request::decode(msg, mrs).and_then(|r| self.serve(kernel, r))
        } else {
            Err(Status::NOT_PERMITTED)
        };
        if let Err(status) = result {
            self.stats.refused_calls += 1;
            let n = self.stats.refused_calls;
            if n <= LOG_FIRST || n.is_power_of_two() {
                log(
                        kernel,
                        format_args!(
                            "refused label {:#x} from {ch}: {status:?} (mr0={:#x} mr1={:#x}) [refusal {n}]",
                            msg.label(),
                            mrs.get(0),
                            mrs.get(1)
                        ),
                    );
            }
        }
        self.publish();
        Ok(result)
    }
}
