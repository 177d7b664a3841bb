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
mod k8s;
mod key;
mod names;
mod observed;
mod plan;
mod sets;
mod shape;
mod table;

pub use self::{
    config::NodeConfig,
    desired::{desired, Desired, DesiredVirtualService},
    key::{IpFamily, VirtualServiceKey},
    names::{ServicePortName, Warning},
    observed::{Observed, ObservedTable},
    plan::{plan, Action, Plan, Step},
    sets::{entry_key, set_options, DesiredSet, SetRole},
    table::{DesiredTable, MissingSetIndex, RulePart, TableRule, MASQ_MARK, TABLE_NAME},
};
