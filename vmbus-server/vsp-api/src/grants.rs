//! What vmbus-server granted each VSP channel, as a granting PD keeps it: one entry
//! per (VSP slot, relid), holding whatever that PD checks (hvcall-pd: the signal
//! connection; synic-pd: the event flag and its target). A thing granted belongs to
//! one channel at a time; a channel's new grant replaces its old one (a retarget).

use heapless::Vec;

/// Channels granted at once, over all VSPs.
pub const MAX_GRANTS: usize = 64;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum GrantError {
    /// It belongs to another channel.
    Taken,
    /// [`MAX_GRANTS`] channels hold grants already.
    Full,
    /// The channel holds no grant.
    NotFound,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Entry<T> {
    vsp: u8,
    relid: u32,
    what: T,
}

/// Grants of `T`; `same` says when two grants name the same thing.
#[derive(Debug)]
pub struct ChannelGrants<T> {
    entries: Vec<Entry<T>, MAX_GRANTS>,
    same: fn(&T, &T) -> bool,
}

impl<T: Copy> ChannelGrants<T> {
    pub const fn new(same: fn(&T, &T) -> bool) -> Self {
        Self {
            entries: Vec::new(),
            same,
        }
    }

    /// Grants `what` to channel `relid` of VSP `vsp`, replacing its previous grant.
    pub fn grant(&mut self, vsp: u8, relid: u32, what: T) -> Result<(), GrantError> {
        let key = (vsp, relid);
        if self
            .entries
            .iter()
            .any(|e| (e.vsp, e.relid) != key && (self.same)(&e.what, &what))
        {
            return Err(GrantError::Taken);
        }
        let new = Entry { vsp, relid, what };
        match self.entries.iter_mut().find(|e| (e.vsp, e.relid) == key) {
            Some(e) => *e = new,
            None => self.entries.push(new).map_err(|_| GrantError::Full)?,
        }
        Ok(())
    }

    /// Takes the channel's grant back and returns it.
    pub fn revoke(&mut self, vsp: u8, relid: u32) -> Result<T, GrantError> {
        let i = self
            .entries
            .iter()
            .position(|e| (e.vsp, e.relid) == (vsp, relid))
            .ok_or(GrantError::NotFound)?;
        Ok(self.entries.swap_remove(i).what)
    }

    /// Whether VSP `vsp` holds a grant `check` accepts, on any of its channels.
    pub fn holds(&self, vsp: u8, check: impl Fn(&T) -> bool) -> bool {
        self.entries.iter().any(|e| e.vsp == vsp && check(&e.what))
    }

    /// Whether any channel holds a grant `check` accepts.
    pub fn any(&self, check: impl Fn(&T) -> bool) -> bool {
        self.entries.iter().any(|e| check(&e.what))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (connection, flag): the same connection is the same thing.
    fn table() -> ChannelGrants<(u32, u32)> {
        ChannelGrants::new(|a, b| a.0 == b.0)
    }

    #[test]
    fn a_thing_has_one_channel_until_revoked_and_a_regrant_replaces() {
        let mut t = table();
        t.grant(0, 1, (0x2001, 1)).unwrap();
        assert_eq!(t.grant(1, 2, (0x2001, 2)), Err(GrantError::Taken));
        t.grant(1, 2, (0x2002, 2)).unwrap();
        assert!(t.holds(0, |&(c, _)| c == 0x2001));
        assert!(!t.holds(1, |&(c, _)| c == 0x2001), "another VSP's");
        assert!(t.any(|&(c, _)| c == 0x2001) && !t.any(|&(c, _)| c == 0x2005));
        // Channel (0, 1) moves to another connection; the old one is free.
        t.grant(0, 1, (0x2003, 1)).unwrap();
        assert!(!t.holds(0, |&(c, _)| c == 0x2001));
        assert_eq!(t.revoke(0, 1), Ok((0x2003, 1)));
        assert_eq!(t.revoke(0, 1), Err(GrantError::NotFound));
        t.grant(1, 3, (0x2001, 3)).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = table();
        for relid in 0..MAX_GRANTS as u32 {
            t.grant(0, relid, (relid, 0)).unwrap();
        }
        assert_eq!(t.grant(0, 999, (999, 0)), Err(GrantError::Full));
        assert!(t.grant(0, 5, (5000, 0)).is_ok(), "a regrant needs no room");
    }
}
