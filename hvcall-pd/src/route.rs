//! The connection table: which destination a guest's connection id reaches.
//!
//! Connection ids are per sender VTL, as Hyper-V keeps them per partition and VTL:
//! a VTL0 guest cannot name a connection the paravisor registered for VTL1. Entries
//! are added and removed by PDs over their channels; each entry remembers its owner
//! so only the owner can remove it.

use heapless::Vec;
use hvdef::Vtl;
use synic_api::SintTarget;

/// Where a connection leads (the Hyper-V port behind it).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Destination {
    /// A paravisor service PD: posts go into its message queue, signals become a
    /// notification on `channel` (this PD's id for the channel to that service).
    Service { channel: u8 },
    /// A SynIC message port: posts land in `target`'s message slot.
    SynicMessage { target: SintTarget, port_id: u32 },
    /// A SynIC event port: flag `n` of a signal sets `flag_base + n` in `target`.
    SynicEvent {
        target: SintTarget,
        flag_base: u16,
        flag_count: u16,
    },
    /// Relayed to the host hypervisor, with only host-visible buffers.
    Host,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Route {
    pub connection_id: u32,
    pub vtl: Vtl,
    pub destination: Destination,
    /// The channel (this PD's id) of the PD that registered the route.
    pub owner: u8,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RouteError {
    /// The connection id is already routed for that VTL.
    Duplicate,
    /// No more room in the table.
    Full,
    /// No such route, or it belongs to another PD.
    NotFound,
}

/// At most `N` routes.
#[derive(Debug, Default)]
pub struct RouteTable<const N: usize> {
    routes: Vec<Route, N>,
}

impl<const N: usize> RouteTable<N> {
    pub const fn new() -> Self {
        Self { routes: Vec::new() }
    }

    pub fn lookup(&self, vtl: Vtl, connection_id: u32) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.vtl == vtl && r.connection_id == connection_id)
    }

    pub fn insert(&mut self, route: Route) -> Result<(), RouteError> {
        if self.lookup(route.vtl, route.connection_id).is_some() {
            return Err(RouteError::Duplicate);
        }
        self.routes.push(route).map_err(|_| RouteError::Full)
    }

    /// Removes `(vtl, connection_id)` if `owner` registered it.
    pub fn remove(&mut self, vtl: Vtl, connection_id: u32, owner: u8) -> Result<Route, RouteError> {
        let i = self
            .routes
            .iter()
            .position(|r| r.vtl == vtl && r.connection_id == connection_id && r.owner == owner)
            .ok_or(RouteError::NotFound)?;
        Ok(self.routes.swap_remove(i))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(conn: u32, vtl: Vtl, owner: u8) -> Route {
        Route {
            connection_id: conn,
            vtl,
            destination: Destination::Host,
            owner,
        }
    }

    #[test]
    fn routes_are_per_vtl_unique_bounded_and_owned() {
        let mut t = RouteTable::<3>::new();
        t.insert(route(4, Vtl::VTL0, 1)).unwrap();
        assert_eq!(t.insert(route(4, Vtl::VTL0, 2)), Err(RouteError::Duplicate));
        t.insert(route(4, Vtl::VTL1, 2)).unwrap();
        t.insert(route(5, Vtl::VTL0, 2)).unwrap();
        assert_eq!(t.insert(route(6, Vtl::VTL0, 2)), Err(RouteError::Full));
        assert_eq!(t.lookup(Vtl::VTL1, 4).map(|r| r.owner), Some(2));
        assert!(t.lookup(Vtl::VTL2, 4).is_none());
        assert_eq!(
            t.remove(Vtl::VTL0, 4, 2),
            Err(RouteError::NotFound),
            "not the owner"
        );
        assert!(t.remove(Vtl::VTL0, 4, 1).is_ok());
        assert!(t.lookup(Vtl::VTL0, 4).is_none());
        assert_eq!(t.len(), 2);
    }
}
