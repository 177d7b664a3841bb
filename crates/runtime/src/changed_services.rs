//! From two snapshots to what [`kipvs_planner::Desired::update`] reads:
//! the services whose objects changed, and those services' objects in the
//! newer snapshot. Both are found without reading the objects that stayed
//! the same, so an endpoint change costs the same at ten thousand services
//! as at a hundred.

use std::collections::BTreeSet;

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_cluster::{object_name, Snapshot};
use kipvs_planner::{services_touched, written_namespaces, ServiceId};

/// The services whose Service object or EndpointSlices (by their service
/// label, before or after) differ between `older` and `newer`.
pub(crate) fn changed_services(older: &Snapshot, newer: &Snapshot) -> BTreeSet<ServiceId> {
    let changes = newer.changes_since(older);
    let services = changes.services.iter().flat_map(|c| c.versions());
    let slices = changes.endpoint_slices.iter().flat_map(|c| c.versions());
    services_touched(services.map(|s| &**s), slices.map(|s| &**s))
}

/// The Services and EndpointSlices of `changed` in `snapshot`, in the
/// snapshot's order, found by name.
pub(crate) fn objects_of<'a>(
    snapshot: &'a Snapshot,
    changed: &BTreeSet<ServiceId>,
) -> (Vec<&'a Service>, Vec<&'a EndpointSlice>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for id in changed {
        for namespace in written_namespaces(&id.namespace) {
            services.extend(snapshot.service(namespace, &id.name).map(|s| &**s));
            slices.extend(snapshot.slices_of(namespace, &id.name).map(|s| &**s));
        }
    }
    services.sort_by(|a, b| object_name(*a).cmp(&object_name(*b)));
    slices.sort_by(|a, b| object_name(*a).cmp(&object_name(*b)));
    (services, slices)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn service(namespace: Option<&str>, name: &str, ip: &str) -> Arc<Service> {
        let mut metadata = json!({"name": name});
        if let Some(namespace) = namespace {
            metadata["namespace"] = json!(namespace);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": metadata,
                "spec": {"clusterIP": ip, "ports": [{"port": 80}]}
            }))
            .expect("a Service"),
        )
    }

    fn slice(namespace: Option<&str>, name: &str, service: &str, ip: &str) -> Arc<EndpointSlice> {
        let mut metadata = json!({"name": name,
            "labels": {"kubernetes.io/service-name": service}});
        if let Some(namespace) = namespace {
            metadata["namespace"] = json!(namespace);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": metadata, "addressType": "IPv4",
                "endpoints": [{"addresses": [ip]}]
            }))
            .expect("an EndpointSlice"),
        )
    }

    type Objects = Vec<Arc<Service>>;
    type Slices = Vec<Arc<EndpointSlice>>;

    /// Services in `default` written three ways, others beside them, and
    /// slices with and without a service.
    fn base() -> (Objects, Slices) {
        let services = vec![
            service(Some("default"), "web", "10.96.0.1"),
            service(None, "api", "10.96.0.2"),
            service(Some(""), "db", "10.96.0.3"),
            service(Some("prod"), "web", "10.96.0.4"),
            service(Some("prod"), "cache", "10.96.0.5"),
        ];
        let slices = vec![
            slice(Some("default"), "web-1", "web", "10.0.0.1"),
            slice(Some("default"), "web-2", "web", "10.0.0.2"),
            slice(None, "api-1", "api", "10.0.0.3"),
            slice(Some("default"), "api-2", "api", "10.0.0.4"),
            slice(Some("prod"), "web-1", "web", "10.0.0.5"),
            slice(Some("prod"), "cache-1", "cache", "10.0.0.6"),
            slice(Some("prod"), "orphan", "", "10.0.0.7"),
        ];
        (services, slices)
    }

    fn without<T>(list: &[Arc<T>], position: usize) -> Vec<Arc<T>> {
        let mut list = list.to_vec();
        list.remove(position);
        list
    }

    fn replaced<T>(list: &[Arc<T>], position: usize, object: Arc<T>) -> Vec<Arc<T>> {
        let mut list = list.to_vec();
        list[position] = object;
        list
    }

    /// Every kind of change, and that the snapshot walk and lookups agree
    /// with the planner's reference (which reads every object).
    #[test]
    fn the_snapshot_walk_agrees_with_the_reference() {
        let (services, slices) = base();
        let changes: Vec<(&str, Objects, Slices)> = vec![
            ("nothing", services.clone(), slices.clone()),
            ("service removed", without(&services, 0), slices.clone()),
            (
                "service without namespace changed",
                replaced(&services, 1, service(None, "api", "10.96.0.9")),
                slices.clone(),
            ),
            (
                "service added",
                [
                    services.clone(),
                    vec![service(Some("prod"), "new", "10.96.0.8")],
                ]
                .concat(),
                slices.clone(),
            ),
            (
                "slice changed",
                services.clone(),
                replaced(&slices, 4, slice(Some("prod"), "web-1", "web", "10.0.0.9")),
            ),
            (
                "slice moved to another service",
                services.clone(),
                replaced(
                    &slices,
                    1,
                    slice(Some("default"), "web-2", "api", "10.0.0.2"),
                ),
            ),
            ("slice removed", services.clone(), without(&slices, 2)),
            (
                "orphan slice changed",
                services.clone(),
                replaced(&slices, 6, slice(Some("prod"), "orphan", "", "10.0.0.8")),
            ),
        ];
        let older = Snapshot::new(services.clone(), slices.clone(), None);
        for (name, new_services, new_slices) in changes {
            let newer = Snapshot::new(new_services.clone(), new_slices.clone(), None);
            let walked = changed_services(&older, &newer);
            let reference = kipvs_planner::changed_services(
                (older.services(), older.endpoint_slices()),
                (newer.services(), newer.endpoint_slices()),
            );
            assert_eq!(walked, reference, "{name}");
            let found = objects_of(&newer, &walked);
            let filtered =
                kipvs_planner::objects_of(newer.services(), newer.endpoint_slices(), &walked);
            assert_eq!(found, filtered, "{name}");
        }
        let all = services_touched(services.iter().map(|s| &**s), []);
        let everything = Snapshot::new(services, slices, None);
        let (found, found_slices) = objects_of(&everything, &all);
        assert_eq!(found.len(), 5);
        assert_eq!(found_slices.len(), 6, "every slice but the orphan");
    }
}
