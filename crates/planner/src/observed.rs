//! What the runtime read from the kernel.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use kipvs_packet_ipset::SetInfo;
use kipvs_packet_ipvs::{Destination, Service};
use kipvs_packet_nftables::NftMessage;

use crate::key::{IpFamily, VirtualServiceKey};

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
