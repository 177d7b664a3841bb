//! The message counts the sync loop is held to, asserted through
//! the kernel layer's counters against a real kernel (in the VM): the
//! runtime's `Syncer` driven in-process inside a node namespace with
//! cluster snapshots built in code.
//!
//! - a sync with no change writes nothing; a full resync only reads;
//! - one endpoint added or removed costs the same few messages with 10 or
//!   200 services;
//! - a full resync reads each kind of object with one dump (real servers:
//!   one dump per owned virtual service; nf_tables chains and rules: one
//!   dump per owned table);
//! - a service the kernel refuses fails alone, is reported, and is retried
//!   on the next sync while every other service converges.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_cluster::Snapshot;
use kipvs_integration::{
    operator::{addr_lines, IpvsTable},
    TestNetns,
};
use kipvs_netlink::{Counters, CountersSnapshot, Family};
use kipvs_planner::NodeConfig;
use kipvs_runtime::{SyncConfig, SyncOutcome, Syncer};
use serde_json::json;

const NODE: &str = "node-a";

/// Service `i`'s cluster IP: 10.96.1.1, 10.96.1.2, …
fn cluster_ip(i: usize) -> String {
    format!("10.96.{}.{}", 1 + i / 250, i % 250 + 1)
}

/// Service `i`'s own (remote) endpoint: 10.244.2.1, …
fn endpoint_ip(i: usize) -> String {
    format!("10.244.{}.{}", 2 + i / 250, i % 250 + 1)
}

fn service(name: &str, ip: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
        }))
        .unwrap(),
    )
}

/// A slice for `service` with ready endpoints `(address, node name)`.
fn slice(service: &str, endpoints: &[(String, &str)]) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|(addr, node)| json!({"addresses": [addr], "conditions": {"ready": true}, "nodeName": node}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{service}-abcde"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap(),
    )
}

/// `n` services `svc-<i>`, each with one remote endpoint; `extra` adds
/// endpoints to service 0.
fn cluster(n: usize, extra: &[(String, &'static str)]) -> Arc<Snapshot> {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..n {
        let name = format!("svc-{i}");
        services.push(service(&name, &cluster_ip(i)));
        let mut endpoints = vec![(endpoint_ip(i), "node-b")];
        if i == 0 {
            endpoints.extend(extra.iter().cloned());
        }
        slices.push(slice(&name, &endpoints));
    }
    Arc::new(Snapshot::new(services, slices, None))
}

fn config() -> SyncConfig {
    SyncConfig {
        node: NodeConfig {
            node_name: NODE.to_owned(),
            cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
            masquerade_all: false,
            scheduler: "rr".to_owned(),
            ..NodeConfig::new(NODE)
        },
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::ZERO,
        graceful_period: Duration::from_secs(900),
    }
}

/// Messages sent, as "family KIND" → count, zero counts left out.
fn sent(messages: &CountersSnapshot) -> BTreeMap<String, u64> {
    messages
        .messages
        .iter()
        .filter(|(_, c)| c.sent > 0)
        .map(|((family, kind), c)| (format!("{family} {kind}"), c.sent))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Every kind that changes kernel state.
const WRITES: &[(Family, &str)] = &[
    (Family::Ipvs, "NEW_SERVICE"),
    (Family::Ipvs, "SET_SERVICE"),
    (Family::Ipvs, "DEL_SERVICE"),
    (Family::Ipvs, "NEW_DEST"),
    (Family::Ipvs, "SET_DEST"),
    (Family::Ipvs, "DEL_DEST"),
    (Family::Ipvs, "FLUSH"),
    (Family::Ipset, "CREATE"),
    (Family::Ipset, "DESTROY"),
    (Family::Ipset, "FLUSH"),
    (Family::Ipset, "ADD"),
    (Family::Ipset, "DEL"),
    (Family::Ipset, "SWAP"),
    (Family::Ipset, "RENAME"),
    (Family::NfTables, "NEWTABLE"),
    (Family::NfTables, "DELTABLE"),
    (Family::NfTables, "NEWCHAIN"),
    (Family::NfTables, "DELCHAIN"),
    (Family::NfTables, "NEWRULE"),
    (Family::NfTables, "DELRULE"),
    (Family::NfTables, "BATCH_BEGIN"),
    (Family::NfTables, "BATCH_END"),
    (Family::Route, "NEWLINK"),
    (Family::Route, "DELLINK"),
    (Family::Route, "SETLINK"),
    (Family::Route, "NEWADDR"),
    (Family::Route, "DELADDR"),
];

/// The dumps a full resync may send (the link look-up included: observe
/// re-finds kube-ipvs0 in case it was deleted).
const READS: &[&str] = &[
    "ipvs GET_SERVICE",
    "ipvs GET_DEST",
    "ipset LIST",
    "route GETLINK",
    "route GETADDR",
    "nftables GETCHAIN",
    "nftables GETRULE",
];

fn assert_only_reads(outcome: &SyncOutcome, context: &str) {
    for (family, kind) in WRITES {
        assert_eq!(
            outcome.messages.sent(*family, kind),
            0,
            "{context}: {family} {kind} sent\n{}",
            outcome.messages
        );
    }
    for kind in sent(&outcome.messages).keys() {
        assert!(
            READS.contains(&kind.as_str()),
            "{context}: unexpected {kind}\n{}",
            outcome.messages
        );
    }
}

/// `ipvsadm -Ln`'s service and real-server lines, single-spaced, without
/// the connection counters, sorted.
fn ipvs_lines(netns: &TestNetns) -> Vec<String> {
    let mut lines = IpvsTable::read(netns).routes().concat();
    lines.sort();
    lines
}

fn bound_addresses(netns: &TestNetns) -> Vec<String> {
    addresses_in(&netns.exec(&["ip", "-o", "-4", "addr", "show", "dev", "kube-ipvs0"]))
}

#[test]
fn a_sync_with_no_change_writes_nothing() {
    const N: usize = 20;
    let netns = TestNetns::new("noop");
    let snapshot = cluster(N, &[]);
    let (first, again, resync) = netns.run(move || async move {
        let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
        let first = syncer.sync(&snapshot, true).await.unwrap();
        let again = syncer.sync(&snapshot, false).await.unwrap();
        if again.steps > 0 {
            print_table_difference(&snapshot).await;
        }
        let resync = syncer.sync(&snapshot, true).await.unwrap();
        (first, again, resync)
    });
    println!(
        "first sync ({N} services): steps {}, sent {:?}",
        first.steps,
        sent(&first.messages)
    );
    assert_eq!(first.failed, 0);
    assert!(first.steps > 0);
    assert_eq!(first.messages.sent(Family::Ipvs, "NEW_SERVICE"), N as u64);
    assert_eq!(first.messages.sent(Family::Ipvs, "NEW_DEST"), N as u64);

    assert_eq!((again.steps, again.failed), (0, 0));
    assert_eq!(
        again.messages.sent_all(),
        0,
        "a no-op sync sent:\n{}",
        again.messages
    );

    println!(
        "full resync without change: sent {:?}",
        sent(&resync.messages)
    );
    assert_eq!((resync.steps, resync.failed), (0, 0));
    assert!(resync.full);
    assert_only_reads(&resync, "full resync without change");
    // The kernel still holds everything.
    let lines = ipvs_lines(&netns);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("TCP ")).count(),
        N,
        "{lines:#?}"
    );
}

/// An operator tool run from inside [`TestNetns::run`] (the thread is in
/// the namespace, so the tool is too).
fn here(argv: &[&str]) -> String {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ipvsadm_here() -> String {
    here(&["ipvsadm", "-Ln"])
}

/// The addresses (`10.96.1.1/32`) in `ip -o addr show` text, sorted.
fn addresses_in(text: &str) -> Vec<String> {
    let mut addrs: Vec<String> = addr_lines(text)
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    addrs.sort();
    addrs
}

/// Diagnostics for a sync that should have planned nothing: each family's
/// table as planned and as the kernel dumps it.
async fn print_table_difference(snapshot: &Snapshot) {
    use kipvs_netlink::{Ipset, NfTables};
    let desired = kipvs_planner::desired(
        snapshot.services(),
        snapshot.endpoint_slices(),
        &config().node,
    );
    let mut ipset = Ipset::open(Counters::default()).unwrap();
    let mut indexes = BTreeMap::new();
    for set in desired.sets.keys() {
        indexes.insert(*set, ipset.index(set.name()).await.unwrap());
    }
    let mut nft = NfTables::open(Counters::default()).unwrap();
    for table in &desired.tables {
        let proto = table.nf_proto();
        println!("== {proto:?} table as planned:");
        println!("{:#?}", table.render(&indexes).unwrap());
        println!("== {proto:?} table as dumped:");
        for message in nft.chains(proto, "kube-ipvs").await.unwrap() {
            println!("{message:?}");
        }
        for message in nft.rules(proto, "kube-ipvs").await.unwrap() {
            println!("{message:?}");
        }
    }
}

/// Adds one local endpoint to service 0 of `n` services and removes it
/// again; returns what the adding sync, the removing sync and the next one
/// (which deletes the real server drained to weight 0) sent.
fn endpoint_change_cost(
    n: usize,
) -> (
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
) {
    let netns = TestNetns::new(&format!("cost{n}"));
    let base = cluster(n, &[]);
    let added = cluster(n, &[("10.244.1.77".to_owned(), NODE)]);
    let (first, idle, add, with_endpoint, remove, delete) = netns.run(move || async move {
        let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
        let first = syncer.sync(&base, true).await.unwrap();
        let idle = syncer.sync(&base, false).await.unwrap();
        let add = syncer.sync(&added, false).await.unwrap();
        let with_endpoint = ipvsadm_here();
        let remove = syncer.sync(&base, false).await.unwrap();
        let delete = syncer.sync(&base, false).await.unwrap();
        (first, idle, add, with_endpoint, remove, delete)
    });
    assert_eq!(first.failed, 0);
    assert_eq!(first.messages.sent(Family::Ipvs, "NEW_SERVICE"), n as u64);
    assert_eq!(idle.messages.sent_all(), 0, "{}", idle.messages);
    assert_eq!((add.failed, remove.failed, delete.failed), (0, 0, 0));
    assert!(
        with_endpoint.contains("10.244.1.77:8080"),
        "{with_endpoint}"
    );
    let after = ipvs_lines(&netns);
    assert!(
        !after.iter().any(|l| l.contains("10.244.1.77")),
        "{after:#?}"
    );
    assert_eq!(after.iter().filter(|l| l.starts_with("TCP ")).count(), n);
    let loop_back = netns.exec(&["ipset", "list", "KUBE-LOOP-BACK"]);
    assert!(!loop_back.contains("10.244.1.77"), "{loop_back}");
    (
        sent(&add.messages),
        sent(&remove.messages),
        sent(&delete.messages),
    )
}

#[test]
fn one_endpoint_change_costs_a_constant_number_of_messages() {
    let (add_10, remove_10, delete_10) = endpoint_change_cost(10);
    let (add_200, remove_200, delete_200) = endpoint_change_cost(200);
    println!("add one local endpoint: 10 services {add_10:?}, 200 services {add_200:?}");
    println!("remove it: 10 services {remove_10:?}, 200 services {remove_200:?}");
    println!("then delete it: 10 services {delete_10:?}, 200 services {delete_200:?}");
    assert_eq!(add_10, add_200);
    assert_eq!(remove_10, remove_200);
    assert_eq!(delete_10, delete_200);
    // The real server, and its KUBE-LOOP-BACK entry (the endpoint is local).
    assert_eq!(add_10, counts(&[("ipvs NEW_DEST", 1), ("ipset ADD", 1)]));
    // Removing it sets its weight to 0 (graceful termination) and drops
    // its KUBE-LOOP-BACK entry; the next sync reads that one service's
    // real servers again (one dump) and, finding no connection, deletes it.
    assert_eq!(remove_10, counts(&[("ipvs SET_DEST", 1), ("ipset DEL", 1)]));
    assert_eq!(
        delete_10,
        counts(&[("ipvs GET_DEST", 1), ("ipvs DEL_DEST", 1)])
    );
}

#[test]
fn a_full_resync_reads_each_kind_once() {
    const N: usize = 12;
    let netns = TestNetns::new("reads");
    // Someone else's virtual service: not ours, so never dumped per real
    // server, and left alone.
    netns.exec(&["ipvsadm", "-A", "-t", "192.0.2.1:80", "-s", "rr"]);
    netns.exec(&[
        "ipvsadm",
        "-a",
        "-t",
        "192.0.2.1:80",
        "-r",
        "192.0.2.9:80",
        "-m",
    ]);
    let snapshot = cluster(N, &[]);
    let (first, resync) = netns.run(move || async move {
        let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
        let first = syncer.sync(&snapshot, true).await.unwrap();
        let resync = syncer.sync(&snapshot, true).await.unwrap();
        (first, resync)
    });
    assert_eq!(first.failed, 0);
    println!(
        "full resync of {N} services: sent {:?}",
        sent(&resync.messages)
    );
    let m = &resync.messages;
    assert_eq!(m.sent(Family::Ipvs, "GET_SERVICE"), 1, "{m}");
    assert_eq!(m.sent(Family::Ipvs, "GET_DEST"), N as u64, "{m}");
    assert_eq!(m.sent(Family::Ipset, "LIST"), 1, "{m}");
    assert_eq!(m.sent(Family::Route, "GETADDR"), 1, "{m}");
    // nf_tables: one chain dump and one rule dump per table kube-ipvs owns
    // (`ip kube-ipvs` and `ip6 kube-ipvs`; the runtime dumps each family
    // on its own, see Dataplane::read_tables).
    assert_eq!(m.sent(Family::NfTables, "GETCHAIN"), 2, "{m}");
    assert_eq!(m.sent(Family::NfTables, "GETRULE"), 2, "{m}");
    assert_only_reads(&resync, "full resync");
    // The real-server dumps are pipelined: fewer sendmsg calls than dumps.
    println!(
        "ipvs sendmsg calls in the resync: {}",
        m.sendmsg(Family::Ipvs)
    );
    let lines = ipvs_lines(&netns);
    assert!(
        lines.contains(&"TCP 192.0.2.1:80 rr".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"-> 192.0.2.9:80 Masq 1".to_owned()),
        "{lines:#?}"
    );
}

#[test]
fn a_failure_on_one_service_does_not_stop_the_others() {
    const N: usize = 5;
    let netns = TestNetns::new("failure");
    // Service "bad" lists the broadcast address of one of the node's
    // subnets: the kernel refuses it as a real server (ip_vs_ctl.c
    // ip_vs_new_dest: an IPv4 destination must be RTN_LOCAL or
    // RTN_UNICAST, else -EINVAL), while the planner has no reason to reject
    // a well-formed unicast-looking address (multicast, loopback and the
    // like it refuses itself).
    netns.exec(&["ip", "addr", "add", "192.168.99.1/24", "dev", "lo"]);
    let with = |bad_endpoint: &str| {
        let base = cluster(N, &[]);
        let mut services = base.services().to_vec();
        let mut slices = base.endpoint_slices().to_vec();
        services.push(service("bad", "10.96.9.9"));
        slices.push(slice(
            "bad",
            &[
                ("10.244.9.1".to_owned(), "node-b"),
                (bad_endpoint.to_owned(), "node-b"),
            ],
        ));
        Arc::new(Snapshot::new(services, slices, None))
    };
    let broken = with("192.168.99.255");
    let fixed = with("10.244.9.2");
    let (first, retry, resync, state, repaired) = netns.run(move || async move {
        let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
        let first = syncer.sync(&broken, true).await.unwrap();
        let retry = syncer.sync(&broken, false).await.unwrap();
        let resync = syncer.sync(&broken, true).await.unwrap();
        let state = (
            ipvsadm_here(),
            here(&["ip", "-o", "-4", "addr", "show", "dev", "kube-ipvs0"]),
            here(&["ipset", "list", "KUBE-CLUSTER-IP"]),
        );
        let repaired = syncer.sync(&fixed, false).await.unwrap();
        (first, retry, resync, state, repaired)
    });
    let (state, state_addresses, state_set) = state;
    println!(
        "first sync: steps {} failed {} sent {:?}",
        first.steps,
        first.failed,
        sent(&first.messages)
    );
    println!(
        "retry: steps {} failed {} sent {:?}",
        retry.steps,
        retry.failed,
        sent(&retry.messages)
    );
    println!(
        "full resync: steps {} failed {} sent {:?}",
        resync.steps,
        resync.failed,
        sent(&resync.messages)
    );
    println!(
        "fixed: steps {} failed {} sent {:?}",
        repaired.steps,
        repaired.failed,
        sent(&repaired.messages)
    );
    // (The failing real server can be counted twice: the sync plans a
    // second pass once the sets exist.)
    assert!(first.failed >= 1, "the broadcast real server must fail");

    // Every other service converged: virtual service, real server, bound
    // address; the broken one was never made reachable.
    let blocks = IpvsTable::parse(&state).routes();
    for i in 0..N {
        let want = vec![
            format!("TCP {}:80 rr", cluster_ip(i)),
            format!("-> {}:8080 Masq 1", endpoint_ip(i)),
        ];
        assert!(
            blocks.contains(&want),
            "svc-{i} not programmed: {blocks:#?}"
        );
    }
    let mut want_bound: Vec<String> = (0..N).map(|i| format!("{}/32", cluster_ip(i))).collect();
    want_bound.sort();
    assert_eq!(
        addresses_in(&state_addresses),
        want_bound,
        "only the good services are bound"
    );
    for i in 0..N {
        assert!(
            state_set.contains(&format!("{},tcp:80", cluster_ip(i))),
            "{state_set}"
        );
    }
    // Its KUBE-CLUSTER-IP entry went in before its virtual service (it is
    // what makes that virtual service ours), but its address stays unbound.
    assert!(state_set.contains("10.96.9.9,tcp:80"), "{state_set}");

    // Retried on the next sync, alone: the one real server again, nothing
    // for any other service (the per-service kinds: IPVS, set entries,
    // addresses; the node-wide table is a_sync_with_no_change's business).
    assert_eq!(retry.failed, 1);
    let per_service: BTreeMap<String, u64> = sent(&retry.messages)
        .into_iter()
        .filter(|(kind, _)| !kind.starts_with("nftables "))
        .collect();
    assert_eq!(per_service, counts(&[("ipvs NEW_DEST", 1)]));
    assert_eq!(resync.failed, 1);
    assert_eq!(
        resync.messages.sent(Family::Ipvs, "NEW_DEST"),
        1,
        "{}",
        resync.messages
    );

    // Once the endpoint is fixed, the service completes: real server, set
    // entry, address.
    assert_eq!(repaired.failed, 0);
    let lines = ipvs_lines(&netns);
    assert!(
        lines.contains(&"TCP 10.96.9.9:80 rr".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"-> 10.244.9.2:8080 Masq 1".to_owned()),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("192.168.99.255")),
        "{lines:#?}"
    );
    want_bound.push("10.96.9.9/32".to_owned());
    want_bound.sort();
    assert_eq!(bound_addresses(&netns), want_bound);
    let cluster_set = netns.exec(&["ipset", "list", "KUBE-CLUSTER-IP"]);
    assert!(cluster_set.contains("10.96.9.9,tcp:80"), "{cluster_set}");
}

/// A removed service whose address was already unbound (the daemon stopped
/// between unbinding it and deleting its virtual service) is still ours: its
/// KUBE-IPVS-IPS entry is only deleted after the virtual service, and a
/// fresh daemon finishes the removal instead of leaking the virtual service.
#[test]
fn a_half_removed_service_is_finished_by_the_next_daemon() {
    let netns = TestNetns::new("half-removed");
    let both = Arc::new(Snapshot::new(
        vec![service("web", "10.96.0.10"), service("db", "10.96.0.20")],
        vec![
            slice("web", &[("10.244.1.2".to_owned(), NODE)]),
            slice("db", &[("10.244.1.3".to_owned(), NODE)]),
        ],
        None,
    ));
    netns.run({
        let both = both.clone();
        move || async move {
            let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
            let outcome = syncer.sync(&both, true).await.unwrap();
            assert_eq!(outcome.failed, 0);
        }
    });
    assert!(ipvs_lines(&netns)
        .iter()
        .any(|l| l.contains("10.96.0.20:80")));
    // What the removal does before it deletes the virtual service (its
    // KUBE-CLUSTER-IP entry, which claims it, goes only after it).
    netns.exec(&["ip", "addr", "del", "10.96.0.20/32", "dev", "kube-ipvs0"]);
    netns.exec(&["ipset", "del", "KUBE-IPVS-IPS", "10.96.0.20"]);

    let web_only = Arc::new(Snapshot::new(
        vec![service("web", "10.96.0.10")],
        vec![slice("web", &[("10.244.1.2".to_owned(), NODE)])],
        None,
    ));
    netns.run(move || async move {
        // A new daemon: nothing cached.
        let mut syncer = Syncer::open(config(), Counters::default()).await.unwrap();
        let outcome = syncer.sync(&web_only, true).await.unwrap();
        assert_eq!(outcome.failed, 0);
    });
    let ipvs = ipvs_lines(&netns);
    assert!(!ipvs.iter().any(|l| l.contains("10.96.0.20")), "{ipvs:?}");
    assert!(ipvs.iter().any(|l| l.contains("10.96.0.10:80")), "{ipvs:?}");
    let listed = netns.exec(&["ipset", "list", "KUBE-CLUSTER-IP"]);
    assert!(!listed.contains("10.96.0.20"), "{listed}");
    assert!(listed.contains("10.96.0.10"), "{listed}");
}
