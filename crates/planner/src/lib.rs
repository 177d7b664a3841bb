//! The pure heart of kube-ipvs: cluster state in, kernel work out. No I/O,
//! no async, no clock, no logging.
//!
//! Two steps:
//! - [`desired`]: Services + EndpointSlices + [`NodeConfig`] → [`Desired`]:
//!   the IPVS virtual services and real servers, the addresses to bind on
//!   `kube-ipvs0`, the kube-proxy ipsets with their entries and one
//!   nf_tables table per family (as a spec whose ipset references are
//!   resolved later, see [`DesiredTable`]). Bad objects are skipped and
//!   reported as [`Warning`]s; they never disturb other services.
//! - [`plan`]: [`Desired`] + [`Observed`] (what the runtime read from the
//!   kernel) → [`Plan`], the ordered [`Step`]s that make the kernel match,
//!   each tagged with the [`ServicePortName`] it belongs to. Identical
//!   desired and observed state gives an empty plan.
//!
//! Besides: [`ownership`] (which of the kernel's virtual services are
//! kube-ipvs's) and [`Observed::apply`] (what a kernel write does to the
//! observed state: the model the runtime's cache and its in-memory test
//! kernel share). Sets, entries and tables have typed identities
//! ([`SetId`], [`EntryKey`], [`RenderedTable`]); wire formats are the
//! runtime's business.

mod apply;
mod config;
mod contributions;
mod desired;
mod endpoints;
mod external_addresses;
mod incremental;
mod k8s;
mod key;
mod limits;
mod names;
mod observed;
mod ownership;
mod plan;
mod rendered;
mod scheduler;
mod service_ports;
mod sets;
mod table;
mod targets;
mod topology;

pub use self::{
    apply::Refusal,
    config::{
        NodeConfig, NodePortAddresses, DEFAULT_MAX_SERVICE_ADDRESSES, DEFAULT_MAX_VIRTUAL_SERVICES,
        ZONE_LABEL,
    },
    contributions::{Contribution, Contributions, Dirty},
    desired::{
        desired, AddressKind, Desired, DesiredVirtualService, HealthCheck, NoLocalEndpoints,
    },
    endpoints::service_label,
    incremental::{changed_services, objects_of, services_touched, written_namespaces},
    key::{IpFamily, VirtualServiceKey},
    names::{fit_comment, ServiceId, ServicePortName, Warning, IPSET_MAX_COMMENT_SIZE},
    observed::{Observed, ObservedSet, SetHeader},
    ownership::{is_excluded, ownership, Ownership},
    plan::{
        conflicts, draining, draining_in, plan, plan_scoped, retiring, retiring_in, Action, Plan,
        RealServerKey, Scope, Step,
    },
    rendered::{ChainHook, RenderedChain, RenderedRule, RenderedTable},
    scheduler::{validate_scheduler, SCHEDULERS, SCHEDULER_ANNOTATION, SCHEDULER_FLAGS_ANNOTATION},
    sets::{replacement_reason, set_options, DesiredEntry, DesiredSet, EntryKey, SetId, SetRole},
    table::{DesiredTable, MissingSetIndex, RulePart, TableRule, MASQ_MARK, TABLE_NAME},
};
