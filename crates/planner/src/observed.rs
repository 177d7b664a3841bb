//! What the runtime read from the kernel.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use kipvs_packet_ipset::{SetInfo, SetType};
use kipvs_packet_ipvs::{Destination, Protocol, Service, ServiceKey};
use kipvs_packet_nftables::NftMessage;

use crate::{
    k8s::ip_proto,
    key::{IpFamily, VirtualServiceKey},
    sets::SetRole,
};

/// Kernel state, already filtered to what kube-ipvs owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Virtual services with their real servers, as dumped (stats and
    /// connection counters are ignored by [`crate::plan`]).
    pub virtual_services: BTreeMap<VirtualServiceKey, (Service, Vec<Destination>)>,
    /// Addresses on `kube-ipvs0`.
    pub addresses: BTreeSet<IpAddr>,
    /// Our ipsets by name, with their entries.
    pub sets: BTreeMap<String, SetInfo>,
    /// The kernel index of each of our ipsets (from the list dump); the
    /// table's rules need them.
    pub set_indexes: BTreeMap<String, u16>,
    /// The `kube-ipvs` table of each family; absent when there is none.
    pub tables: BTreeMap<IpFamily, ObservedTable>,
}

/// One `kube-ipvs` table as dumped: the `NEWCHAIN` replies of a chain dump
/// and the `NEWRULE` replies of a rule dump (`NfTables::chains` /
/// `NfTables::rules`), unmodified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedTable {
    pub chains: Vec<NftMessage>,
    pub rules: Vec<NftMessage>,
}

impl Observed {
    /// Whether a virtual service is kube-ipvs's by what the kernel shows:
    /// its address is bound to `kube-ipvs0`, or one of our sets whose role
    /// [claims virtual services](SetRole::claims_virtual_services) lists
    /// it — `KUBE-IPVS-IPS` by address; `KUBE-EXTERNAL-IP(-LOCAL)`,
    /// `KUBE-LOAD-BALANCER` and `KUBE-NODE-PORT-SCTP-HASH` by
    /// `addr,proto:port`; `KUBE-NODE-PORT-TCP/UDP` by port, for a TCP/UDP
    /// service of the set's family. Node-port services sit on node
    /// addresses and external/LB services may sit on another interface's
    /// address, so the address alone cannot say. Anything else belongs to
    /// someone else and is never touched.
    pub fn claims(&self, key: &VirtualServiceKey) -> bool {
        let ServiceKey::Tuple {
            addr,
            protocol,
            port,
        } = key.key()
        else {
            return false;
        };
        if self.addresses.contains(&addr) {
            return true;
        }
        let family = IpFamily::of(&addr);
        let proto = Some(ip_proto(protocol));
        SetRole::ALL
            .into_iter()
            .filter(|role| role.claims_virtual_services())
            .filter_map(|role| Some((role, self.sets.get(role.set_name(family))?)))
            .any(|(role, set)| {
                set.entries.iter().any(|entry| match role.set_type() {
                    SetType::HashIp => entry.ip == Some(addr),
                    SetType::BitmapPort => {
                        entry.port == Some(port) && bitmap_protocol(role) == Some(protocol)
                    }
                    _ => entry.ip == Some(addr) && entry.proto == proto && entry.port == Some(port),
                })
            })
    }
}

/// The protocol a `bitmap:port` set's ports are for (a bitmap holds bare
/// port numbers).
fn bitmap_protocol(role: SetRole) -> Option<Protocol> {
    match role {
        SetRole::NodePortTcp | SetRole::NodePortLocalTcp => Some(Protocol::Tcp),
        SetRole::NodePortUdp | SetRole::NodePortLocalUdp => Some(Protocol::Udp),
        _ => None,
    }
}
