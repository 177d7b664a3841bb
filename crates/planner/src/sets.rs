//! The kube-proxy ipsets (names, types, options) and their desired content.

use std::collections::BTreeMap;

use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetType};

use crate::{key::IpFamily, names::ServicePortName};

/// The three kinds of sets kube-ipvs keeps, each once per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetRole {
    /// `KUBE-CLUSTER-IP` hash:ip,port: `clusterIP,proto:port` of every
    /// service port.
    ClusterIp,
    /// `KUBE-LOOP-BACK` hash:ip,port,ip: `endpointIP,proto:port,endpointIP`
    /// of every endpoint on this node (hairpin masquerade).
    LoopBack,
    /// `KUBE-IPVS-IPS` hash:ip: every bound service IP.
    IpvsIps,
}

impl SetRole {
    pub const ALL: [SetRole; 3] = [SetRole::ClusterIp, SetRole::LoopBack, SetRole::IpvsIps];

    /// kube-proxy's names; IPv6 sets carry `KUBE-6-` (as in
    /// `pkg/proxy/ipvs/ipset.go`, `GetName` with `IsIPv6`).
    pub fn set_name(self, family: IpFamily) -> &'static str {
        match (self, family) {
            (SetRole::ClusterIp, IpFamily::V4) => "KUBE-CLUSTER-IP",
            (SetRole::LoopBack, IpFamily::V4) => "KUBE-LOOP-BACK",
            (SetRole::IpvsIps, IpFamily::V4) => "KUBE-IPVS-IPS",
            (SetRole::ClusterIp, IpFamily::V6) => "KUBE-6-CLUSTER-IP",
            (SetRole::LoopBack, IpFamily::V6) => "KUBE-6-LOOP-BACK",
            (SetRole::IpvsIps, IpFamily::V6) => "KUBE-6-IPVS-IPS",
        }
    }

    pub fn set_type(self) -> SetType {
        match self {
            SetRole::ClusterIp => SetType::HashIpPort,
            SetRole::LoopBack => SetType::HashIpPortIp,
            SetRole::IpvsIps => SetType::HashIp,
        }
    }

    /// The role and family of one of our set names.
    pub fn from_set_name(name: &str) -> Option<(SetRole, IpFamily)> {
        IpFamily::ALL.into_iter().find_map(|family| {
            SetRole::ALL
                .into_iter()
                .find(|role| role.set_name(family) == name)
                .map(|role| (role, family))
        })
    }
}

/// kube-proxy's create options: `hashsize 1024 maxelem 65536 comment`.
pub fn set_options() -> CreateOptions {
    CreateOptions {
        hash_size: Some(1024),
        max_elem: Some(65536),
        comment: true,
        port_range: None,
    }
}

/// What identifies an entry: its `ipset list` form without the comment.
///
/// The kernel keeps the comment given when the entry was added, so an
/// entry present with another comment is the same entry.
pub fn entry_key(entry: &Entry) -> String {
    Entry {
        comment: None,
        ..entry.clone()
    }
    .to_string()
}

/// One ipset as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSet {
    pub set_type: SetType,
    pub family: SetFamily,
    pub options: CreateOptions,
    /// By [`entry_key`]; each entry carries its comment.
    pub entries: BTreeMap<String, Entry>,
    /// The service port each entry is added for (same keys as `entries`),
    /// so the plan can tag the step that adds it.
    pub owners: BTreeMap<String, ServicePortName>,
}

impl DesiredSet {
    pub(crate) fn new(role: SetRole, family: IpFamily) -> Self {
        DesiredSet {
            set_type: role.set_type(),
            family: family.set_family(),
            options: set_options(),
            entries: BTreeMap::new(),
            owners: BTreeMap::new(),
        }
    }

    /// Adds `entry` for `owner`; an entry already there keeps its first
    /// owner and comment (two services may share a local endpoint).
    pub(crate) fn insert(&mut self, entry: Entry, owner: &ServicePortName) {
        let key = entry_key(&entry);
        if !self.entries.contains_key(&key) {
            self.owners.insert(key.clone(), owner.clone());
            self.entries.insert(key, entry);
        }
    }
}
