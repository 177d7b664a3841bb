//! A change to a few services, folded into the desired state without
//! recomputing the others: what keeps a sync at ten thousand services as
//! cheap as one at a hundred (see [`crate::contributions`] for when it
//! applies).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};

use crate::{
    config::NodeConfig,
    contributions::Dirty,
    desired::{all_warnings, build, Builder, Desired},
    endpoints::service_label,
    names::ServiceId,
};

impl Desired {
    /// Brings `self` (the desired state of the previous snapshot under the
    /// same `config`) up to date with a snapshot in which only the services
    /// in `changed` (or their slices) differ. `services` and `slices` are
    /// the new snapshot's objects of exactly those services, in the
    /// snapshot's order ([`objects_of`] finds them in whole lists; the
    /// runtime looks them up by name). Returns what the update touched, to
    /// plan just that, or `None` — leaving `self` as it was — when the
    /// change needs a full computation: a changed service shares or
    /// contests something with another one, or the node-wide limit is in
    /// play.
    ///
    /// The result is exactly what [`crate::desired`] computes from the
    /// whole snapshot (a table test checks it).
    pub fn update(
        &mut self,
        services: &[&K8sService],
        slices: &[&EndpointSlice],
        config: &NodeConfig,
        changed: &BTreeSet<ServiceId>,
    ) -> Option<Dirty> {
        if changed.is_empty() {
            return Some(Dirty::default());
        }
        let entangled = |id: &ServiceId| self.contributions.get(id).is_some_and(|c| c.entangled);
        if changed.iter().any(entangled) {
            return None;
        }
        let mut partial = build(services.iter().copied(), slices.iter().copied(), config);
        partial.finish_addresses();
        if !self.fits(&partial, changed, config) {
            return None;
        }
        Some(self.replace(partial, changed))
    }

    /// Whether `partial` (the changed services alone) can replace their
    /// previous contributions: nothing in it is entangled, it claims
    /// nothing another service has, and the node-wide limit holds.
    fn fits(&self, partial: &Builder, changed: &BTreeSet<ServiceId>, config: &NodeConfig) -> bool {
        let others = |id: ServiceId| !changed.contains(&id);
        if partial.contributions.values().any(|c| c.entangled) {
            return false;
        }
        let taken_key = partial.virtual_services.keys().any(|key| {
            self.virtual_services
                .get(key)
                .is_some_and(|vs| others(vs.owner.service_id()))
        });
        let taken_entry = partial.sets.iter().any(|(set, entries)| {
            let Some(present) = self.sets.get(set) else {
                return false;
            };
            entries.entries.keys().any(|key| {
                present
                    .entries
                    .get(key)
                    .is_some_and(|e| others(e.owner.service_id()))
            })
        });
        let taken_port = partial.health_checks.keys().any(|port| {
            self.health_checks
                .get(port)
                .is_some_and(|h| others(ServiceId::new(h.namespace.as_str(), h.name.as_str())))
        });
        let before: usize = changed
            .iter()
            .filter_map(|id| self.contributions.get(id))
            .map(|c| c.virtual_services.len())
            .sum();
        let after = (self.virtual_services.len().saturating_sub(before))
            .saturating_add(partial.virtual_services.len());
        !taken_key && !taken_entry && !taken_port && after <= config.max_virtual_services
    }

    /// Takes the changed services' previous contributions out and puts
    /// `partial` in; what was touched, before and after.
    fn replace(&mut self, partial: Builder, changed: &BTreeSet<ServiceId>) -> Dirty {
        let mut dirty = Dirty::default();
        let mut warnings_changed = false;
        for id in changed {
            let Some(old) = self.contributions.remove(id) else {
                continue;
            };
            dirty.cover(&old);
            warnings_changed |= !old.warnings.is_empty();
            self.no_local_endpoints.subtract(&old.no_local_endpoints);
            for key in &old.virtual_services {
                self.virtual_services.remove(key);
            }
            for (set, key) in &old.entries {
                if let Some(entries) = self.sets.get_mut(set) {
                    entries.entries.remove(key);
                }
            }
            for addr in &old.addresses {
                self.addresses.remove(addr);
            }
            for port in &old.health_checks {
                self.health_checks.remove(port);
            }
        }
        for contribution in partial.contributions.values() {
            dirty.cover(contribution);
            warnings_changed |= !contribution.warnings.is_empty();
            self.no_local_endpoints
                .add(&contribution.no_local_endpoints);
        }
        self.virtual_services.extend(partial.virtual_services);
        for (set, entries) in partial.sets {
            self.sets
                .entry(set)
                .or_default()
                .entries
                .extend(entries.entries);
        }
        self.addresses.extend(partial.bound.into_keys());
        self.health_checks.extend(partial.health_checks);
        self.contributions.extend(partial.contributions);
        // Gathered from every service only when a changed one has (or had)
        // warnings: an ordinary change costs nothing here.
        if warnings_changed {
            self.warnings = all_warnings(&self.contributions);
        }
        dirty
    }
}

/// An object's namespace as the planner names it (`default` when unset).
fn namespace_of(namespace: &Option<String>) -> &str {
    namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
}

fn name_of(service: &K8sService) -> &str {
    service.metadata.name.as_deref().unwrap_or_default()
}

/// The objects of the services in `changed` among whole lists (each
/// Service by its name, each slice by its service label), in list order:
/// what [`Desired::update`] reads, found by looking at every object.
pub fn objects_of<'a>(
    services: &'a [Arc<K8sService>],
    slices: &'a [Arc<EndpointSlice>],
    changed: &BTreeSet<ServiceId>,
) -> (Vec<&'a K8sService>, Vec<&'a EndpointSlice>) {
    let names: BTreeSet<(&str, &str)> = changed
        .iter()
        .map(|id| (&*id.namespace, &*id.name))
        .collect();
    let chosen_services = services
        .iter()
        .filter(|svc| names.contains(&(namespace_of(&svc.metadata.namespace), name_of(svc))))
        .map(Arc::as_ref)
        .collect();
    let chosen_slices = slices
        .iter()
        .filter(|slice| {
            service_label(slice).is_some_and(|service| {
                names.contains(&(namespace_of(&slice.metadata.namespace), service))
            })
        })
        .map(Arc::as_ref)
        .collect();
    (chosen_services, chosen_slices)
}

/// The services the given objects belong to: a Service by its own name,
/// an EndpointSlice by its service label (slices without one belong to
/// none). Given every version of every object that changed, these are the
/// services whose desired state can differ.
pub fn services_touched<'a>(
    services: impl IntoIterator<Item = &'a K8sService>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeSet<ServiceId> {
    let mut touched: BTreeSet<ServiceId> = services
        .into_iter()
        .map(|svc| ServiceId::new(namespace_of(&svc.metadata.namespace), name_of(svc)))
        .collect();
    for slice in slices {
        if let Some(service) = service_label(slice) {
            touched.insert(ServiceId::new(
                namespace_of(&slice.metadata.namespace),
                service,
            ));
        }
    }
    touched
}

/// The namespaces an object may be written with to be in `namespace` as
/// the planner names it (an unset or empty one is `default`), in the order
/// snapshots sort them.
pub fn written_namespaces(namespace: &str) -> impl Iterator<Item = &str> {
    let unset = (namespace == "default").then_some("");
    unset.into_iter().chain(std::iter::once(namespace))
}

/// The services whose objects differ between two lists of services and
/// slices, in any order: a service is changed when its Service object is
/// added, removed or changed, or one of its slices (by the slice's service
/// label, before or after) is. The runtime finds the same from two
/// snapshots without reading their unchanged objects; this is the
/// reference it is checked against.
pub fn changed_services(
    before: (&[Arc<K8sService>], &[Arc<EndpointSlice>]),
    after: (&[Arc<K8sService>], &[Arc<EndpointSlice>]),
) -> BTreeSet<ServiceId> {
    let services = differing(before.0, after.0, |svc: &K8sService| {
        (namespace_of(&svc.metadata.namespace), name_of(svc))
    });
    let slices = differing(before.1, after.1, |slice: &EndpointSlice| {
        (
            namespace_of(&slice.metadata.namespace),
            slice.metadata.name.as_deref().unwrap_or_default(),
        )
    });
    services_touched(services, slices)
}

/// The objects (of either list) whose (namespace, name) is in only one
/// list, or in both with different content.
fn differing<'a, T: PartialEq>(
    before: &'a [Arc<T>],
    after: &'a [Arc<T>],
    key: impl Fn(&T) -> (&str, &str),
) -> Vec<&'a T> {
    let index = |list: &'a [Arc<T>]| -> BTreeMap<(&'a str, &'a str), &'a Arc<T>> {
        list.iter().map(|object| (key(object), object)).collect()
    };
    let (old, new) = (index(before), index(after));
    let mut differ: Vec<&'a T> = Vec::new();
    for (name, &object) in &old {
        match new.get(name) {
            Some(&newer) if Arc::ptr_eq(object, newer) || object == newer => {}
            Some(&newer) => differ.extend([object.as_ref(), newer.as_ref()]),
            None => differ.push(object.as_ref()),
        }
    }
    for (name, &object) in &new {
        if !old.contains_key(name) {
            differ.push(object.as_ref());
        }
    }
    differ
}
