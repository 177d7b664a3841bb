//! Shared by the source tests.

use kipvs_cluster::Snapshot;
use kube::ResourceExt;

/// The snapshot's services and slices as comparable lines: kind,
/// namespace/name and the one field the tests change (cluster IP,
/// endpoint addresses). The Node line is each test file's own.
pub fn services_and_slices(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for service in snapshot.services() {
        let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.clone());
        lines.push(format!(
            "Service {}/{} {}",
            service.namespace().unwrap_or_default(),
            service.name_any(),
            ip.unwrap_or_default()
        ));
    }
    for slice in snapshot.endpoint_slices() {
        let addresses: Vec<&str> = slice
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().map(String::as_str))
            .collect();
        lines.push(format!(
            "EndpointSlice {}/{} {}",
            slice.namespace().unwrap_or_default(),
            slice.name_any(),
            addresses.join(",")
        ));
    }
    lines
}
