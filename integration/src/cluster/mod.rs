//! A multi-node cluster in network namespaces, for the end-to-end tests:
//! every Service feature checked with real traffic between nodes, pods and
//! outside clients, and by each node's `ipvsadm -Ln` / `ipset` / `nft`.
//!
//! Topology (one per test, all torn down on drop):
//!
//! ```text
//!   lan netns: bridge br0 192.168.50.1/24 fd00:50::1/64, fake API server on 192.168.50.1:6443
//!     ├─ node-a  eth0 192.168.50.10 fd00:50::10   kube-ipvs --node-name node-a   pods 10.244.1.x fd00:244:0:1::x
//!     ├─ node-b  eth0 192.168.50.11 fd00:50::11   kube-ipvs --node-name node-b   pods 10.244.2.x fd00:244:0:2::x
//!     ├─ client  eth0 192.168.50.100 fd00:50::100 (the allowed outside client)
//!     └─ other   eth0 192.168.50.101 fd00:50::101 (the denied one)
//! ```
//!
//! Each node routes the other node's pod ranges via that node (what a CNI's
//! routes would do). A pod sits behind a veth whose node side holds the
//! pod gateway (10.244.N.1, fe80::1) and runs a small HTTP/1.1 server on
//! :8080 (IPv4 and IPv6, keep-alive) answering `<pod> <client address it
//! saw>`, so tests see both who answered and whether the source was
//! masqueraded.
//!
//! Kubernetes objects are written to the fake API server with plain HTTP
//! from inside the lan namespace; both daemons list and watch it with their
//! real kube-rs clients.

mod checks;
mod objects;
mod processes;
mod topology;
mod traffic;

use std::time::Duration;

pub use self::{
    checks::{chain_rules, real_server_line, routes},
    objects::{slice, Endpoint, ServiceObject},
    topology::{Cluster, ClusterNode, ClusterPod},
    traffic::{answers, http_from, request, tcp_connects, tcp_refused, Answer, LongConnection},
};

/// Where the fake API server listens, on the lan bridge.
pub const API: &str = "192.168.50.1:6443";
/// The daemons' `--cluster-cidr`: traffic from outside it is masqueraded.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16,fd00:244::/56";
/// The port every pod's server listens on.
pub const POD_PORT: u16 = 8080;
/// The outside clients' addresses: the allowed one and the denied one.
pub const CLIENT: (&str, &str) = ("192.168.50.100", "fd00:50::100");
pub const OTHER_CLIENT: (&str, &str) = ("192.168.50.101", "fd00:50::101");

/// Bounded waits: tries × [`crate::PAUSE`] (everything runs about 5x slower
/// under the VM's TCG; only content is asserted, never time).
const TRIES: usize = 120;
/// How long a connection attempt may take before it counts as dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an answer may take once connected.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// An address family of the dual-stack cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: &str) -> Family {
        if ip.contains(':') {
            Family::V6
        } else {
            Family::V4
        }
    }

    fn k8s_name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// `ip:port` or `[ip6]:port`.
pub fn socket(ip: &str, port: u16) -> String {
    match Family::of(ip) {
        Family::V4 => format!("{ip}:{port}"),
        Family::V6 => format!("[{ip}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_bracket_ipv6() {
        assert_eq!(socket("10.96.0.10", 80), "10.96.0.10:80");
        assert_eq!(socket("fd00:96::10", 80), "[fd00:96::10]:80");
    }
}
