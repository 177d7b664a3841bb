//! The kube-ipvs runtime: the sync loop that keeps the kernel in step with
//! the cluster, through a [`Kernel`]: the real one ([`NetlinkKernel`]) or
//! one in memory for tests ([`MemoryKernel`]).
//!
//! ```text
//! cluster snapshot ──► planner::desired ──┐
//!                                         ├─► planner::plan ──► apply_plan ──► Kernel::execute
//! Kernel::observe (cached) ───────────────┘
//! ```

mod apply_plan;
mod backoff;
mod changed_services;
mod drain;
mod duration;
mod error;
mod health;
mod health_check;
#[doc(hidden)]
pub mod http_server;
mod kernel;
mod list;
mod memory_kernel;
mod metrics;
mod netlink_kernel;
mod nft_table;
mod node_addresses;
mod node_settings;
mod sync;
mod sync_loop;
mod sync_summary;

pub use apply_plan::{apply_plan, ApplyReport};
pub use duration::parse_duration;
pub use error::{Result, RuntimeError};
pub use health::{healthz_router, serve_healthz, ProxyHealth};
pub use health_check::HealthCheckServers;
pub use kernel::{message_kind, BatchKind, Kernel, StepError};
pub use list::{read_listing, ListedService, Listing};
pub use memory_kernel::MemoryKernel;
pub use metrics::{metrics_router, serve_metrics, Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use netlink_kernel::{owned_sets, CleanupReport, NetlinkKernel, DUMMY_LINK, SWAP_SET, SYSCTLS};
pub use node_addresses::{node_addresses, NodeAddresses};
pub use node_settings::{
    apply_node_settings, conntrack_max, count_cpu_list, ipvs_timeouts, node_cpus, sysctls,
    ConntrackSettings, IpvsTimeouts, NodeReport, NodeSettings,
};
pub use sync::{SyncConfig, SyncOutcome, Syncer};
pub use sync_loop::{run, run_with, run_with_metrics, AddressSource};
pub use sync_summary::{Drift, KernelErrors, Owners, SyncSummary};
