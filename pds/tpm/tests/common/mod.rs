//! Shared by the tpm tests and the latency bench: the tpm PD driven the way
//! Linux's tpm_crb drives the CRB (through the PD's `Handler`, with the buffer
//! and register page as regions), an swtpm process as the oracle, and the
//! scripted command sequence both run.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipc::testing::{leaked_region, FakeInit, RecordingKernel};
use ipc::{Channel, Region};
use tpm::commands::{self, handle_of, CAP_TPM_PROPERTIES, PT_FIXED};
use tpm::pd::{TpmPd, BUFFER, REGS, VMM_CHANNEL};
use tpm::Engine;
use tpm_crb::api::{label, Status, CRB_BASE};
use tpm_crb::regs;

/// libtpms is one TPM per process: tests take turns.
pub fn libtpms_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tpm PD as the VMM and guest see it.
pub struct Guest<E> {
    pub pd: TpmPd<E>,
    pub kernel: RecordingKernel,
    pub buffer: Region<'static>,
    pub regs: Region<'static>,
    pub vmm: Channel,
}

impl<E: Engine> Guest<E> {
    pub fn new(engine: E) -> Self {
        Self::with(engine, |init| init)
    }

    /// With more grants than the CRB's (measured boot's regions, ...).
    pub fn with(engine: E, grants: impl FnOnce(FakeInit) -> FakeInit) -> Self {
        Self::with_setup(engine, grants, |pd, _| pd)
    }

    /// And a last step on the started PD (attaching its state store, ...).
    pub fn with_setup(
        engine: E,
        grants: impl FnOnce(FakeInit) -> FakeInit,
        setup: impl FnOnce(TpmPd<E>, &mut RecordingKernel) -> TpmPd<E>,
    ) -> Self {
        let buffer = leaked_region(4096);
        let regs = leaked_region(4096);
        let init = FakeInit::new("tpm")
            .region(BUFFER, buffer)
            .region(REGS, regs)
            .variable(VMM_CHANNEL, 0);
        let mut kernel = RecordingKernel::default();
        let pd = setup(
            TpmPd::init(&grants(init), engine).expect("tpm PD starts"),
            &mut kernel,
        );
        Self {
            pd,
            kernel,
            buffer,
            regs,
            vmm: Channel::new(0),
        }
    }

    /// One MMIO call from `ch`; the reply status and mr0.
    pub fn call_from(&mut self, ch: Channel, lbl: u64, args: &[u64]) -> (Status, u64) {
        mmio_device_api::serve(&mut self.pd, &mut self.kernel, ch, lbl, args)
            .expect("the PD answers every call")
    }

    pub fn write(&mut self, offset: u64, size: u64, value: u64) -> Status {
        let vmm = self.vmm;
        self.call_from(vmm, label::MMIO_WRITE, &[CRB_BASE + offset, size, value])
            .0
    }

    /// A register as the guest reads it: from the read-only page.
    pub fn reg(&self, offset: u64) -> u32 {
        self.regs.read::<u32>(offset as usize).expect("in the page")
    }

    /// What Linux's tpm_crb does for one command: cmdReady, locality, clear
    /// cancel, the command into the buffer, START, wait for START to clear, read
    /// the response.
    pub fn transact(&mut self, command: &[u8]) -> Vec<u8> {
        assert_eq!(self.write(regs::CTRL_REQ, 4, 1), Status::OK);
        assert_eq!(self.write(regs::LOC_CTRL, 4, 1), Status::OK);
        let want = regs::loc_state::LOC_ASSIGNED | regs::loc_state::TPM_REG_VALID_STS;
        assert_eq!(self.reg(regs::LOC_STATE) & want, want);
        assert_eq!(self.write(regs::CTRL_CANCEL, 4, 0), Status::OK);
        self.buffer.write_bytes(0, command).expect("fits");
        assert_eq!(self.write(regs::CTRL_START, 4, 1), Status::OK);
        assert_eq!(self.reg(regs::CTRL_START), 0, "the command completed");
        assert_eq!(self.reg(regs::CTRL_STS) & regs::ctrl_sts::FATAL, 0);
        read_response(|off, buf| self.buffer.read_bytes(off, buf).expect("in the buffer"))
    }
}

fn read_response(mut read: impl FnMut(usize, &mut [u8])) -> Vec<u8> {
    let mut header = [0u8; 10];
    read(0, &mut header);
    let size = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
    assert!((10..=4096).contains(&size), "response size {size}");
    let mut out = vec![0u8; size];
    read(0, &mut out);
    out
}

/// swtpm (same libtpms) in socket mode, fresh state in a temporary directory.
pub struct Swtpm {
    child: Child,
    stream: UnixStream,
    dir: PathBuf,
}

impl Swtpm {
    /// `None` when swtpm is not installed (the caller says so and skips).
    pub fn start() -> Option<Self> {
        let dir = std::env::temp_dir().join(format!(
            "vtpm-swtpm-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("sock");
        let child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--server")
            .arg(format!("type=unixio,path={}", sock.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", dir.join("ctrl").display()))
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--flags")
            .arg("not-need-init")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                break s;
            }
            assert!(Instant::now() < deadline, "swtpm did not open {sock:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Some(Self { child, stream, dir })
    }

    pub fn transact(&mut self, command: &[u8]) -> Vec<u8> {
        self.stream
            .write_all(command)
            .expect("swtpm takes the command");
        let mut header = [0u8; 10];
        self.stream.read_exact(&mut header).expect("swtpm answers");
        let size = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
        assert!((10..=4096).contains(&size));
        let mut out = header.to_vec();
        out.resize(size, 0);
        self.stream
            .read_exact(&mut out[10..])
            .expect("whole response");
        out
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a step's responses are compared between two TPMs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Response code and length: the bytes carry keys, signatures or names
    /// derived from each TPM's own random seeds, or its clock.
    Shape,
}

/// One step of the script and its response.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub compare: Compare,
    pub response: Vec<u8>,
}

pub fn rc(response: &[u8]) -> u32 {
    u32::from_be_bytes(response[6..10].try_into().unwrap())
}

pub const SECRET: &[u8] = b"sealed by the vTPM oracle test";

/// The scripted sequence: Startup, SelfTest, GetCapability, PCR_Extend and
/// PCR_Read, CreatePrimary (storage parent), Create + Load + Unseal of a sealed
/// object, CreatePrimary (signing key) and Quote, FlushContext.
pub fn script(mut tpm: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut run = |name, compare, command: Vec<u8>| {
        let response = tpm(&command);
        steps.push(Step {
            name,
            compare,
            response: response.clone(),
        });
        response
    };
    use Compare::{Exact, Shape};
    run("Startup(CLEAR)", Exact, commands::startup_clear());
    run("SelfTest(full)", Exact, commands::self_test());
    run(
        "GetCapability(TPM_PT_FIXED)",
        Exact,
        commands::get_capability(CAP_TPM_PROPERTIES, PT_FIXED, 64),
    );
    run(
        "PCR_Extend(16)",
        Exact,
        commands::pcr_extend(16, &[0x5a; 32]),
    );
    run(
        "PCR_Extend(16) again",
        Exact,
        commands::pcr_extend(16, &[0xa5; 32]),
    );
    run("PCR_Read(0,16)", Exact, commands::pcr_read(1 | 1 << 16));
    let parent = run(
        "CreatePrimary(storage)",
        Shape,
        commands::create_primary(false),
    );
    let parent = handle_of(&parent).unwrap_or(0);
    let created = run(
        "Create(sealed)",
        Shape,
        commands::create_sealed(parent, SECRET),
    );
    let (private, public) = commands::created_object(&created).unwrap_or_default();
    let loaded = run(
        "Load(sealed)",
        Shape,
        commands::load(parent, &private, &public),
    );
    let item = handle_of(&loaded).unwrap_or(0);
    run("Unseal", Exact, commands::unseal(item));
    let key = run(
        "CreatePrimary(signing)",
        Shape,
        commands::create_primary(true),
    );
    let key = handle_of(&key).unwrap_or(0);
    run(
        "Quote(PCR 16)",
        Shape,
        commands::quote(key, b"nonce123", 1 << 16),
    );
    run(
        "FlushContext(signing key)",
        Exact,
        commands::flush_context(key),
    );
    run("FlushContext(sealed)", Exact, commands::flush_context(item));
    run(
        "FlushContext(storage)",
        Exact,
        commands::flush_context(parent),
    );
    steps
}
