//! Which of the kernel's IPVS virtual services are kube-ipvs's to change.
//!
//! The IPVS table is shared with anything else on the node (keepalived,
//! another proxy, an operator's `ipvsadm -A`), and kube-ipvs changes only
//! what is its own. In order:
//! 1. A virtual service on an address in `--ipvs-exclude-cidrs` is never
//!    touched: not adopted, not changed, not removed.
//! 2. One whose exact `address,protocol:port` one of kube-ipvs's claiming
//!    sets lists ([`Observed::claimed`]) is ours: kube-ipvs adds those
//!    entries before it creates a virtual service and deletes them after
//!    it removed one, so a daemon stopped half-way still knows it.
//! 3. One at a key the cluster wants ([`Desired::virtual_services`]) is
//!    ours when
//!    - it is on a **cluster IP**: the API server allocated that address to
//!      the Service, so whatever sits there is stale proxy state (say its
//!      claiming entry was flushed and its address removed from
//!      `kube-ipvs0`);
//!    - its address is on `kube-ipvs0`, kube-ipvs's own link;
//!    - it is a node port listed by a node-port set that kube-proxy created
//!      (without kube-ipvs's comment extension): taking over a node that ran
//!      kube-proxy in IPVS mode, its node-port virtual services are the ones
//!      kube-ipvs replaces. Once adopted they are listed in
//!      `KUBE-NODE-PORT-IPS` like any other.
//!
//!    Otherwise it belongs to another program, which kube-ipvs reports and
//!    leaves alone ([`Ownership::foreign`]).
//! 4. Anything else is someone else's and not even read.

use std::collections::BTreeSet;

use ipnet::IpNet;
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Protocol, ServiceKey};

use crate::{
    desired::{AddressKind, Desired},
    k8s::ip_proto,
    key::{IpFamily, VirtualServiceKey},
    observed::Observed,
    sets::{EntryKey, SetId, SetRole},
};

/// The kernel's virtual services sorted by who owns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// kube-ipvs's: read back, planned against, changed.
    pub ours: BTreeSet<VirtualServiceKey>,
    /// At a key the cluster wants, but another program's: the Service is
    /// not programmed there, and a warning says so
    /// ([`crate::conflicts`]).
    pub foreign: BTreeSet<VirtualServiceKey>,
}

/// Sorts `kernel` (the keys of every virtual service the kernel holds) by
/// the rules of the module docs. `observed` needs only its sets and
/// addresses read.
pub fn ownership(
    desired: &Desired,
    observed: &Observed,
    kernel: impl IntoIterator<Item = VirtualServiceKey>,
) -> Ownership {
    let claimed = observed.claimed();
    let mut ownership = Ownership::default();
    for key in kernel {
        if is_excluded(&desired.excluded, &key) {
            continue;
        }
        if claimed.contains(&key) {
            ownership.ours.insert(key);
            continue;
        }
        let Some(wanted) = desired.virtual_services.get(&key) else {
            continue;
        };
        let on_our_link = key.addr().is_some_and(|a| observed.addresses.contains(&a));
        let ours = wanted.kind == AddressKind::ClusterIp
            || on_our_link
            || (wanted.kind == AddressKind::NodePort && kube_proxy_node_port(observed, &key));
        if ours {
            ownership.ours.insert(key);
        } else {
            ownership.foreign.insert(key);
        }
    }
    ownership
}

/// Whether `key`'s address is in `excluded` (`--ipvs-exclude-cidrs`).
pub fn is_excluded(excluded: &[IpNet], key: &VirtualServiceKey) -> bool {
    key.addr()
        .is_some_and(|addr| excluded.iter().any(|cidr| cidr.contains(&addr)))
}

/// Whether a node-port set kube-proxy created lists `key`'s port for its
/// protocol: the TCP/UDP bitmaps hold the bare port, the SCTP hash sets
/// `nodeIP,sctp:port`. kube-ipvs creates its sets with comments, kube-proxy
/// without, which is how a set made by kube-proxy is told apart.
fn kube_proxy_node_port(observed: &Observed, key: &VirtualServiceKey) -> bool {
    let ServiceKey::Tuple {
        addr,
        protocol,
        port,
    } = key.key()
    else {
        return false;
    };
    let (role, entry) = match protocol {
        Protocol::Tcp => (SetRole::NodePortTcp, Entry::port(port)),
        Protocol::Udp => (SetRole::NodePortUdp, Entry::port(port)),
        Protocol::Sctp => (
            SetRole::NodePortSctp,
            Entry::ip_port(addr, ip_proto(protocol), port),
        ),
        _ => return false,
    };
    observed
        .sets
        .get(&SetId::new(role, IpFamily::of(&addr)))
        .is_some_and(|set| !set.header.comment && set.entries.contains_key(&EntryKey::of(&entry)))
}
