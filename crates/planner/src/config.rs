//! The node-level settings that shape the desired state.

use std::{collections::BTreeSet, net::IpAddr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

/// `topology.kubernetes.io/zone`: the zone topology hints are matched with.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// `--nodeport-addresses`: which node addresses get node-port virtual
/// services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NodePortAddresses {
    /// Unset: every node address ([`NodeConfig::local_addresses`]).
    #[default]
    All,
    /// `primary`: the node's primary addresses ([`NodeConfig::primary_ips`]).
    Primary,
    /// Node addresses inside any of these ranges.
    Cidrs(Vec<IpNet>),
}

/// What `kube-ipvs` was started with and what it knows about its node, as
/// far as the planner cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's name: endpoints with this `nodeName` are local
    /// (hairpin traffic to them needs `KUBE-LOOP-BACK`).
    pub node_name: String,
    /// `--cluster-cidr`: traffic to a service from outside these is
    /// masqueraded. Any number per family.
    pub cluster_cidrs: Vec<IpNet>,
    /// `--masquerade-all`: masquerade all traffic to services.
    pub masquerade_all: bool,
    /// `--ipvs-scheduler` for every virtual service without a scheduler
    /// annotation.
    pub scheduler: String,
    /// `--nodeport-addresses`.
    pub nodeport_addresses: NodePortAddresses,
    /// Every address of this node's interfaces except `kube-ipvs0`'s,
    /// loopback and IPv6 link-local ones; kept current by the runtime from
    /// rtnetlink notifications.
    pub local_addresses: BTreeSet<IpAddr>,
    /// The node's primary addresses: its Node object's `InternalIP`s
    /// (else `ExternalIP`s), one per family (see [`NodeConfig::with_node`]).
    pub primary_ips: Vec<IpAddr>,
    /// The node's zone label, for topology hints (see
    /// [`NodeConfig::with_node`]).
    pub zone: Option<String>,
    /// `--ipvs-exclude-cidrs`: virtual services whose address is in one of
    /// these ranges are never touched (not planned, not adopted, not
    /// removed, also not by `--cleanup`).
    pub exclude_cidrs: Vec<IpNet>,
    /// `--max-service-addresses`: a Service with more externalIPs plus
    /// load-balancer ingress IPs than this is skipped with a warning.
    pub max_service_addresses: usize,
    /// `--max-virtual-services`: the node-wide cap on virtual services; a
    /// Service that would go past it is skipped with a warning.
    pub max_virtual_services: usize,
}

/// Default of [`NodeConfig::max_service_addresses`]: far above what a real
/// Service carries, low enough that one Service cannot exhaust memory.
pub const DEFAULT_MAX_SERVICE_ADDRESSES: usize = 256;

/// Default of [`NodeConfig::max_virtual_services`].
pub const DEFAULT_MAX_VIRTUAL_SERVICES: usize = 200_000;

impl NodeConfig {
    /// No cluster CIDR, no masquerade-all, the `rr` scheduler, no node
    /// addresses.
    pub fn new(node_name: impl Into<String>) -> Self {
        NodeConfig {
            node_name: node_name.into(),
            cluster_cidrs: Vec::new(),
            masquerade_all: false,
            scheduler: "rr".to_owned(),
            nodeport_addresses: NodePortAddresses::All,
            local_addresses: BTreeSet::new(),
            primary_ips: Vec::new(),
            zone: None,
            exclude_cidrs: Vec::new(),
            max_service_addresses: DEFAULT_MAX_SERVICE_ADDRESSES,
            max_virtual_services: DEFAULT_MAX_VIRTUAL_SERVICES,
        }
    }

    /// This config with the facts read from the node's own Node object:
    /// its zone label and primary addresses. Without one (not yet seen, or
    /// deleted), both are empty: hints are then ignored and `primary`
    /// node ports have no address.
    pub fn with_node(&self, node: Option<&Node>) -> NodeConfig {
        let mut config = self.clone();
        config.zone = node
            .and_then(|node| node.metadata.labels.as_ref())
            .and_then(|labels| labels.get(ZONE_LABEL))
            .filter(|zone| !zone.is_empty())
            .cloned();
        config.primary_ips = node.map(primary_ips).unwrap_or_default();
        config
    }

    /// The addresses node ports are served on, chosen by
    /// [`NodeConfig::nodeport_addresses`]. Loopback, link-local IPv6,
    /// unspecified and multicast addresses are dropped whatever the
    /// runtime passed: kube-proxy never serves node ports on them
    /// (localhost node ports would expose services to every local process).
    pub fn node_port_ips(&self) -> BTreeSet<IpAddr> {
        let candidates: Vec<IpAddr> = match &self.nodeport_addresses {
            NodePortAddresses::All => self.local_addresses.iter().copied().collect(),
            NodePortAddresses::Primary => self.primary_ips.clone(),
            NodePortAddresses::Cidrs(cidrs) => self
                .local_addresses
                .iter()
                .copied()
                .filter(|ip| cidrs.iter().any(|cidr| cidr.contains(ip)))
                .collect(),
        };
        candidates
            .into_iter()
            .filter(can_serve_node_ports)
            .collect()
    }
}

fn can_serve_node_ports(ip: &IpAddr) -> bool {
    let v6_link_local = match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || v6_link_local)
}

/// kube-proxy's `GetNodeHostIPs`: the first `InternalIP` of each family,
/// else the first `ExternalIP`.
fn primary_ips(node: &Node) -> Vec<IpAddr> {
    let addresses = node
        .status
        .as_ref()
        .and_then(|status| status.addresses.as_ref());
    let of_type = |wanted: &str| -> Vec<IpAddr> {
        addresses
            .into_iter()
            .flatten()
            .filter(|address| address.type_ == wanted)
            .filter_map(|address| address.address.parse().ok())
            .collect()
    };
    let mut ips = of_type("InternalIP");
    ips.extend(of_type("ExternalIP"));
    let mut primary: Vec<IpAddr> = Vec::new();
    for ip in ips {
        if !primary.iter().any(|p| p.is_ipv4() == ip.is_ipv4()) {
            primary.push(ip);
        }
    }
    primary
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    fn node(labels: &[(&str, &str)], addresses: &[(&str, &str)]) -> Node {
        let mut node = Node::default();
        node.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        node.status = Some(NodeStatus {
            addresses: Some(
                addresses
                    .iter()
                    .map(|(t, a)| NodeAddress {
                        type_: (*t).to_owned(),
                        address: (*a).to_owned(),
                    })
                    .collect(),
            ),
            ..NodeStatus::default()
        });
        node
    }

    #[test]
    fn zone_and_primary_addresses_come_from_the_node() {
        let node = node(
            &[(ZONE_LABEL, "zone-a")],
            &[
                ("Hostname", "node-a"),
                ("ExternalIP", "203.0.113.5"),
                ("InternalIP", "192.168.50.10"),
                ("InternalIP", "192.168.50.99"),
                ("InternalIP", "fd00:50::10"),
            ],
        );
        let config = NodeConfig::new("node-a").with_node(Some(&node));
        assert_eq!(config.zone.as_deref(), Some("zone-a"));
        assert_eq!(
            config.primary_ips,
            ["192.168.50.10", "fd00:50::10"]
                .map(|ip| ip.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        let gone = config.with_node(None);
        assert_eq!((gone.zone, gone.primary_ips), (None, Vec::new()));
    }

    #[test]
    fn node_port_ips_follow_the_mode_and_skip_loopback_and_link_local() {
        let ips = |list: &[&str]| -> BTreeSet<IpAddr> {
            list.iter().map(|ip| ip.parse().unwrap()).collect()
        };
        let mut config = NodeConfig::new("n");
        config.local_addresses = ips(&[
            "127.0.0.1",
            "192.168.50.10",
            "10.0.0.5",
            "::1",
            "fe80::1",
            "fd00:50::10",
        ]);
        config.primary_ips = ips(&["192.168.50.10", "::1"]).into_iter().collect();
        assert_eq!(
            config.node_port_ips(),
            ips(&["10.0.0.5", "192.168.50.10", "fd00:50::10"])
        );
        config.nodeport_addresses = NodePortAddresses::Primary;
        assert_eq!(config.node_port_ips(), ips(&["192.168.50.10"]));
        config.nodeport_addresses = NodePortAddresses::Cidrs(vec![
            "192.168.0.0/16".parse().unwrap(),
            "127.0.0.0/8".parse().unwrap(),
            "fe80::/10".parse().unwrap(),
        ]);
        assert_eq!(config.node_port_ips(), ips(&["192.168.50.10"]));
    }

    #[test]
    fn external_ip_is_primary_only_without_internal_ip() {
        let node = node(&[], &[("ExternalIP", "203.0.113.5")]);
        let config = NodeConfig::new("n").with_node(Some(&node));
        assert_eq!(
            config.primary_ips,
            vec!["203.0.113.5".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(config.zone, None);
    }
}
