//! What the runtime read from the kernel.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use kipvs_packet_ipset::{Entry, SetInfo};
use kipvs_packet_ipvs::{Destination, Protocol, Service};
use kipvs_packet_nftables::NftMessage;

use crate::{
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
    /// Keys the desired state wants that another program's virtual service
    /// (one no set of ours claims) already holds: kube-ipvs leaves them
    /// alone and reports the conflict.
    pub foreign: BTreeSet<VirtualServiceKey>,
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
    /// The virtual services kube-ipvs owns by what the kernel shows: those
    /// whose exact `address,protocol:port` one of our sets that
    /// [claims virtual services](SetRole::claims_virtual_services) lists
    /// (`KUBE-CLUSTER-IP`, `KUBE-EXTERNAL-IP(-LOCAL)`, `KUBE-LOAD-BALANCER`,
    /// `KUBE-NODE-PORT-IPS`). Neither an address on `kube-ipvs0` nor a
    /// node port number is enough: another program's virtual service may
    /// share the address, or sit on a port kube-ipvs also uses elsewhere.
    /// Anything not listed belongs to someone else and is never touched.
    ///
    /// Built once per read of the kernel: one pass over the claiming sets.
    pub fn claimed(&self) -> BTreeSet<VirtualServiceKey> {
        let mut claimed = BTreeSet::new();
        for role in SetRole::ALL
            .into_iter()
            .filter(|role| role.claims_virtual_services())
        {
            for family in IpFamily::ALL {
                let Some(set) = self.sets.get(role.set_name(family)) else {
                    continue;
                };
                claimed.extend(set.entries.iter().filter_map(named_key));
            }
        }
        claimed
    }

    /// Whether a claiming set entry names a key another program's virtual
    /// service holds (adding it would make that service look like ours).
    pub fn is_foreign(&self, entry: &Entry) -> bool {
        named_key(entry).is_some_and(|key| self.foreign.contains(&key))
    }
}

/// The virtual service an `addr,proto:port` entry names.
fn named_key(entry: &Entry) -> Option<VirtualServiceKey> {
    let (addr, proto, port) = (entry.ip?, entry.proto?, entry.port?);
    Some(VirtualServiceKey::tuple(
        addr,
        Protocol::from(u16::from(proto)),
        port,
    ))
}
