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
    desired::{all_warnings, build, Builder, Desired, NoLocalEndpoints},
    endpoints::service_label,
    names::ServiceId,
};

impl Desired {
    /// Brings `self` (the desired state of the previous snapshot under the
    /// same `config`) up to date with the snapshot `services` + `slices`,
    /// in which only the services in `changed` (or their slices) differ.
    /// Only those are read. Returns what the update touched, to plan just
    /// that, or `None` — leaving `self` as it was — when the change needs
    /// a full computation: a changed service shares or contests something
    /// with another one, or the node-wide limit is in play.
    ///
    /// The result is exactly what [`crate::desired`] computes from the
    /// whole snapshot (a table test checks it).
    pub fn update(
        &mut self,
        services: &[Arc<K8sService>],
        slices: &[Arc<EndpointSlice>],
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
        let names: BTreeSet<(&str, &str)> = changed
            .iter()
            .map(|id| (&*id.namespace, &*id.name))
            .collect();
        let chosen_services = services
            .iter()
            .filter(|svc| names.contains(&(namespace_of(&svc.metadata.namespace), name_of(svc))))
            .map(Arc::as_ref);
        let chosen_slices = slices
            .iter()
            .filter(|slice| {
                service_label(slice).is_some_and(|service| {
                    names.contains(&(namespace_of(&slice.metadata.namespace), service))
                })
            })
            .map(Arc::as_ref);
        let mut partial = build(chosen_services, chosen_slices, config);
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
        for id in changed {
            let Some(old) = self.contributions.remove(id) else {
                continue;
            };
            dirty.cover(&old);
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
        self.warnings = all_warnings(&self.contributions);
        self.no_local_endpoints = NoLocalEndpoints::sum(&self.contributions);
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

/// The services whose objects differ between two snapshots' lists of
/// services and slices: a service is changed when its Service object is
/// added, removed or changed, or one of its slices (by the slice's
/// service label, before or after) is. Objects the source kept unchanged
/// keep their allocation, so most are told apart by pointer alone.
pub fn changed_services(
    before: (&[Arc<K8sService>], &[Arc<EndpointSlice>]),
    after: (&[Arc<K8sService>], &[Arc<EndpointSlice>]),
) -> BTreeSet<ServiceId> {
    let service_key = |svc: &K8sService| {
        (
            namespace_of(&svc.metadata.namespace).to_owned(),
            name_of(svc).to_owned(),
        )
    };
    let mut changed = BTreeSet::new();
    let differ = diff_by_name(before.0, after.0, |svc: &K8sService| {
        (namespace_of(&svc.metadata.namespace), name_of(svc))
    });
    for svc in differ {
        let (namespace, name) = service_key(svc);
        changed.insert(ServiceId::new(namespace, name));
    }
    let differ = diff_by_name(before.1, after.1, |slice: &EndpointSlice| {
        (
            namespace_of(&slice.metadata.namespace),
            slice.metadata.name.as_deref().unwrap_or_default(),
        )
    });
    for slice in differ {
        if let Some(service) = service_label(slice) {
            changed.insert(ServiceId::new(
                namespace_of(&slice.metadata.namespace),
                service,
            ));
        }
    }
    changed
}

/// The objects (of either list) whose (namespace, name) is in only one
/// list, or in both with different content. Snapshots keep their lists
/// sorted by (namespace, name): those are walked side by side, without
/// allocating; other lists are indexed first.
fn diff_by_name<'a, T: PartialEq>(
    before: &'a [Arc<T>],
    after: &'a [Arc<T>],
    key: impl Fn(&T) -> (&str, &str),
) -> Vec<&'a T> {
    let sorted = |list: &[Arc<T>]| list.windows(2).all(|w| key(&w[0]) < key(&w[1]));
    if sorted(before) && sorted(after) {
        diff_sorted(before, after, key)
    } else {
        diff_indexed(before, after, key)
    }
}

/// Two objects of the same name that may differ (pointers first: an
/// object the source kept unchanged keeps its allocation).
fn differs<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    !Arc::ptr_eq(a, b) && a != b
}

fn diff_sorted<'a, T: PartialEq>(
    before: &'a [Arc<T>],
    after: &'a [Arc<T>],
    key: impl Fn(&T) -> (&str, &str),
) -> Vec<&'a T> {
    use std::cmp::Ordering;
    let mut differ: Vec<&'a T> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(a), Some(b)) = (before.get(i), after.get(j)) {
        match key(a).cmp(&key(b)) {
            Ordering::Less => {
                differ.push(a);
                i += 1;
            }
            Ordering::Greater => {
                differ.push(b);
                j += 1;
            }
            Ordering::Equal => {
                if differs(a, b) {
                    differ.extend([a.as_ref(), b.as_ref()]);
                }
                i += 1;
                j += 1;
            }
        }
    }
    differ.extend(before.iter().skip(i).map(Arc::as_ref));
    differ.extend(after.iter().skip(j).map(Arc::as_ref));
    differ
}

fn diff_indexed<'a, T: PartialEq>(
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
            Some(&newer) if !differs(object, newer) => {}
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
