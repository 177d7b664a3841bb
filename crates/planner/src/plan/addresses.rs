//! Phase 5: service addresses bound to `kube-ipvs0`.

use super::{scoped_addresses, Action, Planner};
use crate::key::IpFamily;

impl Planner<'_> {
    /// Addresses to bind, each for the first service port on it, only in
    /// families that are ready (their sets exist and their table is in
    /// place): an address answers only once its rules are there.
    pub(super) fn addresses_to_bind(&mut self) {
        let desired = self.desired;
        for &addr in scoped_addresses(self.scope, &desired.addresses) {
            if !self.observed.addresses.contains(&addr) && self.ready.contains(&IpFamily::of(&addr))
            {
                let owner = desired.address_owner(addr);
                self.push(owner, Action::BindAddress(addr));
            }
        }
    }
}
