//! The kube-proxy ipsets (names, types, options) and their desired content.

use std::{
    collections::{btree_map, BTreeMap},
    fmt,
    net::IpAddr,
};

use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetType};

use crate::{key::IpFamily, names::ServicePortName, observed::SetHeader};

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

    /// Whether the role's entries exempt traffic from marking (`-LOCAL`)
    /// or allow sources (source ranges): they are added before, and
    /// deleted after, the entries of the sets that mark or firewall, so a
    /// changed service is never briefly masqueraded or dropped.
    pub fn exempts(self) -> bool {
        matches!(
            self,
            SetRole::ExternalIpLocal
                | SetRole::LoadBalancerLocal
                | SetRole::NodePortLocalTcp
                | SetRole::NodePortLocalUdp
                | SetRole::NodePortLocalSctp
                | SetRole::LoadBalancerSourceCidr
                | SetRole::LoadBalancerSourceIp
        )
    }
}

/// One of kube-ipvs's ipsets: a role in a family. Its name, type and
/// options follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetId {
    pub role: SetRole,
    pub family: IpFamily,
}

impl SetId {
    pub const fn new(role: SetRole, family: IpFamily) -> Self {
        SetId { role, family }
    }

    /// Every set kube-ipvs keeps: each role in both families.
    pub fn all() -> impl Iterator<Item = SetId> {
        IpFamily::ALL.into_iter().flat_map(|family| {
            SetRole::ALL
                .into_iter()
                .map(move |role| SetId::new(role, family))
        })
    }

    pub fn name(self) -> &'static str {
        self.role.set_name(self.family)
    }

    /// The set of one of our names.
    pub fn from_name(name: &str) -> Option<SetId> {
        SetId::all().find(|id| id.name() == name)
    }

    pub fn set_type(self) -> SetType {
        self.role.set_type()
    }

    pub fn set_family(self) -> SetFamily {
        self.family.set_family()
    }

    pub fn options(self) -> CreateOptions {
        set_options(&self.set_type())
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// What identifies an entry in its set: everything but its comment. The
/// kernel keeps the comment an entry was added with, so an entry present
/// with another comment is the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    ip: Option<IpAddr>,
    proto: Option<u8>,
    port: Option<u16>,
    ip2: Option<IpAddr>,
    cidr2: Option<u8>,
}

impl EntryKey {
    pub fn of(entry: &Entry) -> Self {
        EntryKey {
            ip: entry.ip,
            proto: entry.proto,
            port: entry.port,
            ip2: entry.ip2,
            cidr2: entry.cidr2,
        }
    }

    /// The entry without a comment: how the kernel is asked to find (and
    /// delete) it.
    pub fn bare(&self) -> Entry {
        Entry {
            ip: self.ip,
            proto: self.proto,
            port: self.port,
            ip2: self.ip2,
            cidr2: self.cidr2,
            comment: None,
        }
    }
}

impl From<&Entry> for EntryKey {
    fn from(entry: &Entry) -> Self {
        EntryKey::of(entry)
    }
}

/// As `ipset list` shows it, without the comment.
impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bare().fmt(f)
    }
}

/// Why an existing set of one of our names cannot be used as it is, or
/// `None` when it can. kube-proxy creates its `KUBE-*` sets without the
/// comment extension, and the kernel refuses commented entries in such a
/// set; a set of another type or family would refuse our entries outright.
/// Such a set is replaced (see `Action::ReplaceSet`).
pub fn replacement_reason(header: &SetHeader, set: SetId) -> Option<String> {
    if header.type_name.is_empty() {
        // A dump that only named the set says nothing about it.
        return None;
    }
    let set_type = set.set_type();
    if header.type_name != set_type.type_name() {
        return Some(format!(
            "it is {}, kube-ipvs needs {set_type}",
            header.type_name
        ));
    }
    if set_type.has_family() && header.family != set.set_family() {
        return Some(format!(
            "its family is {}, kube-ipvs needs {}",
            header.family,
            set.set_family()
        ));
    }
    if set.options().comment && !header.comment {
        return Some("it was created without comments (by kube-proxy?)".to_owned());
    }
    None
}

/// One ipset as it should be: its entries, each with its comment and the
/// service port it is there for (so the plan can tag the step that adds
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredSet {
    pub entries: BTreeMap<EntryKey, DesiredEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEntry {
    /// With its comment.
    pub entry: Entry,
    pub owner: ServicePortName,
}

impl DesiredSet {
    /// Adds `entry` for `owner`; an entry already there keeps its first
    /// owner and comment (two services may share a local endpoint), whom
    /// this returns.
    pub(crate) fn insert(
        &mut self,
        entry: Entry,
        owner: &ServicePortName,
    ) -> Option<&ServicePortName> {
        match self.entries.entry(EntryKey::of(&entry)) {
            btree_map::Entry::Occupied(present) => Some(&present.into_mut().owner),
            btree_map::Entry::Vacant(slot) => {
                slot.insert(DesiredEntry {
                    entry,
                    owner: owner.clone(),
                });
                None
            }
        }
    }

    /// The entries with their comments, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().map(|desired| &desired.entry)
    }
}
