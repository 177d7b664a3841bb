//! What the daemon resilience tests share: running the real `kube-ipvs`
//! binary in a node namespace, reading its log, the operator's view of the
//! kernel state it owns, and requests through a ClusterIP.

use std::path::PathBuf;

use kipvs_integration::{
    daemon::Daemon,
    eventually,
    operator::{ipset_save, kube_ipvs0_addresses, IpvsTable},
    TestNetns,
};

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

/// The operator's view of what kube-ipvs owns, normalised only where the
/// kernel's output is not deterministic (service order, set `initval`,
/// per-connection counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `ipvsadm -Ln`: one block per virtual service (its line, then its
    /// real servers sorted), fields single-spaced, ActiveConn/InActConn cut.
    pub ipvs: Vec<Vec<String>>,
    /// `ip -o addr show kube-ipvs0`, without the interface index.
    pub addresses: Vec<String>,
    /// `ipset save`, `initval` cut, sorted.
    pub ipsets: Vec<String>,
    /// `nft list table ip kube-ipvs`, exactly.
    pub nft: String,
}

pub fn view(node: &TestNetns) -> View {
    View {
        ipvs: IpvsTable::read(node).routes(),
        addresses: kube_ipvs0_addresses(node),
        ipsets: ipset_save(node),
        nft: node
            .try_exec(&["nft", "list", "table", "ip", "kube-ipvs"])
            .1,
    }
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
        daemon.log()
    );
    assert!(daemon.running(), "{}", daemon.log());
    view(node)
}
