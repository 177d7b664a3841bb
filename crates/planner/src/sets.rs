//! The kube-proxy ipsets (names, types, options) and their desired content.

use std::collections::BTreeMap;

use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetInfo, SetType};

use crate::{key::IpFamily, names::ServicePortName};

/// The kinds of sets kube-ipvs keeps, each once per family: kube-proxy's
/// IPVS-mode sets (`pkg/proxy/ipvs/ipset.go`), same names, types and
/// entry forms, so `ipset list` reads the same as under kube-proxy.
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
    /// `KUBE-EXTERNAL-IP` hash:ip,port: externalIPs of services with
    /// externalTrafficPolicy Cluster (masqueraded).
    ExternalIp,
    /// `KUBE-EXTERNAL-IP-LOCAL` hash:ip,port: externalIPs of services with
    /// externalTrafficPolicy Local (not masqueraded).
    ExternalIpLocal,
    /// `KUBE-LOAD-BALANCER` hash:ip,port: every load-balancer ingress IP.
    LoadBalancer,
    /// `KUBE-LOAD-BALANCER-LOCAL` hash:ip,port: ingress IPs of services
    /// with externalTrafficPolicy Local.
    LoadBalancerLocal,
    /// `KUBE-LOAD-BALANCER-FW` hash:ip,port: ingress IPs of services with
    /// loadBalancerSourceRanges.
    LoadBalancerFw,
    /// `KUBE-LOAD-BALANCER-SOURCE-IP` hash:ip,port,ip: `lbIP,proto:port,lbIP`
    /// when a source range covers the node (the node reaches its own LB
    /// address from that address).
    LoadBalancerSourceIp,
    /// `KUBE-LOAD-BALANCER-SOURCE-CIDR` hash:ip,port,net:
    /// `lbIP,proto:port,cidr` per source range.
    LoadBalancerSourceCidr,
    /// `KUBE-NODE-PORT-TCP` bitmap:port: TCP node ports.
    NodePortTcp,
    /// `KUBE-NODE-PORT-LOCAL-TCP` bitmap:port: TCP node ports of services
    /// with externalTrafficPolicy Local.
    NodePortLocalTcp,
    /// `KUBE-NODE-PORT-UDP` bitmap:port.
    NodePortUdp,
    /// `KUBE-NODE-PORT-LOCAL-UDP` bitmap:port.
    NodePortLocalUdp,
    /// `KUBE-NODE-PORT-SCTP-HASH` hash:ip,port: `nodeIP,sctp:port` per node
    /// address (a bitmap:port cannot tell SCTP from TCP).
    NodePortSctp,
    /// `KUBE-NODE-PORT-LOCAL-SCTP-HASH` hash:ip,port.
    NodePortLocalSctp,
    /// `KUBE-HEALTH-CHECK-NODE-PORT` bitmap:port: healthCheckNodePorts.
    HealthCheckNodePort,
    /// `KUBE-NODE-PORT-IPS` hash:ip,port: `nodeIP,proto:port` of every
    /// node-port virtual service. Not kube-proxy's and used by no rule: it
    /// records which virtual services on node addresses kube-ipvs created
    /// (the bitmap:port sets hold bare port numbers, which cannot say),
    /// also after the address has left the node.
    NodePortIps,
}

impl SetRole {
    pub const ALL: [SetRole; 18] = [
        SetRole::ClusterIp,
        SetRole::LoopBack,
        SetRole::IpvsIps,
        SetRole::ExternalIp,
        SetRole::ExternalIpLocal,
        SetRole::LoadBalancer,
        SetRole::LoadBalancerLocal,
        SetRole::LoadBalancerFw,
        SetRole::LoadBalancerSourceIp,
        SetRole::LoadBalancerSourceCidr,
        SetRole::NodePortTcp,
        SetRole::NodePortLocalTcp,
        SetRole::NodePortUdp,
        SetRole::NodePortLocalUdp,
        SetRole::NodePortSctp,
        SetRole::NodePortLocalSctp,
        SetRole::HealthCheckNodePort,
        SetRole::NodePortIps,
    ];

    /// kube-proxy's names; IPv6 sets carry `KUBE-6-` and are cut to the
    /// kernel's 31 characters (as in `pkg/proxy/ipvs/ipset.go`, `GetName`
    /// with `IsIPv6`: `KUBE-6-LOAD-BALANCER-SOURCE-CID`).
    pub fn set_name(self, family: IpFamily) -> &'static str {
        let (v4, v6) = match self {
            SetRole::ClusterIp => ("KUBE-CLUSTER-IP", "KUBE-6-CLUSTER-IP"),
            SetRole::LoopBack => ("KUBE-LOOP-BACK", "KUBE-6-LOOP-BACK"),
            SetRole::IpvsIps => ("KUBE-IPVS-IPS", "KUBE-6-IPVS-IPS"),
            SetRole::ExternalIp => ("KUBE-EXTERNAL-IP", "KUBE-6-EXTERNAL-IP"),
            SetRole::ExternalIpLocal => ("KUBE-EXTERNAL-IP-LOCAL", "KUBE-6-EXTERNAL-IP-LOCAL"),
            SetRole::LoadBalancer => ("KUBE-LOAD-BALANCER", "KUBE-6-LOAD-BALANCER"),
            SetRole::LoadBalancerLocal => {
                ("KUBE-LOAD-BALANCER-LOCAL", "KUBE-6-LOAD-BALANCER-LOCAL")
            }
            SetRole::LoadBalancerFw => ("KUBE-LOAD-BALANCER-FW", "KUBE-6-LOAD-BALANCER-FW"),
            SetRole::LoadBalancerSourceIp => (
                "KUBE-LOAD-BALANCER-SOURCE-IP",
                "KUBE-6-LOAD-BALANCER-SOURCE-IP",
            ),
            SetRole::LoadBalancerSourceCidr => (
                "KUBE-LOAD-BALANCER-SOURCE-CIDR",
                "KUBE-6-LOAD-BALANCER-SOURCE-CID",
            ),
            SetRole::NodePortTcp => ("KUBE-NODE-PORT-TCP", "KUBE-6-NODE-PORT-TCP"),
            SetRole::NodePortLocalTcp => ("KUBE-NODE-PORT-LOCAL-TCP", "KUBE-6-NODE-PORT-LOCAL-TCP"),
            SetRole::NodePortUdp => ("KUBE-NODE-PORT-UDP", "KUBE-6-NODE-PORT-UDP"),
            SetRole::NodePortLocalUdp => ("KUBE-NODE-PORT-LOCAL-UDP", "KUBE-6-NODE-PORT-LOCAL-UDP"),
            SetRole::NodePortSctp => ("KUBE-NODE-PORT-SCTP-HASH", "KUBE-6-NODE-PORT-SCTP-HASH"),
            SetRole::NodePortLocalSctp => (
                "KUBE-NODE-PORT-LOCAL-SCTP-HASH",
                "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS",
            ),
            SetRole::HealthCheckNodePort => (
                "KUBE-HEALTH-CHECK-NODE-PORT",
                "KUBE-6-HEALTH-CHECK-NODE-PORT",
            ),
            SetRole::NodePortIps => ("KUBE-NODE-PORT-IPS", "KUBE-6-NODE-PORT-IPS"),
        };
        match family {
            IpFamily::V4 => v4,
            IpFamily::V6 => v6,
        }
    }

    pub fn set_type(self) -> SetType {
        match self {
            SetRole::IpvsIps => SetType::HashIp,
            SetRole::LoopBack | SetRole::LoadBalancerSourceIp => SetType::HashIpPortIp,
            SetRole::LoadBalancerSourceCidr => SetType::HashIpPortNet,
            SetRole::NodePortTcp
            | SetRole::NodePortLocalTcp
            | SetRole::NodePortUdp
            | SetRole::NodePortLocalUdp
            | SetRole::HealthCheckNodePort => SetType::BitmapPort,
            SetRole::ClusterIp
            | SetRole::ExternalIp
            | SetRole::ExternalIpLocal
            | SetRole::LoadBalancer
            | SetRole::LoadBalancerLocal
            | SetRole::LoadBalancerFw
            | SetRole::NodePortSctp
            | SetRole::NodePortLocalSctp
            | SetRole::NodePortIps => SetType::HashIpPort,
        }
    }

    /// An entry of this set makes the virtual service with exactly that
    /// `address,protocol:port` kube-ipvs's: kube-ipvs only ever changes or
    /// deletes a virtual service one of these sets lists, never one merely
    /// on an address it knows (another program's service may share a
    /// service or LB address, or a node address). The entry is added right
    /// after the virtual service and deleted only after it, so a daemon
    /// stopped half-way through a removal still owns it.
    pub fn claims_virtual_services(self) -> bool {
        matches!(
            self,
            SetRole::ClusterIp
                | SetRole::ExternalIp
                | SetRole::ExternalIpLocal
                | SetRole::LoadBalancer
                | SetRole::NodePortIps
        )
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

/// kube-proxy's create options: `hashsize 1024 maxelem 65536 comment` for
/// hash sets, `range 0-65535 comment` for bitmap:port sets.
pub fn set_options(set_type: &SetType) -> CreateOptions {
    match set_type {
        SetType::BitmapPort => CreateOptions {
            hash_size: None,
            max_elem: None,
            comment: true,
            port_range: Some((0, 65535)),
        },
        _ => CreateOptions {
            hash_size: Some(1024),
            max_elem: Some(65536),
            comment: true,
            port_range: None,
        },
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

/// Why an existing set of one of our names cannot be used as it is, or
/// `None` when it can. kube-proxy creates its `KUBE-*` sets without the
/// comment extension, and the kernel refuses commented entries in such a
/// set; a set of another type or family would refuse our entries outright.
/// Such a set is replaced (see `Action::ReplaceSet`).
pub fn replacement_reason(info: &SetInfo, set: &DesiredSet) -> Option<String> {
    if info.type_name.is_empty() {
        // A dump that only named the set says nothing about it.
        return None;
    }
    if info.type_name != set.set_type.type_name() {
        return Some(format!(
            "it is {}, kube-ipvs needs {}",
            info.type_name, set.set_type
        ));
    }
    if set.set_type.has_family() && info.set_family() != set.family {
        return Some(format!(
            "its family is {}, kube-ipvs needs {}",
            info.set_family(),
            set.family
        ));
    }
    if set.options.comment && !info.comment {
        return Some("it was created without comments (by kube-proxy?)".to_owned());
    }
    None
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
            options: set_options(&role.set_type()),
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
