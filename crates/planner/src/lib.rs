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

mod config;
mod desired;
mod endpoints;
mod external_addresses;
mod k8s;
mod key;
mod limits;
mod names;
mod observed;
mod ownership;
mod plan;
mod scheduler;
mod service_ports;
mod sets;
mod shape;
mod table;
mod targets;
mod topology;

pub use self::{
    config::{
        NodeConfig, NodePortAddresses, DEFAULT_MAX_SERVICE_ADDRESSES, DEFAULT_MAX_VIRTUAL_SERVICES,
        ZONE_LABEL,
    },
    desired::{desired, AddressKind, Desired, DesiredVirtualService, HealthCheck},
    key::{IpFamily, VirtualServiceKey},
    names::{fit_comment, ServicePortName, Warning, IPSET_MAX_COMMENT_SIZE},
    observed::{Observed, ObservedTable},
    ownership::{is_excluded, ownership, Ownership},
    plan::{conflicts, draining, plan, retiring, Action, Plan, RealServerKey, Step},
    scheduler::{validate_scheduler, SCHEDULERS, SCHEDULER_ANNOTATION, SCHEDULER_FLAGS_ANNOTATION},
    sets::{entry_key, replacement_reason, set_options, DesiredSet, SetRole},
    table::{DesiredTable, MissingSetIndex, RulePart, TableRule, MASQ_MARK, TABLE_NAME},
};
