//! Graceful termination on a real kernel: the `kube-ipvs` daemon (fed by
//! `--manifests`) drains a removed TCP endpoint at weight 0 while its
//! connection lives, deletes it once the connection is gone (also across a
//! daemon restart in the middle, and after `--ipvs-graceful-period` with
//! the connection still open), and deletes a removed UDP endpoint at once
//! together with its conntrack flows. Checked with `ipvsadm -Ln`,
//! `conntrack -L` and real connections from the node to the cluster IP.
//!
//! The TCP clients are small python3 programs: a long-lived one that keeps
//! one connection and asks "who are you" every 0.5 s, and one-shot ones.
//! Both close with SO_LINGER 0 (a RST), so IPVS forgets the connection
//! within seconds (its CLOSE state) rather than after TIME_WAIT's 2 min.
//!
//! Last, ownership of virtual services that are not on `kube-ipvs0`: the
//! node-port and externalIP services our sets list are ours to remove (in
//! a sync and with `--cleanup`); foreign ones (on the node's address, or
//! on the node port's number elsewhere) are not.

mod daemon_support;

use std::{
    fs::File,
    io::Write,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
};

use daemon_support::{udp_echo, Node as ApiNode};
use kipvs_integration::{
    daemon::{read_log, Daemon, NODE_NAME},
    eventually,
    operator::IpvsTable,
    pod, Pod, TestNetns,
};
use serde_json::{json, Value};

/// The echo service: 10.96.0.20 TCP 90 → 9000 on the pods.
const VIP: &str = "10.96.0.20";
const PORT: &str = "90";
const BLOCK: &str = "TCP  10.96.0.20:90";
/// The UDP service: 10.96.0.53 UDP 53 → 5353 on the pods.
const UDP_VIP: &str = "10.96.0.53";
const UDP_BLOCK: &str = "UDP  10.96.0.53:53";

/// Bounded waits: tries × 0.5 s (everything is ~5x slower under TCG).
const TRIES: usize = 120;

/// Answers one line per line received with its name, on :9000, one
/// thread per connection.
const LINE_SERVER: &str = r#"
import socket, sys, threading
name = sys.argv[1]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", 9000))
listener.listen(64)
def serve(conn):
    try:
        for _ in conn.makefile("rb"):
            conn.sendall((name + "\n").encode())
    except OSError:
        pass
    finally:
        conn.close()
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// One connection, a question every 0.5 s, each answer printed (`error`
/// when none came); on a line (or EOF) on stdin: close with a RST, print
/// `closed`, exit.
const LONG_CLIENT: &str = r#"
import select, socket, struct, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
answers = conn.makefile("rb")
while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0.5)
    if ready:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        print("closed", flush=True)
        break
    try:
        conn.sendall(b"ping\n")
        answer = answers.readline().decode().strip()
    except OSError:
        answer = ""
    print(answer or "error", flush=True)
"#;

/// `argv[3]` connections, one question each, closed with a RST; each
/// answer printed (`error` when none came).
const ONE_SHOT_CLIENT: &str = r#"
import socket, struct, sys
for _ in range(int(sys.argv[3])):
    try:
        conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        conn.sendall(b"ping\n")
        answer = conn.makefile("rb").readline().decode().strip()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        answer = ""
    print(answer or "error", flush=True)
"#;

/// A process killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python(netns: &TestNetns, script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", netns.name(), "python3", "-u", "-c", script])
        .args(args);
    command
}

/// The line server in a pod, once it listens.
fn line_server(pod: &Pod, name: &str) -> Process {
    let child = python(&pod.netns, LINE_SERVER, &[name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the line server");
    let server = Process(child);
    let listening = eventually(TRIES, || {
        pod.netns
            .exec(&["ss", "-Hltn", "sport", "9000"])
            .contains("9000")
    });
    assert!(
        listening,
        "line server never listened in {}",
        pod.netns.name()
    );
    server
}

/// The long-lived client: its answers so far (from its output file).
struct LongClient {
    process: Process,
    stdin: Option<ChildStdin>,
    output: PathBuf,
}

impl LongClient {
    fn start(node: &TestNetns) -> LongClient {
        let output = PathBuf::from(format!("/tmp/{}-long-client.out", node.name()));
        let file = File::create(&output).unwrap();
        let mut child = python(node, LONG_CLIENT, &[VIP, PORT])
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn the long client");
        let stdin = child.stdin.take();
        LongClient {
            process: Process(child),
            stdin,
            output,
        }
    }

    fn answers(&self) -> Vec<String> {
        read_log(&self.output).lines().map(str::to_owned).collect()
    }

    /// Waits for `more` answers after the first `seen`, and returns them.
    fn next_answers(&self, seen: usize, more: usize) -> Vec<String> {
        let arrived = eventually(TRIES, || self.answers().len() >= seen + more);
        assert!(arrived, "long client stalled: {:?}", self.answers());
        self.answers()[seen..seen + more].to_vec()
    }

    /// Closes the connection with a RST; waits for the client to exit.
    fn close(&mut self) {
        let mut stdin = self.stdin.take().expect("open stdin");
        stdin.write_all(b"close\n").unwrap();
        drop(stdin);
        let exited = eventually(TRIES, || {
            self.process.0.try_wait().expect("try_wait").is_some()
        });
        assert!(exited, "long client did not exit: {:?}", self.answers());
        assert_eq!(self.answers().last().map(String::as_str), Some("closed"));
    }
}

/// Answers of `count` one-shot connections from `node`.
fn one_shot(node: &TestNetns, count: usize) -> Vec<String> {
    let count = count.to_string();
    node.exec(&["python3", "-u", "-c", ONE_SHOT_CLIENT, VIP, PORT, &count])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A node namespace (address 192.168.77.1), pod1 and pod2 each running the
/// line server (`pod1`/`pod2` on :9000), the cluster in a manifests
/// directory: the Node object and the echo service with both pods.
struct Cluster {
    // Dropped first: servers, pods, then the node namespace.
    _servers: Vec<Process>,
    pods: Vec<Pod>,
    node: TestNetns,
    manifests: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let node = TestNetns::new("graceful");
        node.exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lo"]);
        // UDP flows outlive the slowest test step (TCG): only kube-ipvs
        // removes them, never their timeout.
        node.exec(&[
            "sysctl",
            "-qw",
            "net.netfilter.nf_conntrack_udp_timeout=600",
        ]);
        let pods = vec![pod(&node, 1, "10.244.1.2"), pod(&node, 2, "10.244.1.3")];
        let servers = vec![line_server(&pods[0], "pod1"), line_server(&pods[1], "pod2")];
        let manifests = PathBuf::from(format!("/tmp/{}-manifests", node.name()));
        std::fs::create_dir_all(&manifests).unwrap();
        let cluster = Cluster {
            _servers: servers,
            pods,
            node,
            manifests,
        };
        cluster.write(
            "node",
            &json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
            }),
        );
        cluster.write("echo", &service("echo", VIP, "TCP", 90, 9000));
        cluster.set_endpoints("echo", "TCP", 9000, &["10.244.1.2", "10.244.1.3"]);
        cluster
    }

    /// Writes `<name>.yaml` (JSON is YAML) atomically: the daemon polls
    /// the directory and must never read half a file.
    fn write(&self, name: &str, object: &Value) {
        let tmp = self.manifests.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(object).unwrap()).unwrap();
        std::fs::rename(&tmp, self.manifests.join(format!("{name}.yaml"))).unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.manifests.join(format!("{name}.yaml"))).unwrap();
    }

    /// The EndpointSlice of service `name` (file `<name>-slice.yaml`).
    fn set_endpoints(&self, name: &str, protocol: &str, port: i32, endpoints: &[&str]) {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|addr| {
                json!({"addresses": [addr], "conditions": {"ready": true}, "nodeName": NODE_NAME})
            })
            .collect();
        self.write(
            &format!("{name}-slice"),
            &json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{name}-slice"), "namespace": "default",
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "ports": [{"name": "p", "protocol": protocol, "port": port}],
                "endpoints": endpoints,
            }),
        );
    }

    /// `kube-ipvs --manifests DIR` as node-a, debug logs, a full resync
    /// every `sync_period`, then `extra`; logging to
    /// `/tmp/<node>-<label>.log`.
    fn start_daemon(&self, label: &str, sync_period: &str, extra: &[&str]) -> Daemon {
        let manifests = self.manifests.to_str().unwrap();
        let mut args = vec![
            "--manifests",
            manifests,
            "--node-name",
            NODE_NAME,
            "--cluster-cidr",
            "10.244.0.0/16",
            "--sync-period",
            sync_period,
            "-v",
        ];
        args.extend_from_slice(extra);
        let log = PathBuf::from(format!("/tmp/{}-{label}.log", self.node.name()));
        Daemon::spawn(&self.node, &[], &args, log)
    }

    fn ipvsadm(&self) -> IpvsTable {
        IpvsTable::read(&self.node)
    }

    /// The real servers of `block` as `(address:port, weight, active)`.
    fn real_servers(&self, block: &str) -> Vec<(String, String, String)> {
        self.ipvsadm()
            .block(block)
            .map(|lines| {
                lines[1..]
                    .iter()
                    .map(|line| {
                        let f: Vec<&str> = line.split_whitespace().collect();
                        (f[1].to_owned(), f[3].to_owned(), f[4].to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wait_for(&self, daemon: &Daemon, what: &str, check: impl FnMut() -> bool) {
        if !eventually(TRIES, check) {
            panic!(
                "timed out waiting for {what}\nipvsadm:\n{}\n--- kube-ipvs log:\n{}",
                self.node.exec(&["ipvsadm", "-Ln"]),
                daemon.log()
            );
        }
    }
}

fn service(name: &str, ip: &str, protocol: &str, port: i32, target: i32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
            "ports": [{"name": "p", "protocol": protocol, "port": port, "targetPort": target}],
        },
    })
}

/// The pod an answer names.
fn pod_name(answer: &str) -> &'static str {
    match answer {
        "pod1" => "pod1",
        "pod2" => "pod2",
        other => panic!("unexpected answer {other:?}"),
    }
}

fn pod_addr(name: &str) -> &'static str {
    match name {
        "pod1" => "10.244.1.2",
        "pod2" => "10.244.1.3",
        other => panic!("unexpected answer {other:?}"),
    }
}

fn other_pod(name: &str) -> &'static str {
    if name == "pod1" {
        "pod2"
    } else {
        "pod1"
    }
}

/// Where a test stands once a long-lived connection's endpoint has been
/// removed and drains: `(client, the draining pod's name)`.
fn drain_one(cluster: &Cluster, daemon: &Daemon) -> (LongClient, &'static str) {
    cluster.wait_for(daemon, "the echo service with both pods", || {
        cluster.real_servers(BLOCK).len() == 2
    });
    let client = LongClient::start(&cluster.node);
    let draining = pod_name(&client.next_answers(0, 1)[0]);
    let staying = other_pod(draining);
    cluster.set_endpoints("echo", "TCP", 9000, &[pod_addr(staying)]);
    let rs = format!("{}:9000", pod_addr(draining));
    cluster.wait_for(daemon, "the removed endpoint at weight 0", || {
        cluster
            .real_servers(BLOCK)
            .iter()
            .any(|(addr, weight, _)| *addr == rs && weight == "0")
    });
    (client, draining)
}

/// The established connection keeps its backend; new ones go to the
/// other; `ipvsadm` shows the draining one at weight 0 with its one
/// active connection.
fn assert_draining(cluster: &Cluster, client: &LongClient, draining: &str) {
    let seen = client.answers().len();
    assert_eq!(client.next_answers(seen, 4), vec![draining; 4]);
    let staying = other_pod(draining);
    assert_eq!(one_shot(&cluster.node, 4), vec![staying; 4]);
    let mut servers = cluster.real_servers(BLOCK);
    servers.sort();
    let mut want = vec![
        (
            format!("{}:9000", pod_addr(draining)),
            "0".to_owned(),
            "1".to_owned(),
        ),
        (
            format!("{}:9000", pod_addr(staying)),
            "1".to_owned(),
            "0".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(servers, want);
}

fn wait_until_deleted(cluster: &Cluster, daemon: &Daemon, draining: &str) {
    let staying = format!("{}:9000", pod_addr(other_pod(draining)));
    cluster.wait_for(daemon, "the drained real server deleted", || {
        let servers = cluster.real_servers(BLOCK);
        servers.len() == 1 && servers[0].0 == staying && servers[0].1 == "1"
    });
}

/// With no full resync for an hour, only the syncer's own wake-ups
/// (reading the draining real server's counters every 5 s) can see the
/// connection end.
#[test]
fn removed_endpoint_drains_while_its_connection_lives_and_goes_when_it_closes() {
    let cluster = Cluster::start();
    let daemon = cluster.start_daemon("daemon", "1h", &[]);
    let (mut client, draining) = drain_one(&cluster, &daemon);
    assert_draining(&cluster, &client, draining);

    client.close();
    wait_until_deleted(&cluster, &daemon, draining);
    let log = daemon.log();
    let rs = format!("{}:9000", pod_addr(draining));
    assert!(
        log.contains(&format!(
            "update real server {rs} to tcp 10.96.0.20:90 (masq weight 0)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("delete real server {rs} from tcp 10.96.0.20:90")),
        "{log}"
    );
    // New connections still work, on the remaining pod.
    assert_eq!(one_shot(&cluster.node, 2), vec![other_pod(draining); 2]);
}

#[test]
fn a_restarted_daemon_keeps_draining_and_deletes_once_the_connection_closes() {
    let cluster = Cluster::start();
    let mut first = cluster.start_daemon("daemon-1", "2s", &[]);
    let (mut client, draining) = drain_one(&cluster, &first);
    assert!(first.terminate().success(), "{}", first.log());

    let mut second = cluster.start_daemon("daemon-2", "2s", &[]);
    // Its first full resync and then two more: the weight-0 real server the
    // cluster no longer lists stays (its connection lives).
    second.wait_for_syncs(2, "three full resyncs of the new daemon");
    assert_draining(&cluster, &client, draining);
    let log = second.log();
    assert!(!log.contains("delete real server"), "{log}");

    client.close();
    wait_until_deleted(&cluster, &second, draining);
    assert!(
        second.log().contains(&format!(
            "delete real server {}:9000 from tcp 10.96.0.20:90",
            pod_addr(draining)
        )),
        "{}",
        second.log()
    );
}

#[test]
fn graceful_period_deletes_a_draining_real_server_with_a_live_connection() {
    let cluster = Cluster::start();
    let daemon = cluster.start_daemon("daemon", "1h", &["--ipvs-graceful-period", "5s"]);
    cluster.wait_for(&daemon, "the echo service with both pods", || {
        cluster.real_servers(BLOCK).len() == 2
    });
    let mut client = LongClient::start(&cluster.node);
    let draining = pod_name(&client.next_answers(0, 1)[0]);
    let staying = other_pod(draining);
    cluster.set_endpoints("echo", "TCP", 9000, &[pod_addr(staying)]);
    // Deleted although the client never closed its connection.
    wait_until_deleted(&cluster, &daemon, draining);
    assert!(client.process.0.try_wait().unwrap().is_none());
    let log = daemon.log();
    let rs = format!("{}:9000", pod_addr(draining));
    let drained = log
        .find(&format!(
            "update real server {rs} to tcp 10.96.0.20:90 (masq weight 0)"
        ))
        .unwrap_or_else(|| panic!("never drained:\n{log}"));
    let deleted = log
        .find(&format!("delete real server {rs} from tcp 10.96.0.20:90"))
        .unwrap_or_else(|| panic!("never deleted:\n{log}"));
    assert!(drained < deleted, "{log}");
    client.close();
}

/// The conntrack flows of the node to the UDP service answered by `addr`.
fn udp_flows_answered_by(node: &TestNetns, addr: &str) -> usize {
    let listed = node.exec(&["conntrack", "-L", "-p", "udp"]);
    listed
        .lines()
        .filter(|line| line.contains(&format!("dst={UDP_VIP} ")))
        .filter(|line| line.contains(&format!("src={addr} ")))
        .count()
}

fn conntrack_deleted(daemon: &Daemon) -> usize {
    daemon
        .log()
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(" sync full=")?..];
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix("conntrack_deleted="))?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

#[test]
fn udp_real_server_is_deleted_at_once_with_its_conntrack_flows() {
    let cluster = Cluster::start();
    let _udp = [
        udp_echo(&cluster.pods[0].netns, "pod1"),
        udp_echo(&cluster.pods[1].netns, "pod2"),
    ];
    cluster.write("dns", &service("dns", UDP_VIP, "UDP", 53, 5353));
    cluster.set_endpoints("dns", "UDP", 5353, &["10.244.1.2", "10.244.1.3"]);
    let daemon = cluster.start_daemon("daemon", "1h", &[]);
    cluster.wait_for(&daemon, "the UDP service with both pods", || {
        cluster.real_servers(UDP_BLOCK).len() == 2
    });
    // Since 5.9, with expire_nodest_conn=1 (which kube-ipvs sets) the
    // kernel itself expires the connections of a deleted real server
    // within a jiffy, conntrack entries included. Off here (the daemon
    // sets sysctls only on a full resync, none for an hour), so only
    // kube-ipvs's own cleanup can remove the flows, as on older kernels
    // or for flows IPVS no longer tracks.
    cluster
        .node
        .exec(&["sysctl", "-qw", "net.ipv4.vs.expire_nodest_conn=0"]);
    // Datagrams from fresh sockets: one flow each, spread over both pods.
    let answers = ApiNode::udp(&cluster.node, "10.96.0.53:53", 6);
    assert!(answers.iter().any(|a| a == "pod1"), "{answers:?}");
    assert!(answers.iter().any(|a| a == "pod2"), "{answers:?}");
    let to_pod1 = udp_flows_answered_by(&cluster.node, "10.244.1.2");
    assert!(to_pod1 > 0);
    let to_pod2 = udp_flows_answered_by(&cluster.node, "10.244.1.3");
    assert!(to_pod2 > 0);

    cluster.set_endpoints("dns", "UDP", 5353, &["10.244.1.3"]);
    cluster.wait_for(&daemon, "the removed UDP real server deleted", || {
        cluster.real_servers(UDP_BLOCK).len() == 1
    });
    let log = daemon.log();
    assert!(
        log.contains("delete real server 10.244.1.2:5353 from udp 10.96.0.53:53"),
        "{log}"
    );
    assert!(!log.contains("update real server 10.244.1.2:5353"), "{log}");
    assert_eq!(
        udp_flows_answered_by(&cluster.node, "10.244.1.2"),
        0,
        "{}",
        cluster.node.exec(&["conntrack", "-L", "-p", "udp"])
    );
    assert_eq!(udp_flows_answered_by(&cluster.node, "10.244.1.3"), to_pod2);
    let after_real_server = conntrack_deleted(&daemon);
    assert_eq!(after_real_server, to_pod1, "{log}");

    // The whole UDP service goes: its remaining flows with it.
    cluster.remove("dns");
    cluster.remove("dns-slice");
    cluster.wait_for(&daemon, "the UDP service deleted", || {
        cluster.ipvsadm().block(UDP_BLOCK).is_none()
    });
    assert_eq!(udp_flows_answered_by(&cluster.node, "10.244.1.3"), 0);
    assert_eq!(
        conntrack_deleted(&daemon),
        after_real_server + to_pod2,
        "{}",
        daemon.log()
    );
}

// ---- Ownership of virtual services that are not on kube-ipvs0 ----

/// What a daemon stopped half-way through removing a node-port and an
/// externalIP service leaves (set entries are deleted only after their
/// virtual services), next to someone else's virtual service on the
/// node's address.
fn leftovers(node: &TestNetns) {
    node.exec(&[
        "ipset",
        "create",
        "KUBE-NODE-PORT-TCP",
        "bitmap:port",
        "range",
        "0-65535",
        "comment",
    ]);
    node.exec(&["ipset", "add", "KUBE-NODE-PORT-TCP", "30080"]);
    node.exec(&[
        "ipset",
        "create",
        "KUBE-NODE-PORT-IPS",
        "hash:ip,port",
        "comment",
    ]);
    node.exec(&[
        "ipset",
        "add",
        "KUBE-NODE-PORT-IPS",
        "192.168.77.1,tcp:30080",
    ]);
    node.exec(&[
        "ipset",
        "create",
        "KUBE-EXTERNAL-IP",
        "hash:ip,port",
        "comment",
    ]);
    node.exec(&["ipset", "add", "KUBE-EXTERNAL-IP", "203.0.113.7,tcp:80"]);
    for service in [
        "192.168.77.1:30080",
        "203.0.113.7:80",
        "192.168.77.1:22",
        "10.99.0.1:30080",
    ] {
        node.exec(&["ipvsadm", "-A", "-t", service, "-s", "rr"]);
    }
}

/// Someone else's: another port on the node's address, and the node
/// port's number on an address that is not the node's (a node-port number
/// alone claims nothing).
const FOREIGN: [&str; 2] = ["TCP  10.99.0.1:30080 rr", "TCP  192.168.77.1:22 rr"];

/// The virtual service lines of `ipvsadm -Ln`, sorted.
fn services(node: &TestNetns) -> Vec<String> {
    let mut lines: Vec<String> = IpvsTable::read(node)
        .blocks
        .into_iter()
        .map(|block| block[0].clone())
        .collect();
    lines.sort();
    lines
}

#[test]
fn node_port_and_external_services_listed_in_our_sets_are_ours_and_no_others() {
    let cluster = Cluster::start();
    cluster.remove("echo");
    cluster.remove("echo-slice");
    leftovers(&cluster.node);
    assert_eq!(services(&cluster.node).len(), 4);

    // The daemon finishes the removal: the two services, then their
    // entries; the foreign service on the node's address stays.
    let daemon = cluster.start_daemon("daemon", "2s", &[]);
    cluster.wait_for(&daemon, "only the foreign service left", || {
        services(&cluster.node) == FOREIGN
    });
    let log = daemon.log();
    assert!(
        log.contains("delete service tcp 192.168.77.1:30080"),
        "{log}"
    );
    assert!(log.contains("delete service tcp 203.0.113.7:80"), "{log}");
    let saved = cluster.node.exec(&["ipset", "save"]);
    assert!(!saved.contains("add KUBE-NODE-PORT-TCP "), "{saved}");
    assert!(!saved.contains("add KUBE-NODE-PORT-IPS "), "{saved}");
    assert!(!saved.contains("add KUBE-EXTERNAL-IP "), "{saved}");
    drop(daemon);

    // `--cleanup` removes the same, and the foreign service stays.
    leftovers_again(&cluster.node);
    let binary = kipvs_integration::built_binary("kube-ipvs");
    let (ok, out) = cluster
        .node
        .try_exec(&[binary.to_str().unwrap(), "--cleanup"]);
    assert!(ok, "kube-ipvs --cleanup failed: {out}");
    assert_eq!(services(&cluster.node), FOREIGN);
}

/// [`leftovers`] once more, on a node whose sets a daemon already made.
fn leftovers_again(node: &TestNetns) {
    node.exec(&["ipset", "add", "KUBE-NODE-PORT-TCP", "30080"]);
    node.exec(&[
        "ipset",
        "add",
        "KUBE-NODE-PORT-IPS",
        "192.168.77.1,tcp:30080",
    ]);
    node.exec(&["ipset", "add", "KUBE-EXTERNAL-IP", "203.0.113.7,tcp:80"]);
    for service in ["192.168.77.1:30080", "203.0.113.7:80"] {
        node.exec(&["ipvsadm", "-A", "-t", service, "-s", "rr"]);
    }
    assert_eq!(services(node).len(), 4);
}
