//! Cluster state for kube-ipvs: the Services, EndpointSlices and this node's Node object that the
//! planner turns into kernel state, published as immutable [`Snapshot`]s on a watch channel.
//!
//! Two sources produce the same snapshots:
//! - [`kube_source`]: kube-rs watchers on the Kubernetes API (what the daemon runs in a cluster);
//! - [`manifests_source`]: a directory of YAML manifests polled for changes (offline mode, tests).
//!
//! Both apply kube-proxy's label selector (see [`selector`]) and keep only the Node named like this
//! node. The receiver reads `None` until every initial list is complete, so a half-read cluster can
//! never make the planner delete rules; afterwards it always holds a snapshot.

mod error;
mod kube_source;
mod manifest;
mod manifests_source;
pub mod selector;
mod snapshot;

pub use error::ClusterError;
pub use kube_source::kube_source;
pub use manifest::{parse_manifest, ManifestError, ManifestObject};
pub use manifests_source::manifests_source;
pub use snapshot::{object_name, Change, Changes, Snapshot};

use std::sync::Arc;

/// Published snapshots. `borrow()` is `None` until every initial list is complete (so a half-read
/// cluster never deletes rules); afterwards always `Some`.
pub type SnapshotReceiver = tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>;
