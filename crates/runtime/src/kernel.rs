//! The seam between the runtime and the kernel: read the state kube-ipvs
//! owns, execute steps. [`crate::NetlinkKernel`] is the real one;
//! [`crate::MemoryKernel`] keeps the state in memory (on the planner's own
//! model of a kernel write, `Observed::apply`) so the runtime's behaviour
//! is tested on the host in milliseconds.

use std::collections::BTreeMap;

use kipvs_netlink::{Counters, ErrorClass, Family, FlowFilter, SysctlError};
use kipvs_packet_ipvs::Destination;
use kipvs_planner::{Action, Desired, Observed, ObservedSet, Refusal, SetId, VirtualServiceKey};

/// What the runtime needs of a kernel. Every method may fail per call or
/// per step; nothing here retries (that is the sync loop's business).
///
/// The futures are not `Send`: the sync loop runs on the daemon's main
/// task and never moves a kernel between threads.
#[allow(async_fn_in_trait)]
pub trait Kernel {
    /// Reads back everything kube-ipvs owns: the virtual services the
    /// planner's [`kipvs_planner::ownership`] gives it (with their real
    /// servers), the addresses of `kube-ipvs0`, our sets, our tables; the
    /// keys `desired` wants that another program holds go to
    /// [`Observed::foreign`]. Also repairs what the reading depends on
    /// (`kube-ipvs0` itself, the sysctls).
    async fn observe(&mut self, desired: &Desired) -> Result<Observed, StepError>;

    /// Our sets, read again (after some were created or replaced, for the
    /// kernel indexes the table refers to them by).
    async fn read_sets(&mut self) -> Result<BTreeMap<SetId, ObservedSet>, StepError>;

    /// The real servers of `services`, read again (fresh connection
    /// counters), one result per service.
    async fn read_destinations(
        &mut self,
        services: &[VirtualServiceKey],
    ) -> Vec<Result<Vec<Destination>, StepError>>;

    /// Executes `batch`, actions of one [`BatchKind`] in order (pipelined
    /// where the kernel allows), and says how each went.
    async fn execute(&mut self, batch: &[&Action]) -> Vec<Result<(), StepError>>;

    /// Deletes the conntrack flows matching any of `filters`; how many.
    async fn delete_flows(&mut self, filters: &[FlowFilter]) -> Result<usize, StepError>;

    /// The messages this kernel has been sent and has answered.
    fn counters(&self) -> &Counters;
}

/// Why a step (or a read) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    #[error(transparent)]
    Netlink(#[from] kipvs_netlink::Error),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// The in-memory kernel refused, as the real one would.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// `kube-ipvs0` was not looked up yet: a plan applied before the first
    /// read of the kernel.
    #[error("kube-ipvs0 has not been looked up yet")]
    NoLink,
    /// A kernel was handed a step with a batch of another kind, which it
    /// cannot send together.
    #[error("a {0:?} step in a batch of another kind")]
    WrongBatch(BatchKind),
    /// A step the kernel took, but whose effect could not be read back
    /// (a created set's index, say): the cache is not to be trusted.
    #[error("{what} succeeded, but reading it back failed: {source}")]
    ReadBack {
        what: &'static str,
        #[source]
        source: Box<StepError>,
    },
}

impl StepError {
    /// How the sync loop treats it: an add that finds its object and a
    /// delete that does not are done; a retryable one is retried sooner.
    pub fn class(&self) -> ErrorClass {
        match self {
            StepError::Netlink(error) => error.class(),
            StepError::Refused(Refusal::Exists(_)) => ErrorClass::AlreadyExists,
            StepError::Refused(Refusal::Missing(_)) => ErrorClass::NotFound,
            StepError::Refused(Refusal::Incompatible(_))
            | StepError::Sysctl(_)
            | StepError::NoLink
            | StepError::WrongBatch(_)
            | StepError::ReadBack { .. } => ErrorClass::Fatal,
        }
    }
}

/// Which actions may go to the kernel in one batch: the runtime cuts a
/// plan into runs of one kind (keeping its order), and the netlink kernel
/// pipelines each run in as few `sendmsg` calls as it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// IPVS services and real servers (generic netlink, pipelined).
    Ipvs,
    /// Addresses bound to `kube-ipvs0` (pipelined).
    Bind,
    /// Addresses unbound (pipelined).
    Unbind,
    /// Sets created; read back once after the run for their indexes.
    CreateSet,
    /// Set entries added or deleted (pipelined, as `ipset restore` sends
    /// a file).
    SetEntries,
    /// Everything else, one step at a time.
    Single,
}

impl BatchKind {
    pub fn of(action: &Action) -> BatchKind {
        match action {
            Action::AddService(_)
            | Action::UpdateService(_)
            | Action::DeleteService(_)
            | Action::AddDestination(..)
            | Action::UpdateDestination(..)
            | Action::DeleteDestination(..) => BatchKind::Ipvs,
            Action::BindAddress(_) => BatchKind::Bind,
            Action::UnbindAddress(_) => BatchKind::Unbind,
            Action::CreateSet(_) => BatchKind::CreateSet,
            Action::AddSetEntries { .. } | Action::DeleteSetEntries { .. } => BatchKind::SetEntries,
            Action::ReplaceSet { .. } | Action::ReplaceTable { .. } => BatchKind::Single,
        }
    }
}

/// The netlink family and message kind an action is sent as (its counter
/// label; for a set replacement and a table, the first message of several).
pub fn message_kind(action: &Action) -> (Family, &'static str) {
    match action {
        Action::AddService(_) => (Family::Ipvs, "NEW_SERVICE"),
        Action::UpdateService(_) => (Family::Ipvs, "SET_SERVICE"),
        Action::DeleteService(_) => (Family::Ipvs, "DEL_SERVICE"),
        Action::AddDestination(..) => (Family::Ipvs, "NEW_DEST"),
        Action::UpdateDestination(..) => (Family::Ipvs, "SET_DEST"),
        Action::DeleteDestination(..) => (Family::Ipvs, "DEL_DEST"),
        Action::CreateSet(_) | Action::ReplaceSet { .. } => (Family::Ipset, "CREATE"),
        Action::AddSetEntries { .. } => (Family::Ipset, "ADD"),
        Action::DeleteSetEntries { .. } => (Family::Ipset, "DEL"),
        Action::ReplaceTable { .. } => (Family::NfTables, "NEWTABLE"),
        Action::BindAddress(_) => (Family::Route, "NEWADDR"),
        Action::UnbindAddress(_) => (Family::Route, "DELADDR"),
    }
}
