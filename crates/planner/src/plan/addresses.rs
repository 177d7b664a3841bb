//! Phase 5: service addresses bound to `kube-ipvs0`.

use super::{Action, Planner};
use crate::key::IpFamily;

impl Planner<'_> {
    /// Addresses to bind, each for the first service port on it, only in
    /// families that are ready (their sets exist and their table is in
    /// place): an address answers only once its rules are there.
    pub(super) fn addresses_to_bind(&mut self) {
        for &addr in &self.desired.addresses {
            if !self.observed.addresses.contains(&addr) && self.ready.contains(&IpFamily::of(&addr))
            {
                let owner = self.desired.address_owner(addr);
                self.push(owner, Action::BindAddress(addr));
            }
        }
    }
}
