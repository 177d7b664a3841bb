use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use kube::ResourceExt;

/// The label tying an EndpointSlice to its Service (set by the EndpointSlice controller).
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Everything the planner needs, immutable; a new one is published on every change.
///
/// Services and EndpointSlices are kept sorted by [`object_name`] (the fields are private so
/// that nothing can break that order): two snapshots of the same cluster state compare equal
/// whatever order the objects arrived in, a Service is found by binary search, and two
/// snapshots are compared by walking their lists side by side ([`Snapshot::changes_since`]).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    services: Vec<Arc<Service>>,
    endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// This node's Node object, when known.
    node: Option<Arc<Node>>,
    /// (namespace as written, service-name label) → positions in `endpoint_slices`: a service's
    /// slices without looking at every slice.
    slices_by_service: BTreeMap<(String, String), Vec<usize>>,
}

/// One object that differs between two snapshots: added (`before` is `None`), removed (`after`
/// is `None`) or changed (both).
#[derive(Debug, Clone)]
pub struct Change<K> {
    pub before: Option<Arc<K>>,
    pub after: Option<Arc<K>>,
}

impl<K> Change<K> {
    /// The object's versions that exist, older first.
    pub fn versions(&self) -> impl Iterator<Item = &Arc<K>> {
        self.before.iter().chain(&self.after)
    }
}

/// What differs between two snapshots' Services and EndpointSlices, each list in [`object_name`]
/// order.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub services: Vec<Change<Service>>,
    pub endpoint_slices: Vec<Change<EndpointSlice>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.endpoint_slices.is_empty()
    }
}

impl Snapshot {
    /// Builds a snapshot in canonical order from objects in any order.
    pub fn new(
        mut services: Vec<Arc<Service>>,
        mut endpoint_slices: Vec<Arc<EndpointSlice>>,
        node: Option<Arc<Node>>,
    ) -> Snapshot {
        services.sort_by(|a, b| object_name(&**a).cmp(&object_name(&**b)));
        endpoint_slices.sort_by(|a, b| object_name(&**a).cmp(&object_name(&**b)));
        let mut slices_by_service: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (position, slice) in endpoint_slices.iter().enumerate() {
            if let Some(service) = service_label(slice) {
                let namespace = object_name(&**slice).0.to_owned();
                slices_by_service
                    .entry((namespace, service.to_owned()))
                    .or_default()
                    .push(position);
            }
        }
        Snapshot {
            services,
            endpoint_slices,
            node,
            slices_by_service,
        }
    }

    /// Every Service, in [`object_name`] order.
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// Every EndpointSlice, in [`object_name`] order.
    pub fn endpoint_slices(&self) -> &[Arc<EndpointSlice>] {
        &self.endpoint_slices
    }

    /// This node's Node object, when known.
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The Service named `name` in `namespace` (as written: `""` for none), by binary search.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<Service>> {
        self.services
            .binary_search_by(|service| object_name(&**service).cmp(&(namespace, name)))
            .ok()
            .and_then(|position| self.services.get(position))
    }

    /// The EndpointSlices in `namespace` (as written) whose service-name label is `service`, in
    /// [`object_name`] order.
    pub fn slices_of<'a>(
        &'a self,
        namespace: &str,
        service: &str,
    ) -> impl Iterator<Item = &'a Arc<EndpointSlice>> + 'a {
        self.slices_by_service
            .get(&(namespace.to_owned(), service.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|&position| self.endpoint_slices.get(position))
    }

    /// What differs from `older`. The lists are walked side by side; an object both snapshots
    /// share (the sources keep an unchanged object's allocation) is told apart by its pointer
    /// alone, so the walk reads only the objects that changed and their neighbours.
    pub fn changes_since(&self, older: &Snapshot) -> Changes {
        Changes {
            services: diff_sorted(&older.services, &self.services),
            endpoint_slices: diff_sorted(&older.endpoint_slices, &self.endpoint_slices),
        }
    }
}

/// Equal content: pointers first, as for [`Snapshot::changes_since`].
impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        fn same<K: PartialEq>(a: &[Arc<K>], b: &[Arc<K>]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y) || x == y)
        }
        same(&self.services, &other.services)
            && same(&self.endpoint_slices, &other.endpoint_slices)
            && match (&self.node, &other.node) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

/// (namespace as written, name), `""` for either when unset: the order snapshots keep.
pub fn object_name<K: Metadata<Ty = ObjectMeta>>(object: &K) -> (&str, &str) {
    let meta = object.metadata();
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The Service an EndpointSlice belongs to, by its label (the planner
/// reads the same label its own way: it does not depend on this crate).
fn service_label(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        .map(String::as_str)
        .filter(|service| !service.is_empty())
}

/// (namespace, name) of an object as owned strings, `generateName` standing in for a missing
/// name: how the manifests source tells duplicate definitions apart and names them in logs.
pub(crate) fn object_key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// The objects that differ between two lists sorted by [`object_name`].
fn diff_sorted<K>(older: &[Arc<K>], newer: &[Arc<K>]) -> Vec<Change<K>>
where
    K: Metadata<Ty = ObjectMeta> + PartialEq,
{
    let mut changes = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let (before, after) = (older.get(i), newer.get(j));
        let order = match (before, after) {
            (None, None) => break,
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {
                i += 1;
                j += 1;
                continue;
            }
            (Some(a), Some(b)) => object_name(&**a).cmp(&object_name(&**b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        let change = match order {
            Ordering::Less => {
                i += 1;
                Change {
                    before: before.cloned(),
                    after: None,
                }
            }
            Ordering::Greater => {
                j += 1;
                Change {
                    before: None,
                    after: after.cloned(),
                }
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
                if before == after {
                    continue;
                }
                Change {
                    before: before.cloned(),
                    after: after.cloned(),
                }
            }
        };
        changes.push(change);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn service(namespace: &str, name: &str) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_string()),
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        })
    }

    fn slice(namespace: &str, name: &str, service: &str) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_string()),
                name: Some(name.to_string()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), service.to_string())].into()),
                ..ObjectMeta::default()
            },
            ..EndpointSlice::default()
        })
    }

    fn names<K: Metadata<Ty = ObjectMeta>>(list: &[Arc<K>]) -> Vec<(&str, &str)> {
        list.iter().map(|o| object_name(&**o)).collect()
    }

    #[test]
    fn order_of_arrival_does_not_matter() {
        let a = Snapshot::new(
            vec![service("b", "x"), service("a", "y"), service("a", "x")],
            vec![],
            None,
        );
        let b = Snapshot::new(
            vec![service("a", "x"), service("b", "x"), service("a", "y")],
            vec![],
            None,
        );
        assert_eq!(a, b);
        assert_eq!(names(a.services()), [("a", "x"), ("a", "y"), ("b", "x")]);
    }

    #[test]
    fn services_and_their_slices_are_found_by_name() {
        let snapshot = Snapshot::new(
            vec![service("b", "web"), service("a", "web"), service("a", "db")],
            vec![
                slice("a", "web-2", "web"),
                slice("b", "web-1", "web"),
                slice("a", "web-1", "web"),
                slice("a", "db-1", "db"),
            ],
            None,
        );
        let found = snapshot.service("a", "web").map(|s| object_name(&**s));
        assert_eq!(found, Some(("a", "web")));
        assert!(snapshot.service("c", "web").is_none());
        assert!(snapshot.service("a", "cache").is_none());
        let slices: Vec<_> = snapshot
            .slices_of("a", "web")
            .map(|s| object_name(&**s))
            .collect();
        assert_eq!(slices, [("a", "web-1"), ("a", "web-2")]);
        assert_eq!(snapshot.slices_of("c", "web").count(), 0);
    }

    #[test]
    fn changes_are_additions_removals_and_changed_content_only() {
        let (web, db, cache) = (
            service("a", "web"),
            service("a", "db"),
            service("a", "cache"),
        );
        let older = Snapshot::new(
            vec![web.clone(), db.clone()],
            vec![slice("a", "web-1", "web")],
            None,
        );
        // `db` is re-created with the same content (another allocation): not a change.
        let same_db = Arc::new((*db).clone());
        let mut changed_web = (*web).clone();
        changed_web.spec = Some(Default::default());
        let newer = Snapshot::new(
            vec![Arc::new(changed_web), same_db, cache],
            vec![slice("a", "web-2", "web")],
            None,
        );
        let changes = newer.changes_since(&older);
        let services: Vec<_> = changes
            .services
            .iter()
            .map(|c| (c.before.is_some(), c.after.is_some(), c.versions().count()))
            .collect();
        // cache added, web changed (db unchanged), in name order.
        assert_eq!(services, [(false, true, 1), (true, true, 2)]);
        let slices: Vec<_> = changes
            .endpoint_slices
            .iter()
            .map(|c| {
                let version = c.versions().next().map(|s| object_name(&**s).1);
                (c.before.is_some(), version)
            })
            .collect();
        assert_eq!(slices, [(true, Some("web-1")), (false, Some("web-2"))]);
        assert!(older.changes_since(&older).is_empty());
        assert!(newer.changes_since(&newer.clone()).is_empty());
    }
}
