//! Who put what into the desired state, service by service: what lets a
//! change to a few services be planned without recomputing (and
//! re-planning) ten thousand others.
//!
//! The desired state is a fold over every service in `namespace/name`
//! order where the first claim wins. A service whose claims never meet
//! another's (the usual case: its own cluster IP, its own endpoints) can be
//! taken out and put back alone; a service that shares or contests
//! anything with another one — a key, a set entry, an address, a
//! health-check port — or that a node-wide limit touched is *entangled*,
//! and only a full computation decides it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use crate::{
    desired::NoLocalEndpoints,
    key::VirtualServiceKey,
    names::{ServiceId, Warning},
    sets::{EntryKey, SetId},
};

/// What one service contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contribution {
    pub virtual_services: BTreeSet<VirtualServiceKey>,
    pub entries: BTreeSet<(SetId, EntryKey)>,
    pub addresses: BTreeSet<IpAddr>,
    pub health_checks: BTreeSet<u16>,
    /// About the service and its slices, in the order they were found.
    pub warnings: Vec<Warning>,
    /// Its ports with a `Local` policy and no local endpoint.
    pub no_local_endpoints: NoLocalEndpoints,
    /// Shares or contests something with another service, or a node-wide
    /// limit decided about it.
    pub entangled: bool,
}

/// Every service's contribution (also of services that only have slices,
/// or only warnings).
pub type Contributions = BTreeMap<ServiceId, Contribution>;

/// What an incremental update touched: exactly these keys, entries and
/// addresses may need kernel work (see [`crate::Scope`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    pub virtual_services: BTreeSet<VirtualServiceKey>,
    pub entries: BTreeSet<(SetId, EntryKey)>,
    pub addresses: BTreeSet<IpAddr>,
}

impl Dirty {
    /// Adds everything `contribution` claimed.
    pub(crate) fn cover(&mut self, contribution: &Contribution) {
        self.virtual_services
            .extend(contribution.virtual_services.iter().copied());
        self.entries.extend(contribution.entries.iter().copied());
        self.addresses
            .extend(contribution.addresses.iter().copied());
    }

    pub fn is_empty(&self) -> bool {
        self.virtual_services.is_empty() && self.entries.is_empty() && self.addresses.is_empty()
    }
}

/// Marks `a` and `b` entangled (see the module docs), unless they are the
/// same service (two ports of one service may overlap harmlessly).
pub(crate) fn entangle(contributions: &mut Contributions, a: &ServiceId, b: &ServiceId) {
    if a == b {
        return;
    }
    for id in [a, b] {
        contributions.entry(id.clone()).or_default().entangled = true;
    }
}
