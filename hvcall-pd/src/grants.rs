//! Which VSP owns which signal connection. vmbus-server is the authority: when it
//! opens a channel on a VSP it grants that VSP the channel's connection id, and
//! revokes it when the channel closes. A VSP may route only granted connections to
//! itself, so it can neither claim another VSP's doorbells nor keep its own after
//! the channel is gone.

use heapless::Vec;
use hvdef::Vtl;

/// Channels granted at once, over all VSPs.
pub const MAX_GRANTS: usize = 64;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ConnectionGrant {
    pub vsp: u8,
    pub relid: u32,
    pub connection_id: u32,
    pub vtl: Vtl,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum GrantError {
    /// The connection belongs to another channel.
    Taken,
    Full,
    NotFound,
}

#[derive(Debug, Default)]
pub struct ConnectionGrants {
    grants: Vec<ConnectionGrant, MAX_GRANTS>,
}

impl ConnectionGrants {
    /// Records `grant`, replacing the channel's previous one.
    pub fn grant(&mut self, grant: ConnectionGrant) -> Result<(), GrantError> {
        let key = (grant.vsp, grant.relid);
        let taken = self.grants.iter().any(|g| {
            (g.connection_id, g.vtl) == (grant.connection_id, grant.vtl) && (g.vsp, g.relid) != key
        });
        if taken {
            return Err(GrantError::Taken);
        }
        self.grants.retain(|g| (g.vsp, g.relid) != key);
        self.grants.push(grant).map_err(|_| GrantError::Full)
    }

    /// Removes the channel's grant and returns it, so its route can go too.
    pub fn revoke(&mut self, vsp: u8, relid: u32) -> Result<ConnectionGrant, GrantError> {
        let i = self
            .grants
            .iter()
            .position(|g| (g.vsp, g.relid) == (vsp, relid))
            .ok_or(GrantError::NotFound)?;
        Ok(self.grants.swap_remove(i))
    }

    pub fn owns(&self, vsp: u8, connection_id: u32, vtl: Vtl) -> bool {
        self.grants
            .iter()
            .any(|g| g.vsp == vsp && g.connection_id == connection_id && g.vtl == vtl)
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
    use super::*;

    fn g(vsp: u8, relid: u32, connection_id: u32) -> ConnectionGrant {
        ConnectionGrant {
            vsp,
            relid,
            connection_id,
            vtl: Vtl::VTL0,
        }
    }

    #[test]
    fn a_connection_has_one_owner_until_revoked() {
        let mut t = ConnectionGrants::default();
        t.grant(g(0, 1, 0x2001)).unwrap();
        assert_eq!(t.grant(g(1, 2, 0x2001)), Err(GrantError::Taken));
        t.grant(g(1, 2, 0x2002)).unwrap();
        assert!(t.owns(0, 0x2001, Vtl::VTL0));
        assert!(!t.owns(1, 0x2001, Vtl::VTL0));
        assert!(!t.owns(0, 0x2001, Vtl::VTL1), "per VTL");
        // A channel's new grant replaces its old one.
        t.grant(g(0, 1, 0x2003)).unwrap();
        assert!(!t.owns(0, 0x2001, Vtl::VTL0) && t.owns(0, 0x2003, Vtl::VTL0));
        assert_eq!(t.revoke(0, 1), Ok(g(0, 1, 0x2003)));
        assert_eq!(t.revoke(0, 1), Err(GrantError::NotFound));
        t.grant(g(1, 3, 0x2001)).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = ConnectionGrants::default();
        for relid in 0..MAX_GRANTS as u32 {
            t.grant(g(0, relid, relid)).unwrap();
        }
        assert_eq!(t.grant(g(0, 999, 999)), Err(GrantError::Full));
    }
}
