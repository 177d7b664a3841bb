//! What the daemon resilience tests share: running the real `kube-ipvs`
//! binary in a node namespace, reading its log, the operator's view of the
//! kernel state it owns, and requests through a ClusterIP.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread::sleep,
    time::Duration,
};

use kipvs_integration::{built_binary, TestNetns};

/// A scratch directory under /tmp for one test's manifests and logs,
/// removed on drop (logs are printed by the tests that need them).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let dir = PathBuf::from(format!(
            "/tmp/kipvs-resilience-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("manifests")).unwrap();
        Scratch { dir }
    }

    pub fn manifests(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The example cluster the tests run: `web` (10.96.0.10:80 → both pods on
/// :8080) and `api` (10.96.0.20:80 → pod1 only), both pods on node-a.
pub const CLUSTER_YAML: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: node-a
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
  - name: http
    port: 8080
    protocol: TCP
endpoints:
  - addresses: [10.244.1.2]
    conditions: {ready: true}
    nodeName: node-a
  - addresses: [10.244.1.3]
    conditions: {ready: true}
    nodeName: node-a
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: default
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20]
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-x1y2z
  namespace: default
  labels:
    kubernetes.io/service-name: api
addressType: IPv4
ports:
  - name: http
    port: 8080
    protocol: TCP
endpoints:
  - addresses: [10.244.1.2]
    conditions: {ready: true}
    nodeName: node-a
";

/// `ipvsadm -Ln` blocks (whitespace-normalised, connection counters cut)
/// the example cluster must produce.
pub fn expected_ipvs() -> Vec<Vec<String>> {
    vec![
        vec![
            "TCP 10.96.0.10:80 rr".to_owned(),
            "-> 10.244.1.2:8080 Masq 1".to_owned(),
            "-> 10.244.1.3:8080 Masq 1".to_owned(),
        ],
        vec![
            "TCP 10.96.0.20:80 rr".to_owned(),
            "-> 10.244.1.2:8080 Masq 1".to_owned(),
        ],
    ]
}

/// The daemon flags every test uses after the source flags.
pub const NODE_FLAGS: &[&str] = &[
    "--node-name",
    "node-a",
    "--cluster-cidr",
    "10.244.0.0/16",
    "--sync-period",
    "2s",
    "-v",
];

/// One `kube-ipvs` process in the node namespace, its output in `log`.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `kube-ipvs <source...> <NODE_FLAGS>` in `node`.
    pub fn start(node: &TestNetns, source: &[&str], log: PathBuf) -> Daemon {
        let binary = built_binary("kube-ipvs");
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        // `ip netns exec` execs the binary, so the child's pid is the
        // daemon's: signals reach it directly.
        let child = Command::new("ip")
            .args(["netns", "exec", node.name()])
            .arg(&binary)
            .args(source)
            .args(NODE_FLAGS)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn kube-ipvs");
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        run_tool(&["kill", "-TERM", &self.pid().to_string()]);
        let mut child = self.child.take().expect("running");
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!(
            "kube-ipvs did not exit within 30 s of SIGTERM\n{}",
            self.log_text()
        );
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Every "sync" info line so far, parsed.
    pub fn syncs(&self) -> Vec<SyncLine> {
        self.log_text()
            .lines()
            .filter_map(SyncLine::parse)
            .collect()
    }

    /// Waits (bounded) until the log has more than `count` sync lines and
    /// returns them all.
    pub fn wait_for_syncs(&mut self, count: usize, what: &str) -> Vec<SyncLine> {
        for _ in 0..120 {
            let syncs = self.syncs();
            if syncs.len() > count {
                return syncs;
            }
            assert!(self.alive(), "kube-ipvs exited early\n{}", self.log_text());
            sleep(Duration::from_millis(500));
        }
        panic!("{what}: no sync line after 60 s\n{}", self.log_text());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The daemon's per-sync info line:
/// `INFO sync full=true steps=0 failed=0 messages_sent=.. virtual_services=.. elapsed_ms=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLine {
    pub full: bool,
    pub steps: usize,
    pub failed: usize,
    pub line: String,
}

impl SyncLine {
    fn parse(line: &str) -> Option<SyncLine> {
        let rest = &line[line.find(" sync full=")? + 1..];
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(SyncLine {
            full: field("full")? == "true",
            steps: field("steps")?.parse().ok()?,
            failed: field("failed")?.parse().ok()?,
            line: line.to_owned(),
        })
    }
}

/// Removes terminal colour sequences (in case the subscriber ignores
/// NO_COLOR).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The operator's view of what kube-ipvs owns, normalised only where the
/// kernel's output is not deterministic (service order, set `initval`,
/// per-connection counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `ipvsadm -Ln`: one block per virtual service (its line, then its
    /// real servers sorted), fields single-spaced, ActiveConn/InActConn cut.
    pub ipvs: Vec<Vec<String>>,
    /// `ip -o addr show dev kube-ipvs0`, without the interface index.
    pub addresses: Vec<String>,
    /// `ipset save`, `initval` cut, sorted.
    pub ipsets: Vec<String>,
    /// `nft list table ip kube-ipvs`, exactly.
    pub nft: String,
}

pub fn view(node: &TestNetns) -> View {
    View {
        ipvs: ipvs_blocks(&node.exec(&["ipvsadm", "-Ln"])),
        addresses: addresses(node),
        ipsets: ipset_save(node),
        nft: node
            .try_exec(&["nft", "list", "table", "ip", "kube-ipvs"])
            .1,
    }
}

pub fn ipvs_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for line in text.lines().skip(3) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields[0] == "->" {
            // -> addr:port Forward Weight ActiveConn InActConn
            let kept = fields[..fields.len().min(4)].join(" ");
            blocks
                .last_mut()
                .expect("real server before service")
                .push(kept);
        } else {
            blocks.push(vec![fields.join(" ")]);
        }
    }
    for block in &mut blocks {
        block[1..].sort();
    }
    blocks.sort();
    blocks
}

pub fn addresses(node: &TestNetns) -> Vec<String> {
    let (ok, text) = node.try_exec(&["ip", "-o", "addr", "show", "dev", "kube-ipvs0"]);
    if !ok {
        return vec![format!("(no kube-ipvs0: {})", text.trim())];
    }
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

pub fn ipset_save(node: &TestNetns) -> Vec<String> {
    let mut lines: Vec<String> = node
        .exec(&["ipset", "save"])
        .lines()
        .map(|line| match line.find(" initval ") {
            Some(at) => {
                // cut " initval 0x1234abcd" (the value is random per set)
                let rest = &line[at + " initval ".len()..];
                let after = rest.find(' ').map(|i| &rest[i..]).unwrap_or("");
                format!("{}{after}", &line[..at])
            }
            None => line.to_owned(),
        })
        .collect();
    lines.sort();
    lines
}

/// Polls `check` every half second, up to `tries` times.
pub fn eventually(tries: usize, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if check() {
            return true;
        }
        sleep(Duration::from_millis(500));
    }
    false
}

/// One request from `netns`; the body, or `None` on failure.
pub fn get(netns: &TestNetns, url: &str) -> Option<String> {
    let (ok, body) = netns.try_exec(&["curl", "-s", "-m", "2", url]);
    ok.then(|| body.trim().to_owned())
}

/// Requests through both ClusterIPs from the node succeed and reach the
/// right pods (web: both pods over a few requests; api: pod1).
pub fn assert_traffic(node: &TestNetns, context: &str) {
    let web: Vec<Option<String>> = (0..4).map(|_| get(node, "http://10.96.0.10/")).collect();
    assert!(
        web.iter()
            .all(|a| matches!(a.as_deref(), Some("pod1" | "pod2"))),
        "{context}: web answers {web:?}"
    );
    assert!(
        web.iter().any(|a| a.as_deref() == Some("pod1"))
            && web.iter().any(|a| a.as_deref() == Some("pod2")),
        "{context}: rr over both pods {web:?}"
    );
    let api = get(node, "http://10.96.0.20/");
    assert_eq!(api.as_deref(), Some("pod1"), "{context}: api");
}

/// Waits until the daemon has programmed the example cluster: the
/// expected virtual services, both addresses, traffic flowing.
pub fn wait_converged(node: &TestNetns, daemon: &mut Daemon) -> View {
    let converged = eventually(120, || {
        let v = view(node);
        v.ipvs == expected_ipvs() && v.addresses.len() == 2 && !v.nft.is_empty()
    });
    assert!(
        converged,
        "the example cluster was not programmed: {:#?}\n{}",
        view(node),
        daemon.log_text()
    );
    assert!(daemon.alive(), "{}", daemon.log_text());
    view(node)
}

/// Appends a line to a file shared with a shell loop.
pub fn append(path: &Path, line: &str) {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

pub fn run_tool(argv: &[&str]) -> String {
    kipvs_integration::run_checked(argv)
}
