//! The cluster's namespaces and links: the lan, the nodes, the pods and the
//! outside clients, and where each sits.

use std::{path::PathBuf, time::Instant};

use super::{
    processes::{pod_server_script, start_pod_server, Server},
    Family, API, CLIENT, OTHER_CLIENT,
};
use crate::{
    daemon::{ApiServer, Daemon},
    TestNetns,
};

/// One node of the cluster: its namespace and the daemon running in it.
pub struct ClusterNode {
    // Dropped first: the daemon, then the namespace.
    pub(super) daemon: Option<Daemon>,
    pub name: String,
    pub zone: String,
    pub v4: String,
    pub v6: String,
    pub netns: TestNetns,
    /// Every daemon log of this node, oldest first (restarts add one).
    pub(super) logs: Vec<PathBuf>,
}

impl ClusterNode {
    pub fn addr(&self, family: Family) -> &str {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// The running daemon.
    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the node's daemon is stopped")
    }
}

/// A pod: its namespace behind a veth into its node, running the answering
/// server.
pub struct ClusterPod {
    // Dropped first: the server, then the namespace.
    _server: Server,
    /// `a1`, `b2`: the letter is the node (a = node-a), the digit the pod.
    pub name: String,
    /// Index into [`Cluster::nodes`].
    pub node: usize,
    pub v4: String,
    pub v6: String,
    pub netns: TestNetns,
}

impl ClusterPod {
    pub fn addr(&self, family: Family) -> &str {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }
}

/// The cluster: the lan, the API server, two nodes with their daemons, the
/// pods, and the two outside clients.
pub struct Cluster {
    // Dropped in this order: pods (their servers, their namespaces and
    // veths), nodes (daemons first), clients, the API server, the lan.
    pub pods: Vec<ClusterPod>,
    pub nodes: Vec<ClusterNode>,
    /// The allowed outside client ([`CLIENT`]).
    pub client: TestNetns,
    /// The denied outside client ([`OTHER_CLIENT`]).
    pub other_client: TestNetns,
    pub(super) api: ApiServer,
    pub(super) kubeconfig: PathBuf,
    pub lan: TestNetns,
}

/// The node names, zones and addresses, by index.
const NODES: [(&str, &str); 2] = [("node-a", "zone-a"), ("node-b", "zone-b")];

fn node_v4(index: usize) -> String {
    format!("192.168.50.{}", 10 + index)
}

fn node_v6(index: usize) -> String {
    format!("fd00:50::{}", 10 + index)
}

/// The pod gateway on every pod veth of node `index` (its pod range's .1).
fn pod_gateway(index: usize) -> String {
    format!("10.244.{}.1", index + 1)
}

impl Cluster {
    /// A cluster with the named pods (`a1`, `a2`, `b1`: node letter, pod
    /// number 1-9), both daemons synced once.
    pub fn start(pods: &[&str]) -> Cluster {
        Cluster::start_with(pods, &[])
    }

    /// Like [`start`](Self::start), with `extra_flags` added to both
    /// daemons' command lines.
    pub fn start_with(pods: &[&str], extra_flags: &[&str]) -> Cluster {
        let started = Instant::now();
        let lan = TestNetns::new("lan");
        sh(
            &lan,
            "ip link add br0 type bridge forward_delay 0
             ip addr add 192.168.50.1/24 dev br0
             ip -6 addr add fd00:50::1/64 dev br0 nodad
             ip link set br0 up",
        );
        let kubeconfig = PathBuf::from(format!("/tmp/{}-kubeconfig.yaml", lan.name()));
        let api_log = PathBuf::from(format!("/tmp/{}-apiserver.log", lan.name()));

        // Set-up is a few dozen short processes, each slow under TCG: the
        // independent ones run in parallel (the VM has several vCPUs).
        let (api, nodes, client, other_client) = std::thread::scope(|s| {
            let api = s.spawn(|| ApiServer::start(&lan, API, &kubeconfig, api_log));
            let nodes: Vec<_> = (0..NODES.len())
                .map(|i| {
                    let lan = &lan;
                    s.spawn(move || Cluster::node(lan, i))
                })
                .collect();
            let client = s.spawn(|| Cluster::outside_client(&lan, "client", CLIENT, 0));
            let other = s.spawn(|| Cluster::outside_client(&lan, "other", OTHER_CLIENT, 1));
            (
                joined(api),
                nodes.into_iter().map(joined).collect::<Vec<_>>(),
                joined(client),
                joined(other),
            )
        });

        let script = pod_server_script(&lan);
        let pods: Vec<ClusterPod> = std::thread::scope(|s| {
            let starting: Vec<_> = pods
                .iter()
                .map(|name| {
                    let (nodes, script) = (&nodes, &script);
                    s.spawn(move || Cluster::start_pod(nodes, name, script))
                })
                .collect();
            starting.into_iter().map(joined).collect()
        });
        let network_up = started.elapsed();
        let mut cluster = Cluster {
            pods,
            nodes,
            client,
            other_client,
            api,
            kubeconfig,
            lan,
        };
        for i in 0..cluster.nodes.len() {
            cluster.apply(&cluster.node_object(i));
        }
        for i in 0..cluster.nodes.len() {
            cluster.spawn_daemon(i, extra_flags);
        }
        for i in 0..cluster.nodes.len() {
            let name = cluster.nodes[i].name.clone();
            cluster.nodes[i]
                .daemon()
                .wait_for_syncs(0, &format!("the first sync of {name}"));
        }
        // Where a test's time goes under TCG (shown with its output).
        eprintln!(
            "cluster: network, pods and servers up after {:?}, daemons synced after {:?}",
            network_up,
            started.elapsed()
        );
        cluster
    }

    /// Node `index`: forwarding on, a veth into the lan, routes to the other
    /// nodes' pod ranges via those nodes.
    fn node(lan: &TestNetns, index: usize) -> ClusterNode {
        let (name, zone) = NODES[index];
        let netns = TestNetns::new(name);
        let (v4, v6) = (node_v4(index), node_v6(index));
        let mut script = format!(
            "{NO_DAD}
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
             ip link add eth0 type veth peer name n{index} netns {lan}
             ip addr add {v4}/24 dev eth0
             ip -6 addr add {v6}/64 dev eth0 nodad
             ip link set eth0 up
             ip -n {lan} link set n{index} master br0 up
            ",
            lan = lan.name(),
        );
        for other in (0..NODES.len()).filter(|&o| o != index) {
            script.push_str(&format!(
                "ip route add 10.244.{n}.0/24 via {via4}
                 ip -6 route add fd00:244:0:{n}::/64 via {via6}
                ",
                n = other + 1,
                via4 = node_v4(other),
                via6 = node_v6(other),
            ));
        }
        sh(&netns, &script);
        ClusterNode {
            daemon: None,
            name: name.to_owned(),
            zone: zone.to_owned(),
            v4,
            v6,
            netns,
            logs: Vec::new(),
        }
    }

    /// An outside client on the lan (no route to any service address until
    /// a test adds one with [`route_via`](Self::route_via)).
    fn outside_client(
        lan: &TestNetns,
        label: &str,
        (v4, v6): (&str, &str),
        index: usize,
    ) -> TestNetns {
        let netns = TestNetns::new(label);
        sh(
            &netns,
            &format!(
                "{NO_DAD}
                 ip link add eth0 type veth peer name c{index} netns {lan}
                 ip addr add {v4}/24 dev eth0
                 ip -6 addr add {v6}/64 dev eth0 nodad
                 ip link set eth0 up
                 ip -n {lan} link set c{index} master br0 up",
                lan = lan.name(),
            ),
        );
        netns
    }

    /// Pod `name` (`a1`…) behind its node, its server listening.
    fn start_pod(nodes: &[ClusterNode], name: &str, script: &std::path::Path) -> ClusterPod {
        let mut chars = name.chars();
        let (letter, digit) = (chars.next(), chars.next().and_then(|c| c.to_digit(10)));
        let (Some(letter @ 'a'..='z'), Some(number @ 1..=9), None) = (letter, digit, chars.next())
        else {
            panic!("pod name {name:?}: want a node letter and a digit 1-9 (a1, b2)");
        };
        let node_index = letter as usize - 'a' as usize;
        let node = nodes
            .get(node_index)
            .unwrap_or_else(|| panic!("pod {name}: no node {letter}"));
        let host = 10 + number;
        let range = node_index + 1;
        let (v4, v6) = (
            format!("10.244.{range}.{host}"),
            format!("fd00:244:0:{range}::{host}"),
        );
        let netns = TestNetns::new(&format!("pod-{name}"));
        let gateway = pod_gateway(node_index);
        let veth = format!("p-{name}");
        // One shell in the node for both ends (`ip -n` reaches the pod).
        // The pod's addresses skip duplicate address detection (nodad); its
        // gateway is the node side's fe80::1, also nodad.
        sh(
            &node.netns,
            &format!(
                "ip link add {veth} type veth peer name eth0 netns {pod}
                 ip link set {veth} up
                 ip addr add {gateway}/32 dev {veth}
                 ip -6 addr add fe80::1/64 dev {veth} nodad
                 ip route add {v4}/32 dev {veth}
                 ip -6 route add {v6}/128 dev {veth}
                 ip -n {pod} addr add {v4}/32 dev eth0
                 ip -n {pod} -6 addr add {v6}/128 dev eth0 nodad
                 ip -n {pod} link set eth0 up
                 ip -n {pod} route add {gateway} dev eth0
                 ip -n {pod} route add default via {gateway}
                 ip -n {pod} -6 route add default via fe80::1 dev eth0",
                pod = netns.name(),
            ),
        );
        let server = start_pod_server(&netns, name, script);
        ClusterPod {
            _server: server,
            name: name.to_owned(),
            node: node_index,
            v4,
            v6,
            netns,
        }
    }

    /// The pod named `name`.
    pub fn pod(&self, name: &str) -> &ClusterPod {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// Routes `prefix` (a service address outside every subnet: an LB or
    /// external IP) from `client` via node `index`.
    pub fn route_via(&self, client: &TestNetns, prefix: &str, index: usize) {
        let via = self.nodes[index].addr(Family::of(prefix)).to_owned();
        client.exec(&["ip", "route", "add", prefix, "via", &via]);
    }
}

/// The result of a set-up thread; its panic, if any, goes on in this one.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Blocks IPv6 duplicate address detection for links created afterwards in
/// the namespace: addresses are usable at once instead of after ~1 s.
const NO_DAD: &str = "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0";

/// Runs `script` (one command a line) with `sh -e` in `netns`: one process
/// per namespace set-up step instead of one per command (each costs under
/// TCG).
fn sh(netns: &TestNetns, script: &str) {
    netns.exec(&["sh", "-ec", script]);
}
