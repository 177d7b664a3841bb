//! What a sync leaves behind, in numbers: what is programmed, which
//! virtual service belongs to which service port, what a full read found
//! changed behind kube-ipvs's back, and the kernel's refusals by class.
//! The metrics are made from it (see [`crate::Metrics::record_sync`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use kipvs_netlink::ErrorClass;
use kipvs_packet_ipvs::{Destination, Service};
use kipvs_planner::{
    AddressKind, Desired, IpFamily, NoLocalEndpoints, Observed, ServicePortName, VirtualServiceKey,
};

/// Which service port (and which of its addresses) each virtual service
/// kube-ipvs programs serves.
pub type Owners = BTreeMap<VirtualServiceKey, (ServicePortName, AddressKind)>;

/// The state after one sync.
#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    /// Virtual services in the cache the plan was applied to.
    pub virtual_services: usize,
    /// Their real servers (draining ones included).
    pub real_servers: usize,
    /// Entries per set, by set name.
    pub set_entries: BTreeMap<&'static str, usize>,
    /// The families the cluster has virtual services in (IPv4 when none).
    pub families: BTreeSet<IpFamily>,
    pub no_local_endpoints: NoLocalEndpoints,
    pub owners: Arc<Owners>,
    /// What the full read of this sync found different from the cache.
    pub drift: Drift,
}

impl SyncSummary {
    /// The summary of a sync that programmed `desired` (owned as
    /// `ownership` says) into what `observed` now caches, which has
    /// `real_servers` real servers (see [`real_servers_in`]).
    pub fn of(
        desired: &Desired,
        observed: Option<&Observed>,
        drift: Drift,
        ownership: &Ownership,
        real_servers: usize,
    ) -> SyncSummary {
        let mut summary = SyncSummary {
            families: ownership.families.clone(),
            no_local_endpoints: desired.no_local_endpoints.clone(),
            owners: Arc::clone(&ownership.owners),
            drift,
            ..SyncSummary::default()
        };
        if let Some(observed) = observed {
            summary.virtual_services = observed.virtual_services.len();
            summary.real_servers = real_servers;
            summary.set_entries = observed
                .sets
                .iter()
                .map(|(id, set)| (id.name(), set.entries.len()))
                .collect();
        }
        summary
    }
}

/// The real servers `observed` caches under the virtual services `keys`
/// (`None`: all of them). A sync that can change only some virtual
/// services counts those before and after, not all ten thousand.
pub(crate) fn real_servers_in(
    observed: Option<&Observed>,
    keys: Option<&BTreeSet<VirtualServiceKey>>,
) -> usize {
    let Some(observed) = observed else {
        return 0;
    };
    let count = |(_, destinations): &(Service, Vec<Destination>)| destinations.len();
    match keys {
        Some(keys) => keys
            .iter()
            .filter_map(|key| observed.virtual_services.get(key))
            .map(count)
            .sum(),
        None => observed.virtual_services.values().map(count).sum(),
    }
}

/// Which service port each virtual service serves, and the families
/// there are virtual services in (IPv4 when none). Kept from sync to sync:
/// a change that adds, removes or re-owns no virtual service (an endpoint
/// change) keeps the same map, without copying ten thousand owners.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    owners: Arc<Owners>,
    families: BTreeSet<IpFamily>,
}

impl Ownership {
    /// Built from every virtual service of `desired`.
    pub fn of(desired: &Desired) -> Ownership {
        let mut families: BTreeSet<IpFamily> = desired
            .virtual_services
            .keys()
            .filter_map(|key| key.addr())
            .map(|addr| IpFamily::of(&addr))
            .collect();
        if families.is_empty() {
            families.insert(IpFamily::V4);
        }
        let owners = desired
            .virtual_services
            .iter()
            .map(|(key, vs)| (*key, (vs.owner.clone(), vs.kind)))
            .collect();
        Ownership {
            owners: Arc::new(owners),
            families,
        }
    }

    /// `self` brought up to date with `desired`, where only the virtual
    /// services in `touched` can differ (`None`: any).
    pub fn updated(
        &self,
        desired: &Desired,
        touched: Option<&BTreeSet<VirtualServiceKey>>,
    ) -> Ownership {
        let unchanged = |key: &VirtualServiceKey| {
            let now = desired.virtual_services.get(key);
            match (self.owners.get(key), now) {
                (Some((owner, kind)), Some(vs)) => *owner == vs.owner && *kind == vs.kind,
                (None, None) => true,
                _ => false,
            }
        };
        match touched {
            Some(keys) if keys.iter().all(unchanged) => self.clone(),
            _ => Ownership::of(desired),
        }
    }
}

/// Differences a full read found between the kernel and the cache, by
/// kind: someone (or something) changed the kernel behind kube-ipvs's
/// back, and the same sync puts it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub virtual_services: usize,
    pub real_servers: usize,
    pub addresses: usize,
    pub sets: usize,
    pub set_entries: usize,
    pub tables: usize,
}

impl Drift {
    /// `None` before the first read: nothing was cached to differ from.
    pub fn between(cached: Option<&Observed>, kernel: &Observed) -> Drift {
        let Some(cached) = cached else {
            return Drift::default();
        };
        let mut drift = Drift {
            addresses: cached
                .addresses
                .symmetric_difference(&kernel.addresses)
                .count(),
            ..Drift::default()
        };
        for key in union(&cached.virtual_services, &kernel.virtual_services) {
            match (
                cached.virtual_services.get(key),
                kernel.virtual_services.get(key),
            ) {
                (Some((a, a_dests)), Some((b, b_dests))) => {
                    drift.virtual_services += usize::from(!same_service(a, b));
                    drift.real_servers += destination_differences(a_dests, b_dests);
                }
                _ => drift.virtual_services += 1,
            }
        }
        for id in union(&cached.sets, &kernel.sets) {
            match (cached.sets.get(id), kernel.sets.get(id)) {
                (Some(a), Some(b)) => {
                    drift.set_entries += a
                        .entries
                        .keys()
                        .collect::<BTreeSet<_>>()
                        .symmetric_difference(&b.entries.keys().collect())
                        .count();
                }
                _ => drift.sets += 1,
            }
        }
        for family in union(&cached.tables, &kernel.tables) {
            drift.tables += usize::from(cached.tables.get(family) != kernel.tables.get(family));
        }
        drift
    }

    /// `(kind, count)` as the metric labels them.
    pub fn by_kind(&self) -> [(&'static str, usize); 6] {
        [
            ("virtual_service", self.virtual_services),
            ("real_server", self.real_servers),
            ("address", self.addresses),
            ("set", self.sets),
            ("set_entry", self.set_entries),
            ("table", self.tables),
        ]
    }
}

fn union<'a, K: Ord, V>(a: &'a BTreeMap<K, V>, b: &'a BTreeMap<K, V>) -> BTreeSet<&'a K> {
    a.keys().chain(b.keys()).collect()
}

/// The same virtual service, its counters aside.
fn same_service(a: &Service, b: &Service) -> bool {
    a.scheduler == b.scheduler
        && a.flags == b.flags
        && a.timeout == b.timeout
        && a.netmask == b.netmask
        && a.pe_name == b.pe_name
}

/// Real servers present on one side only, or with another weight or
/// forwarding method (connection counters aside).
fn destination_differences(a: &[Destination], b: &[Destination]) -> usize {
    let index = |dests: &[Destination]| -> BTreeMap<(std::net::IpAddr, u16), _> {
        dests
            .iter()
            .map(|d| ((d.addr, d.port), (d.weight, d.forward)))
            .collect()
    };
    let (a, b) = (index(a), index(b));
    union(&a, &b)
        .into_iter()
        .filter(|key| a.get(key) != b.get(key))
        .count()
}

/// Step errors the kernel (or the in-memory kernel) answered, by class.
/// Those the sync treats as done (an add that found its object) count
/// too: they mean the cache was behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelErrors {
    pub already_exists: usize,
    pub not_found: usize,
    pub retryable: usize,
    pub fatal: usize,
}

impl KernelErrors {
    pub fn record(&mut self, class: ErrorClass) {
        let count = match class {
            ErrorClass::AlreadyExists => &mut self.already_exists,
            ErrorClass::NotFound => &mut self.not_found,
            ErrorClass::Retryable => &mut self.retryable,
            ErrorClass::Fatal => &mut self.fatal,
        };
        *count = count.saturating_add(1);
    }

    pub fn add(&mut self, other: &KernelErrors) {
        for (mine, theirs) in [
            (&mut self.already_exists, other.already_exists),
            (&mut self.not_found, other.not_found),
            (&mut self.retryable, other.retryable),
            (&mut self.fatal, other.fatal),
        ] {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// `(class, count)` as the metric labels them.
    pub fn by_class(&self) -> [(&'static str, usize); 4] {
        [
            ("already_exists", self.already_exists),
            ("not_found", self.not_found),
            ("retryable", self.retryable),
            ("fatal", self.fatal),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use kipvs_packet_ipvs::Protocol;

    use super::*;

    fn observed(dests: &[&str], addresses: &[&str]) -> Observed {
        let key = VirtualServiceKey::tuple("10.96.0.1".parse().unwrap(), Protocol::Tcp, 80);
        let service = Service::new(key.key(), "rr");
        let dests = dests
            .iter()
            .map(|a| Destination::new(a.parse().unwrap(), 8080))
            .collect();
        let mut observed = Observed::default();
        observed.virtual_services.insert(key, (service, dests));
        observed.addresses = addresses
            .iter()
            .map(|a| a.parse::<IpAddr>().unwrap())
            .collect();
        observed
    }

    #[test]
    fn drift_counts_what_the_kernel_lost_or_gained_by_kind() {
        let cached = observed(&["10.244.1.1", "10.244.1.2"], &["10.96.0.1"]);
        assert_eq!(Drift::between(None, &cached), Drift::default());
        assert_eq!(Drift::between(Some(&cached), &cached), Drift::default());
        // A real server deleted and an address unbound by hand.
        let kernel = observed(&["10.244.1.1"], &[]);
        let drift = Drift::between(Some(&cached), &kernel);
        assert_eq!(
            drift,
            Drift {
                real_servers: 1,
                addresses: 1,
                ..Drift::default()
            }
        );
        // The whole virtual service gone.
        let drift = Drift::between(Some(&cached), &Observed::default());
        assert_eq!(drift.virtual_services, 1);
        // Connection counters are not drift.
        let mut busy = cached.clone();
        for (_, dests) in busy.virtual_services.values_mut() {
            dests[0].active_conns = 7;
        }
        assert_eq!(Drift::between(Some(&cached), &busy), Drift::default());
    }

    #[test]
    fn kernel_errors_add_up_by_class() {
        let mut errors = KernelErrors::default();
        errors.record(ErrorClass::Retryable);
        errors.record(ErrorClass::Retryable);
        errors.record(ErrorClass::Fatal);
        let mut total = KernelErrors::default();
        total.add(&errors);
        total.add(&errors);
        assert_eq!(
            total.by_class(),
            [
                ("already_exists", 0),
                ("not_found", 0),
                ("retryable", 4),
                ("fatal", 2)
            ]
        );
    }
}
