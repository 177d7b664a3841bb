//! The processes of the cluster: each node's `kube-ipvs`, the pods' HTTP
//! servers, and the logs they leave for failure messages.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use super::{topology::Cluster, CLUSTER_CIDR, POD_PORT};
use crate::{
    daemon::{read_log, Daemon},
    TestNetns,
};

/// A background process, killed on drop.
pub(super) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes this cluster's copy of the pod server (tests may run in
/// parallel); every pod's python reads it.
pub(super) fn pod_server_script(lan: &TestNetns) -> PathBuf {
    let script = PathBuf::from(format!("/tmp/{}-pod-server.py", lan.name()));
    std::fs::write(&script, SERVER_PY).expect("write the pod server script");
    script
}

/// Starts pod `name`'s server in its namespace `netns` and waits until it
/// listens.
pub(super) fn start_pod_server(netns: &TestNetns, name: &str, script: &Path) -> Server {
    let log = std::fs::File::create(server_log(netns)).expect("server log");
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
        std::fs::read_to_string(server_log(netns)).unwrap_or_default()
    );
    server
}

impl Cluster {
    pub(super) fn spawn_daemon(&mut self, index: usize, extra_flags: &[&str]) {
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
