//! The real `kube-ipvs` binary on a node with pods, under restart, SIGTERM,
//! tampering and an unreachable API server: a restart loses no request, a
//! SIGTERM leaves the rules in place, drift in the kernel is repaired, and
//! nothing is synced until both initial lists are complete.
//!
//! Each test builds a node namespace with two pods (busybox httpd answering
//! `pod1` / `pod2` on :8080), runs the daemon there fed by `--manifests`
//! (or the fake API server binary) and judges it only by the operator's
//! view (`ipvsadm`, `ip addr`, `ipset`, `nft`), its log, and real requests.

mod resilience_support;

use std::{process::Command, thread::sleep, time::Duration};

use kipvs_integration::{
    append_line,
    daemon::{ApiServer, Daemon},
    eventually, pod, TestNetns,
};
use resilience_support::{
    assert_traffic, expected_ipvs, view, wait_converged, Scratch, CLUSTER_YAML,
};

/// A node namespace with the two pods, the example cluster written to a
/// fresh manifests directory.
struct Node {
    // Dropped in this order: the node (killing what runs in it), the pods.
    node: TestNetns,
    _pods: [kipvs_integration::Pod; 2],
    scratch: Scratch,
}

fn node(label: &str) -> Node {
    let node = TestNetns::new(label);
    let pods = [pod(&node, 1, "10.244.1.2"), pod(&node, 2, "10.244.1.3")];
    let scratch = Scratch::new(label);
    std::fs::write(scratch.manifests().join("cluster.yaml"), CLUSTER_YAML).unwrap();
    Node {
        node,
        _pods: pods,
        scratch,
    }
}

impl Node {
    fn daemon(&self, log: &str) -> Daemon {
        let manifests = self.scratch.manifests();
        Daemon::start(
            &self.node,
            &["--manifests", manifests.to_str().unwrap()],
            self.scratch.path(log),
        )
    }
}

#[test]
fn restart_under_continuous_traffic_loses_no_request() {
    let n = node("restart");
    let mut first = n.daemon("first.log");
    let before = wait_converged(&n.node, &mut first);
    assert_traffic(&n.node, "before the restart");

    // A client on the node: sequential requests, one line per request,
    // until told to stop (or 3000 requests, so it can never run away).
    let requests = n.scratch.path("requests.log");
    let stop = n.scratch.path("stop");
    let script = format!(
        "i=0; while [ ! -e {stop} ] && [ $i -lt 3000 ]; do \
           if out=$(curl -s -m 2 http://10.96.0.10/); then echo \"ok $out\"; else echo FAIL; fi >> {log}; \
           i=$((i+1)); \
         done",
        stop = stop.display(),
        log = requests.display()
    );
    let mut client = Command::new("ip")
        .args(["netns", "exec", n.node.name(), "sh", "-c", &script])
        .spawn()
        .expect("spawn the client loop");
    let answered = || {
        std::fs::read_to_string(&requests)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count()
    };
    let wait_for_more = |more: usize| {
        let target = answered() + more;
        assert!(
            eventually(240, || answered() >= target),
            "the client stalled at {} requests",
            answered()
        );
    };

    wait_for_more(20);
    append_line(&requests, "# sigterm");
    let status = first.terminate();
    assert!(
        status.success(),
        "kube-ipvs exit status {status}\n{}",
        first.log()
    );
    append_line(&requests, "# stopped");
    // Traffic while no daemon runs at all.
    wait_for_more(20);
    let mut second = n.daemon("second.log");
    let syncs = second.wait_for_syncs(0, "the restarted daemon");
    append_line(&requests, "# restarted");
    wait_for_more(30);
    std::fs::write(&stop, "").unwrap();
    let client_status = client.wait().unwrap();
    assert!(client_status.success());

    let log = std::fs::read_to_string(&requests).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let position = |marker: &str| lines.iter().position(|l| *l == marker).unwrap();
    let (stopped, restarted) = (position("# stopped"), position("# restarted"));
    let results: Vec<&&str> = lines.iter().filter(|l| !l.starts_with('#')).collect();
    let failed = results
        .iter()
        .filter(|l| !matches!(***l, "ok pod1" | "ok pod2"))
        .count();
    let while_down = lines[stopped + 1..restarted]
        .iter()
        .filter(|l| !l.starts_with('#'))
        .count();
    println!(
        "requests: {} total, {failed} failed, {while_down} while no daemon ran",
        results.len()
    );
    assert_eq!(failed, 0, "failed requests across the restart:\n{log}");
    assert!(
        while_down >= 20,
        "requests while no daemon ran: {while_down}"
    );
    assert!(results.len() >= 70, "requests: {}", results.len());

    // The new daemon adopted the kernel state: its first sync (a full one)
    // changed nothing, and the operator's view is what it was.
    let first_sync = &syncs[0];
    println!("first sync of the restarted daemon: {}", first_sync.line);
    assert_eq!(
        view(&n.node),
        before,
        "the kernel state changed across the restart"
    );
    assert!(second.running(), "{}", second.log());
    assert!(
        first_sync.full && first_sync.steps == 0 && first_sync.failed == 0,
        "first sync after the restart must change nothing: {}\n{}",
        first_sync.line,
        second.log()
    );
}

#[test]
fn sigterm_leaves_the_rules_in_place() {
    let n = node("sigterm");
    let mut daemon = n.daemon("daemon.log");
    let before = wait_converged(&n.node, &mut daemon);
    // Both families' 18 sets exist (IPv6 ones too, empty).
    assert_eq!(
        before
            .ipsets
            .iter()
            .filter(|l| l.starts_with("create "))
            .count(),
        kipvs_runtime::owned_sets().len(),
        "{before:#?}"
    );
    assert_eq!(kipvs_runtime::owned_sets().len(), 36);
    assert!(before.nft.contains("table ip kube-ipvs"), "{}", before.nft);

    let status = daemon.terminate();
    assert!(
        status.success(),
        "kube-ipvs exit status {status}\n{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("shutting down; the kernel state stays in place"),
        "{}",
        daemon.log()
    );
    let after = view(&n.node);
    assert_eq!(after, before, "SIGTERM must leave every rule in place");
    assert_traffic(&n.node, "after SIGTERM");
}

/// Tampers with one kind of kernel state behind the daemon's back, then
/// expects the periodic resync (--sync-period 2s) to put back exactly what
/// was there, with traffic flowing again.
///
/// The daemon is paused (SIGSTOP) while the tampering is done and looked
/// at, so the test sees the damage for sure before the daemon may repair it.
fn drift_is_repaired(label: &str, tamper: &[&str]) {
    let n = node(label);
    let mut daemon = n.daemon("daemon.log");
    let before = wait_converged(&n.node, &mut daemon);
    assert_traffic(&n.node, "before the tampering");

    daemon.signal("-STOP");
    let syncs_before = daemon.syncs().len();
    n.node.exec(tamper);
    let tampered = view(&n.node);
    daemon.signal("-CONT");
    assert_ne!(
        tampered,
        before,
        "`{}` changed nothing visible",
        tamper.join(" ")
    );

    let repaired = eventually(60, || {
        daemon
            .syncs()
            .iter()
            .skip(syncs_before)
            .any(|s| s.full && s.failed == 0)
            && view(&n.node) == before
    });
    assert!(
        repaired,
        "not repaired after `{}`\nbefore: {before:#?}\nright after: {tampered:#?}\nnow: {:#?}\n{}",
        tamper.join(" "),
        view(&n.node),
        daemon.log()
    );
    // The sync running when the daemon was paused may have read the kernel
    // before the tampering; a later one repaired it.
    let syncs = daemon.syncs();
    let repair = syncs[syncs_before..]
        .iter()
        .find(|s| s.steps > 0)
        .unwrap_or_else(|| panic!("no sync with steps after the tampering\n{}", daemon.log()));
    println!("`{}` repaired by: {}", tamper.join(" "), repair.line);
    assert_traffic(&n.node, "after the repair");
    assert!(daemon.running(), "{}", daemon.log());
}

#[test]
fn deleted_virtual_service_is_repaired() {
    drift_is_repaired("drift-vs", &["ipvsadm", "-D", "-t", "10.96.0.10:80"]);
}

#[test]
fn deleted_real_server_is_repaired() {
    drift_is_repaired(
        "drift-rs",
        &[
            "ipvsadm",
            "-d",
            "-t",
            "10.96.0.10:80",
            "-r",
            "10.244.1.2:8080",
        ],
    );
}

#[test]
fn flushed_ipset_is_repaired() {
    drift_is_repaired("drift-set", &["ipset", "flush", "KUBE-CLUSTER-IP"]);
}

#[test]
fn removed_address_is_repaired() {
    drift_is_repaired(
        "drift-addr",
        &["ip", "addr", "del", "10.96.0.10/32", "dev", "kube-ipvs0"],
    );
}

#[test]
fn deleted_nft_table_is_repaired() {
    drift_is_repaired("drift-nft", &["nft", "delete", "table", "ip", "kube-ipvs"]);
}

/// `curl -X POST` of a JSON object to the fake API server.
fn post(node: &TestNetns, url: &str, body: &serde_json::Value) {
    let text = body.to_string();
    let out = node.exec(&[
        "curl",
        "-s",
        "-f",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &text,
        url,
    ]);
    assert!(!out.is_empty(), "POST {url}: empty answer");
}

fn service_json(name: &str, ip: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
    })
}

fn slice_json(service: &str, addresses: &[&str]) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = addresses
        .iter()
        .map(|a| serde_json::json!({"addresses": [a], "conditions": {"ready": true}, "nodeName": "node-a"}))
        .collect();
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints
    })
}

#[test]
fn no_sync_before_the_initial_lists_are_complete() {
    let n = node("lists");
    let api = "http://127.0.0.1:16443";
    let kubeconfig = n.scratch.path("kubeconfig");
    let _server = ApiServer::start(
        &n.node,
        "127.0.0.1:16443",
        &kubeconfig,
        n.scratch.path("apiserver.log"),
    );
    let services = format!("{api}/api/v1/namespaces/default/services");
    let slices = format!("{api}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices");
    post(&n.node, &services, &service_json("web", "10.96.0.10"));
    post(
        &n.node,
        &slices,
        &slice_json("web", &["10.244.1.2", "10.244.1.3"]),
    );
    post(&n.node, &services, &service_json("api", "10.96.0.20"));
    post(&n.node, &slices, &slice_json("api", &["10.244.1.2"]));

    // A previous run programs the kernel, then stops.
    let kubeconfig_arg = kubeconfig.to_str().unwrap().to_owned();
    let mut previous = Daemon::start(
        &n.node,
        &["--kubeconfig", &kubeconfig_arg],
        n.scratch.path("previous.log"),
    );
    let before = wait_converged(&n.node, &mut previous);
    assert!(previous.terminate().success(), "{}", previous.log());

    // The next run's API server is unreachable: same kubeconfig, but a
    // port nothing listens on (yet).
    let unreachable = n.scratch.path("kubeconfig-unreachable");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains("127.0.0.1:16443"), "{text}");
    std::fs::write(
        &unreachable,
        text.replace("127.0.0.1:16443", "127.0.0.1:16444"),
    )
    .unwrap();
    let unreachable_arg = unreachable.to_str().unwrap().to_owned();
    let mut next = Daemon::start(
        &n.node,
        &["--kubeconfig", &unreachable_arg],
        n.scratch.path("next.log"),
    );
    // Several seconds (several sync periods): the daemon keeps retrying the
    // API and the kernel state stays exactly as the previous run left it.
    for _ in 0..16 {
        sleep(Duration::from_millis(500));
        assert_eq!(
            view(&n.node),
            before,
            "kernel state changed while the API was down\n{}",
            next.log()
        );
    }
    assert!(next.running(), "{}", next.log());
    assert!(
        next.syncs().is_empty(),
        "synced without the initial lists:\n{}",
        next.log()
    );
    assert!(
        next.log().contains("watch failed"),
        "the daemon should be retrying the API:\n{}",
        next.log()
    );

    // The API becomes reachable (a forwarder on the port the daemon uses):
    // the daemon reads the lists, adopts what is there (nothing to do), and
    // from then on follows the cluster.
    let mut forwarder = Command::new("ip")
        .args(["netns", "exec", n.node.name(), "socat"])
        .args([
            "TCP-LISTEN:16444,fork,reuseaddr,bind=127.0.0.1",
            "TCP:127.0.0.1:16443",
        ])
        .spawn()
        .expect("spawn socat");
    let syncs = next.wait_for_syncs(0, "after the API became reachable");
    println!("first sync once the API was reachable: {}", syncs[0].line);
    assert_eq!(view(&n.node), before);
    post(&n.node, &services, &service_json("late", "10.96.0.30"));
    post(&n.node, &slices, &slice_json("late", &["10.244.1.3"]));
    let mut want = expected_ipvs();
    want.push(vec![
        "TCP 10.96.0.30:80 rr".to_owned(),
        "-> 10.244.1.3:8080 Masq 1".to_owned(),
    ]);
    let followed = eventually(120, || view(&n.node).ipvs == want);
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    assert!(
        followed,
        "a service created later was not programmed: {:#?}\n{}",
        view(&n.node),
        next.log()
    );
    assert_traffic(&n.node, "after the API came back");
    assert!(
        syncs[0].full && syncs[0].steps == 0 && syncs[0].failed == 0,
        "the first sync once the lists were read must adopt the kernel state: {}\n{}",
        syncs[0].line,
        next.log()
    );
}
