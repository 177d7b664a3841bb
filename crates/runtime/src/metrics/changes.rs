//! What changed between two snapshots (kube-proxy counts Service and
//! EndpointSlice changes), and when an EndpointSlice's change was
//! triggered (its `endpoints.kubernetes.io/last-change-trigger-time`).

use std::{sync::Arc, time::SystemTime};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kipvs_cluster::Snapshot;
use kipvs_planner::IpFamily;

/// Set by the EndpointSlice controller: when the Service or Pod change
/// that this slice reflects happened.
const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Objects added, changed or removed between two snapshots.
#[derive(Debug, Default)]
pub(super) struct Changed {
    pub services: usize,
    /// Slices added or changed (from the newer snapshot); removed ones
    /// are counted in `removed_slices`.
    pub slices: Vec<Arc<EndpointSlice>>,
    pub removed_slices: usize,
}

impl Changed {
    pub fn slice_changes(&self) -> usize {
        self.slices.len().saturating_add(self.removed_slices)
    }
}

/// What `newer` changed since `older` (everything when there was none).
pub(super) fn changed_objects(older: Option<&Snapshot>, newer: &Snapshot) -> Changed {
    let empty = Snapshot::default();
    let changes = newer.changes_since(older.unwrap_or(&empty));
    let mut changed = Changed {
        services: changes.services.len(),
        ..Changed::default()
    };
    for change in changes.endpoint_slices {
        match change.after {
            Some(slice) => changed.slices.push(slice),
            None => changed.removed_slices += 1,
        }
    }
    changed
}

/// The slice's family and trigger time, when it has a valid one.
pub(super) fn trigger_time(slice: &EndpointSlice) -> Option<(IpFamily, SystemTime)> {
    let family = match slice.address_type.as_str() {
        "IPv4" => IpFamily::V4,
        "IPv6" => IpFamily::V6,
        _ => return None,
    };
    let text = slice
        .metadata
        .annotations
        .as_ref()?
        .get(TRIGGER_TIME_ANNOTATION)?;
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    Some((family, SystemTime::from(timestamp)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn slice(name: &str, ip: &str, trigger: Option<&str>) -> Arc<EndpointSlice> {
        let mut metadata = json!({"name": name, "namespace": "default"});
        if let Some(trigger) = trigger {
            metadata["annotations"] = json!({TRIGGER_TIME_ANNOTATION: trigger});
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": metadata, "addressType": "IPv4",
                "endpoints": [{"addresses": [ip]}]
            }))
            .unwrap(),
        )
    }

    #[test]
    fn changes_are_counted_per_object() {
        let a = slice("a", "10.0.0.1", None);
        let b = slice("b", "10.0.0.2", None);
        let first = Snapshot::new(Vec::new(), vec![a.clone(), b.clone()], None);
        let everything = changed_objects(None, &first);
        assert_eq!(everything.slice_changes(), 2);
        assert_eq!(changed_objects(Some(&first), &first).slice_changes(), 0);
        // b changed (a new object, equal content would not count), a gone,
        // c new.
        let c = slice("c", "10.0.0.3", None);
        let same_a_again = slice("a", "10.0.0.1", None);
        let second = Snapshot::new(Vec::new(), vec![slice("b", "10.0.0.9", None), c], None);
        let changed = changed_objects(Some(&first), &second);
        assert_eq!(changed.slices.len(), 2);
        assert_eq!(changed.removed_slices, 1);
        let equal = Snapshot::new(Vec::new(), vec![same_a_again, b], None);
        assert_eq!(changed_objects(Some(&first), &equal).slice_changes(), 0);
    }

    #[test]
    fn the_trigger_time_comes_from_the_annotation() {
        let with = slice("a", "10.0.0.1", Some("2024-05-01T10:00:00Z"));
        let (family, at) = trigger_time(&with).unwrap();
        assert_eq!(family, IpFamily::V4);
        assert_eq!(
            at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_714_557_600
        );
        assert!(trigger_time(&slice("b", "10.0.0.1", None)).is_none());
        assert!(trigger_time(&slice("c", "10.0.0.1", Some("yesterday"))).is_none());
    }
}
