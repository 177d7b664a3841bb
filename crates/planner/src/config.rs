//! The node-level settings that shape the desired state.

/// What `kube-ipvs` was started with, as far as the planner cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's name: endpoints with this `nodeName` are local
    /// (hairpin traffic to them needs `KUBE-LOOP-BACK`).
    pub node_name: String,
    /// `--cluster-cidr`: traffic to a service from outside these is
    /// masqueraded. Any number per family.
    pub cluster_cidrs: Vec<ipnet::IpNet>,
    /// `--masquerade-all`: masquerade all traffic to services.
    pub masquerade_all: bool,
    /// `--ipvs-scheduler` for every virtual service.
    pub scheduler: String,
}

impl NodeConfig {
    /// No cluster CIDR, no masquerade-all, the `rr` scheduler.
    pub fn new(node_name: impl Into<String>) -> Self {
        NodeConfig {
            node_name: node_name.into(),
            cluster_cidrs: Vec::new(),
            masquerade_all: false,
            scheduler: "rr".to_owned(),
        }
    }
}
