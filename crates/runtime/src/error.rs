//! The one error type of the runtime's loop (a failed step is a
//! [`StepError`], reported and retried, never an error of the loop).

use crate::kernel::StepError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The kernel failed in a way the sync loop cannot work around (no
    /// IPVS, no netlink socket).
    #[error(transparent)]
    Kernel(#[from] StepError),
    /// The cluster-state source stopped publishing snapshots.
    #[error("the cluster-state source stopped")]
    SourceStopped,
}

impl From<kipvs_netlink::Error> for RuntimeError {
    fn from(error: kipvs_netlink::Error) -> Self {
        RuntimeError::Kernel(StepError::Netlink(error))
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
