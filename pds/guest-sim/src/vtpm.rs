//! The guest's TPM step, when the system grants it a vTPM: what Linux's tpm_crb
//! and a first tpm2-tools call do, through the CRB client the tpm PD's own
//! stand-in uses ([`tpm::crb_client`]). The PD ran Startup at boot (measured
//! boot), so the guest's is refused as a second one; GetRandom and PCR_Read of
//! PCR 0 must succeed with the sizes asked for, and PCR 0 must be the replay of
//! the event log the guest reads.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use ipc::{Channel, Init, InitError, InitExt, Kernel, Perms, Region};
use tpm::commands;
use tpm::crb_client::{response_code, CrbClient};
use tpm::eventlog::{events, replay};

use crate::{ensure, Failure, Result};

/// Regions, by their `setvar_vaddr` names.
pub const CRB_REGS: &str = "crb_regs";
pub const CRB_BUFFER: &str = "crb_buffer";
pub const EVENT_LOG: &str = "event_log";

/// TPM_RC_INITIALIZE: Startup after the TPM has started.
const RC_INITIALIZE: u32 = 0x100;
const RANDOM_BYTES: u16 = 32;

/// The vTPM the guest was granted: the CRB (register page read-only, the
/// buffer, the channel its register writes go to) and the event log
/// (read-only); `None` without a register page.
#[derive(Debug)]
pub struct Vtpm {
    pub crb: CrbClient,
    pub log: Region<'static>,
}

impl Vtpm {
    pub fn granted(init: &dyn Init, tpm: Channel) -> core::result::Result<Option<Self>, InitError> {
        let Some(regs) = init.optional(init.region_with(CRB_REGS, Perms::R))? else {
            return Ok(None);
        };
        Ok(Some(Self {
            crb: CrbClient {
                regs,
                buffer: init.region_with(CRB_BUFFER, Perms::RW)?,
                tpm,
            },
            log: init.region_with(EVENT_LOG, Perms::R)?,
        }))
    }

    /// Runs the step; prints a line per check and returns the last.
    pub fn run(&self, k: &mut dyn Kernel) -> Result<String> {
        let failed = |e: tpm::crb_client::CrbError| Failure(format!("tpm: {e}"));
        let r = self
            .crb
            .transact(k, &commands::startup_clear())
            .map_err(failed)?;
        ensure!(
            response_code(&r) == Some(RC_INITIALIZE),
            "tpm: Startup answered {:x?}, not TPM_RC_INITIALIZE: the PD did not start the TPM",
            response_code(&r)
        );
        let r = self
            .crb
            .ok(k, "GetRandom", &commands::get_random(RANDOM_BYTES))
            .map_err(failed)?;
        let random = commands::random_bytes(&r).map_or(0, <[u8]>::len);
        ensure!(
            random == usize::from(RANDOM_BYTES),
            "tpm: GetRandom gave {random} bytes, asked {RANDOM_BYTES}"
        );
        let r = self
            .crb
            .ok(k, "PCR_Read", &commands::pcr_read(1))
            .map_err(failed)?;
        let pcrs = commands::pcr_values(&r)
            .ok_or_else(|| Failure("tpm: PCR_Read response malformed".into()))?;
        ensure!(
            pcrs.len() == 1,
            "tpm: PCR_Read gave {} SHA-256 values for PCR 0",
            pcrs.len()
        );
        println!(
            "guest_sim: tpm: Startup already done by the PD; GetRandom {random} bytes; PCR 0 read"
        );
        let mut bytes = vec![0u8; self.log.len()];
        self.log
            .read_bytes(0, &mut bytes)
            .map_err(|e| Failure(format!("tpm: event log: {e:?}")))?;
        let logged = events(&bytes).map_err(|e| Failure(format!("tpm: event log: {e:?}")))?;
        let replayed = replay(&bytes).map_err(|e| Failure(format!("tpm: event log: {e:?}")))?;
        ensure!(
            pcrs.first() == replayed.first(),
            "tpm: PCR 0 is not the event log's replay"
        );
        if logged.is_empty() {
            println!("guest_sim: tpm: the measurement list is empty: PCR 0 is zero and the event log holds only its header");
        }
        Ok(format!(
            "guest_sim: tpm: PCR 0 = replay of {} logged events",
            logged.len()
        ))
    }
}
