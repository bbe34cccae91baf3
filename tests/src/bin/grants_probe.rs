//! Exercises every capability check from inside a PD and prints one `check` line per
//! result; the test compares those lines exactly. Then lists its own descriptors, so
//! the test can see the process holds nothing system.xml did not grant.
//!
//! Expects (see tests/tests/isolation.rs): region `rw_region` rw and `ro_region` r;
//! channel 1 to `ppc_server` (this end pp, no notify), channel 2 from a lower PD that
//! may call this one (this end notify only); nothing else.

use ipc::{Channel, ChannelSet, Handler, HandlerError, Kernel, MessageInfo, MessageRegisters};
use system_tests::{label, MARKER_OFFSET};

struct Done;

impl Handler for Done {
    fn notified(&mut self, _: &mut dyn Kernel, _: ChannelSet) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn call(k: &mut dyn Kernel, id: u8, lbl: u64, args: &[u64]) -> String {
    let mut mrs = MessageRegisters::new();
    for (i, &a) in args.iter().enumerate() {
        mrs.set(i, a);
    }
    match Channel::new(id).pp_call(k, MessageInfo::new(lbl, args.len()), &mut mrs) {
        Ok(reply) => format!(
            "Ok(label={} count={} mr0={})",
            reply.label(),
            reply.count(),
            mrs.get(0)
        ),
        Err(e) => format!("Err({e:?})"),
    }
}

fn main() {
    hostsim::run(|init, k| -> Result<Done, ipc::InitError> {
        let ch = Channel::new;
        println!("check notify(7): {:?}", k.notify(ch(7)));
        println!("check pp_call(7): {}", call(k, 7, label::ADD, &[1, 2]));
        println!("check irq_ack(7): {:?}", k.irq_ack(ch(7)));
        println!("check notify(1): {:?}", k.notify(ch(1)));
        println!("check pp_call(2): {}", call(k, 2, label::ADD, &[1, 2]));
        println!("check notify(2): {:?}", k.notify(ch(2)));
        println!("check irq_ack(1): {:?}", k.irq_ack(ch(1)));
        println!("check pp_call(1, add): {}", call(k, 1, label::ADD, &[2, 3]));
        println!("check pp_call(1, bad label): {}", call(k, 1, 0x77, &[]));

        let mut ok = 0u32;
        for i in 0..10_000u64 {
            if call(k, 1, label::ADD, &[i, 1]) == format!("Ok(label=0 count=1 mr0={})", i + 1) {
                ok += 1;
            }
        }
        println!("check 10000 pp round trips: {ok} ok");

        let rw = init.region("rw_region")?;
        let ro = init.region("ro_region")?;
        println!(
            "check rw_region: {:#x} {:#x} {}",
            rw.base_address(),
            rw.len(),
            rw.perms()
        );
        println!(
            "check ro_region: {:#x} {:#x} {}",
            ro.base_address(),
            ro.len(),
            ro.perms()
        );
        println!(
            "check variable(rw_region): {:?}",
            init.variable("rw_region").map(|v| format!("{v:#x}"))
        );
        println!("check region(nope): {:?}", init.region("nope").err());
        // The same memory region mapped a second time, read-only, elsewhere.
        let alias = init.region("rw_alias")?;
        let wrote = rw.write(0x10, &0xabcdu64);
        println!(
            "check alias: {:#x} {} {:?} {:?}",
            alias.base_address(),
            alias.perms(),
            wrote,
            alias.read::<u64>(0x10).map(|v| format!("{v:#x}"))
        );
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        for (start, prot) in [
            (rw.base_address(), "rw-s"),
            (ro.base_address(), "r--s"),
            (alias.base_address(), "r--s"),
        ] {
            let prefix = format!("{start:x}-");
            let line = maps.lines().find(|l| l.starts_with(&prefix)).unwrap_or("");
            println!(
                "check mapping {start:#x}: {}",
                line.split_whitespace().nth(1).unwrap_or("missing") == prot
            );
        }
        println!(
            "check pp_call(1, marker): {}",
            call(k, 1, label::WRITE_MARKER, &[0xfeed])
        );
        println!(
            "check marker via own mapping: {:?}",
            rw.read::<u64>(MARKER_OFFSET).map(|v| format!("{v:#x}"))
        );

        let mut kinds: Vec<String> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for entry in dir.flatten() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // The directory listing itself holds one descriptor.
                if target.starts_with("/proc/") {
                    continue;
                }
                let kind = target.split(':').next().unwrap_or("").to_string();
                let kind = if target == "anon_inode:[eventfd]" {
                    "eventfd".to_string()
                } else {
                    kind
                };
                kinds.push(kind);
            }
        }
        kinds.sort();
        println!("check fds: {}", kinds.join(" "));

        // Last: the callee dies mid-call, then is gone for good.
        println!("check pp_call(1, crash): {}", call(k, 1, label::CRASH, &[]));
        println!(
            "check pp_call(1) after crash: {}",
            call(k, 1, label::ADD, &[1, 1])
        );
        std::process::exit(0)
    })
}
