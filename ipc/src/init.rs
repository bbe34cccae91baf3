//! Typed lookups over [`Init`], so every PD validates its configuration the same way
//! instead of re-deriving channel ids and region rights by hand.

use crate::queue::protocol::Role;
use crate::queue::{Queue, QueueEnd, QueueEntry};
use crate::{Channel, ChannelSet, Init, InitError, Perms, Region};

/// The setvar names of the guest-memory windows system.xml maps into a PD, and of
/// the partition shape every PD that serves the guest reads with them.
pub mod guest_names {
    /// Guest RAM (private to the partition once it is isolated).
    pub const GUEST_RAM: &str = "guest_ram";
    pub const GUEST_RAM_GPA: &str = "guest_ram_gpa";
    /// The host-visible alias of guest memory, where isolation has one.
    pub const GUEST_SHARED: &str = "guest_shared";
    pub const GUEST_SHARED_GPA: &str = "guest_shared_gpa";
    /// How many virtual processors the partition has.
    pub const VP_COUNT: &str = "vp_count";
}

/// The setvar names of numbered grants, `[prefix0suffix, prefix1suffix, ...]`
/// (`service0_channel`, `service1_channel`, ...), spelled from one pattern so that
/// no entry can drift from the others or from system.xml's.
#[macro_export]
macro_rules! numbered_names {
    ($prefix:literal, $suffix:literal, [$($i:literal),+ $(,)?]) => {
        [$(concat!($prefix, $i, $suffix)),+]
    };
}

/// One guest-memory window: a region and the guest physical address it starts at.
#[derive(Copy, Clone, Debug)]
pub struct GuestWindow {
    pub gpa: u64,
    pub region: Region<'static>,
    /// The variable that set `gpa`, for the error when the window does not fit.
    pub gpa_variable: &'static str,
}

impl GuestWindow {
    /// What a PD reports when its memory map refuses the window (overlap, wrap).
    pub fn refused(&self) -> InitError {
        InitError::InvalidVariable {
            name: self.gpa_variable,
            value: self.gpa,
        }
    }
}

/// Guest RAM and, where system.xml maps it, the shared alias.
#[derive(Copy, Clone, Debug)]
pub struct GuestWindows {
    pub ram: GuestWindow,
    pub shared: Option<GuestWindow>,
}

/// Checked accessors every [`Init`] gets for free.
pub trait InitExt: Init {
    /// A region that must be mapped with at least `needed` rights.
    fn region_with(&self, name: &'static str, needed: Perms) -> Result<Region<'static>, InitError> {
        let region = self.region(name)?;
        if !region.perms().covers(needed) {
            return Err(InitError::RegionPerms { name, needed });
        }
        Ok(region)
    }

    /// A variable that names one channel id (0..=61).
    fn channel(&self, name: &'static str) -> Result<Channel, InitError> {
        let value = self.variable(name)?;
        u8::try_from(value)
            .ok()
            .and_then(Channel::try_new)
            .ok_or(InitError::InvalidVariable { name, value })
    }

    /// A variable holding a bit set of channel ids; bits beyond id 61 are refused
    /// rather than silently dropped.
    fn channel_set(&self, name: &'static str) -> Result<ChannelSet, InitError> {
        let value = self.variable(name)?;
        let set = ChannelSet::from_bits(value);
        if set.bits() != value {
            return Err(InitError::InvalidVariable { name, value });
        }
        Ok(set)
    }

    /// One end ([`crate::Producer`] or [`crate::Consumer`]) of the queue of
    /// `capacity` entries in region `name`, which both ends map read-write.
    fn queue<T: QueueEntry, R: Role>(
        &self,
        name: &'static str,
        capacity: u32,
    ) -> Result<QueueEnd<'static, T, R>, InitError> {
        let region = self.region_with(name, Perms::RW)?;
        QueueEnd::new(region, capacity).map_err(|_| InitError::RegionTooSmall {
            name,
            needed: Queue::<T>::layout_size(capacity).unwrap_or(usize::MAX),
            granted: region.len(),
        })
    }

    /// The guest-memory windows ([`guest_names`]), both mapped read-write. A GPA is
    /// looked up before its region's rights, so a misconfigured window reports the
    /// missing variable first.
    fn guest_windows(&self) -> Result<GuestWindows, InitError> {
        use guest_names::*;
        let window = |region, gpa_variable| -> Result<GuestWindow, InitError> {
            let gpa = self.variable(gpa_variable)?;
            Ok(GuestWindow {
                gpa,
                region: self.region_with(region, Perms::RW)?,
                gpa_variable,
            })
        };
        let ram = window(GUEST_RAM, GUEST_RAM_GPA)?;
        let shared = match self.optional(self.region(GUEST_SHARED))? {
            Some(_) => Some(window(GUEST_SHARED, GUEST_SHARED_GPA)?),
            None => None,
        };
        Ok(GuestWindows { ram, shared })
    }

    /// `Ok(None)` when the variable or region is simply not configured, so optional
    /// features stay off; any other error still stops the PD.
    fn optional<T>(&self, lookup: Result<T, InitError>) -> Result<Option<T>, InitError> {
        match lookup {
            Ok(value) => Ok(Some(value)),
            Err(InitError::MissingRegion(_) | InitError::MissingVariable(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<I: Init + ?Sized> InitExt for I {}

/// An [`Init`] that answers some variables itself and defers everything else to the
/// runtime's: how an entry point supplies build-time constants (Microkit's
/// `config.rs` values) next to what system.xml set.
#[derive(Clone, Copy)]
pub struct WithVariables<'a> {
    runtime: &'a dyn Init,
    variables: &'a [(&'static str, u64)],
}

impl<'a> WithVariables<'a> {
    pub fn new(runtime: &'a dyn Init, variables: &'a [(&'static str, u64)]) -> Self {
        Self { runtime, variables }
    }
}

impl core::fmt::Debug for WithVariables<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WithVariables")
            .field("pd", &self.runtime.pd_name())
            .field("variables", &self.variables)
            .finish()
    }
}

impl Init for WithVariables<'_> {
    fn region(&self, setvar: &'static str) -> Result<Region<'static>, InitError> {
        self.runtime.region(setvar)
    }

    fn variable(&self, name: &'static str) -> Result<u64, InitError> {
        match self.variables.iter().find(|(n, _)| *n == name) {
            Some(&(_, value)) => Ok(value),
            None => self.runtime.variable(name),
        }
    }

    fn pd_name(&self) -> &str {
        self.runtime.pd_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{leaked_region, FakeInit};

    #[test]
    fn numbered_names_spell_each_index() {
        let names: [&str; 3] = crate::numbered_names!("vsp", "_gpadl", [0, 1, 12]);
        assert_eq!(names, ["vsp0_gpadl", "vsp1_gpadl", "vsp12_gpadl"]);
    }

    #[test]
    fn channel_variables_are_range_checked() {
        let init = FakeInit::new("pd")
            .variable("ok", 61)
            .variable("big", 62)
            .variable("huge", 1 << 40);
        assert_eq!(init.channel("ok"), Ok(Channel::new(61)));
        assert_eq!(
            init.channel("big"),
            Err(InitError::InvalidVariable {
                name: "big",
                value: 62
            })
        );
        assert!(init.channel("huge").is_err());
        assert_eq!(
            init.channel("absent"),
            Err(InitError::MissingVariable("absent"))
        );
    }

    #[test]
    fn channel_sets_refuse_bits_beyond_id_61() {
        let init = FakeInit::new("pd")
            .variable("set", 0b101)
            .variable("bad", 1 << 62);
        let set = init.channel_set("set").unwrap();
        assert!(set.contains(Channel::new(0)) && set.contains(Channel::new(2)));
        assert!(init.channel_set("bad").is_err());
    }

    #[test]
    fn regions_must_carry_the_needed_rights() {
        let init = FakeInit::new("pd").region("ro", leaked_region(64).restrict(Perms::R));
        assert!(init.region_with("ro", Perms::R).is_ok());
        assert_eq!(
            init.region_with("ro", Perms::RW).unwrap_err(),
            InitError::RegionPerms {
                name: "ro",
                needed: Perms::RW
            }
        );
    }

    #[test]
    fn queues_must_fit_their_region() {
        let fits = crate::Queue::<u64>::layout_size(4).unwrap();
        let init = FakeInit::new("pd")
            .region("q", leaked_region(fits))
            .region("small", leaked_region(fits - 8))
            .region("ro", leaked_region(fits).restrict(Perms::R));
        let mut producer: crate::Producer<'_, u64> = init.queue("q", 4).unwrap();
        let mut consumer: crate::Consumer<'_, u64> = init.queue("q", 4).unwrap();
        producer.try_enqueue(7).unwrap();
        assert_eq!(consumer.dequeue(), Ok(Some(7)));
        assert_eq!(
            init.queue::<u64, crate::queue::protocol::Producing>("small", 4)
                .unwrap_err(),
            InitError::RegionTooSmall {
                name: "small",
                needed: fits,
                granted: fits - 8
            }
        );
        assert_eq!(
            init.queue::<u64, crate::queue::protocol::Consuming>("ro", 4)
                .unwrap_err(),
            InitError::RegionPerms {
                name: "ro",
                needed: Perms::RW
            }
        );
    }

    #[test]
    fn guest_windows_check_variables_before_rights() {
        use super::guest_names::*;
        let ram = leaked_region(4096);
        let base = FakeInit::new("pd")
            .region(GUEST_RAM, ram)
            .variable(GUEST_RAM_GPA, 0x1000);
        let w = base.guest_windows().unwrap();
        assert_eq!((w.ram.gpa, w.ram.region.len()), (0x1000, 4096));
        assert!(w.shared.is_none());
        assert_eq!(
            w.ram.refused(),
            InitError::InvalidVariable {
                name: GUEST_RAM_GPA,
                value: 0x1000
            }
        );
        let with_shared = base.clone().region(GUEST_SHARED, ram.restrict(Perms::R));
        assert_eq!(
            with_shared.guest_windows().unwrap_err(),
            InitError::MissingVariable(GUEST_SHARED_GPA)
        );
        assert_eq!(
            with_shared
                .variable(GUEST_SHARED_GPA, 1 << 30)
                .guest_windows()
                .unwrap_err(),
            InitError::RegionPerms {
                name: GUEST_SHARED,
                needed: Perms::RW
            }
        );
        assert_eq!(
            base.without_variable(GUEST_RAM_GPA)
                .guest_windows()
                .unwrap_err(),
            InitError::MissingVariable(GUEST_RAM_GPA)
        );
    }

    #[test]
    fn optional_lookups_only_swallow_absence() {
        let init = FakeInit::new("pd").variable("bad", 99);
        assert_eq!(init.optional(init.channel("absent")), Ok(None));
        assert!(init.optional(init.channel("bad")).is_err());
    }

    #[test]
    fn overlay_variables_shadow_the_runtime() {
        let base = FakeInit::new("pd").variable("a", 1).variable("b", 2);
        let overlay = [("a", 10)];
        let init = WithVariables::new(&base, &overlay);
        assert_eq!(init.variable("a"), Ok(10));
        assert_eq!(init.variable("b"), Ok(2));
        assert_eq!(init.pd_name(), "pd");
    }
}
