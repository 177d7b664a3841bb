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

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::{
    daemon::{read_log, ApiServer, Daemon},
    eventually,
    operator::{self, without_counters, IpvsTable},
    TestNetns,
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

/// One node of the cluster: its namespace and the daemon running in it.
pub struct ClusterNode {
    // Dropped first: the daemon, then the namespace.
    daemon: Option<Daemon>,
    pub name: String,
    pub zone: String,
    pub v4: String,
    pub v6: String,
    pub netns: TestNetns,
    /// Every daemon log of this node, oldest first (restarts add one).
    logs: Vec<PathBuf>,
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

/// A background process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    api: ApiServer,
    kubeconfig: PathBuf,
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

        // This cluster's copy (tests may run in parallel), written before
        // any pod's python reads it.
        let script = PathBuf::from(format!("/tmp/{}-pod-server.py", lan.name()));
        std::fs::write(&script, SERVER_PY).expect("write the pod server script");
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
        let log = std::fs::File::create(server_log(&netns)).expect("server log");
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg("python3")
            .arg(script)
            .args([name, &POD_PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn the pod server");
        let mut ready = BufReader::new(child.stdout.take().expect("piped stdout"));
        let server = Server(child);
        // The server says `ready` once it listens (EOF if it died).
        let mut line = String::new();
        let _ = ready.read_line(&mut line);
        assert_eq!(
            line.trim(),
            "ready",
            "the server of pod {name} did not start: {}",
            std::fs::read_to_string(server_log(&netns)).unwrap_or_default()
        );
        ClusterPod {
            _server: server,
            name: name.to_owned(),
            node: node_index,
            v4,
            v6,
            netns,
        }
    }

    /// The Node object of node `index`: its zone label and InternalIPs.
    pub fn node_object(&self, index: usize) -> Value {
        let node = &self.nodes[index];
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {
                    "kubernetes.io/hostname": node.name,
                    "topology.kubernetes.io/zone": node.zone,
                },
            },
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": node.v4},
                    {"type": "InternalIP", "address": node.v6},
                    {"type": "Hostname", "address": node.name},
                ],
            },
        })
    }

    fn spawn_daemon(&mut self, index: usize, extra_flags: &[&str]) {
        let node = &mut self.nodes[index];
        let log = PathBuf::from(format!(
            "/tmp/{}-kube-ipvs-{}.log",
            node.netns.name(),
            node.logs.len() + 1
        ));
        let mut args = vec![
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--node-name",
            &node.name,
            "--cluster-cidr",
            CLUSTER_CIDR,
            "--sync-period",
            "3s",
            "-v",
        ];
        args.extend_from_slice(extra_flags);
        node.daemon = Some(Daemon::spawn(&node.netns, &[], &args, log.clone()));
        node.logs.push(log);
    }

    /// Stops node `index`'s daemon with SIGTERM (it leaves the kernel as
    /// it is), starts a new one with the same flags plus `extra_flags`, and
    /// waits for the new one's first sync.
    pub fn restart_daemon(&mut self, index: usize, extra_flags: &[&str]) {
        let status = self.nodes[index].daemon().terminate();
        assert!(
            status.success(),
            "kube-ipvs exited with {status}\n{}",
            self.logs()
        );
        self.nodes[index].daemon = None;
        self.spawn_daemon(index, extra_flags);
        let name = self.nodes[index].name.clone();
        self.nodes[index].daemon().wait_for_syncs(
            0,
            &format!("the first sync of the restarted daemon of {name}"),
        );
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

    // ---- the cluster, through the fake API server ----

    /// Creates or replaces `object` (a Service, EndpointSlice or Node).
    pub fn apply(&self, object: &Value) {
        let body = object.to_string();
        let path = object_path(object);
        let (status, answer) = api_request(&self.lan, "PUT", &path, Some(&body))
            .unwrap_or_else(|e| panic!("PUT {path}: {e}\n{}", self.logs()));
        assert!(
            (200..300).contains(&status),
            "PUT {path}: {status} {answer}"
        );
    }

    /// Deletes `object` (only its kind, namespace and name are used).
    pub fn delete(&self, object: &Value) {
        let path = object_path(object);
        let (status, answer) = api_request(&self.lan, "DELETE", &path, None)
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}\n{}", self.logs()));
        assert!(
            (200..300).contains(&status),
            "DELETE {path}: {status} {answer}"
        );
    }

    // ---- waiting and the operator's view ----

    /// Polls `check` until it holds; panics after a bounded wait with every
    /// daemon's log and the API server's.
    pub fn wait_for(&self, what: &str, check: impl FnMut() -> bool) {
        if !eventually(TRIES, check) {
            panic!("timed out waiting for {what}\n{}", self.logs());
        }
    }

    /// `ipvsadm -Ln` on node `index`.
    pub fn ipvsadm(&self, index: usize) -> IpvsTable {
        IpvsTable::read(&self.nodes[index].netns)
    }

    /// Waits until node `index`'s virtual service `service` (`TCP
    /// 10.96.0.10:80`, single-spaced) has exactly the real servers `want`
    /// (each `addr:port weight`, e.g. `10.244.1.11:8080 1`), in any order;
    /// returns its routes (see [`routes`]).
    pub fn wait_for_real_servers(&self, index: usize, service: &str, want: &[&str]) -> Vec<String> {
        let mut want: Vec<String> = want.iter().map(|rs| real_server_line(rs)).collect();
        want.sort();
        let mut last = None;
        let held = eventually(TRIES, || {
            last = routes(&self.ipvsadm(index), service);
            last.as_ref().is_some_and(|r| r[1..] == want[..])
        });
        if !held {
            panic!(
                "timed out waiting for {service} on {} with real servers {want:?}; last seen: {last:?}\n{}",
                self.nodes[index].name,
                self.logs()
            );
        }
        last.unwrap()
    }

    /// `ipset save` on node `index` (seeds cut, sorted).
    pub fn ipset_save(&self, index: usize) -> Vec<String> {
        operator::ipset_save(&self.nodes[index].netns)
    }

    /// Waits until node `index`'s `ipset save` has a line starting with
    /// each of `prefixes` (entries carry a comment after their key).
    pub fn wait_for_set_entries(&self, index: usize, prefixes: &[&str]) {
        let name = &self.nodes[index].name;
        self.wait_for(&format!("{prefixes:?} in ipset save on {name}"), || {
            let saved = self.ipset_save(index);
            prefixes
                .iter()
                .all(|p| saved.iter().any(|line| line.starts_with(p)))
        });
    }

    /// `nft list table <family> kube-ipvs` on node `index`.
    pub fn nft_table(&self, index: usize, family: Family) -> String {
        let family = match family {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        self.nodes[index]
            .netns
            .exec(&["nft", "list", "table", family, "kube-ipvs"])
    }

    /// The rules of `chain` in node `index`'s `kube-ipvs` table of
    /// `family`, as `nft` prints them (trimmed, base chain's type line
    /// included). nft shows an xt set match as `xt match set` without the
    /// set; the sets are checked through `ipset save`.
    pub fn nft_chain(&self, index: usize, family: Family, chain: &str) -> Vec<String> {
        chain_rules(&self.nft_table(index, family), chain)
    }

    /// Every daemon's log and the API server's, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = format!("--- fake-apiserver log:\n{}\n", self.api.log());
        for node in &self.nodes {
            for (n, log) in node.logs.iter().enumerate() {
                text.push_str(&format!(
                    "--- kube-ipvs log of {} (daemon {}):\n{}\n",
                    node.name,
                    n + 1,
                    read_log(log)
                ));
            }
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
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

fn server_log(netns: &TestNetns) -> String {
    format!("/tmp/{}-server.log", netns.name())
}

/// The pod server: HTTP/1.1 with keep-alive (a long-lived connection can
/// ask many times) on [::]:PORT for IPv4 and IPv6, answering
/// `<pod> <client address>`; prints `ready` once it listens. `server_bind`
/// skips HTTPServer's getfqdn, a DNS lookup that hangs without a resolver.
const SERVER_PY: &str = r#"
import http.server, socket, socketserver, sys

name, port = sys.argv[1], int(sys.argv[2])

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        client = self.client_address[0]
        if client.startswith("::ffff:"):
            client = client[len("::ffff:"):]
        body = f"{name} {client}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = name, port

server = Server(("::", port), Handler)
print("ready", flush=True)
server.serve_forever()
"#;

// ---- Kubernetes objects ----

/// A Service `default/<name>` with one TCP port `http`: `port` → the pods'
/// 8080, of the families of `cluster_ips` (the first is primary).
#[derive(Debug, Clone)]
pub struct ServiceObject(pub Value);

impl ServiceObject {
    pub fn cluster_ip(name: &str, cluster_ips: &[&str], port: u16) -> ServiceObject {
        let families: Vec<&str> = cluster_ips
            .iter()
            .map(|ip| Family::of(ip).k8s_name())
            .collect();
        let policy = if cluster_ips.len() > 1 {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        ServiceObject(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": cluster_ips[0],
                "clusterIPs": cluster_ips,
                "ipFamilies": families,
                "ipFamilyPolicy": policy,
                "ports": [{"name": "http", "protocol": "TCP", "port": port, "targetPort": POD_PORT}],
                "sessionAffinity": "None",
            },
        }))
    }

    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap()
    }

    /// Type NodePort (unless already LoadBalancer) with `node_port`.
    pub fn node_port(mut self, node_port: u16) -> ServiceObject {
        if self.0["spec"]["type"] != "LoadBalancer" {
            self.0["spec"]["type"] = json!("NodePort");
        }
        self.0["spec"]["ports"][0]["nodePort"] = json!(node_port);
        self
    }

    /// Type LoadBalancer with `node_port` and the ingress IPs in its status.
    pub fn load_balancer(mut self, node_port: u16, ingress: &[&str]) -> ServiceObject {
        self.0["spec"]["type"] = json!("LoadBalancer");
        let ingress: Vec<Value> = ingress.iter().map(|ip| json!({"ip": ip})).collect();
        self.0["status"] = json!({"loadBalancer": {"ingress": ingress}});
        self.node_port(node_port)
    }

    pub fn external_ips(mut self, ips: &[&str]) -> ServiceObject {
        self.0["spec"]["externalIPs"] = json!(ips);
        self
    }

    /// externalTrafficPolicy Local, with a health-check node port.
    pub fn external_local(mut self, health_check_node_port: u16) -> ServiceObject {
        self.0["spec"]["externalTrafficPolicy"] = json!("Local");
        self.0["spec"]["healthCheckNodePort"] = json!(health_check_node_port);
        self
    }

    /// internalTrafficPolicy Local.
    pub fn internal_local(mut self) -> ServiceObject {
        self.0["spec"]["internalTrafficPolicy"] = json!("Local");
        self
    }

    pub fn source_ranges(mut self, ranges: &[&str]) -> ServiceObject {
        self.0["spec"]["loadBalancerSourceRanges"] = json!(ranges);
        self
    }

    /// sessionAffinity ClientIP with `timeout_seconds`.
    pub fn client_ip_affinity(mut self, timeout_seconds: u32) -> ServiceObject {
        self.0["spec"]["sessionAffinity"] = json!("ClientIP");
        self.0["spec"]["sessionAffinityConfig"] =
            json!({"clientIP": {"timeoutSeconds": timeout_seconds}});
        self
    }

    pub fn annotate(mut self, key: &str, value: &str) -> ServiceObject {
        self.0["metadata"]["annotations"][key] = json!(value);
        self
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: String,
    pub node: String,
    pub zone: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub for_zones: Vec<String>,
}

impl Endpoint {
    /// `pod`'s address of `family`, ready, on the pod's node and zone.
    pub fn of(cluster: &Cluster, pod: &str, family: Family) -> Endpoint {
        let pod = cluster.pod(pod);
        let node = &cluster.nodes[pod.node];
        Endpoint {
            addr: pod.addr(family).to_owned(),
            node: node.name.clone(),
            zone: node.zone.clone(),
            ready: true,
            serving: true,
            terminating: false,
            for_zones: Vec::new(),
        }
    }

    /// Terminating but still serving (not ready).
    pub fn terminating(mut self) -> Endpoint {
        self.ready = false;
        self.serving = true;
        self.terminating = true;
        self
    }

    /// A topology hint: `forZones`.
    pub fn for_zones(mut self, zones: &[&str]) -> Endpoint {
        self.for_zones = zones.iter().map(|z| z.to_string()).collect();
        self
    }

    fn to_json(&self) -> Value {
        let mut endpoint = json!({
            "addresses": [self.addr],
            "conditions": {"ready": self.ready, "serving": self.serving, "terminating": self.terminating},
            "nodeName": self.node,
            "zone": self.zone,
        });
        if !self.for_zones.is_empty() {
            let zones: Vec<Value> = self.for_zones.iter().map(|z| json!({"name": z})).collect();
            endpoint["hints"] = json!({"forZones": zones});
        }
        endpoint
    }
}

/// The EndpointSlice `<service>-v4` / `-v6` of `service` (port `http` TCP
/// 8080).
pub fn slice(service: &str, family: Family, endpoints: &[Endpoint]) -> Value {
    let suffix = match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    };
    let endpoints: Vec<Value> = endpoints.iter().map(Endpoint::to_json).collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-{suffix}"),
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": family.k8s_name(),
        "ports": [{"name": "http", "protocol": "TCP", "port": POD_PORT}],
        "endpoints": endpoints,
    })
}

/// The REST path of an object.
fn object_path(object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().expect("metadata.name");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    match object["kind"].as_str().expect("kind") {
        "Service" => format!("/api/v1/namespaces/{namespace}/services/{name}"),
        "EndpointSlice" => {
            format!("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}")
        }
        "Node" => format!("/api/v1/nodes/{name}"),
        kind => panic!("no path for kind {kind}"),
    }
}

// ---- traffic ----

/// What a pod's server answered: its name and the client address it saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Answer {
    pub pod: String,
    pub client: String,
}

impl Answer {
    fn parse(body: &str) -> io::Result<Answer> {
        let mut words = body.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(pod), Some(client), None) => Ok(Answer {
                pod: pod.to_owned(),
                client: client.to_owned(),
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a pod answer: {body:?}"),
            )),
        }
    }
}

/// One HTTP GET of `/` at `addr` (`ip:port`, `[ip6]:port`) from `netns` on
/// a fresh connection; `None` when it cannot connect or gets no answer.
pub fn http_from(netns: &TestNetns, addr: &str) -> Option<Answer> {
    let (status, body) = request(netns, addr, "GET", "/", None).ok()?;
    (status == 200).then(|| Answer::parse(&body).ok()).flatten()
}

/// The answers of `count` requests ([`http_from`]) from `netns` to `addr`.
pub fn answers(netns: &TestNetns, addr: &str, count: usize) -> Vec<Option<Answer>> {
    (0..count).map(|_| http_from(netns, addr)).collect()
}

/// Whether a TCP connection from `netns` to `addr` is refused (RST or
/// ICMP port unreachable), as opposed to accepted or dropped.
pub fn tcp_refused(netns: &TestNetns, addr: &str) -> bool {
    matches!(connect(netns, addr), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
}

/// Whether a TCP connection from `netns` to `addr` is established.
pub fn tcp_connects(netns: &TestNetns, addr: &str) -> bool {
    connect(netns, addr).is_ok()
}

fn connect(netns: &TestNetns, addr: &str) -> io::Result<TcpStream> {
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("socket address {addr:?}: {e}"));
    netns.run(move || async move {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    })
}

/// One HTTP/1.1 request from `netns` to `addr` on a fresh connection:
/// (status, body).
pub fn request(
    netns: &TestNetns,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    let mut stream = connect(netns, addr)?;
    write_request(&mut stream, addr, method, path, body, false)?;
    read_response(&mut stream)
}

fn api_request(
    lan: &TestNetns,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> io::Result<(u16, String)> {
    request(lan, API, method, path, body)
}

fn write_request(
    stream: &mut TcpStream,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n");
    if let Some(body) = body {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body.unwrap_or(""));
    stream.write_all(text.as_bytes())
}

/// Reads one response: the status code and the body (Content-Length
/// bytes, or everything up to the end of the stream without one).
fn read_response(stream: &mut TcpStream) -> io::Result<(u16, String)> {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("status line {status_line:?}"),
            )
        })?;
    let mut length = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "headers cut"));
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A long-lived HTTP/1.1 connection that asks again and again on the same
/// TCP connection. Dropping it closes with RST (SO_LINGER 0), so IPVS
/// forgets the connection within seconds instead of keeping it in
/// TIME_WAIT for two minutes.
pub struct LongConnection {
    stream: TcpStream,
    host: String,
}

impl LongConnection {
    pub fn open(netns: &TestNetns, addr: &str) -> io::Result<LongConnection> {
        let target: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("socket address {addr:?}: {e}"));
        let stream = netns.run(move || async move {
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect"))??;
            stream.set_zero_linger()?;
            let stream = stream.into_std()?;
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok::<_, io::Error>(stream)
        })?;
        Ok(LongConnection {
            stream,
            host: addr.to_owned(),
        })
    }

    /// One more request on this connection.
    pub fn ask(&mut self) -> io::Result<Answer> {
        write_request(&mut self.stream, &self.host, "GET", "/", None, true)?;
        let (status, body) = read_response(&mut self.stream)?;
        if status != 200 {
            return Err(io::Error::other(format!("status {status}: {body}")));
        }
        Answer::parse(&body)
    }

    /// Closes the connection with RST.
    pub fn reset(self) {
        drop(self.stream);
    }
}

/// The lines inside `chain NAME { … }` of `nft list table` text, trimmed;
/// empty when the chain is missing.
pub fn chain_rules(table: &str, chain: &str) -> Vec<String> {
    let header = format!("chain {chain} {{");
    table
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| line.trim() != "}")
        .map(|line| line.trim().to_owned())
        .collect()
}

// ---- ipvsadm ----

/// The block of `service` (`TCP 10.96.0.10:80`, single-spaced, matched as
/// the start of the service line) in `table` with the counters cut and the
/// real servers sorted: `["TCP 10.96.0.10:80 rr", "-> 10.244.1.11:8080
/// Masq 1", …]`.
pub fn routes(table: &IpvsTable, service: &str) -> Option<Vec<String>> {
    let prefix = format!("{service} ");
    table
        .routes()
        .into_iter()
        .find(|block| block[0].starts_with(&prefix))
}

/// `addr:port weight` → `-> addr:port Masq weight` (the form of
/// [`routes`]); `[fd00::1]:8080 0` for IPv6.
pub fn real_server_line(real_server: &str) -> String {
    let (addr, weight) = real_server
        .split_once(' ')
        .unwrap_or_else(|| panic!("real server {real_server:?}: want `addr:port weight`"));
    without_counters(&format!("  -> {addr} Masq {weight}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_name_and_client() {
        assert_eq!(
            Answer::parse("a1 192.168.50.100\n").unwrap(),
            Answer {
                pod: "a1".into(),
                client: "192.168.50.100".into()
            }
        );
        assert!(Answer::parse("<html>").is_err());
    }

    #[test]
    fn object_paths_follow_the_kind() {
        let service = ServiceObject::cluster_ip("web", &["10.96.0.10"], 80);
        assert_eq!(
            object_path(&service.0),
            "/api/v1/namespaces/default/services/web"
        );
        assert_eq!(
            object_path(&slice("web", Family::V6, &[])),
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-v6"
        );
    }

    #[test]
    fn dual_stack_services_name_both_families() {
        let service = ServiceObject::cluster_ip("web", &["10.96.0.10", "fd00:96::10"], 80)
            .load_balancer(30080, &["192.168.60.1"])
            .external_local(30300);
        let spec = &service.0["spec"];
        assert_eq!(spec["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(spec["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(spec["type"], "LoadBalancer");
        assert_eq!(spec["ports"][0]["nodePort"], 30080);
        assert_eq!(spec["healthCheckNodePort"], 30300);
        assert_eq!(
            service.0["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "192.168.60.1"}])
        );
    }

    #[test]
    fn routes_find_a_block_with_counters_cut() {
        let table = IpvsTable::parse(
            "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.10:80 rr
  -> 10.244.2.11:8080             Masq    0      1          0
  -> 10.244.1.11:8080             Masq    1      0          3
TCP  10.96.0.100:80 rr
",
        );
        assert_eq!(
            routes(&table, "TCP 10.96.0.10:80"),
            Some(vec![
                "TCP 10.96.0.10:80 rr".to_owned(),
                real_server_line("10.244.1.11:8080 1"),
                real_server_line("10.244.2.11:8080 0"),
            ])
        );
        assert_eq!(
            routes(&table, "TCP 10.96.0.100:80"),
            Some(vec!["TCP 10.96.0.100:80 rr".to_owned()])
        );
        assert_eq!(routes(&table, "TCP 10.96.0.1:80"), None);
        assert_eq!(
            real_server_line("[fd00::1]:8080 0"),
            "-> [fd00::1]:8080 Masq 0"
        );
    }

    #[test]
    fn chain_rules_are_the_lines_of_one_chain() {
        let table = "table ip kube-ipvs {
\tchain source-ranges {
\t\txt match set return
\t\tdrop
\t}

\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
}
";
        assert_eq!(
            chain_rules(table, "source-ranges"),
            vec!["xt match set return", "drop"]
        );
        assert_eq!(
            chain_rules(table, "nat-output"),
            vec![
                "type nat hook output priority -100; policy accept;",
                "jump services"
            ]
        );
        assert!(chain_rules(table, "node-port").is_empty());
    }

    #[test]
    fn sockets_bracket_ipv6() {
        assert_eq!(socket("10.96.0.10", 80), "10.96.0.10:80");
        assert_eq!(socket("fd00:96::10", 80), "[fd00:96::10]:80");
    }
}
