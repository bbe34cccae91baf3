//! `paravisor graph <system.xml> [-o FILE.dot]`: the system as a Graphviz picture
//! for auditors. PDs (priority, scheduling, guest- or host-facing), memory regions
//! with every map (who, where, which rights), channels by direction (protected
//! calls and notifications), irqs, fault-handler parents, and each virtual machine
//! with its VMM and the guest memory it sees. The trust boundary is a cluster: the
//! guests and the memory they map are inside it, so every edge that crosses it is a
//! PD reaching guest-controlled bytes. With `-o`, an SVG is written next to the DOT
//! file when Graphviz's `dot` is on PATH.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::failure::{output_error, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The system description (system.xml).
    pub system: PathBuf,
    /// Write the DOT here (and FILE.svg beside it when `dot` is installed) instead
    /// of printing it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let system = sdf::load(&args.system)?;
    let text = dot(&system, &args.system.display().to_string());
    let Some(path) = &args.output else {
        return std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(output_error);
    };
    crate::build::write_file(path, text.as_bytes())?;
    println!("wrote {}", path.display());
    let svg = path.with_extension("svg");
    match std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(path)
        .arg("-o")
        .arg(&svg)
        .status()
    {
        Ok(s) if s.success() => println!("wrote {}", svg.display()),
        Ok(s) => return Err(Failure::msg(format!("dot -Tsvg failed: {s}"))),
        Err(_) => println!("no SVG: Graphviz `dot` is not on PATH"),
    }
    Ok(())
}

/// A DOT double-quoted string: only `"` and `\` need escaping; newlines in names
/// are impossible (the checker allows none) but are escaped anyway.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pd_id(name: &str) -> String {
    q(&format!("pd:{name}"))
}

fn mr_id(name: &str) -> String {
    q(&format!("mr:{name}"))
}

fn vm_id(name: &str) -> String {
    q(&format!("vm:{name}"))
}

fn size(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(u, _)| n >= *u && n.is_multiple_of(*u))
        .map_or(format!("{n:#x} B"), |(u, s)| format!("{} {s}", n / u))
}

/// How a PD stands to the outside: it reads guest-controlled bytes (it maps memory
/// a guest maps, or it is a VMM and receives its exits), or it touches the host's
/// hardware (irqs, fixed-address device memory).
struct Facing {
    guest: bool,
    host: bool,
}

fn facing(system: &sdf::System, pd: &sdf::ProtectionDomain, guest_mem: &[&str]) -> Facing {
    Facing {
        guest: pd.virtual_machine.is_some()
            || pd.maps.iter().any(|m| guest_mem.contains(&m.mr.as_str())),
        host: !pd.irqs.is_empty()
            || pd.maps.iter().any(|m| {
                system
                    .memory_region(&m.mr)
                    .is_some_and(|r| r.phys_addr.is_some())
            }),
    }
}

/// The whole picture; deterministic, in system.xml's order.
pub fn dot(system: &sdf::System, title: &str) -> String {
    let guest_mem: Vec<&str> = system
        .virtual_machines()
        .into_iter()
        .flat_map(|(_, vm)| vm.maps.iter().map(|m| m.mr.as_str()))
        .collect();
    let mut o = String::new();
    let mut w = |s: String| o.push_str(&s);
    w(format!(
        "digraph system {{\n  graph [label={}, labelloc=t, rankdir=LR, fontname=\"Helvetica\", newrank=true];\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        q(&format!(
            "{title}: {} PDs, {} regions, {} channels, {} VMs. Red: guest-facing (reaches guest-controlled bytes); orange: host-facing (irqs, device memory); solid: protected call; dashed: notification; dotted: fault handler",
            system.all_pds().len(),
            system.memory_regions.len(),
            system.channels.len(),
            system.virtual_machines().len()
        ))
    ));

    w("  subgraph cluster_guest {\n    label=\"trust boundary: guest side (untrusted)\"; style=\"dashed,bold\"; color=red; fontcolor=red;\n".into());
    for (_, vm) in system.virtual_machines() {
        let vcpus: Vec<String> = vm.vcpus.iter().map(|v| v.id.to_string()).collect();
        w(format!(
            "    {} [shape=box3d, color=red, label={}];\n",
            vm_id(&vm.name),
            q(&format!(
                "VM {}\npriority {}{}\nvCPUs {}",
                vm.name,
                vm.priority,
                sched(vm.budget, vm.period),
                vcpus.join(", ")
            ))
        ));
    }
    for mr in system
        .memory_regions
        .iter()
        .filter(|m| guest_mem.contains(&m.name.as_str()))
    {
        w(region_node(mr, "    ", true));
    }
    w("  }\n".into());

    for mr in system
        .memory_regions
        .iter()
        .filter(|m| !guest_mem.contains(&m.name.as_str()))
    {
        w(region_node(mr, "  ", false));
    }

    for pd in system.all_pds() {
        let f = facing(system, pd, &guest_mem);
        let mut label = format!("PD {}\npriority {}", pd.name, pd.priority);
        if pd.passive {
            label.push_str(", passive");
        }
        label.push_str(&sched(pd.budget, pd.period));
        if f.guest {
            label.push_str("\nguest-facing");
            if let Some(vm) = &pd.virtual_machine {
                let _ = write!(label, "\nVMM of {}", vm.name);
            }
            let reached: Vec<String> = pd
                .maps
                .iter()
                .filter(|m| guest_mem.contains(&m.mr.as_str()))
                .map(|m| format!("{} {}", m.mr, m.perms))
                .collect();
            if !reached.is_empty() {
                let _ = write!(label, "\nreaches guest memory: {}", reached.join(", "));
            }
        }
        if f.host {
            label.push_str("\nhost-facing");
        }
        let color = match (f.guest, f.host) {
            (true, _) => "red",
            (false, true) => "orange",
            _ => "black",
        };
        w(format!(
            "  {} [shape=box, style=\"rounded,bold\", color={color}, label={}];\n",
            pd_id(&pd.name),
            q(&label)
        ));
        for m in &pd.maps {
            let guest = guest_mem.contains(&m.mr.as_str());
            w(format!(
                "  {} -> {} [arrowhead=none, color={}, label={}];\n",
                pd_id(&pd.name),
                mr_id(&m.mr),
                if guest { "red" } else { "gray40" },
                q(&format!(
                    "{} at {:#x}{}",
                    m.perms,
                    m.vaddr,
                    if m.cached { "" } else { ", uncached" }
                ))
            ));
        }
        for irq in &pd.irqs {
            let node = q(&format!("irq:{}", irq.irq));
            w(format!(
                "  {node} [shape=diamond, color=orange, label={}];\n  {node} -> {} [color=orange, label={}];\n",
                q(&format!("irq {}", irq.irq)),
                pd_id(&pd.name),
                q(&format!("id {}, {}", irq.id, trigger(irq.trigger)))
            ));
        }
        for child in &pd.children {
            w(format!(
                "  {} -> {} [style=dotted, label={}];\n",
                pd_id(&pd.name),
                pd_id(&child.name),
                q(&format!(
                    "faults of child {}",
                    child.child_id.map_or("?".into(), |i| i.to_string())
                ))
            ));
        }
        if let Some(vm) = &pd.virtual_machine {
            w(format!(
                "  {} -> {} [color=red, style=bold, label=\"VMM: runs the vCPUs, handles every exit\"];\n",
                pd_id(&pd.name),
                vm_id(&vm.name)
            ));
            for m in &vm.maps {
                w(format!(
                    "  {} -> {} [arrowhead=none, color=red, label={}];\n",
                    vm_id(&vm.name),
                    mr_id(&m.mr),
                    q(&format!("{} at GPA {:#x}", m.perms, m.vaddr))
                ));
            }
        }
    }

    for ch in &system.channels {
        let [a, b] = &ch.ends;
        for (from, to) in [(a, b), (b, a)] {
            let ids = format!("{}:{} -> {}:{}", from.pd, from.id, to.pd, to.id);
            let kinds = [
                (from.pp, "style=solid, penwidth=1.5", "PPC"),
                (from.notify, "style=dashed", "notify"),
            ];
            for (_, style, kind) in kinds.into_iter().filter(|k| k.0) {
                w(format!(
                    "  {} -> {} [{style}, label={}];\n",
                    pd_id(&from.pd),
                    pd_id(&to.pd),
                    q(&format!("{kind} {ids}"))
                ));
            }
        }
    }
    o.push_str("}\n");
    o
}

fn sched(budget: u64, period: u64) -> String {
    if budget == period {
        String::new()
    } else {
        format!(", {budget} us per {period} us")
    }
}

fn trigger(t: sdf::IrqTrigger) -> &'static str {
    match t {
        sdf::IrqTrigger::Level => "level",
        sdf::IrqTrigger::Edge => "edge",
    }
}

fn region_node(mr: &sdf::MemoryRegion, indent: &str, guest: bool) -> String {
    let mut label = format!("{}\n{}", mr.name, size(mr.size));
    if let Some(pa) = mr.phys_addr {
        let _ = write!(label, " at phys {pa:#x} (device)");
    }
    if guest {
        label.push_str("\nguest memory");
    }
    format!(
        "{indent}{} [shape=cylinder, color={}, label={}];\n",
        mr_id(&mr.name),
        if guest {
            "red"
        } else if mr.phys_addr.is_some() {
            "orange"
        } else {
            "gray40"
        },
        q(&label)
    )
}

#[cfg(test)]
mod tests;
