//! A node for the daemon's end-to-end tests: a network namespace running the
//! fake API server and the real `kube-ipvs` binary (its real kube-rs client
//! against the server), objects written through the server's REST paths
//! with curl, and the operator's views (`ipvsadm`, `ipset`, `ip`, `nft`)
//! read in the same namespace.

#![allow(dead_code)]

use std::{
    fs::File,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use kipvs_integration::{built_binary, TestNetns};
use serde_json::{json, Value};

/// The node the daemon runs as; endpoints with this `nodeName` are local.
pub const NODE_NAME: &str = "node-a";
/// Where the fake API server listens, inside the node namespace.
const API: &str = "127.0.0.1:6443";
/// Bounded waits: tries × pause. Generous because everything runs about 5x
/// slower under the VM's TCG; only the content is asserted, never the time.
const TRIES: usize = 120;
const PAUSE: Duration = Duration::from_millis(500);

/// A node namespace with the fake API server running in it. The daemon is
/// started separately ([`Node::start_daemon`]) so a test can prepare the
/// kernel (or the cluster) first. Everything is killed on drop.
pub struct Node {
    pub netns: TestNetns,
    api: Child,
    api_log: PathBuf,
    kubeconfig: PathBuf,
}

impl Node {
    pub fn new() -> Node {
        let netns = TestNetns::new("node");
        // The node's own address (as in tests/traffic.rs).
        netns.exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lo"]);
        let kubeconfig = PathBuf::from(format!("/tmp/{}-kubeconfig.yaml", netns.name()));
        let api_log = PathBuf::from(format!("/tmp/{}-apiserver.log", netns.name()));
        let server = built_binary("fake-apiserver");
        let api = spawn_logged(
            &netns,
            &[
                server.to_str().unwrap(),
                "--listen",
                API,
                "--kubeconfig-out",
                kubeconfig.to_str().unwrap(),
            ],
            &api_log,
        );
        let node = Node {
            netns,
            api,
            api_log,
            kubeconfig,
        };
        node.wait_for("the fake API server to listen", || {
            read_log(&node.api_log).contains("listening") && node.kubeconfig.exists()
        });
        node
    }

    pub fn name(&self) -> &str {
        self.netns.name()
    }

    /// The daemon's command line (after the binary): the Kubernetes path,
    /// node-a, pod range 10.244.0.0/16, a full resync every 2 s, debug logs.
    pub fn daemon_args(&self) -> Vec<String> {
        [
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--node-name",
            NODE_NAME,
            "--cluster-cidr",
            "10.244.0.0/16",
            "--sync-period",
            "2s",
            "-v",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Starts `kube-ipvs` in the node namespace, logging to a file.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_under(&[])
    }

    /// Starts `kube-ipvs` in the node namespace behind `wrapper` (say
    /// `strace -f -o FILE`), logging to a file.
    pub fn start_daemon_under(&self, wrapper: &[&str]) -> Daemon {
        let binary = built_binary("kube-ipvs");
        let log = PathBuf::from(format!("/tmp/{}-daemon.log", self.name()));
        let args = self.daemon_args();
        let mut argv: Vec<&str> = wrapper.to_vec();
        argv.push(binary.to_str().unwrap());
        argv.extend(args.iter().map(String::as_str));
        let child = spawn_logged(&self.netns, &argv, &log);
        Daemon { child, log }
    }

    /// Polls `check` until it holds; panics after [`TRIES`] tries with the
    /// logs of the API server and of every daemon of this node.
    pub fn wait_for(&self, what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..TRIES {
            if check() {
                return;
            }
            std::thread::sleep(PAUSE);
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }

    /// The API server's and the daemon's logs, for failure messages.
    pub fn logs(&self) -> String {
        let daemon = PathBuf::from(format!("/tmp/{}-daemon.log", self.name()));
        format!(
            "--- fake-apiserver log:\n{}\n--- kube-ipvs log:\n{}",
            read_log(&self.api_log),
            read_log(&daemon)
        )
    }

    // ---- the cluster, through the fake API server's REST paths ----

    /// `POST` to a collection path (`/api/v1/namespaces/default/services`).
    pub fn create(&self, collection: &str, object: &Value) {
        self.api_write("POST", collection, Some(object));
    }

    /// `PUT` to an object path.
    pub fn replace(&self, path: &str, object: &Value) {
        self.api_write("PUT", path, Some(object));
    }

    /// `DELETE` of an object path.
    pub fn delete(&self, path: &str) {
        self.api_write("DELETE", path, None);
    }

    fn api_write(&self, method: &str, path: &str, body: Option<&Value>) {
        let url = format!("http://{API}{path}");
        let body = body.map(Value::to_string);
        let mut argv = vec![
            "curl",
            "-sS",
            "--fail-with-body",
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
        ];
        if let Some(body) = &body {
            argv.extend(["--data-binary", body.as_str()]);
        }
        argv.push(&url);
        let (ok, out) = self.netns.try_exec(&argv);
        assert!(ok, "{method} {path} failed: {out}");
    }

    /// Creates a Service and its EndpointSlice (named `<name>-slice`).
    pub fn create_service(&self, service: &Value, slice: &Value) {
        let ns = service["metadata"]["namespace"].as_str().unwrap();
        self.create(&services_path(ns), service);
        self.create(&slices_path(ns), slice);
    }

    /// The Node object of this node.
    pub fn create_node_object(&self) {
        self.create(
            "/api/v1/nodes",
            &json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
            }),
        );
    }

    // ---- the operator's view ----

    pub fn ipvsadm(&self) -> IpvsTable {
        IpvsTable::parse(&self.netns.exec(&["ipvsadm", "-Ln"]))
    }

    /// `ip -o addr show kube-ipvs0` without the link index, whitespace
    /// squeezed; empty when the link is missing.
    pub fn ipvs0_addresses(&self) -> Vec<String> {
        let (ok, out) = self
            .netns
            .try_exec(&["ip", "-o", "addr", "show", "kube-ipvs0"]);
        if !ok {
            return Vec::new();
        }
        let mut lines: Vec<String> = out
            .lines()
            .map(|line| {
                let line = line.split_once(": ").map_or(line, |(_, rest)| rest);
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        lines.sort();
        lines
    }

    /// `ipset save`, the random hash seed (`initval`) cut, lines sorted.
    pub fn ipset_save(&self) -> Vec<String> {
        let saved = self.netns.exec(&["ipset", "save"]);
        let mut lines: Vec<String> = saved
            .lines()
            .map(|l| match l.find(" initval 0x") {
                Some(at) => l[..at].to_owned(),
                None => l.to_owned(),
            })
            .collect();
        lines.sort();
        lines
    }

    /// Whether `ipset save` holds `line` (initval cut).
    pub fn ipset_has(&self, line: &str) -> bool {
        self.ipset_save().iter().any(|l| l == line)
    }

    /// Answers of `count` requests to `url` from `netns` (empty = failed).
    pub fn http(netns: &TestNetns, url: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| {
                let (ok, body) = netns.try_exec(&["curl", "-s", "-m", "5", url]);
                if ok {
                    body.trim().to_owned()
                } else {
                    String::new()
                }
            })
            .collect()
    }

    /// Answers of `count` UDP datagrams to `addr` (`ip:port`) sent from
    /// `netns`, each from a fresh socket (empty = no answer within 5 s).
    /// A socket of our own rather than `socat`: socat gives the answer
    /// only 0.5 s after its input ends, too short under TCG.
    pub fn udp(netns: &TestNetns, addr: &str, count: usize) -> Vec<String> {
        let addr = addr.to_owned();
        netns.run(move || async move {
            (0..count)
                .map(|_| {
                    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
                    socket
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    // Unreachable (say the address is gone): no answer.
                    if socket.send_to(b"ping\n", addr.as_str()).is_err() {
                        return String::new();
                    }
                    let mut buf = [0u8; 512];
                    match socket.recv_from(&mut buf) {
                        Ok((n, _)) => String::from_utf8_lossy(&buf[..n]).trim().to_owned(),
                        Err(_) => String::new(),
                    }
                })
                .collect()
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.api.kill();
        let _ = self.api.wait();
        // The namespace (dropped next) kills whatever else still runs in it.
    }
}

/// A running `kube-ipvs` (or its wrapper); killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far, terminal colour codes removed.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Info lines of full resyncs so far.
    pub fn full_syncs(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" sync ") || l.ends_with(" sync"))
            .filter(|l| l.contains("full=true"))
            .count()
    }

    /// Sends SIGTERM to `pid` (the daemon, or the process behind a wrapper)
    /// and waits for this child to exit.
    pub fn terminate(&mut self, pid: u32) -> ExitStatus {
        run_quiet(&["kill", "-TERM", &pid.to_string()]);
        for _ in 0..TRIES {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(PAUSE);
        }
        panic!("kube-ipvs did not exit on SIGTERM\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ipvsadm -Ln`: the three header lines, and one block per virtual service
/// (its line, then its real servers), blocks and real servers sorted (the
/// kernel lists services in hash order).
#[derive(Debug, PartialEq, Eq)]
pub struct IpvsTable {
    pub header: Vec<String>,
    pub blocks: Vec<Vec<String>>,
}

impl IpvsTable {
    pub fn parse(text: &str) -> IpvsTable {
        let mut header = Vec::new();
        let mut blocks: Vec<Vec<String>> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end().to_owned();
            if n < 3 {
                header.push(line);
            } else if line.starts_with("  ->") {
                blocks
                    .last_mut()
                    .expect("real server before service")
                    .push(line);
            } else {
                blocks.push(vec![line]);
            }
        }
        for block in &mut blocks {
            block[1..].sort();
        }
        blocks.sort();
        IpvsTable { header, blocks }
    }

    /// The blocks with the connection counters of real servers cut
    /// (`  -> 10.244.1.2:8080 Masq 1`): traffic leaves connections in
    /// TIME_WAIT behind, counted as InActConn.
    pub fn routes(&self) -> Vec<Vec<String>> {
        self.blocks
            .iter()
            .map(|block| block.iter().map(|line| without_counters(line)).collect())
            .collect()
    }

    /// The block of the service whose line starts with `service`
    /// (`TCP  10.96.0.10:80`).
    pub fn block(&self, service: &str) -> Option<&Vec<String>> {
        self.blocks.iter().find(|b| b[0].starts_with(service))
    }
}

/// A real server line without its ActiveConn and InActConn columns,
/// whitespace squeezed; a service line unchanged.
pub fn without_counters(line: &str) -> String {
    if !line.starts_with("  ->") {
        return line.to_owned();
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    format!("  {}", fields[..fields.len().saturating_sub(2)].join(" "))
}

/// Lines of a block, owned.
pub fn lines(block: &[&str]) -> Vec<String> {
    block.iter().map(|s| s.to_string()).collect()
}

/// `ipvsadm -Ln`'s header (the connection table size is Debian's default,
/// CONFIG_IP_VS_TAB_BITS=12).
pub fn ipvsadm_header() -> Vec<String> {
    lines(&[
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    ])
}

// ---- Kubernetes objects ----

pub fn services_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/services")
}

pub fn slices_path(namespace: &str) -> String {
    format!("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices")
}

/// A ClusterIP Service; ports are (name, protocol, port, targetPort).
pub fn service(
    namespace: &str,
    name: &str,
    cluster_ip: &str,
    ports: &[(&str, &str, i32, i32)],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, protocol, port, target)| {
            json!({"name": name, "protocol": protocol, "port": port, "targetPort": target})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": ports,
        },
    })
}

/// The EndpointSlice `<service>-slice` of a Service: ports are (name,
/// protocol, port); every endpoint is ready and on [`NODE_NAME`].
pub fn slice(
    namespace: &str,
    service: &str,
    ports: &[(&str, &str, i32)],
    endpoints: &[&str],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, protocol, port)| json!({"name": name, "protocol": protocol, "port": port}))
        .collect();
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|addr| {
            json!({"addresses": [addr], "conditions": {"ready": true}, "nodeName": NODE_NAME})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-slice"),
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    })
}

/// The web service of examples/: 10.96.0.10 TCP 80 → 8080.
pub fn web_service() -> Value {
    service("default", "web", "10.96.0.10", &[("http", "TCP", 80, 8080)])
}

pub fn web_slice(endpoints: &[&str]) -> Value {
    slice("default", "web", &[("http", "TCP", 8080)], endpoints)
}

/// kube-dns of examples/: 10.96.0.53 UDP and TCP 53 → 5353 on pod2.
pub fn dns_service() -> Value {
    service(
        "kube-system",
        "kube-dns",
        "10.96.0.53",
        &[("dns", "UDP", 53, 5353), ("dns-tcp", "TCP", 53, 5353)],
    )
}

pub fn dns_slice() -> Value {
    slice(
        "kube-system",
        "kube-dns",
        &[("dns", "UDP", 5353), ("dns-tcp", "TCP", 5353)],
        &["10.244.1.3"],
    )
}

/// A background server process, killed on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP server in `pod` on :5353 answering every datagram with
/// `answer` (one forked `socat` child per datagram).
pub fn udp_echo(pod: &TestNetns, answer: &str) -> Server {
    let exec = format!("SYSTEM:echo {answer}");
    let child = Command::new("ip")
        .args(["netns", "exec", pod.name()])
        .args(["socat", "UDP4-RECVFROM:5353,fork", &exec])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn socat");
    let server = Server(child);
    // Wait until the socket is bound.
    for _ in 0..TRIES {
        if pod.exec(&["ss", "-Hlun", "sport", "5353"]).contains("5353") {
            return server;
        }
        std::thread::sleep(PAUSE);
    }
    panic!("socat never bound UDP 5353 in {}", pod.name());
}

// ---- processes ----

/// Spawns `argv` inside `netns`, stdout and stderr to `log`.
fn spawn_logged(netns: &TestNetns, argv: &[&str], log: &PathBuf) -> Child {
    let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().unwrap();
    Command::new("ip")
        .args(["netns", "exec", netns.name()])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
}

fn run_quiet(argv: &[&str]) {
    let _ = Command::new(argv[0]).args(&argv[1..]).status();
}

/// A log file's text with ANSI colour sequences removed (tracing colours
/// its output even into a file).
pub fn read_log(path: &PathBuf) -> String {
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in @..~
            for next in chars.by_ref() {
                if ('@'..='~').contains(&next) && next != '[' {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    text
}
