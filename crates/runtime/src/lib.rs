//! The kube-ipvs runtime: the sync loop that keeps the kernel in step with
//! the cluster, and the dataplane it drives.
//!
//! ```text
//! cluster snapshot ──► planner::desired ──┐
//!                                         ├─► planner::plan ──► Dataplane::apply ──► kernel
//! kernel ──► Dataplane::observe (cache) ──┘
//! ```

mod dataplane;
mod duration;
mod error;
mod record;
mod sync;

pub use dataplane::{owned_sets, ApplyReport, CleanupReport, Dataplane, DUMMY_LINK, SYSCTLS};
pub use duration::parse_duration;
pub use error::{Result, RuntimeError};
pub use sync::{run, SyncConfig, SyncOutcome, Syncer};
