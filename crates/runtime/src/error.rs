//! The one error type of the runtime.

use kipvs_netlink::SysctlError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The kernel layer failed in a way the sync loop cannot work around
    /// (no IPVS, no netlink socket, a dump that failed).
    #[error(transparent)]
    Kernel(#[from] kipvs_netlink::Error),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// The cluster-state source stopped publishing snapshots.
    #[error("the cluster-state source stopped")]
    SourceStopped,
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
