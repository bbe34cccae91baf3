//! Which VSP may set which event flag. vmbus-server is the authority: when it opens a
//! channel on a VSP it grants that VSP the channel's target and flag, and revokes
//! them when the channel closes; a VSP's SIGNAL_EVENT outside its grants is refused.
//! Without this, any VSP could interrupt the guest on any VP, SINT and flag.

use heapless::Vec;
use synic_api::{GrantStatus, SintTarget};

/// Channels granted at once, over all VSPs.
pub const MAX_GRANTS: usize = 64;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Grant {
    vsp: u8,
    relid: u32,
    target: SintTarget,
    flag: u32,
}

#[derive(Debug, Default)]
pub struct EventGrants {
    grants: Vec<Grant, MAX_GRANTS>,
}

impl EventGrants {
    /// Grants (or, for a channel already granted, moves) `target`/`flag` to the
    /// channel `relid` of VSP `vsp`. A flag on a SINT belongs to one channel only.
    pub fn grant(&mut self, vsp: u8, relid: u32, target: SintTarget, flag: u32) -> GrantStatus {
        let same_flag = |g: &Grant| {
            g.target.instance == target.instance && g.target.sint == target.sint && g.flag == flag
        };
        if self
            .grants
            .iter()
            .any(|g| same_flag(g) && (g.vsp, g.relid) != (vsp, relid))
        {
            return GrantStatus::Invalid;
        }
        let new = Grant {
            vsp,
            relid,
            target,
            flag,
        };
        if let Some(g) = self
            .grants
            .iter_mut()
            .find(|g| (g.vsp, g.relid) == (vsp, relid))
        {
            *g = new;
            return GrantStatus::Ok;
        }
        match self.grants.push(new) {
            Ok(()) => GrantStatus::Ok,
            Err(_) => GrantStatus::Full,
        }
    }

    pub fn revoke(&mut self, vsp: u8, relid: u32) -> GrantStatus {
        match self
            .grants
            .iter()
            .position(|g| (g.vsp, g.relid) == (vsp, relid))
        {
            Some(i) => {
                self.grants.swap_remove(i);
                GrantStatus::Ok
            }
            None => GrantStatus::Invalid,
        }
    }

    pub fn permits(&self, vsp: u8, target: SintTarget, flag: u32) -> bool {
        self.grants
            .iter()
            .any(|g| g.vsp == vsp && g.target == target && g.flag == flag)
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use synic_api::Instance;

    use super::*;

    const T: SintTarget = SintTarget {
        vp: 0,
        instance: Instance::PARAVISOR,
        sint: 2,
    };

    #[test]
    fn grants_are_per_channel_and_move_with_a_retarget() {
        let mut g = EventGrants::default();
        assert_eq!(g.grant(0, 1, T, 1), GrantStatus::Ok);
        assert_eq!(g.grant(1, 2, T, 2), GrantStatus::Ok);
        assert!(g.permits(0, T, 1));
        assert!(!g.permits(1, T, 1), "another VSP's flag");
        assert!(!g.permits(0, SintTarget { vp: 1, ..T }, 1), "another VP");
        // The other VSP cannot be granted a flag already owned.
        assert_eq!(g.grant(1, 3, T, 1), GrantStatus::Invalid);
        let moved = SintTarget { vp: 1, ..T };
        assert_eq!(g.grant(0, 1, moved, 1), GrantStatus::Ok);
        assert!(g.permits(0, moved, 1) && !g.permits(0, T, 1));
        assert_eq!(g.revoke(0, 1), GrantStatus::Ok);
        assert_eq!(g.revoke(0, 1), GrantStatus::Invalid);
        assert!(!g.permits(0, moved, 1));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut g = EventGrants::default();
        for relid in 0..MAX_GRANTS as u32 {
            assert_eq!(g.grant(0, relid, T, relid), GrantStatus::Ok);
        }
        assert_eq!(g.grant(0, 999, T, 999), GrantStatus::Full);
    }
}
