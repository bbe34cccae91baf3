//! Finds (building them first, once) the PD binaries the tests run, and runs
//! systems described inline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hostsim::{SimOptions, SimOutcome, Simulation};

/// target/<profile>/ of this test binary, with every PD binary built in it.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--bins",
            "-p",
            "pd-echo",
            "-p",
            "system-tests",
            "-p",
            "paravisor",
            "-p",
            "hvcall-pd",
            "-p",
            "synic-pd",
            "-p",
            "ioapic",
            "-p",
            "vmbus-server",
            "-p",
            "echo-vsp",
            "-p",
            "guest-sim",
            "-p",
            "storvsp",
            "-p",
            "netvsp",
            "-p",
            "tpm",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("CARGO_TARGET_DIR", &target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => panic!("no profile directory in {}", profile_dir.display()),
        }
        let status = cmd
            .status()
            .expect("running cargo build for the PD binaries");
        assert!(status.success(), "building the PD binaries failed");
        profile_dir
    })
}

pub fn options(timeout_secs: u64, env: &[(&str, &str)]) -> SimOptions {
    SimOptions {
        search_paths: vec![bin_dir().to_path_buf()],
        timeout: Some(Duration::from_secs(timeout_secs)),
        echo: true,
        env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        region_files: Vec::new(),
    }
}

/// Parses and checks an inline description with the real sdf checker.
pub fn system(xml: &str) -> sdf::System {
    match sdf::parse_and_check(xml, Path::new("inline/system.xml")) {
        Ok(s) => s,
        Err(d) => panic!("test system does not check:\n{d}"),
    }
}

pub fn run(system: &sdf::System, opts: &SimOptions) -> SimOutcome {
    let sim = Simulation::launch(system, opts).unwrap_or_else(|e| panic!("launch: {e}"));
    sim.wait().unwrap_or_else(|e| panic!("wait: {e}"))
}

/// The system ended because PD `pd` exited with `code`.
pub fn assert_exited(outcome: &SimOutcome, pd: &str, code: i32) {
    let want = hostsim::SimExit::Exited {
        pd: pd.into(),
        code,
    };
    assert_eq!(outcome.exit, want, "{:#?}", outcome.log);
}

/// What a run of the `paravisor` command (built beside the PDs) said.
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn paravisor<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> CliRun {
    let out = Command::new(bin_dir().join("paravisor"))
        .args(args)
        .output()
        .expect("run paravisor");
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Loads the description at `path`, relative to this crate (`tests/`).
pub fn load(path: &str) -> sdf::System {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    sdf::load(&path).unwrap_or_else(|d| panic!("{}: {d}", path.display()))
}

/// The system ended because PD `pd` exited 0, and nothing faulted. Returns what
/// `pd` printed, for the caller's checks.
pub fn assert_clean_exit<'o>(outcome: &'o SimOutcome, pd: &'o str) -> Vec<&'o str> {
    let said: Vec<&str> = outcome.stdout_of(pd).collect();
    let want = hostsim::SimExit::Exited {
        pd: pd.into(),
        code: 0,
    };
    assert_eq!(
        outcome.exit, want,
        "{pd} said {said:#?}\nlog {:#?}",
        outcome.log
    );
    assert!(outcome.faults.is_empty(), "{:?}", outcome.faults);
    said
}

/// Some line of `lines` contains `needle`.
pub fn has(lines: &[&str], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// Every one of `wanted` is contained in some line of `lines`.
pub fn has_all(lines: &[&str], wanted: &[&str]) {
    for w in wanted {
        assert!(has(lines, w), "missing {w:?} in {lines:#?}");
    }
}

/// What PD `pd` wrote to stdout, once every one of `wanted` is contained in some
/// line of it.
pub fn printed<'o>(outcome: &'o SimOutcome, pd: &'o str, wanted: &[&str]) -> Vec<&'o str> {
    let lines: Vec<&str> = outcome.stdout_of(pd).collect();
    has_all(&lines, wanted);
    lines
}

/// Every line PD `pd` wrote (stdout and stderr), once every one of `wanted` is
/// contained in some line of it.
pub fn logged<'o>(outcome: &'o SimOutcome, pd: &'o str, wanted: &[&str]) -> Vec<&'o str> {
    let lines: Vec<&str> = outcome.lines_of(pd).collect();
    has_all(&lines, wanted);
    lines
}

/// Every line of `wanted` starts some line of `lines`.
pub fn has_lines(lines: &[&str], wanted: &[&str]) {
    for w in wanted {
        let found = lines.iter().any(|l| l.starts_with(w));
        assert!(found, "missing {w:?} in {lines:#?}");
    }
}

/// Runs the system file at `path` quietly with `env` until its `guest` PD exits 0,
/// and returns the guest's first stdout line starting with `prefix`: how the benches
/// read the measurement the guest PD made itself.
pub fn guest_report(path: &str, env: &[(&str, &str)], prefix: &str) -> String {
    let system = sdf::load(Path::new(path)).unwrap_or_else(|d| panic!("{d}"));
    let mut opts = options(300, env);
    opts.echo = false;
    let outcome = run(&system, &opts);
    assert_exited(&outcome, "guest", 0);
    let line = outcome
        .stdout_of("guest")
        .find(|l| l.starts_with(prefix))
        .map(str::to_string);
    line.unwrap_or_else(|| panic!("no {prefix:?} line: {:#?}", outcome.log))
}

/// A bench run: full, or a few iterations with `QUICK` set (CI). Every line it
/// prints starts with the bench's name.
pub struct Bench {
    pub name: &'static str,
    pub quick: bool,
}

impl Bench {
    /// Reads `QUICK` and prints the load average: wall-clock figures on a shared
    /// machine mean little without it.
    pub fn start(name: &'static str) -> Self {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("{name}: load average {}", load.trim());
        Self {
            name,
            quick: std::env::var_os("QUICK").is_some(),
        }
    }

    /// `quick` in QUICK mode, else `full`.
    pub fn size<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// The closing line: QUICK numbers are only a smoke test.
    pub fn finish(&self) {
        if self.quick {
            println!("{}: QUICK mode, numbers are not meaningful", self.name);
        }
    }
}
