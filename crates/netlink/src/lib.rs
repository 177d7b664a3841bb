//! Kernel I/O for kube-ipvs: the only crate that opens sockets.
//!
//! Every request of every family passes through one funnel,
//! [`Channel::exchange`]: it pipelines many messages per `sendmsg`, collects
//! every ack and dump part, classifies errors ([`ErrorClass`]) and counts
//! messages per family and kind ([`Counters`]). The typed clients on top
//! (IPVS, ipset, nf_tables, links and addresses, conntrack) only build
//! requests and read replies. [`AddressEvents`] is the one receive-only
//! socket: address change notifications, which say when to re-read.

mod address_events;
mod channel;
mod conntrack;
mod counters;
mod error;
mod exchange;
mod family;
#[doc(hidden)]
pub mod fuzzing;
mod genl;
mod ipset;
mod ipvs;
mod links;
mod nftables;
mod sysctl;

pub use address_events::AddressEvents;
pub use channel::Channel;
pub use conntrack::{Conntrack, Flow, FlowFilter, FlowTuple};
pub use counters::{Count, Counters, CountersSnapshot};
pub use error::{classify_errno, Error, ErrorClass, KernelError, Result};
pub use exchange::{Expect, Request, ANSWER_BUDGET, MAX_DATAGRAM};
pub use family::{Family, MessageKind};
pub use ipset::Ipset;
pub use ipvs::{Ipvs, IpvsChange, DUMP_SOCKETS};
pub use links::{InterfaceAddress, Links};
pub use nftables::NfTables;
pub use sysctl::{get_sysctl, raise_module_parameter, set_sysctl, SysctlError};

#[cfg(test)]
mod golden_tests;
