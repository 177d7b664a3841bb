//! Every Service feature on a two-node cluster in network namespaces
//! (integration/src/cluster/), each node running its own `kube-ipvs`
//! against one fake API server, checked with real traffic from pods and
//! outside clients and by the nodes' `ipvsadm -Ln` / `ipset save`.
//!
//! Each test builds its own cluster: pods `a1`, `a2` on node-a (10.244.1.11,
//! .12) and `b1` on node-b (10.244.2.11); the outside clients 192.168.50.100
//! (allowed) and .101 (denied).

use std::collections::BTreeSet;

use kipvs_integration::cluster::{
    answers, http_from, request, routes, socket, tcp_connects, tcp_refused, Answer, Cluster,
    Endpoint, Family, LongConnection, ServiceObject, CLIENT,
};
use serde_json::{json, Value};

const NODE_A: usize = 0;
const NODE_B: usize = 1;
const PODS: &[&str] = &["a1", "a2", "b1"];

/// The pods that answered, failed requests as `-`.
fn who(answers: &[Option<Answer>]) -> BTreeSet<String> {
    answers
        .iter()
        .map(|a| a.as_ref().map_or("-".to_owned(), |a| a.pod.clone()))
        .collect()
}

fn set<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Creates `service` and its IPv4 slice with `endpoints`.
fn create(cluster: &Cluster, service: &ServiceObject, endpoints: &[Endpoint]) {
    cluster.apply(&service.0);
    cluster.apply(&kipvs_integration::cluster::slice(
        service.name(),
        Family::V4,
        endpoints,
    ));
}

fn v4(cluster: &Cluster, pods: &[&str]) -> Vec<Endpoint> {
    pods.iter()
        .map(|p| Endpoint::of(cluster, p, Family::V4))
        .collect()
}

/// The harness itself, with what the ClusterIP proxy already does: a pod
/// on node-a reaches pods on both nodes through a cluster IP, unmasqueraded
/// (the backends see the pod's own address), and both nodes program the
/// same virtual service.
#[test]
fn cluster_ip_from_a_pod_reaches_pods_on_both_nodes() {
    let cluster = Cluster::start(PODS);
    let web = ServiceObject::cluster_ip("web", &["10.96.0.10"], 80);
    create(&cluster, &web, &v4(&cluster, &["a1", "b1"]));
    for node in [NODE_A, NODE_B] {
        cluster.wait_for_real_servers(
            node,
            "TCP 10.96.0.10:80",
            &["10.244.1.11:8080 1", "10.244.2.11:8080 1"],
        );
    }

    let got = answers(&cluster.pod("a2").netns, "10.96.0.10:80", 4);
    assert_eq!(who(&got), set(["a1", "b1"]), "{got:?}");
    for answer in got.iter().flatten() {
        assert_eq!(
            answer.client, "10.244.1.12",
            "pod traffic is not masqueraded"
        );
    }
    // And from node-b's pod network too: node-b's IPVS, same backends.
    let from_b = answers(&cluster.nodes[NODE_B].netns, "10.96.0.10:80", 4);
    assert_eq!(who(&from_b), set(["a1", "b1"]), "{from_b:?}");
}

/// NodePort on node-a reaches a pod on node-b and the reply returns:
/// masqueraded, so the pod sees node-a's address. 127.0.0.1 is not a node
/// address: refused.
#[test]
fn node_port_reaches_a_pod_on_the_other_node_masqueraded() {
    let cluster = Cluster::start(PODS);
    let web = ServiceObject::cluster_ip("web", &["10.96.0.20"], 80).node_port(30080);
    create(&cluster, &web, &v4(&cluster, &["b1"]));
    cluster.wait_for_real_servers(NODE_A, "TCP 192.168.50.10:30080", &["10.244.2.11:8080 1"]);
    cluster.wait_for_set_entries(NODE_A, &["add KUBE-NODE-PORT-TCP 30080"]);

    // Node-port traffic is marked for masquerade unless it comes from
    // loopback (no node ports on localhost) or is externalTrafficPolicy
    // Local (its set returns first).
    let services = cluster.nft_chain(NODE_A, Family::V4, "services");
    assert_eq!(
        services.first().map(String::as_str),
        Some("ip saddr 127.0.0.0/8 return")
    );
    assert_eq!(
        services.last().map(String::as_str),
        Some("fib daddr type local goto node-port")
    );
    assert_eq!(
        cluster.nft_chain(NODE_A, Family::V4, "node-port")[..2],
        [
            "meta l4proto tcp xt match set return",
            "meta l4proto tcp xt match set jump mark-for-masquerade"
        ]
    );

    let got = answers(&cluster.client, "192.168.50.10:30080", 3);
    let want = Answer {
        pod: "b1".into(),
        client: "192.168.50.10".into(),
    };
    assert_eq!(got, vec![Some(want); 3]);

    // Node ports live on node addresses only, never on loopback.
    let table = cluster.ipvsadm(NODE_A);
    assert!(
        routes(&table, "TCP 127.0.0.1:30080").is_none(),
        "{:?}",
        table.blocks
    );
    assert!(tcp_refused(&cluster.nodes[NODE_A].netns, "127.0.0.1:30080"));
    // The node port's virtual services on node-a: one per local IPv4
    // address but kube-ipvs0's and loopback (its lan address, and the pod
    // gateway the pods' veths share); none on IPv6, the service is
    // IPv4-only.
    let node_ports: BTreeSet<String> = table
        .routes()
        .iter()
        .filter(|block| block[0].contains(":30080 "))
        .map(|block| block[0].clone())
        .collect();
    assert_eq!(
        node_ports,
        set(["TCP 10.244.1.1:30080 rr", "TCP 192.168.50.10:30080 rr"])
    );

    // Deleting the service removes its node-port virtual services (on node
    // addresses, not kube-ipvs0's) and their set entry from every node.
    cluster.delete(&web.0);
    for node in [NODE_A, NODE_B] {
        cluster.wait_for(&format!("no node port 30080 left on node {node}"), || {
            !cluster
                .ipvsadm(node)
                .routes()
                .iter()
                .any(|block| block[0].contains(":30080 "))
                && !cluster
                    .ipset_save(node)
                    .iter()
                    .any(|line| line.starts_with("add KUBE-NODE-PORT-TCP 30080"))
        });
    }
    assert!(http_from(&cluster.client, "192.168.50.10:30080").is_none());
}

/// externalTrafficPolicy Local: node port and LB address go only to this
/// node's endpoints, unmasqueraded (the backend sees the outside client);
/// the node without one drops, and its health-check node port says 503
/// where the other's says 200.
#[test]
fn external_traffic_policy_local_keeps_the_client_address() {
    let cluster = Cluster::start(PODS);
    let local = ServiceObject::cluster_ip("local", &["10.96.0.30"], 80)
        .load_balancer(30081, &["192.168.60.10"])
        .external_local(30300);
    create(&cluster, &local, &v4(&cluster, &["a1"]));
    cluster.route_via(&cluster.client, "192.168.60.10/32", NODE_A);
    cluster.wait_for_real_servers(NODE_A, "TCP 192.168.50.10:30081", &["10.244.1.11:8080 1"]);
    cluster.wait_for_real_servers(NODE_A, "TCP 192.168.60.10:80", &["10.244.1.11:8080 1"]);
    // No local endpoint on node-b: the virtual services exist, empty.
    cluster.wait_for_real_servers(NODE_B, "TCP 192.168.50.11:30081", &[]);
    cluster.wait_for_real_servers(NODE_B, "TCP 192.168.60.10:80", &[]);
    // The cluster IP is not affected by the external policy.
    cluster.wait_for_real_servers(NODE_B, "TCP 10.96.0.30:80", &["10.244.1.11:8080 1"]);
    for node in [NODE_A, NODE_B] {
        cluster.wait_for_set_entries(
            node,
            &[
                "add KUBE-NODE-PORT-LOCAL-TCP 30081",
                "add KUBE-LOAD-BALANCER-LOCAL 192.168.60.10,tcp:80",
                "add KUBE-HEALTH-CHECK-NODE-PORT 30300",
            ],
        );
    }

    // LB traffic: the Local set returns before the masquerade mark.
    assert_eq!(
        cluster.nft_chain(NODE_A, Family::V4, "load-balancer"),
        vec!["xt match set return", "jump mark-for-masquerade"]
    );

    let from_client = Answer {
        pod: "a1".into(),
        client: CLIENT.0.into(),
    };
    for addr in ["192.168.50.10:30081", "192.168.60.10:80"] {
        let got = answers(&cluster.client, addr, 2);
        assert_eq!(got, vec![Some(from_client.clone()); 2], "through {addr}");
    }
    assert!(
        http_from(&cluster.client, "192.168.50.11:30081").is_none(),
        "node-b has no local endpoint: its node port must not answer"
    );

    let health = |node: &str| {
        let (status, body) = request(&cluster.client, &format!("{node}:30300"), "GET", "/", None)
            .unwrap_or_else(|e| panic!("health check of {node}: {e}\n{}", cluster.logs()));
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("health check body of {node} {body:?}: {e}"));
        (status, body)
    };
    let body = |endpoints: u32| {
        json!({
            "service": {"namespace": "default", "name": "local"},
            "localEndpoints": endpoints,
            "serviceProxyHealthy": true,
        })
    };
    assert_eq!(health("192.168.50.10"), (200, body(1)));
    assert_eq!(health("192.168.50.11"), (503, body(0)));
}

/// loadBalancerSourceRanges: only the listed client reaches the LB
/// address; the other is dropped there, but still reaches the node port
/// (the ranges guard the LB address only, as in Kubernetes).
#[test]
fn load_balancer_source_ranges_admit_only_listed_clients() {
    let cluster = Cluster::start(PODS);
    let ranged = ServiceObject::cluster_ip("ranged", &["10.96.0.40"], 80)
        .load_balancer(30082, &["192.168.60.20"])
        .source_ranges(&["192.168.50.100/32"]);
    create(&cluster, &ranged, &v4(&cluster, &["a1", "b1"]));
    for client in [&cluster.client, &cluster.other_client] {
        cluster.route_via(client, "192.168.60.20/32", NODE_A);
    }
    cluster.wait_for_real_servers(
        NODE_A,
        "TCP 192.168.60.20:80",
        &["10.244.1.11:8080 1", "10.244.2.11:8080 1"],
    );
    cluster.wait_for_set_entries(
        NODE_A,
        &[
            "add KUBE-LOAD-BALANCER 192.168.60.20,tcp:80",
            "add KUBE-LOAD-BALANCER-FW 192.168.60.20,tcp:80",
            "add KUBE-LOAD-BALANCER-SOURCE-CIDR 192.168.60.20,tcp:80,192.168.50.100",
        ],
    );

    // Traffic to a firewalled LB address goes through the source ranges:
    // allowed by CIDR, allowed from the LB address itself (the node), else
    // dropped.
    assert!(cluster
        .nft_chain(NODE_A, Family::V4, "filter-input")
        .contains(&"xt match set jump source-ranges".to_owned()));
    assert_eq!(
        cluster.nft_chain(NODE_A, Family::V4, "source-ranges"),
        vec!["xt match set return", "xt match set return", "drop"]
    );
    let allowed = answers(&cluster.client, "192.168.60.20:80", 2);
    assert_eq!(who(&allowed), set(["a1", "b1"]), "{allowed:?}");
    assert!(
        !tcp_connects(&cluster.other_client, "192.168.60.20:80"),
        "a client outside loadBalancerSourceRanges reached the LB address"
    );
    assert!(
        http_from(&cluster.other_client, "192.168.50.10:30082").is_some(),
        "the source ranges must not guard the node port"
    );
    // No range covers node-a: its own connections to the LB address are
    // dropped too (IPVS takes them in LOCAL_OUT, so `filter-output` checks
    // them first).
    assert_eq!(
        cluster.nft_chain(NODE_A, Family::V4, "filter-output"),
        vec![
            "type filter hook output priority -110; policy accept;",
            "xt match set jump source-ranges"
        ]
    );
    assert!(
        !tcp_connects(&cluster.nodes[NODE_A].netns, "192.168.60.20:80"),
        "node-a reached an LB address whose ranges do not cover it"
    );

    // A range that covers node-a: the node reaches its LB address (from
    // that address, hence the SOURCE-IP entry); .101 still does not.
    let covering = ServiceObject::cluster_ip("covering", &["10.96.0.41"], 80)
        .load_balancer(30083, &["192.168.60.21"])
        .source_ranges(&["192.168.50.100/32", "192.168.50.10/32"]);
    create(&cluster, &covering, &v4(&cluster, &["a1", "b1"]));
    cluster.route_via(&cluster.other_client, "192.168.60.21/32", NODE_A);
    cluster.wait_for_set_entries(
        NODE_A,
        &["add KUBE-LOAD-BALANCER-SOURCE-IP 192.168.60.21,tcp:80,192.168.60.21"],
    );
    assert!(
        http_from(&cluster.nodes[NODE_A].netns, "192.168.60.21:80").is_some(),
        "node-a, covered by a range, could not reach its LB address"
    );
    assert!(!tcp_connects(&cluster.other_client, "192.168.60.21:80"));
}

/// externalIPs: reachable from outside through the node the client routes
/// them to, masqueraded (externalTrafficPolicy Cluster) to a pod on the
/// other node.
#[test]
fn external_ips_reach_pods_on_any_node() {
    let cluster = Cluster::start(PODS);
    let external =
        ServiceObject::cluster_ip("external", &["10.96.0.45"], 80).external_ips(&["192.168.60.30"]);
    create(&cluster, &external, &v4(&cluster, &["a1"]));
    cluster.route_via(&cluster.client, "192.168.60.30/32", NODE_B);
    cluster.wait_for_real_servers(NODE_B, "TCP 192.168.60.30:80", &["10.244.1.11:8080 1"]);
    cluster.wait_for_set_entries(NODE_B, &["add KUBE-EXTERNAL-IP 192.168.60.30,tcp:80"]);

    let got = answers(&cluster.client, "192.168.60.30:80", 2);
    let want = Answer {
        pod: "a1".into(),
        client: "192.168.50.11".into(),
    };
    assert_eq!(got, vec![Some(want); 2]);

    // Dropping the external IP from the service removes its virtual
    // service and its address; the cluster IP stays.
    let without = ServiceObject::cluster_ip("external", &["10.96.0.45"], 80);
    cluster.apply(&without.0);
    cluster.wait_for("192.168.60.30 gone from node-b", || {
        let table = cluster.ipvsadm(NODE_B);
        routes(&table, "TCP 192.168.60.30:80").is_none()
            && routes(&table, "TCP 10.96.0.45:80").is_some()
    });
    assert!(!tcp_connects(&cluster.client, "192.168.60.30:80"));
}

/// Session affinity ClientIP: one client always lands on one backend; a
/// service without affinity spreads over both.
#[test]
fn client_ip_affinity_pins_a_client_while_another_service_spreads() {
    let cluster = Cluster::start(PODS);
    let sticky = ServiceObject::cluster_ip("sticky", &["10.96.0.50"], 80).client_ip_affinity(600);
    let spread = ServiceObject::cluster_ip("spread", &["10.96.0.51"], 80);
    create(&cluster, &sticky, &v4(&cluster, &["a1", "b1"]));
    create(&cluster, &spread, &v4(&cluster, &["a1", "b1"]));
    let both = ["10.244.1.11:8080 1", "10.244.2.11:8080 1"];
    let sticky_routes = cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.50:80", &both);
    assert_eq!(sticky_routes[0], "TCP 10.96.0.50:80 rr persistent 600");
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.51:80", &both);

    let client = &cluster.pod("a2").netns;
    let pinned = answers(client, "10.96.0.50:80", 6);
    assert_eq!(who(&pinned).len(), 1, "{pinned:?}");
    assert!(!who(&pinned).contains("-"), "{pinned:?}");
    let spread = answers(client, "10.96.0.51:80", 6);
    assert_eq!(who(&spread), set(["a1", "b1"]), "{spread:?}");
}

/// Terminating endpoints: a serving-and-terminating endpoint gets no
/// traffic while a ready one exists, and all of it once none is ready.
#[test]
fn terminating_endpoints_serve_only_when_no_ready_one_exists() {
    let cluster = Cluster::start(PODS);
    let rolling = ServiceObject::cluster_ip("rolling", &["10.96.0.65"], 80);
    let a1 = Endpoint::of(&cluster, "a1", Family::V4);
    let b1_terminating = Endpoint::of(&cluster, "b1", Family::V4).terminating();
    create(&cluster, &rolling, &[a1.clone(), b1_terminating.clone()]);
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.65:80", &["10.244.1.11:8080 1"]);
    let got = answers(&cluster.pod("a2").netns, "10.96.0.65:80", 3);
    assert_eq!(who(&got), set(["a1"]), "{got:?}");

    create(&cluster, &rolling, &[a1.terminating(), b1_terminating]);
    cluster.wait_for_real_servers(
        NODE_A,
        "TCP 10.96.0.65:80",
        &["10.244.1.11:8080 1", "10.244.2.11:8080 1"],
    );
    let got = answers(&cluster.pod("a2").netns, "10.96.0.65:80", 4);
    assert_eq!(who(&got), set(["a1", "b1"]), "{got:?}");
}

/// The endpoint of `answer` and the other one (of a1 / b1).
fn split_endpoints(answer: &Answer) -> (&'static str, &'static str) {
    match answer.pod.as_str() {
        "a1" => ("a1", "b1"),
        "b1" => ("b1", "a1"),
        other => panic!("unexpected backend {other}"),
    }
}

fn real_server(pod: &str, weight: u8) -> String {
    match pod {
        "a1" => format!("10.244.1.11:8080 {weight}"),
        "b1" => format!("10.244.2.11:8080 {weight}"),
        other => panic!("no endpoint address for {other}"),
    }
}

/// Starts a service `name` on `ip` with endpoints a1 and b1, opens a
/// long-lived connection to it from pod a2 (so through node-a), then
/// removes the endpoint that connection landed on and waits until node-a
/// drains it (weight 0). Returns the connection, the drained pod, the
/// remaining one.
fn drain_one(
    cluster: &Cluster,
    service: &ServiceObject,
    ip: &str,
) -> (LongConnection, &'static str, &'static str) {
    let vs = format!("TCP {ip}:80");
    create(cluster, service, &v4(cluster, &["a1", "b1"]));
    cluster.wait_for_real_servers(NODE_A, &vs, &[&real_server("a1", 1), &real_server("b1", 1)]);
    let mut connection = LongConnection::open(&cluster.pod("a2").netns, &socket(ip, 80))
        .unwrap_or_else(|e| panic!("long-lived connection to {ip}: {e}\n{}", cluster.logs()));
    let first = connection.ask().expect("first answer");
    let (drained, remaining) = split_endpoints(&first);

    cluster.apply(&kipvs_integration::cluster::slice(
        service.name(),
        Family::V4,
        &v4(cluster, &[remaining]),
    ));
    cluster.wait_for_real_servers(
        NODE_A,
        &vs,
        &[&real_server(drained, 0), &real_server(remaining, 1)],
    );
    (connection, drained, remaining)
}

/// Asserts the long-lived connection still reaches `drained` while new
/// connections go only to `remaining`.
fn assert_draining(
    cluster: &Cluster,
    connection: &mut LongConnection,
    ip: &str,
    drained: &str,
    remaining: &str,
) {
    for _ in 0..3 {
        let answer = connection
            .ask()
            .unwrap_or_else(|e| panic!("the draining connection broke: {e}\n{}", cluster.logs()));
        assert_eq!(answer.pod, drained);
    }
    let fresh = answers(&cluster.pod("a2").netns, &socket(ip, 80), 4);
    assert_eq!(who(&fresh), set([remaining]), "new connections: {fresh:?}");
}

/// Graceful termination: a long-lived connection to a removed endpoint
/// keeps working (weight 0) while new connections go to the other; once it
/// closes (RST) the real server is deleted.
#[test]
fn a_removed_endpoint_drains_its_connections_then_disappears() {
    let cluster = Cluster::start(PODS);
    let ip = "10.96.0.60";
    let drain = ServiceObject::cluster_ip("drain", &[ip], 80);
    let (mut connection, drained, remaining) = drain_one(&cluster, &drain, ip);
    assert_draining(&cluster, &mut connection, ip, drained, remaining);

    connection.reset();
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.60:80", &[&real_server(remaining, 1)]);
}

/// The same across a daemon restart in the middle: the new daemon finds
/// the weight-0 real server the cluster no longer lists, keeps it while
/// its connection lives, deletes it after.
#[test]
fn draining_survives_a_daemon_restart() {
    let mut cluster = Cluster::start(PODS);
    let ip = "10.96.0.61";
    let drain = ServiceObject::cluster_ip("drain", &[ip], 80);
    let (mut connection, drained, remaining) = drain_one(&cluster, &drain, ip);

    cluster.restart_daemon(NODE_A, &[]);
    // Two more syncs of the new daemon (one full), and still draining.
    let seen = cluster.nodes[NODE_A].daemon().syncs().len();
    cluster.nodes[NODE_A]
        .daemon()
        .wait_for_syncs(seen, "a sync of the restarted daemon");
    cluster.wait_for_real_servers(
        NODE_A,
        "TCP 10.96.0.61:80",
        &[&real_server(drained, 0), &real_server(remaining, 1)],
    );
    assert_draining(&cluster, &mut connection, ip, drained, remaining);

    connection.reset();
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.61:80", &[&real_server(remaining, 1)]);
}

/// internalTrafficPolicy Local: a pod on node-a reaches only node-a's pod
/// through the cluster IP; each node's virtual service lists only its own
/// endpoints.
#[test]
fn internal_traffic_policy_local_uses_only_the_nodes_endpoints() {
    let cluster = Cluster::start(PODS);
    let local = ServiceObject::cluster_ip("local", &["10.96.0.70"], 80).internal_local();
    create(&cluster, &local, &v4(&cluster, &["a1", "b1"]));
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.70:80", &["10.244.1.11:8080 1"]);
    cluster.wait_for_real_servers(NODE_B, "TCP 10.96.0.70:80", &["10.244.2.11:8080 1"]);

    let got = answers(&cluster.pod("a2").netns, "10.96.0.70:80", 4);
    assert_eq!(who(&got), set(["a1"]), "{got:?}");
}

/// Topology hints: with every endpoint hinted, node-a (zone-a) uses only
/// the zone-a endpoint and node-b only the zone-b one.
#[test]
fn topology_hints_keep_traffic_in_its_zone() {
    let cluster = Cluster::start(PODS);
    let zoned = ServiceObject::cluster_ip("zoned", &["10.96.0.71"], 80);
    let endpoints = [
        Endpoint::of(&cluster, "a1", Family::V4).for_zones(&["zone-a"]),
        Endpoint::of(&cluster, "b1", Family::V4).for_zones(&["zone-b"]),
    ];
    create(&cluster, &zoned, &endpoints);
    cluster.wait_for_real_servers(NODE_A, "TCP 10.96.0.71:80", &["10.244.1.11:8080 1"]);
    cluster.wait_for_real_servers(NODE_B, "TCP 10.96.0.71:80", &["10.244.2.11:8080 1"]);

    let got = answers(&cluster.pod("a2").netns, "10.96.0.71:80", 4);
    assert_eq!(who(&got), set(["a1"]), "{got:?}");
}

/// The mh scheduler (per-service annotation) with a weight-0 real server:
/// the client whose hash picked it gets new connections elsewhere (the
/// fallback flag is set, unlike kube-proxy).
#[test]
fn mh_sends_nothing_new_to_a_draining_real_server() {
    let cluster = Cluster::start(PODS);
    let ip = "10.96.0.80";
    let hashed = ServiceObject::cluster_ip("hashed", &[ip], 80)
        .annotate("ipvs.kube-ipvs.io/scheduler", "mh");
    let (mut connection, drained, remaining) = drain_one(&cluster, &hashed, ip);
    let table = cluster.ipvsadm(NODE_A);
    let block = routes(&table, "TCP 10.96.0.80:80").expect("the mh service");
    assert_eq!(block[0], "TCP 10.96.0.80:80 mh (mh-fallback)");

    // mh hashes the source address: every new connection from a2 would go
    // where the long-lived one went, but that real server is at weight 0.
    assert_draining(&cluster, &mut connection, ip, drained, remaining);
    connection.reset();
}

/// IPv6: a dual-stack service's IPv6 cluster IP and IPv6 node port carry
/// traffic to pods on both nodes.
#[test]
fn ipv6_cluster_ip_and_node_port_carry_traffic() {
    let cluster = Cluster::start(PODS);
    let web =
        ServiceObject::cluster_ip("web6", &["10.96.0.90", "fd00:96::90"], 80).node_port(30090);
    cluster.apply(&web.0);
    for family in [Family::V4, Family::V6] {
        let endpoints: Vec<Endpoint> = ["a1", "b1"]
            .iter()
            .map(|p| Endpoint::of(&cluster, p, family))
            .collect();
        cluster.apply(&kipvs_integration::cluster::slice(
            "web6", family, &endpoints,
        ));
    }
    let both6 = ["[fd00:244:0:1::11]:8080 1", "[fd00:244:0:2::11]:8080 1"];
    cluster.wait_for_real_servers(NODE_A, "TCP [fd00:96::90]:80", &both6);
    cluster.wait_for_real_servers(NODE_A, "TCP [fd00:50::10]:30090", &both6);
    cluster.wait_for_set_entries(
        NODE_A,
        &[
            "add KUBE-6-CLUSTER-IP fd00:96::90,tcp:80",
            "add KUBE-6-NODE-PORT-TCP 30090",
        ],
    );

    // The ip6 table: no node ports from ::1, masquerade from outside the
    // IPv6 pod range.
    let services6 = cluster.nft_chain(NODE_A, Family::V6, "services");
    assert_eq!(
        services6.first().map(String::as_str),
        Some("ip6 saddr ::1 return")
    );
    assert!(
        services6.contains(
            &"xt match set ip6 saddr != fd00:244::/56 jump mark-for-masquerade".to_owned()
        ),
        "{services6:?}"
    );
    let from_pod = answers(&cluster.pod("a2").netns, "[fd00:96::90]:80", 4);
    assert_eq!(who(&from_pod), set(["a1", "b1"]), "{from_pod:?}");
    for answer in from_pod.iter().flatten() {
        assert_eq!(
            answer.client, "fd00:244:0:1::12",
            "pod traffic is not masqueraded"
        );
    }
    let from_outside = answers(&cluster.client, "[fd00:50::10]:30090", 4);
    assert_eq!(who(&from_outside), set(["a1", "b1"]), "{from_outside:?}");
    for answer in from_outside.iter().flatten().filter(|a| a.pod == "b1") {
        assert_eq!(
            answer.client, "fd00:50::10",
            "node-port traffic is masqueraded"
        );
    }
    // The IPv4 side of the same service still works.
    let from_pod4 = answers(&cluster.pod("a2").netns, "10.96.0.90:80", 2);
    assert_eq!(who(&from_pod4), set(["a1", "b1"]), "{from_pod4:?}");
}
