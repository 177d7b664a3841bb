//! Node addresses follow rtnetlink notifications, not polling.
//!
//! - In-process: the runtime's `NodeAddresses` in a network namespace
//!   sees an address added and removed, each as one notification and one
//!   re-read, and never counts kube-ipvs0's, loopback or link-local ones.
//! - The daemon, started with a one-hour `--sync-period` so no full resync
//!   can help: an address added to an interface gains the node-port
//!   virtual service, removing it drops that service; 127.0.0.1 and
//!   kube-ipvs0's addresses never get one; `--nodeport-addresses` narrows
//!   the addresses.

mod daemon_support;

use std::{collections::BTreeSet, future::Future, net::IpAddr, time::Duration};

use daemon_support::{services_path, slices_path, Node};
use kipvs_integration::{
    daemon::{Daemon, NODE_NAME},
    run_checked, TestNetns,
};
use kipvs_netlink::{Counters, Family};
use kipvs_runtime::NodeAddresses;
use serde_json::json;

/// Runs `ip` in `netns` (from inside `TestNetns::run`, where the test
/// thread cannot use `TestNetns::exec`).
fn ip(netns: &str, args: &[&str]) {
    let mut argv = vec!["ip", "-n", netns];
    argv.extend_from_slice(args);
    run_checked(&argv);
}

/// A bounded wait for `future` (the VM is slow; the time is not asserted).
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 60 s"))
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

/// A dummy link `name`, up, without an automatic IPv6 link-local address
/// (so no notification arrives that the test did not cause).
fn quiet_dummy(netns: &TestNetns, name: &str) {
    netns.exec(&["ip", "link", "add", name, "type", "dummy"]);
    netns.exec(&["ip", "link", "set", name, "addrgenmode", "none"]);
    netns.exec(&["ip", "link", "set", name, "up"]);
}

#[test]
fn address_notifications_keep_the_node_addresses_current() {
    let netns = TestNetns::new("addrs");
    quiet_dummy(&netns, "node0");
    netns.exec(&["ip", "addr", "add", "192.168.90.1/24", "dev", "node0"]);
    let name = netns.name().to_owned();
    let (initial, added, add_cost, removed, remove_cost) = netns.run(move || async move {
        let counters = Counters::default();
        let mut addresses = NodeAddresses::start(counters.clone()).await.unwrap();
        let initial = addresses.current();

        let before = counters.snapshot();
        ip(&name, &["addr", "add", "192.168.90.2/24", "dev", "node0"]);
        bounded("address added", addresses.changed()).await;
        let added = addresses.current();
        let add_cost = counters.snapshot().since(&before);

        // None of these is a node address: each is noticed and re-read,
        // but the set does not change, so the loop is not woken.
        ip(&name, &["link", "add", "kube-ipvs0", "type", "dummy"]);
        ip(
            &name,
            &["addr", "add", "10.96.0.10/32", "dev", "kube-ipvs0"],
        );
        ip(&name, &["addr", "add", "127.0.0.2/8", "dev", "lo"]);
        ip(
            &name,
            &["addr", "add", "fe80::99/64", "dev", "node0", "nodad"],
        );
        // The last change: when the set changes, every change above has
        // been read too.
        let before = counters.snapshot();
        ip(&name, &["addr", "del", "192.168.90.2/24", "dev", "node0"]);
        bounded("address removed", addresses.changed()).await;
        let removed = addresses.current();
        let remove_cost = counters.snapshot().since(&before);
        (initial, added, add_cost, removed, remove_cost)
    });
    assert_eq!(initial, ips(&["192.168.90.1"]));
    assert_eq!(added, ips(&["192.168.90.1", "192.168.90.2"]));
    assert_eq!(removed, ips(&["192.168.90.1"]));
    // One notification, one re-read: a GETLINK for kube-ipvs0's index and
    // one address dump.
    assert_eq!(
        add_cost.received(Family::Route, "notify NEWADDR"),
        1,
        "{add_cost}"
    );
    assert_eq!(add_cost.sent(Family::Route, "GETADDR"), 1, "{add_cost}");
    assert_eq!(add_cost.sent(Family::Route, "GETLINK"), 1, "{add_cost}");
    assert_eq!(add_cost.sent_all(), 2, "{add_cost}");
    assert!(
        remove_cost.received(Family::Route, "notify DELADDR") >= 1,
        "{remove_cost}"
    );
}

// ---- the daemon ----

const NODE_PORT: &str = ":30080";

/// A NodePort service `np`: 10.96.0.20 TCP 80 → 8080, node port 30080, one
/// endpoint on this node.
fn create_node_port_service(node: &Node) {
    node.create(
        &services_path("default"),
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "np", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.96.0.20",
                "clusterIPs": ["10.96.0.20"],
                "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
            },
        }),
    );
    node.create(
        &slices_path("default"),
        &json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "np-slice",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "np"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": true}, "nodeName": NODE_NAME}],
        }),
    );
}

/// The daemon on `node` with a one-hour sync period (so only the first
/// sync is a full resync) and `extra` flags.
fn start_daemon(node: &Node, extra: &[&str]) -> Daemon {
    // Node keeps these paths private; they follow its naming.
    let kubeconfig = format!("/tmp/{}-kubeconfig.yaml", node.name());
    let log = format!("/tmp/{}-daemon.log", node.name());
    let mut args = vec![
        "--kubeconfig",
        &kubeconfig,
        "--node-name",
        NODE_NAME,
        "--cluster-cidr",
        "10.244.0.0/16",
        "--sync-period",
        "1h",
        "--healthz-bind-address",
        "",
        "-v",
    ];
    args.extend_from_slice(extra);
    Daemon::spawn(&node.netns, &[], &args, log.into())
}

/// The addresses that have a virtual service on the node port.
fn node_port_addresses(node: &Node) -> BTreeSet<String> {
    node.ipvsadm()
        .blocks
        .iter()
        .filter_map(|block| {
            let service = block[0].split_whitespace().nth(1)?;
            service.strip_suffix(NODE_PORT).map(str::to_owned)
        })
        .collect()
}

fn strings(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn node_port_virtual_services_follow_address_changes_without_a_resync() {
    let node = Node::new();
    quiet_dummy(&node.netns, "eth1");
    node.create_node_object();
    create_node_port_service(&node);
    let daemon = start_daemon(&node, &[]);
    // 192.168.77.1 is the node's address (on lo); 127.0.0.1 is not one.
    node.wait_for("the node port on the node address", || {
        node_port_addresses(&node) == strings(&["192.168.77.1"])
    });
    assert!(node
        .ipvsadm()
        .block("TCP  10.96.0.20:80 rr")
        .is_some_and(|block| block.len() == 2));

    node.netns
        .exec(&["ip", "addr", "add", "192.168.88.1/24", "dev", "eth1"]);
    node.wait_for("the node port on the added address", || {
        node_port_addresses(&node) == strings(&["192.168.77.1", "192.168.88.1"])
    });
    let block = node.ipvsadm().block("TCP  192.168.88.1:30080").cloned();
    assert_eq!(
        block.map(|b| b.len()),
        Some(2),
        "one real server\n{}",
        node.logs()
    );

    node.netns
        .exec(&["ip", "addr", "del", "192.168.88.1/24", "dev", "eth1"]);
    node.wait_for("the node port gone with the address", || {
        node_port_addresses(&node) == strings(&["192.168.77.1"])
    });

    // kube-ipvs0 holds the cluster IP; it never gets a node port, nor
    // does loopback.
    assert_eq!(
        node.ipvs0_addresses().len(),
        1,
        "{:?}",
        node.ipvs0_addresses()
    );
    let with_node_port = node_port_addresses(&node);
    assert!(!with_node_port.contains("10.96.0.20"));
    assert!(!with_node_port.contains("127.0.0.1"));
    // Only the first sync read the kernel back: the notifications alone
    // brought the address changes in.
    assert_eq!(daemon.full_syncs(), 1, "{}", daemon.log());
    assert!(
        daemon.log().contains("node addresses changed"),
        "{}",
        daemon.log()
    );
}

#[test]
fn nodeport_addresses_narrows_the_node_port_addresses() {
    let node = Node::new();
    quiet_dummy(&node.netns, "eth1");
    node.netns
        .exec(&["ip", "addr", "add", "192.168.88.1/24", "dev", "eth1"]);
    node.create_node_object();
    create_node_port_service(&node);
    let _daemon = start_daemon(&node, &["--nodeport-addresses", "192.168.88.0/24"]);
    node.wait_for("the node port only inside 192.168.88.0/24", || {
        node_port_addresses(&node) == strings(&["192.168.88.1"])
    });
    // An address outside the range, then one inside: once the second
    // shows, the first has been read too.
    node.netns
        .exec(&["ip", "addr", "add", "192.168.99.1/24", "dev", "eth1"]);
    node.netns
        .exec(&["ip", "addr", "add", "192.168.88.2/24", "dev", "eth1"]);
    node.wait_for("the node port on the new address inside the range", || {
        node_port_addresses(&node) == strings(&["192.168.88.1", "192.168.88.2"])
    });
}
