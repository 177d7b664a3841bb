//! Phase 6: what the cluster no longer wants goes, in an order that keeps
//! a half-done removal recognisable as ours.
//!
//! Owners: for removals the owner is read back from the comments we wrote
//! on the claiming entries (`ns/name:port`), so a failing unbind of a
//! removed service skips that service's deletion; `None` when no comment
//! names one.

use std::{cell::OnceCell, collections::BTreeMap};

use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::ServiceKey;

use super::{
    claims, scoped_addresses, scoped_entries, scoped_services, sets::sets_in_order, Action,
    Planner, Step,
};
use crate::{k8s::ip_proto, names::ServicePortName, observed::Observed, sets::SetRole};

impl Planner<'_> {
    /// Addresses unbound; set entries deleted (exempting sets last), except
    /// those of claiming sets; virtual services deleted (which takes their
    /// real servers with them at once: kube-proxy does not drain a removed
    /// service either); last the claiming entries: until the virtual
    /// service is gone they are how the runtime knows it is ours (once its
    /// address is unbound, or when it never was on `kube-ipvs0`), should
    /// the deletion fail or the daemon stop in between. (They steer no
    /// traffic to a virtual service that is gone.)
    pub(super) fn removals(&mut self) {
        // Read only when something goes: a sync that removes nothing
        // (most of them) does not walk every claiming entry.
        let owners = LazyOwners {
            observed: self.observed,
            read: OnceCell::new(),
        };
        let observed = self.observed;
        for &addr in scoped_addresses(self.scope, &observed.addresses) {
            if !self.desired.addresses.contains(&addr) {
                self.push(owners.of_address(addr), Action::UnbindAddress(addr));
            }
        }
        let (claiming, others): (Vec<Step>, Vec<Step>) = self
            .entry_deletions(&owners)
            .into_iter()
            .partition(|step| match &step.action {
                Action::DeleteSetEntries { set, .. } => claims(*set),
                _ => false,
            });
        self.steps.extend(others);
        for (key, _) in scoped_services(self.scope, &observed.virtual_services) {
            if !self.desired.virtual_services.contains_key(key) {
                self.push(
                    owners.of_service(key.key()),
                    Action::DeleteService(key.key()),
                );
            }
        }
        self.steps.extend(claiming);
    }

    /// One step per (set, owner) of entries present but not desired, in
    /// deletion order. Only in our sets, never a whole set; none in a set
    /// replaced whole this time.
    fn entry_deletions(&self, owners: &LazyOwners) -> Vec<Step> {
        let mut steps = Vec::new();
        for (id, set) in sets_in_order(&self.desired.sets, false) {
            if self.replaced.contains(&id) {
                continue;
            }
            let Some(current) = self.observed.sets.get(&id) else {
                continue;
            };
            let mut by_owner: BTreeMap<Option<ServicePortName>, Vec<Entry>> = BTreeMap::new();
            for (key, entry) in scoped_entries(self.scope, id, &current.entries) {
                if set.entries.contains_key(key) {
                    continue;
                }
                let owner = match (id.role, entry.ip) {
                    (SetRole::IpvsIps, Some(ip)) => owners.of_address(ip).cloned(),
                    _ => entry
                        .comment
                        .as_deref()
                        .and_then(ServicePortName::from_comment),
                };
                // The kernel finds the element without its comment.
                by_owner.entry(owner).or_default().push(key.bare());
            }
            for (owner, entries) in by_owner {
                steps.push(Step {
                    owner,
                    action: Action::DeleteSetEntries { set: id, entries },
                });
            }
        }
        steps
    }
}

/// [`ObservedOwners`], read on first use.
struct LazyOwners<'a> {
    observed: &'a Observed,
    read: OnceCell<ObservedOwners>,
}

impl LazyOwners<'_> {
    fn of_address(&self, addr: std::net::IpAddr) -> Option<&ServicePortName> {
        self.get().of_address(addr)
    }

    fn of_service(&self, key: ServiceKey) -> Option<&ServicePortName> {
        self.get().of_service(key)
    }

    fn get(&self) -> &ObservedOwners {
        self.read
            .get_or_init(|| ObservedOwners::read(self.observed))
    }
}

/// The service port of each observed virtual service, from the comments
/// we wrote on the `addr,proto:port` entries of the sets that claim
/// virtual services (`KUBE-CLUSTER-IP`, `KUBE-NODE-PORT-IPS`, …).
struct ObservedOwners {
    by_tuple: BTreeMap<(std::net::IpAddr, u8, u16), ServicePortName>,
}

impl ObservedOwners {
    fn read(observed: &Observed) -> Self {
        let mut by_tuple = BTreeMap::new();
        let claiming = observed.sets.iter().filter(|(id, _)| claims(**id));
        for (_, set) in claiming {
            for entry in set.entries.values() {
                let owner = entry
                    .comment
                    .as_deref()
                    .and_then(ServicePortName::from_comment);
                if let (Some(owner), Some(ip), Some(proto), Some(port)) =
                    (owner, entry.ip, entry.proto, entry.port)
                {
                    by_tuple.entry((ip, proto, port)).or_insert(owner);
                }
            }
        }
        ObservedOwners { by_tuple }
    }

    /// The first service port (by protocol and port) on `addr`.
    fn of_address(&self, addr: std::net::IpAddr) -> Option<&ServicePortName> {
        self.by_tuple
            .range((addr, 0, 0)..)
            .next()
            .filter(|((ip, _, _), _)| *ip == addr)
            .map(|(_, owner)| owner)
    }

    fn of_service(&self, key: ServiceKey) -> Option<&ServicePortName> {
        let ServiceKey::Tuple {
            addr,
            protocol,
            port,
        } = key
        else {
            return None;
        };
        self.by_tuple.get(&(addr, ip_proto(protocol), port))
    }
}
