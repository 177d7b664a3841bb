//! The kube-ipvs runtime: the sync loop that keeps the kernel in step with
//! the cluster, and the dataplane it drives.
//!
//! ```text
//! cluster snapshot ──► planner::desired ──┐
//!                                         ├─► planner::plan ──► Dataplane::apply ──► kernel
//! kernel ──► Dataplane::observe (cache) ──┘
//! ```

mod dataplane;
mod drain;
mod duration;
mod error;
mod health;
mod health_check;
#[doc(hidden)]
pub mod http_server;
mod node_addresses;
mod record;
mod sync;
mod sync_loop;

pub use dataplane::{owned_sets, ApplyReport, CleanupReport, Dataplane, DUMMY_LINK, SYSCTLS};
pub use duration::parse_duration;
pub use error::{Result, RuntimeError};
pub use health::{healthz_router, serve_healthz, ProxyHealth};
pub use health_check::HealthCheckServers;
pub use node_addresses::{node_addresses, NodeAddresses};
pub use sync::{SyncConfig, SyncOutcome, Syncer};
pub use sync_loop::run;
