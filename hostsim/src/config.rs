//! What the supervisor tells a PD process it was granted, carried in one environment
//! variable as a small line-oriented text format:
//!
//! ```text
//! hostsim-pd v1
//! name <pd>
//! fault <fd>
//! region <mr> <setvar|-> <fd> <vaddr hex> <size hex> <perms>
//! channel <id> <notify-out fd|-> <notify-in fd|-> <pp fd|-> <caller|callee|-> <call page fd|->
//! ```
//!
//! The PD parses it before anything else runs, so the parser is bounded and returns
//! errors instead of panicking on any input.

use std::fmt::{self, Write as _};
use std::os::fd::RawFd;

use ipc::Perms;

pub const ENV_VAR: &str = "HOSTSIM_PD_CONFIG";
const MAGIC: &str = "hostsim-pd v1";
/// Far above any real system (62 channels, a few dozen maps), far below harm.
pub const MAX_TEXT: usize = 64 * 1024;
pub const MAX_REGIONS: usize = 256;
pub const MAX_NAME: usize = 256;

/// Which side of a PPC channel this end is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PpRole {
    /// This end may `pp_call` the other one.
    Caller,
    /// This end serves calls in `protected`.
    Callee,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionGrant {
    pub mr: String,
    pub setvar: Option<String>,
    pub fd: RawFd,
    pub vaddr: u64,
    pub size: u64,
    pub perms: Perms,
    /// Backed by a host file (`--region-file`) rather than a memfd: the PD keeps its
    /// descriptor through init for [`crate::region_file`].
    pub host_file: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelGrant {
    pub id: u8,
    /// Present only when this end may notify the other.
    pub notify_out: Option<RawFd>,
    /// Present only when the other end may notify this one.
    pub notify_in: Option<RawFd>,
    pub pp: Option<PpGrant>,
}

/// A `pp` channel end: the socket pair's end (doorbells, and the peer's liveness)
/// and the call page both ends share (pd/call_page.rs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PpGrant {
    pub socket: RawFd,
    pub page: RawFd,
    pub role: PpRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdConfig {
    pub name: String,
    pub fault_fd: RawFd,
    pub regions: Vec<RegionGrant>,
    pub channels: Vec<ChannelGrant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PD config line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for ConfigError {}

/// Whether `s` can travel as one token of the format.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s != "-"
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

fn fd_or_dash(fd: Option<RawFd>) -> String {
    fd.map_or_else(|| "-".to_string(), |fd| fd.to_string())
}

impl PdConfig {
    /// The text form; names must satisfy [`is_token`] (the supervisor checks first).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{MAGIC}");
        let _ = writeln!(out, "name {}", self.name);
        let _ = writeln!(out, "fault {}", self.fault_fd);
        for r in &self.regions {
            let _ = writeln!(
                out,
                "region {} {} {} {:#x} {:#x} {}{}",
                r.mr,
                r.setvar.as_deref().unwrap_or("-"),
                r.fd,
                r.vaddr,
                r.size,
                perms_token(r.perms),
                if r.host_file { " file" } else { "" }
            );
        }
        for c in &self.channels {
            let role = match c.pp.map(|p| p.role) {
                Some(PpRole::Caller) => "caller",
                Some(PpRole::Callee) => "callee",
                None => "-",
            };
            let _ = writeln!(
                out,
                "channel {} {} {} {} {} {}",
                c.id,
                fd_or_dash(c.notify_out),
                fd_or_dash(c.notify_in),
                fd_or_dash(c.pp.map(|p| p.socket)),
                role,
                fd_or_dash(c.pp.map(|p| p.page)),
            );
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let err = |line: usize, what: &str| ConfigError {
            line,
            what: what.to_string(),
        };
        if text.len() > MAX_TEXT {
            return Err(err(0, "config is larger than 64 KiB"));
        }
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, MAGIC)) => {}
            _ => return Err(err(1, "missing 'hostsim-pd v1' header")),
        }
        let mut name = None;
        let mut fault_fd = None;
        let mut regions = Vec::new();
        let mut channels: Vec<ChannelGrant> = Vec::new();
        for (no, line) in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                [] | [""] => {}
                ["name", n] => {
                    if name.is_some() {
                        return Err(err(no, "duplicate name"));
                    }
                    if !is_token(n) {
                        return Err(err(no, "bad PD name"));
                    }
                    name = Some((*n).to_string());
                }
                ["fault", fd] => {
                    if fault_fd.is_some() {
                        return Err(err(no, "duplicate fault"));
                    }
                    fault_fd = Some(parse_fd(fd).ok_or_else(|| err(no, "bad fault fd"))?);
                }
                ["region", mr, setvar, fd, vaddr, size, perms, backing @ ..]
                    if matches!(backing, [] | ["file"]) =>
                {
                    if regions.len() >= MAX_REGIONS {
                        return Err(err(no, "too many regions"));
                    }
                    if !is_token(mr) {
                        return Err(err(no, "bad region name"));
                    }
                    let setvar = match *setvar {
                        "-" => None,
                        s if is_token(s) => Some(s.to_string()),
                        _ => return Err(err(no, "bad setvar name")),
                    };
                    let size = parse_hex(size).ok_or_else(|| err(no, "bad size"))?;
                    let vaddr = parse_hex(vaddr).ok_or_else(|| err(no, "bad vaddr"))?;
                    if size == 0 || vaddr.checked_add(size).is_none() {
                        return Err(err(no, "region is empty or wraps the address space"));
                    }
                    regions.push(RegionGrant {
                        mr: (*mr).to_string(),
                        setvar,
                        fd: parse_fd(fd).ok_or_else(|| err(no, "bad region fd"))?,
                        vaddr,
                        size,
                        perms: parse_perms(perms).ok_or_else(|| err(no, "bad perms"))?,
                        host_file: !backing.is_empty(),
                    });
                }
                ["channel", id, out, inc, pp, role, page] => {
                    let id: u8 = id
                        .parse()
                        .ok()
                        .filter(|&id| id <= ipc::Channel::MAX_ID)
                        .ok_or_else(|| err(no, "bad channel id"))?;
                    if channels.iter().any(|c| c.id == id) {
                        return Err(err(no, "duplicate channel id"));
                    }
                    let opt_fd = |s: &str| match s {
                        "-" => Ok(None),
                        s => parse_fd(s).map(Some).ok_or_else(|| err(no, "bad fd")),
                    };
                    let role = match *role {
                        "-" => None,
                        "caller" => Some(PpRole::Caller),
                        "callee" => Some(PpRole::Callee),
                        _ => return Err(err(no, "bad pp role")),
                    };
                    let pp = match (opt_fd(pp)?, role, opt_fd(page)?) {
                        (None, None, None) => None,
                        (Some(socket), Some(role), Some(page)) => {
                            Some(PpGrant { socket, page, role })
                        }
                        _ => return Err(err(no, "pp fd, role and call page disagree")),
                    };
                    channels.push(ChannelGrant {
                        id,
                        notify_out: opt_fd(out)?,
                        notify_in: opt_fd(inc)?,
                        pp,
                    });
                }
                _ => return Err(err(no, "unknown or malformed line")),
            }
        }
        let config = Self {
            name: name.ok_or_else(|| err(0, "missing name"))?,
            fault_fd: fault_fd.ok_or_else(|| err(0, "missing fault fd"))?,
            regions,
            channels,
        };
        config.check_descriptors_distinct()?;
        Ok(config)
    }
}

impl PdConfig {
    /// The PD takes ownership of each descriptor once, so none may serve two
    /// purposes; only region descriptors may repeat (one region mapped twice).
    fn check_descriptors_distinct(&self) -> Result<(), ConfigError> {
        let mut fds: Vec<RawFd> = vec![self.fault_fd];
        for c in &self.channels {
            fds.extend(c.notify_out);
            fds.extend(c.notify_in);
            fds.extend(c.pp.iter().flat_map(|p| [p.socket, p.page]));
        }
        let mut region_fds: Vec<RawFd> = self.regions.iter().map(|r| r.fd).collect();
        region_fds.sort_unstable();
        region_fds.dedup();
        fds.extend(region_fds);
        let total = fds.len();
        fds.sort_unstable();
        fds.dedup();
        if fds.len() != total {
            return Err(ConfigError {
                line: 0,
                what: "a descriptor is granted twice".into(),
            });
        }
        Ok(())
    }
}

fn parse_fd(s: &str) -> Option<RawFd> {
    // Descriptors 0..=2 are stdio and never a grant.
    s.parse::<RawFd>().ok().filter(|&fd| fd > 2)
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

pub fn perms_token(p: Perms) -> String {
    let s = p.to_string();
    if s.is_empty() {
        "-".to_string()
    } else {
        s
    }
}

fn parse_perms(s: &str) -> Option<Perms> {
    let mut p = Perms::default();
    if s == "-" {
        return Some(p);
    }
    for c in s.chars() {
        let slot = match c {
            'r' => &mut p.read,
            'w' => &mut p.write,
            'x' => &mut p.execute,
            _ => return None,
        };
        if *slot {
            return None;
        }
        *slot = true;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PdConfig {
        PdConfig {
            name: "echo_client".into(),
            fault_fd: 9,
            regions: vec![RegionGrant {
                mr: "ping".into(),
                setvar: Some("ping_vaddr".into()),
                fd: 10,
                vaddr: 0x200_0000,
                size: 0x1000,
                perms: Perms::RW,
                host_file: true,
            }],
            channels: vec![ChannelGrant {
                id: 3,
                notify_out: Some(11),
                notify_in: None,
                pp: Some(PpGrant {
                    socket: 12,
                    page: 13,
                    role: PpRole::Caller,
                }),
            }],
        }
    }

    #[test]
    fn encode_parse_round_trip() {
        let c = sample();
        assert_eq!(PdConfig::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn malformed_configs_are_refused_with_a_line() {
        let good = sample().encode();
        let cases: &[(&str, &str)] = &[
            ("", "header"),
            ("hostsim-pd v2\nname a\nfault 3\n", "header"),
            ("hostsim-pd v1\nfault 3\n", "missing name"),
            ("hostsim-pd v1\nname a\n", "missing fault"),
            ("hostsim-pd v1\nname a\nname b\nfault 3\n", "duplicate name"),
            ("hostsim-pd v1\nname a\nfault 1\n", "bad fault fd"),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 62 - - - - -\n",
                "bad channel id",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - - - -\nchannel 1 - - - - -\n",
                "duplicate",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - 5 - -\n",
                "disagree",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - 5 caller -\n",
                "disagree",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - 5 callee 5\n",
                "twice",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - - - 5\n",
                "disagree",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - 5 boss 6\n",
                "role",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 - - - callee -\n",
                "disagree",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x0 rw\n",
                "empty",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0xffffffffffffffff 0x2 rw\n",
                "wraps",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x1000 rwr\n",
                "perms",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 1000 0x1000 r\n",
                "vaddr",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x1000\n",
                "malformed",
            ),
            ("hostsim-pd v1\nname a\nfault 3\nbogus\n", "malformed"),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x1000 r memfd\n",
                "malformed",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x1000 r file file\n",
                "malformed",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 3 - - - -\n",
                "twice",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 4 4 - - -\n",
                "twice",
            ),
            (
                "hostsim-pd v1\nname a\nfault 3\nchannel 1 4 - - - -\nregion m - 4 0x1000 0x1000 r\n",
                "twice",
            ),
        ];
        for (text, want) in cases {
            let e = PdConfig::parse(text).unwrap_err();
            assert!(e.what.contains(want), "{text:?}: got {e}, want {want}");
        }
        assert!(PdConfig::parse(&good).is_ok());
        let twice_mapped = "hostsim-pd v1\nname a\nfault 3\nregion m - 4 0x1000 0x1000 r\nregion m - 4 0x3000 0x1000 r\n";
        assert!(PdConfig::parse(twice_mapped).is_ok());
        let huge = format!("{good}{}", " ".repeat(MAX_TEXT));
        assert!(PdConfig::parse(&huge).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let _ = PdConfig::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_valid_lines(
            lines in proptest::collection::vec(
                "(name|fault|region|channel) [-a-z0-9x ]{0,40}", 0..8)
        ) {
            let text = format!("hostsim-pd v1\n{}", lines.join("\n"));
            let _ = PdConfig::parse(&text);
        }
    }
}
