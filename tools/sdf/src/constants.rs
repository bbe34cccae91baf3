//! What descriptions fix for the PD images they run, in the shape a build script
//! turns into Rust constants: a PD's channel ids by the name of the peer at the
//! other end, agreed across every description that runs a PD of that name, and
//! where a virtual machine sees a memory region.
//!
//! One PD image serves in several descriptions (host-sim, bare metal, tests), so a
//! constant is only generated when those descriptions agree; a disagreement is an
//! error naming both files, which a build script reports by failing the build.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::System;

/// A description and how messages name it (usually its path).
#[derive(Copy, Clone, Debug)]
pub struct Labelled<'a> {
    pub label: &'a str,
    pub system: &'a System,
}

/// `pd`'s channel ids by peer PD name, in one description. A peer with two
/// channels to `pd` is left out: its name no longer says which channel is meant,
/// so the PD names those ids itself.
pub fn channel_ids(system: &System, pd: &str) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    let mut twice = BTreeSet::new();
    for (mine, peer) in system.channel_ends_of(pd) {
        if out.insert(peer.pd.clone(), mine.id).is_some() {
            twice.insert(peer.pd.clone());
        }
    }
    out.retain(|peer, _| !twice.contains(peer));
    out
}

/// `pd`'s channel ids by peer name across `systems`: the union of what each
/// description gives it, where a peer has one id everywhere and an id is not given
/// to two peers that one description holds side by side. A peer named differently
/// in two descriptions (the vCPU PD `guest` here, `vmm` there) may share its id.
pub fn agreed_channel_ids(systems: &[Labelled], pd: &str) -> Result<BTreeMap<String, u8>, String> {
    // peer -> (id, the first description that gave it)
    let mut by_peer: BTreeMap<String, (u8, &str)> = BTreeMap::new();
    for s in systems.iter().filter(|s| s.system.pd(pd).is_some()) {
        for (peer, id) in channel_ids(s.system, pd) {
            match by_peer.get(&peer) {
                Some(&(first, where_)) if first != id => {
                    return Err(format!(
                        "{pd}'s channel to {peer} is id {first} in {where_} but {id} in {}",
                        s.label
                    ));
                }
                Some(_) => {}
                None => {
                    by_peer.insert(peer, (id, s.label));
                }
            }
        }
    }
    let peers: Vec<(&String, u8, &str)> =
        by_peer.iter().map(|(p, &(id, at))| (p, id, at)).collect();
    for (i, &(a, id, a_at)) in peers.iter().enumerate() {
        for &(b, _, b_at) in peers
            .iter()
            .skip(i + 1)
            .filter(|&&(_, other, _)| other == id)
        {
            if let Some(both) = systems
                .iter()
                .find(|s| s.system.pd(a).is_some() && s.system.pd(b).is_some())
            {
                return Err(format!(
                    "{pd}'s channel id {id} goes to {a} in {a_at} and to {b} in {b_at}, \
                     and {} has both PDs",
                    both.label
                ));
            }
        }
    }
    Ok(by_peer
        .into_iter()
        .map(|(peer, (id, _))| (peer, id))
        .collect())
}

/// Every PD name in `systems`, each once.
pub fn pd_names(systems: &[Labelled]) -> BTreeSet<String> {
    systems
        .iter()
        .flat_map(|s| s.system.all_pds())
        .map(|pd| pd.name.clone())
        .collect()
}

/// The guest-physical addresses at which virtual machines of `system` map `mr`,
/// lowest first (RAM, then its aliases such as the one above the vTOM).
pub fn guest_addresses(system: &System, mr: &str) -> Vec<u64> {
    let mut out: Vec<u64> = system
        .virtual_machines()
        .into_iter()
        .flat_map(|(_, vm)| vm.maps.iter())
        .filter(|m| m.mr == mr)
        .map(|m| m.vaddr)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `name` as a Rust constant or module name (`echo_vsp` -> `ECHO_VSP` when
/// `upper`), or None when it cannot be one.
pub fn rust_name(name: &str, upper: bool) -> Option<String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok = first_ok
        && name != "_"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| {
        let snake = name.replace('-', "_");
        if upper {
            snake.to_ascii_uppercase()
        } else {
            snake.to_ascii_lowercase()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A channel as (PD, id) at each end.
    type Ends<'a> = ((&'a str, u8), (&'a str, u8));

    fn system(pds: &[&str], channels: &[Ends]) -> System {
        let mut xml = String::from("<system>");
        for (i, pd) in pds.iter().enumerate() {
            xml += &format!(
                r#"<protection_domain name="{pd}" priority="{}"><program_image path="{pd}" /></protection_domain>"#,
                10 + i
            );
        }
        for ((a, a_id), (b, b_id)) in channels {
            xml += &format!(
                r#"<channel><end pd="{a}" id="{a_id}" /><end pd="{b}" id="{b_id}" /></channel>"#
            );
        }
        xml += "</system>";
        crate::parse_and_check(&xml, Path::new("t.xml")).unwrap_or_else(|d| panic!("{d}"))
    }

    fn l<'a>(label: &'a str, system: &'a System) -> Labelled<'a> {
        Labelled { label, system }
    }

    #[test]
    fn agreeing_descriptions_merge_and_disagreeing_ones_name_both_files() {
        let host = system(
            &["guest", "hv", "sy"],
            &[(("guest", 0), ("hv", 0)), (("hv", 1), ("sy", 1))],
        );
        let metal = system(
            &["vmm", "hv", "sy"],
            &[(("vmm", 0), ("hv", 0)), (("hv", 1), ("sy", 1))],
        );
        let more = system(&["hv", "host"], &[(("hv", 2), ("host", 0))]);
        let moved = system(&["hv", "sy"], &[(("hv", 3), ("sy", 1))]);
        let reused_by = system(&["host", "hv", "guest"], &[(("hv", 0), ("host", 0))]);
        let ok = agreed_channel_ids(&[l("a", &host), l("b", &metal), l("c", &more)], "hv");
        let want: BTreeMap<String, u8> = [("guest", 0), ("vmm", 0), ("sy", 1), ("host", 2)]
            .map(|(p, i)| (p.to_string(), i))
            .into();
        assert_eq!(ok, Ok(want));
        // (descriptions, what the error must say)
        let bad: [(&[Labelled], &str); 2] = [
            (
                &[l("a", &host), l("moved", &moved)],
                "to sy is id 1 in a but 3 in moved",
            ),
            (
                &[l("a", &host), l("b", &reused_by)],
                "id 0 goes to guest in a and to host in b",
            ),
        ];
        for (systems, want) in bad {
            let got = agreed_channel_ids(systems, "hv").unwrap_err();
            assert!(got.contains(want), "{got}");
        }
    }

    #[test]
    fn two_channels_to_one_peer_have_no_name() {
        let s = system(
            &["a", "b", "c"],
            &[
                (("a", 0), ("b", 0)),
                (("a", 1), ("b", 1)),
                (("a", 2), ("c", 0)),
            ],
        );
        let want: BTreeMap<String, u8> = [("c".to_string(), 2)].into();
        assert_eq!(channel_ids(&s, "a"), want);
    }

    #[test]
    fn names_that_cannot_be_rust_are_refused() {
        let rows = [
            ("echo_vsp", true, Some("ECHO_VSP")),
            ("vm-guest", false, Some("vm_guest")),
            ("Guest2", false, Some("guest2")),
            ("2guest", true, None),
            ("", true, None),
            ("_", true, None),
            ("a.b", true, None),
        ];
        for (name, upper, want) in rows {
            assert_eq!(rust_name(name, upper).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn guest_addresses_are_every_vm_map_of_the_region_lowest_first() {
        let xml = r#"<system>
            <memory_region name="ram" size="0x1000" />
            <protection_domain name="vmm" priority="10"><program_image path="vmm" />
              <virtual_machine name="vm"><vcpu id="0" />
                <map mr="ram" vaddr="0x1000000000" perms="rw" />
                <map mr="ram" vaddr="0x0" perms="rwx" />
              </virtual_machine>
            </protection_domain></system>"#;
        let s = crate::parse_and_check(xml, Path::new("t.xml")).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(guest_addresses(&s, "ram"), [0, 0x10_0000_0000]);
        assert!(guest_addresses(&s, "other").is_empty());
    }
}
