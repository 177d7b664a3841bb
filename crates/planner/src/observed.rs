//! What the runtime read from the kernel.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use kipvs_packet_ipset::{Entry, SetFamily, SetInfo};
use kipvs_packet_ipvs::{Destination, Protocol, Service};

use crate::{
    key::{IpFamily, VirtualServiceKey},
    rendered::RenderedTable,
    sets::{EntryKey, SetId},
};

/// Kernel state, already filtered to what kube-ipvs owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Virtual services with their real servers, as dumped (stats and
    /// connection counters are ignored by [`crate::plan`]).
    pub virtual_services: BTreeMap<VirtualServiceKey, (Service, Vec<Destination>)>,
    /// Addresses on `kube-ipvs0`.
    pub addresses: BTreeSet<IpAddr>,
    /// Our ipsets, with their entries.
    pub sets: BTreeMap<SetId, ObservedSet>,
    /// The `kube-ipvs` table of each family; absent when there is none.
    pub tables: BTreeMap<IpFamily, RenderedTable>,
    /// Keys the desired state wants that another program's virtual service
    /// (one no set of ours claims) already holds: kube-ipvs leaves them
    /// alone and reports the conflict.
    pub foreign: BTreeSet<VirtualServiceKey>,
}

/// One ipset as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedSet {
    pub header: SetHeader,
    pub entries: BTreeMap<EntryKey, Entry>,
}

/// What `ipset list` says of a set besides its entries, as far as kube-ipvs
/// cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetHeader {
    /// `hash:ip,port`, …; empty when a dump only named the set.
    pub type_name: String,
    pub family: SetFamily,
    /// Created with the comment extension.
    pub comment: bool,
    /// The kernel index rules refer to the set by (sent with protocol ≥ 7).
    pub index: Option<u16>,
}

impl Default for SetHeader {
    fn default() -> Self {
        SetHeader {
            type_name: String::new(),
            family: SetFamily::Unspec,
            comment: false,
            index: None,
        }
    }
}

impl ObservedSet {
    /// A set from the list dump.
    pub fn from_info(info: SetInfo) -> Self {
        ObservedSet {
            header: SetHeader {
                family: info.set_family(),
                type_name: info.type_name,
                comment: info.comment,
                index: info.index,
            },
            entries: info
                .entries
                .into_iter()
                .map(|entry| (EntryKey::of(&entry), entry))
                .collect(),
        }
    }

    /// `set` as kube-ipvs creates it, empty, at `index`.
    pub fn created(set: SetId, index: Option<u16>) -> Self {
        ObservedSet {
            header: SetHeader {
                type_name: set.set_type().type_name().to_owned(),
                family: set.set_family(),
                comment: set.options().comment,
                index,
            },
            entries: BTreeMap::new(),
        }
    }
}

impl Observed {
    /// The kernel index of each of our sets that has one: what the table's
    /// set matches refer to.
    pub fn set_indexes(&self) -> BTreeMap<SetId, u16> {
        self.sets
            .iter()
            .filter_map(|(id, set)| Some((*id, set.header.index?)))
            .collect()
    }

    /// The virtual services kube-ipvs owns by what its sets show: those
    /// whose exact `address,protocol:port` one of our sets that
    /// [claims virtual services](crate::SetRole::claims_virtual_services) lists
    /// (`KUBE-CLUSTER-IP`, `KUBE-EXTERNAL-IP(-LOCAL)`, `KUBE-LOAD-BALANCER`,
    /// `KUBE-NODE-PORT-IPS`). See [`crate::ownership`] for the whole rule.
    ///
    /// Built once per read of the kernel: one pass over the claiming sets.
    pub fn claimed(&self) -> BTreeSet<VirtualServiceKey> {
        self.sets
            .iter()
            .filter(|(id, _)| id.role.claims_virtual_services())
            .flat_map(|(_, set)| set.entries.keys().filter_map(named_key))
            .collect()
    }

    /// Whether a claiming set entry names a key another program's virtual
    /// service holds (adding it would make that service look like ours).
    pub fn is_foreign(&self, entry: &EntryKey) -> bool {
        named_key(entry).is_some_and(|key| self.foreign.contains(&key))
    }
}

/// The virtual service an `addr,proto:port` entry names.
pub(crate) fn named_key(entry: &EntryKey) -> Option<VirtualServiceKey> {
    let entry = entry.bare();
    let (addr, proto, port) = (entry.ip?, entry.proto?, entry.port?);
    Some(VirtualServiceKey::tuple(
        addr,
        Protocol::from(u16::from(proto)),
        port,
    ))
}
