use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

/// Everything the planner needs, immutable; a new one is published on every change.
///
/// Services and EndpointSlices are sorted by (namespace, name) so that two snapshots of the same
/// cluster state compare equal whatever order the objects arrived in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// This node's Node object, when known.
    pub node: Option<Arc<Node>>,
}

impl Snapshot {
    /// Builds a snapshot in canonical order from objects in any order.
    pub fn new(
        mut services: Vec<Arc<Service>>,
        mut endpoint_slices: Vec<Arc<EndpointSlice>>,
        node: Option<Arc<Node>>,
    ) -> Snapshot {
        services.sort_by_key(|service| object_key(&**service));
        endpoint_slices.sort_by_key(|slice| object_key(&**slice));
        Snapshot {
            services,
            endpoint_slices,
            node,
        }
    }
}

/// (namespace, name) of an object; the identity used for ordering and de-duplication.
pub(crate) fn object_key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
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
        let names: Vec<_> = a.services.iter().map(|s| object_key(&**s)).collect();
        assert_eq!(
            names,
            [("a", "x"), ("a", "y"), ("b", "x")].map(|(n, s)| (n.to_string(), s.to_string()))
        );
    }
}
