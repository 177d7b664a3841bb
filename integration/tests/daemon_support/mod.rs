//! A node for the daemon's end-to-end tests: a network namespace running the
//! fake API server and the real `kube-ipvs` binary (its real kube-rs client
//! against the server), objects written through the server's REST paths
//! with curl, and the operator's views (`ipvsadm`, `ipset`, `ip`, `nft`)
//! read in the same namespace.

#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use kipvs_integration::{
    daemon::{read_log, ApiServer, Daemon, NODE_NAME},
    eventually,
    operator::{self, lines, IpvsTable},
    TestNetns,
};
use serde_json::{json, Value};

/// Where the fake API server listens, inside the node namespace.
const API: &str = "127.0.0.1:6443";
/// Bounded waits: tries × [`kipvs_integration::PAUSE`]. Generous because
/// everything runs about 5x slower under the VM's TCG; only the content is
/// asserted, never the time.
const TRIES: usize = 120;

/// A node namespace with the fake API server running in it. The daemon is
/// started separately ([`Node::start_daemon`]) so a test can prepare the
/// kernel (or the cluster) first. Everything is killed on drop.
pub struct Node {
    // Dropped first: the API server, then the namespace (which kills
    // whatever else still runs in it).
    api: ApiServer,
    pub netns: TestNetns,
    kubeconfig: PathBuf,
}

impl Node {
    pub fn new() -> Node {
        let netns = TestNetns::new("node");
        // The node's own address (as in tests/traffic.rs).
        netns.exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lo"]);
        let kubeconfig = PathBuf::from(format!("/tmp/{}-kubeconfig.yaml", netns.name()));
        let api_log = PathBuf::from(format!("/tmp/{}-apiserver.log", netns.name()));
        let api = ApiServer::start(&netns, API, &kubeconfig, api_log);
        Node {
            api,
            netns,
            kubeconfig,
        }
    }

    pub fn name(&self) -> &str {
        self.netns.name()
    }

    /// Starts `kube-ipvs` in the node namespace on the Kubernetes path,
    /// logging to a file.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_under(&[])
    }

    /// Starts `kube-ipvs` in the node namespace behind `wrapper` (say
    /// `strace -f -o FILE`), logging to a file.
    pub fn start_daemon_under(&self, wrapper: &[&str]) -> Daemon {
        Daemon::start_under(
            &self.netns,
            wrapper,
            &["--kubeconfig", self.kubeconfig.to_str().unwrap()],
            self.daemon_log(),
        )
    }

    /// Starts `kube-ipvs <args...>` in the node namespace with only the
    /// caller's flags (say kubeadm's `--config=F --hostname-override=N`).
    pub fn start_daemon_with(&self, args: &[&str]) -> Daemon {
        Daemon::spawn(&self.netns, &[], args, self.daemon_log())
    }

    /// [`Node::start_daemon_with`] behind `wrapper` (say `setpriv` with
    /// fewer capabilities).
    pub fn start_daemon_under_with(&self, wrapper: &[&str], args: &[&str]) -> Daemon {
        Daemon::spawn(&self.netns, wrapper, args, self.daemon_log())
    }

    /// The kubeconfig pointing at this node's fake API server.
    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// Starts `kube-ipvs` on the Kubernetes path with `extra` flags.
    pub fn start_daemon_with_flags(&self, extra: &[&str]) -> Daemon {
        let mut source = vec!["--kubeconfig", self.kubeconfig.to_str().unwrap()];
        source.extend_from_slice(extra);
        Daemon::start_under(&self.netns, &[], &source, self.daemon_log())
    }

    fn daemon_log(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/{}-daemon.log", self.name()))
    }

    /// Polls `check` until it holds; panics after [`TRIES`] tries with the
    /// logs of the API server and of every daemon of this node.
    pub fn wait_for(&self, what: &str, check: impl FnMut() -> bool) {
        if !eventually(TRIES, check) {
            panic!("timed out waiting for {what}\n{}", self.logs());
        }
    }

    /// The API server's and the daemon's logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- fake-apiserver log:\n{}\n--- kube-ipvs log:\n{}",
            self.api.log(),
            read_log(&self.daemon_log())
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
        IpvsTable::read(&self.netns)
    }

    /// See [`operator::kube_ipvs0_addresses`].
    pub fn ipvs0_addresses(&self) -> Vec<String> {
        operator::kube_ipvs0_addresses(&self.netns)
    }

    /// See [`operator::ipset_save`].
    pub fn ipset_save(&self) -> Vec<String> {
        operator::ipset_save(&self.netns)
    }

    /// Whether `ipset save` holds `line` (initval cut).
    pub fn ipset_has(&self, line: &str) -> bool {
        self.ipset_save().iter().any(|l| l == line)
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
    }
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
    let bound = eventually(TRIES, || {
        pod.exec(&["ss", "-Hlun", "sport", "5353"]).contains("5353")
    });
    assert!(bound, "socat never bound UDP 5353 in {}", pod.name());
    server
}
