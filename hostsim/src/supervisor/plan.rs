//! From a system description to the kernel objects that implement it: one memfd per
//! memory region, one eventfd per (channel, receiving end) that may be notified, one
//! socket pair and one call page per channel that allows PPC, and each PD's config
//! naming the descriptors it alone will hold.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ipc::Perms;

use super::SimError;
use crate::config::{is_token, ChannelGrant, PdConfig, PpGrant, PpRole, RegionGrant};
use crate::sys;

/// Descriptors one PD is granted, kept open by the supervisor until that PD is
/// spawned (an object shared by several PDs: until the last of them is), then
/// closed so each object lives only in the PDs that hold it.
pub struct PdPlan {
    pub config: PdConfig,
    pub grants: Vec<Rc<OwnedFd>>,
    /// The read end stays with the supervisor.
    pub fault_read: OwnedFd,
}

/// A spawned PD's plan, taken apart: the supervisor keeps the name and the fault
/// pipe's read end and drops the grants.
pub struct PdPlanParts {
    pub name: String,
    pub grants: Vec<Rc<OwnedFd>>,
    pub fault_read: OwnedFd,
}

impl PdPlan {
    pub fn granted_fds(&self) -> Vec<RawFd> {
        self.grants.iter().map(|fd| fd.as_raw_fd()).collect()
    }

    pub fn into_parts(self) -> PdPlanParts {
        PdPlanParts {
            name: self.config.name,
            grants: self.grants,
            fault_read: self.fault_read,
        }
    }
}

fn os(what: String) -> impl FnOnce(std::io::Error) -> SimError {
    move |err| SimError::Os { what, err }
}

fn invalid(what: String) -> SimError {
    SimError::Invalid { what }
}

fn to_ipc(p: sdf::Perms) -> Perms {
    Perms {
        read: p.read,
        write: p.write,
        execute: p.execute,
    }
}

/// A region's memfd, its read-only reopening (made on first `r` grant) and size.
type MemObject = (Rc<OwnedFd>, Option<Rc<OwnedFd>>, u64);

/// Creates every object and each PD's config; nothing is spawned yet.
/// `region_files` names regions backed by a host file instead of a memfd.
pub fn plan(
    system: &sdf::System,
    region_files: &[(String, PathBuf)],
) -> Result<Vec<PdPlan>, SimError> {
    let pds = system.all_pds();
    for pd in &pds {
        if let Some(vm) = &pd.virtual_machine {
            return Err(SimError::VirtualMachine {
                name: vm.name.clone(),
            });
        }
        if !pd.children.is_empty() || pd.child_id.is_some() {
            return Err(SimError::Unsupported {
                what: format!("PD '{}': child protection domains", pd.name),
            });
        }
        if !pd.irqs.is_empty() {
            return Err(SimError::Unsupported {
                what: format!("PD '{}': irqs", pd.name),
            });
        }
        // Processes reach no device: a PCI grant needs the bare-metal kernel.
        if !pd.pci_devices.is_empty() {
            return Err(SimError::Unsupported {
                what: format!("PD '{}': pci_device grants", pd.name),
            });
        }
        if !is_token(&pd.name) {
            return Err(invalid(format!(
                "PD name {:?} is empty or has spaces",
                pd.name
            )));
        }
    }

    for (name, path) in region_files {
        if !system.memory_regions.iter().any(|mr| mr.name == *name) {
            return Err(invalid(format!(
                "--region-file {name}={}: the system has no memory region '{name}'",
                path.display()
            )));
        }
        if region_files.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(invalid(format!(
                "--region-file names region '{name}' more than once"
            )));
        }
    }
    let mut memfds: HashMap<&str, MemObject> = HashMap::new();
    for mr in &system.memory_regions {
        if !is_token(&mr.name) {
            return Err(invalid(format!(
                "memory region name {:?} is empty or has spaces",
                mr.name
            )));
        }
        if mr.size == 0 {
            return Err(invalid(format!("memory region '{}' has size 0", mr.name)));
        }
        let fd = match region_files.iter().find(|(n, _)| *n == mr.name) {
            Some((_, path)) => region_file(&mr.name, mr.size, path)?,
            None => sys::memfd(&mr.name, mr.size).map_err(os(format!(
                "creating memory region '{}' ({:#x} bytes)",
                mr.name, mr.size
            )))?,
        };
        if memfds
            .insert(&mr.name, (Rc::new(fd), None, mr.size))
            .is_some()
        {
            return Err(invalid(format!(
                "memory region '{}' declared twice",
                mr.name
            )));
        }
    }

    let mut plans = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for pd in &pds {
        let (fault_read, fault_write) = sys::pipe().map_err(os("creating a fault pipe".into()))?;
        sys::set_nonblocking(std::os::fd::AsFd::as_fd(&fault_read))
            .map_err(os("configuring a fault pipe".into()))?;
        let fault_write = Rc::new(fault_write);
        let mut regions = Vec::new();
        let mut grants = vec![fault_write.clone()];
        for map in &pd.maps {
            let Some((rw, ro, size)) = memfds.get_mut(map.mr.as_str()) else {
                return Err(invalid(format!(
                    "PD '{}' maps unknown memory region '{}'",
                    pd.name, map.mr
                )));
            };
            let fd = if map.perms.write {
                rw.clone()
            } else {
                match ro {
                    Some(ro) => ro.clone(),
                    None => {
                        let fd = Rc::new(
                            sys::reopen_read_only(rw)
                                .map_err(os(format!("reopening region '{}' read-only", map.mr)))?,
                        );
                        *ro = Some(fd.clone());
                        fd
                    }
                }
            };
            if let Some(setvar) = &map.setvar_vaddr {
                if !is_token(setvar) {
                    return Err(invalid(format!("setvar_vaddr {setvar:?} has spaces")));
                }
            }
            regions.push(RegionGrant {
                mr: map.mr.clone(),
                setvar: map.setvar_vaddr.clone(),
                fd: fd.as_raw_fd(),
                vaddr: map.vaddr,
                size: *size,
                perms: to_ipc(map.perms),
                host_file: region_files.iter().any(|(n, _)| *n == map.mr),
            });
            grants.push(fd);
        }
        by_name.insert(&pd.name, plans.len());
        plans.push(PdPlan {
            config: PdConfig {
                name: pd.name.clone(),
                fault_fd: fault_write.as_raw_fd(),
                regions,
                channels: Vec::new(),
            },
            grants,
            fault_read,
        });
    }

    for ch in &system.channels {
        let [a, b] = &ch.ends;
        let ia = *by_name
            .get(a.pd.as_str())
            .ok_or_else(|| invalid(format!("channel end names unknown PD '{}'", a.pd)))?;
        let ib = *by_name
            .get(b.pd.as_str())
            .ok_or_else(|| invalid(format!("channel end names unknown PD '{}'", b.pd)))?;
        if ia == ib {
            return Err(invalid(format!("channel from PD '{}' to itself", a.pd)));
        }
        if a.pp && b.pp {
            return Err(invalid(format!(
                "channel {}:{} <-> {}:{} allows PPC both ways",
                a.pd, a.id, b.pd, b.id
            )));
        }
        let mut ga = ChannelGrant {
            id: a.id,
            notify_out: None,
            notify_in: None,
            pp: None,
        };
        let mut gb = ChannelGrant {
            id: b.id,
            ..ga.clone()
        };
        // The eventfd belongs to the receiving end; the sender holds it to signal.
        for (sender, from, to) in [(a, 0, 1), (b, 1, 0)] {
            if !sender.notify {
                continue;
            }
            let fd = Rc::new(sys::eventfd().map_err(os("creating an eventfd".into()))?);
            let ends = [&mut ga, &mut gb];
            ends[from].notify_out = Some(fd.as_raw_fd());
            ends[to].notify_in = Some(fd.as_raw_fd());
            plans[ia].grants.push(fd.clone());
            plans[ib].grants.push(fd);
        }
        if a.pp || b.pp {
            let (sa, sb) = sys::seqpacket_pair().map_err(os("creating a socket pair".into()))?;
            let (ra, rb) = if a.pp {
                (PpRole::Caller, PpRole::Callee)
            } else {
                (PpRole::Callee, PpRole::Caller)
            };
            // The call page exists only for this channel and only these two hold it.
            let page = Rc::new(
                sys::memfd("ppc-call-page", crate::pd::CALL_PAGE_SIZE as u64)
                    .map_err(os("creating a call page".into()))?,
            );
            ga.pp = Some(PpGrant {
                socket: sa.as_raw_fd(),
                page: page.as_raw_fd(),
                role: ra,
            });
            gb.pp = Some(PpGrant {
                socket: sb.as_raw_fd(),
                page: page.as_raw_fd(),
                role: rb,
            });
            plans[ia].grants.push(Rc::new(sa));
            plans[ib].grants.push(Rc::new(sb));
            plans[ia].grants.push(page.clone());
            plans[ib].grants.push(page);
        }
        for (i, g) in [(ia, ga), (ib, gb)] {
            let plan = &mut plans[i];
            if g.id > ipc::Channel::MAX_ID {
                return Err(invalid(format!(
                    "PD '{}' has channel id {} (ids are 0..=61)",
                    plan.config.name, g.id
                )));
            }
            if plan.config.channels.iter().any(|c| c.id == g.id) {
                return Err(invalid(format!(
                    "PD '{}' has channel id {} twice",
                    plan.config.name, g.id
                )));
            }
            plan.config.channels.push(g);
        }
    }
    Ok(plans)
}

/// Opens the host file that backs region `name` (read-write: PDs granted `r` get a
/// read-only reopening, as with a memfd). Its size must be the region's: a shorter
/// file would turn accesses past its end into SIGBUS, a longer one would hide data.
fn region_file(name: &str, size: u64, path: &Path) -> Result<OwnedFd, SimError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(os(format!(
            "region '{name}': cannot open {} read-write",
            path.display()
        )))?;
    let meta = file
        .metadata()
        .map_err(os(format!("region '{name}': {}", path.display())))?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "region '{name}': {} is not a regular file",
            path.display()
        )));
    }
    if meta.len() != size {
        return Err(invalid(format!(
            "region '{name}' is {size:#x} bytes but {} is {:#x} bytes (make the file exactly the region's size, e.g. truncate -s {size} {})",
            path.display(),
            meta.len(),
            path.display()
        )));
    }
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_system_with_a_guest_is_refused_before_anything_is_created() {
        let text = r#"<system>
            <memory_region name="ram" size="0x1000" />
            <protection_domain name="vmm" priority="2">
                <program_image path="vmm" />
                <virtual_machine name="linux" priority="1"><vcpu id="0"/><map mr="ram" vaddr="0"/></virtual_machine>
            </protection_domain>
        </system>"#;
        let system = sdf::parse_and_check(text, Path::new("system.xml")).expect("valid");
        let err = plan(&system, &[]).err().expect("refused");
        assert!(
            matches!(&err, SimError::VirtualMachine { name } if name == "linux"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "not supported in host-sim: virtual_machine linux (guests run on the bare-metal kernel)"
        );
    }

    #[test]
    fn a_pci_device_grant_is_refused() {
        let text = r#"<system>
            <protection_domain name="blk" priority="2">
                <program_image path="blk" />
                <pci_device id="3" bdf="0:5.0" vendor="0x1af4" device="0x1042" />
            </protection_domain>
        </system>"#;
        let system = sdf::parse_and_check(text, Path::new("system.xml")).expect("valid");
        let err = plan(&system, &[]).err().expect("refused");
        assert_eq!(
            err.to_string(),
            "host-sim does not support PD 'blk': pci_device grants yet"
        );
    }
}
