//! host-sim stand-in for the guest and its VMM in front of the tpm PD
//! (tests/hostsim.rs): it reads the CRB register page and the event log through
//! its read-only maps, writes commands into the shared buffer and makes the
//! register writes the VMM would forward, as Linux's tpm_crb does them.
//!
//! `TPM_GUEST_STEP=seal` checks PCR 0 against the event log's replay and seals a
//! secret, printing the sealed object; `TPM_GUEST_STEP=unseal` with
//! `TPM_GUEST_OBJECT` (what the first run printed) loads and unseals it in a
//! later boot. Channel 0 is the tpm PD.

use ipc::{Channel, Init, InitError, Kernel};
use tpm::commands::{self, handle_of};
use tpm::crb_client::{response_code, CrbClient};
use tpm::eventlog::replay;

const TPM: Channel = Channel::new(0);
const SECRET: &[u8] = b"sealed in one boot, unsealed in the next";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn run(init: &dyn Init, k: &mut dyn Kernel) -> Result<(), String> {
    let region = |name| init.region(name).map_err(|e| format!("{name}: {e}"));
    let crb = CrbClient {
        regs: region("crb_regs")?,
        buffer: region("crb_buffer")?,
        tpm: TPM,
    };
    let log = region("event_log")?;
    // The TPM was started by measured boot: a second Startup says so.
    let r = crb.transact(k, &commands::startup_clear())?;
    let rc = response_code(&r).ok_or("Startup: no response header")?;
    println!("tpm-guest: Startup answered {rc:#x} (measured boot started the TPM)");
    let pcrs = commands::pcr_values(&crb.ok(k, "PCR_Read", &commands::pcr_read(1))?)
        .ok_or("PCR_Read response")?;
    let mut bytes = vec![0u8; log.len()];
    log.read_bytes(0, &mut bytes)
        .map_err(|e| format!("{e:?}"))?;
    let replayed = replay(&bytes).map_err(|e| format!("event log: {e:?}"))?;
    if pcrs.first() != Some(&replayed[0]) {
        return Err(format!(
            "PCR 0 {:02x?} but the log replays to {:02x?}",
            pcrs.first(),
            replayed[0]
        ));
    }
    println!(
        "tpm-guest: PCR 0 = replay of the event log = {}",
        hex(&replayed[0])
    );
    let parent = handle_of(&crb.ok(k, "CreatePrimary", &commands::create_primary(false))?)
        .ok_or("CreatePrimary response")?;
    match std::env::var("TPM_GUEST_STEP").as_deref() {
        Ok("seal") => {
            let created = crb.ok(k, "Create", &commands::create_sealed(parent, SECRET))?;
            let (private, public) = commands::created_object(&created).ok_or("Create response")?;
            println!(
                "tpm-guest: sealed object {}:{}",
                hex(&private),
                hex(&public)
            );
        }
        Ok("unseal") => {
            let object = std::env::var("TPM_GUEST_OBJECT").map_err(|_| "no TPM_GUEST_OBJECT")?;
            let (private, public) = object.split_once(':').ok_or("object is private:public")?;
            let (private, public) = (unhex(private).ok_or("hex")?, unhex(public).ok_or("hex")?);
            let loaded = crb.ok(k, "Load", &commands::load(parent, &private, &public))?;
            let item = handle_of(&loaded).ok_or("Load response")?;
            let r = crb.ok(k, "Unseal", &commands::unseal(item))?;
            let data = commands::unsealed_data(&r).ok_or("Unseal response")?;
            println!("tpm-guest: unsealed {:?}", String::from_utf8_lossy(data));
        }
        other => return Err(format!("TPM_GUEST_STEP {other:?}")),
    }
    Ok(())
}

fn main() {
    hostsim::run(|init, kernel| -> Result<NeverHandler, InitError> {
        hostsim::finish("tpm-guest", run(init, kernel))
    })
}

/// Never built: the guest finishes inside its init, so ipc's defaults do.
struct NeverHandler;

impl ipc::Handler for NeverHandler {}
