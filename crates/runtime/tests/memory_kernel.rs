//! The runtime's behaviour on the in-memory kernel: what the VM suite shows
//! on the real kernel (slowly), shown here in milliseconds — failures
//! isolated per service and retried with backoff, drift repaired, graceful
//! termination, SIGTERM, restarts, and message counts at scale.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_cluster::Snapshot;
use kipvs_netlink::{CountersSnapshot, Family};
use kipvs_packet_ipvs::Protocol;
use kipvs_planner::{Action, IpFamily, NodeConfig, SetId, SetRole, VirtualServiceKey};
use kipvs_runtime::{
    run_with, AddressSource, MemoryKernel, ProxyHealth, SyncConfig, SyncOutcome, Syncer,
};
use serde_json::json;
use tokio::{sync::watch, time::Instant};

const NODE: &str = "node-a";

/// Service `i`'s cluster IP: 10.96.1.1, 10.96.1.2, …
fn cluster_ip(i: usize) -> String {
    format!("10.96.{}.{}", 1 + i / 250, i % 250 + 1)
}

/// Service `i`'s own (remote) endpoint: 10.244.2.1, …
fn endpoint_ip(i: usize) -> String {
    format!("10.244.{}.{}", 2 + i / 250, i % 250 + 1)
}

fn service(name: &str, ip: &str, protocol: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "protocol": protocol, "targetPort": 8080}]}
        }))
        .unwrap(),
    )
}

/// A slice for `service` with ready endpoints `(address, node name)`.
fn slice(service: &str, protocol: &str, endpoints: &[(String, &str)]) -> Arc<EndpointSlice> {
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
            "ports": [{"name": "http", "port": 8080, "protocol": protocol}],
            "endpoints": endpoints
        }))
        .unwrap(),
    )
}

/// `n` TCP services `svc-<i>`, each with one remote endpoint; `extra`
/// adds endpoints to service 0.
fn cluster(n: usize, extra: &[(String, &'static str)]) -> Arc<Snapshot> {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..n {
        let name = format!("svc-{i}");
        services.push(service(&name, &cluster_ip(i), "TCP"));
        let mut endpoints = vec![(endpoint_ip(i), "node-b")];
        if i == 0 {
            endpoints.extend(extra.iter().cloned());
        }
        slices.push(slice(&name, "TCP", &endpoints));
    }
    Arc::new(Snapshot::new(services, slices, None))
}

fn config() -> SyncConfig {
    SyncConfig {
        node: NodeConfig {
            cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
            ..NodeConfig::new(NODE)
        },
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::ZERO,
        graceful_period: Duration::from_secs(900),
    }
}

fn syncer(kernel: &MemoryKernel) -> Syncer<MemoryKernel> {
    Syncer::new(config(), kernel.clone())
}

fn key(i: usize) -> VirtualServiceKey {
    VirtualServiceKey::tuple(cluster_ip(i).parse().unwrap(), Protocol::Tcp, 80)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The real servers of a virtual service in the kernel, `addr:port weight`.
fn real_servers(kernel: &MemoryKernel, key: VirtualServiceKey) -> Vec<String> {
    kernel.with_state(|state| {
        let mut dests: Vec<String> = state.virtual_services[&key]
            .1
            .iter()
            .map(|d| format!("{}:{} {}", d.addr, d.port, d.weight))
            .collect();
        dests.sort();
        dests
    })
}

/// Messages written, as "family KIND" → count, reads left out.
fn writes(messages: &CountersSnapshot) -> BTreeMap<String, u64> {
    const READS: &[&str] = &[
        "GET_SERVICE",
        "GET_DEST",
        "LIST",
        "GETLINK",
        "GETADDR",
        "GETCHAIN",
        "GETRULE",
        "CT_GET",
    ];
    messages
        .messages
        .iter()
        .filter(|((_, kind), c)| c.sent > 0 && !READS.contains(kind))
        .map(|((family, kind), c)| (format!("{family} {kind}"), c.sent))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn sync(
    syncer: &mut Syncer<MemoryKernel>,
    snapshot: &Arc<Snapshot>,
    full: bool,
) -> SyncOutcome {
    syncer.sync(snapshot, full).await.expect("sync")
}

#[tokio::test]
async fn a_fresh_node_converges_and_a_second_sync_writes_nothing() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    let snapshot = cluster(3, &[]);
    let first = sync(&mut syncer, &snapshot, true).await;
    assert_eq!(first.failed, 0);
    let state = kernel.state();
    assert_eq!(state.virtual_services.len(), 3);
    assert_eq!(state.addresses.len(), 3);
    assert_eq!(state.sets.len(), 36);
    assert_eq!(state.tables.len(), 2);
    let again = sync(&mut syncer, &snapshot, true).await;
    assert_eq!(
        (
            again.steps,
            again.messages.sent_all() - reads(&again.messages)
        ),
        (0, 0)
    );
}

fn reads(messages: &CountersSnapshot) -> u64 {
    messages.sent_all() - writes(messages).values().sum::<u64>()
}

#[tokio::test]
async fn a_failed_step_skips_the_rest_of_its_service_while_the_others_converge() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    // A node with svc-0 and svc-2 in place.
    let without_1 = Arc::new(Snapshot::new(
        cluster(3, &[])
            .services()
            .iter()
            .filter(|s| s.metadata.name.as_deref() != Some("svc-1"))
            .cloned()
            .collect(),
        cluster(3, &[]).endpoint_slices().to_vec(),
        None,
    ));
    sync(&mut syncer, &without_1, true).await;
    let snapshot = cluster(3, &[]);
    // svc-1 comes, and its real server is refused once (a scheduler module
    // missing, a real server the kernel does not take: any non-retryable
    // errno).
    let target = key(1).key();
    kernel.fail_steps(
        move |action| matches!(action, Action::AddDestination(k, _) if *k == target),
        libc::EINVAL,
        1,
    );
    let first = sync(&mut syncer, &snapshot, false).await;
    assert_eq!(
        (first.failed, first.node_wide_failed, first.skipped),
        (1, 0, 1)
    );
    let state = kernel.state();
    // svc-1 is not reachable half-built: its address was not bound.
    assert!(!state.addresses.contains(&ip(&cluster_ip(1))));
    assert!(state.virtual_services[&key(1)].1.is_empty());
    // The others are complete.
    for i in [0, 2] {
        assert!(state.addresses.contains(&ip(&cluster_ip(i))));
        assert_eq!(
            real_servers(&kernel, key(i)),
            [format!("{}:8080 1", endpoint_ip(i))]
        );
    }
    // The retry completes svc-1 with exactly its missing steps.
    let retry = sync(&mut syncer, &snapshot, true).await;
    assert_eq!(retry.failed, 0);
    assert_eq!(
        writes(&retry.messages),
        counts(&[("ipvs NEW_DEST", 1), ("route NEWADDR", 1)])
    );
    assert!(kernel.state().addresses.contains(&ip(&cluster_ip(1))));
}

/// The addresses of a node without any.
struct NoAddresses;

impl AddressSource for NoAddresses {
    fn current(&mut self) -> std::collections::BTreeSet<IpAddr> {
        Default::default()
    }
    async fn changed(&mut self) {
        std::future::pending::<()>().await
    }
    async fn before_full_resync(&mut self) {}
}

#[tokio::test(start_paused = true)]
async fn a_failing_service_is_retried_with_backoff_up_to_the_sync_period() {
    let kernel = MemoryKernel::new();
    let target = key(1).key();
    kernel.fail_steps(
        move |action| matches!(action, Action::AddDestination(k, _) if *k == target),
        libc::EINVAL,
        usize::MAX,
    );
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let seen = attempts.clone();
    kernel.watch(move |action| {
        if matches!(action, Action::AddDestination(k, _) if *k == target) {
            seen.lock().unwrap().push(start.elapsed().as_secs());
        }
    });
    let (_tx, rx) = watch::channel(Some(cluster(3, &[])));
    let mut config = config();
    config.sync_period = Duration::from_secs(10);
    let health = ProxyHealth::new(Duration::from_secs(20));
    let shutdown = tokio::time::sleep(Duration::from_secs(40));
    run_with(
        Syncer::new(config, kernel.clone()),
        NoAddresses,
        health.clone(),
        rx,
        shutdown,
    )
    .await
    .unwrap();
    // Twice in the first sync (a fresh node is planned again once its sets
    // exist), then after 1 s, doubling, capped at the sync period (10 s).
    assert_eq!(*attempts.lock().unwrap(), [0, 0, 1, 3, 7, 15, 25, 35]);
    // One service the kernel refuses does not make the node unhealthy.
    assert!(health.is_healthy());
    // The others are in place all along.
    assert!(kernel.state().addresses.contains(&ip(&cluster_ip(2))));
}

#[tokio::test]
async fn an_add_that_finds_its_object_forces_a_read_back() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    sync(&mut syncer, &cluster(2, &[]), true).await;
    // Someone else adds the real server the cluster is about to add.
    let new = ("10.244.9.9".to_owned(), "node-b");
    kernel.with_state(|state| {
        let dests = &mut state.virtual_services.get_mut(&key(0)).unwrap().1;
        dests.push(kipvs_packet_ipvs::Destination::new(ip("10.244.9.9"), 8080));
    });
    let snapshot = cluster(2, &[new]);
    let add = sync(&mut syncer, &snapshot, false).await;
    assert!(!add.full);
    // The kernel answered EEXIST: that is the state asked for, not a
    // failure ...
    assert_eq!((add.steps, add.failed), (1, 0));
    // ... but the cache was behind, so the next sync reads the kernel back.
    let next = sync(&mut syncer, &snapshot, false).await;
    assert!(next.full);
    assert_eq!(next.messages.sent(Family::Ipvs, "GET_SERVICE"), 1);
    assert_eq!(next.steps, 0);
}

#[tokio::test]
async fn drift_of_each_kind_is_repaired_on_the_next_full_resync() {
    type Drift = fn(&mut kipvs_planner::Observed);
    let drifts: [(&str, Drift); 9] = [
        ("virtual service deleted", |s| {
            s.virtual_services.remove(&key(0));
        }),
        ("real server deleted", |s| {
            s.virtual_services.get_mut(&key(0)).unwrap().1.clear();
        }),
        ("real server weight changed", |s| {
            s.virtual_services.get_mut(&key(0)).unwrap().1[0].weight = 7;
        }),
        ("set flushed", |s| {
            s.sets
                .get_mut(&SetId::new(SetRole::ClusterIp, IpFamily::V4))
                .unwrap()
                .entries
                .clear();
        }),
        ("set destroyed", |s| {
            s.sets.remove(&SetId::new(SetRole::LoopBack, IpFamily::V4));
        }),
        ("address removed", |s| {
            s.addresses.remove(&ip(&cluster_ip(0)));
        }),
        ("foreign address added", |s| {
            s.addresses.insert(ip("10.96.200.1"));
        }),
        ("table deleted", |s| {
            s.tables.remove(&IpFamily::V4);
        }),
        ("table emptied", |s| {
            s.tables.get_mut(&IpFamily::V6).unwrap().rules.clear();
        }),
    ];
    let snapshot = cluster(3, &[("10.244.1.5".to_owned(), NODE)]);
    for (what, drift) in drifts {
        let kernel = MemoryKernel::new();
        let mut syncer = syncer(&kernel);
        sync(&mut syncer, &snapshot, true).await;
        let good = kernel.state();
        kernel.with_state(drift);
        assert_ne!(kernel.state(), good, "{what}");
        // Until the next full resync the cache does not know...
        let cached = sync(&mut syncer, &snapshot, false).await;
        assert_eq!(cached.steps, 0, "{what}");
        // ... which repairs it.
        let repair = sync(&mut syncer, &snapshot, true).await;
        assert_eq!(repair.failed, 0, "{what}");
        assert!(repair.steps > 0, "{what}");
        let mut repaired = kernel.state();
        if what == "set destroyed" {
            // Created again under a new index; the table follows it.
            let id = SetId::new(SetRole::LoopBack, IpFamily::V4);
            repaired.sets.get_mut(&id).unwrap().header.index = good.sets[&id].header.index;
            repaired.tables = good.tables.clone();
        }
        assert_eq!(repaired, good, "{what}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_draining_real_server_is_kept_then_deleted_on_fresh_counters() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    let two = cluster(1, &[("10.244.1.5".to_owned(), "node-b")]);
    sync(&mut syncer, &two, true).await;
    let set_connections = |n: u32| {
        kernel.with_state(|state| {
            for dest in &mut state.virtual_services.get_mut(&key(0)).unwrap().1 {
                if dest.addr == ip("10.244.1.5") {
                    dest.active_conns = n;
                }
            }
        })
    };
    set_connections(2);
    // The endpoint goes: weight 0 first, whatever the counters say.
    let one = cluster(1, &[]);
    let drain = sync(&mut syncer, &one, false).await;
    assert_eq!(writes(&drain.messages), counts(&[("ipvs SET_DEST", 1)]));
    assert_eq!(drain.draining, 1);
    assert!(real_servers(&kernel, key(0)).contains(&"10.244.1.5:8080 0".to_owned()));
    // Connections left: it stays, re-read every 5 s.
    tokio::time::advance(Duration::from_secs(6)).await;
    let wait = sync(&mut syncer, &one, false).await;
    assert_eq!(wait.messages.sent(Family::Ipvs, "GET_DEST"), 1);
    assert_eq!(wait.steps, 0);
    assert_eq!(wait.draining, 1);
    // The last connection ends: deleted on counters read after that.
    set_connections(0);
    tokio::time::advance(Duration::from_secs(6)).await;
    let delete = sync(&mut syncer, &one, false).await;
    assert_eq!(writes(&delete.messages), counts(&[("ipvs DEL_DEST", 1)]));
    assert_eq!(delete.draining, 0);
    assert_eq!(
        real_servers(&kernel, key(0)),
        [format!("{}:8080 1", endpoint_ip(0))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_draining_real_server_goes_when_its_grace_is_over() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    sync(
        &mut syncer,
        &cluster(1, &[("10.244.1.5".to_owned(), "node-b")]),
        true,
    )
    .await;
    kernel.with_state(|state| {
        for dest in &mut state.virtual_services.get_mut(&key(0)).unwrap().1 {
            dest.active_conns = 1;
        }
    });
    let one = cluster(1, &[]);
    sync(&mut syncer, &one, false).await;
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(sync(&mut syncer, &one, false).await.draining, 1);
    tokio::time::advance(Duration::from_secs(301)).await;
    let expired = sync(&mut syncer, &one, false).await;
    assert_eq!(expired.draining, 0);
    assert_eq!(real_servers(&kernel, key(0)).len(), 1);
}

#[tokio::test]
async fn sigterm_in_the_middle_of_a_sync_finishes_it_and_stops() {
    let kernel = MemoryKernel::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stop = Mutex::new(Some(stop));
    let mut executed = 0;
    kernel.watch(move |_| {
        executed += 1;
        if executed == 10 {
            if let Some(stop) = stop.lock().unwrap().take() {
                let _ = stop.send(());
            }
        }
    });
    let snapshot = cluster(5, &[]);
    let (_tx, rx) = watch::channel(Some(snapshot.clone()));
    let health = ProxyHealth::new(Duration::from_secs(60));
    let shutdown = async {
        let _ = stopped.await;
    };
    run_with(
        Syncer::new(config(), kernel.clone()),
        NoAddresses,
        health,
        rx,
        shutdown,
    )
    .await
    .unwrap();
    // The sync under way was completed, not cut: the kernel holds the whole
    // cluster, and a new daemon has nothing to do.
    let mut fresh = Syncer::new(config(), kernel.clone());
    let next = sync(&mut fresh, &snapshot, true).await;
    assert_eq!(next.steps, 0);
}

#[tokio::test]
async fn a_restarted_daemon_adopts_the_state_and_writes_nothing() {
    let kernel = MemoryKernel::new();
    let snapshot = cluster(20, &[("10.244.1.5".to_owned(), NODE)]);
    sync(&mut syncer(&kernel), &snapshot, true).await;
    let before = kernel.state();
    let first = sync(&mut syncer(&kernel), &snapshot, true).await;
    assert_eq!(first.steps, 0);
    assert!(writes(&first.messages).is_empty(), "{}", first.messages);
    assert_eq!(kernel.state(), before);
}

#[tokio::test]
async fn a_lost_reply_is_retried_and_converges() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    kernel.lose_replies(|action| matches!(action, Action::AddService(_)), 1);
    let snapshot = cluster(2, &[]);
    let first = sync(&mut syncer, &snapshot, true).await;
    assert_eq!(first.failed, 1);
    // The service exists although the daemon saw a failure: the retry's
    // full read finds it and completes the rest.
    let retry = sync(&mut syncer, &snapshot, true).await;
    assert_eq!(retry.failed, 0);
    assert_eq!(retry.messages.sent(Family::Ipvs, "NEW_SERVICE"), 0);
    assert_eq!(sync(&mut syncer, &snapshot, true).await.steps, 0);
}

#[tokio::test]
async fn a_read_that_fails_fails_the_sync_and_changes_nothing() {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    kernel.fail_reads("GET_SERVICE", libc::ENOBUFS, 1);
    assert!(syncer.sync(&cluster(2, &[]), true).await.is_err());
    assert!(kernel.state().virtual_services.is_empty());
    assert_eq!(sync(&mut syncer, &cluster(2, &[]), true).await.failed, 0);
}

/// What a no-op sync and a one-endpoint change cost with `n` services:
/// the messages written and dumps read, and how many virtual services
/// each plan looked at.
async fn endpoint_change_cost(n: usize) -> [(BTreeMap<String, u64>, usize); 4] {
    let kernel = MemoryKernel::new();
    let mut syncer = syncer(&kernel);
    let base = cluster(n, &[]);
    let added = cluster(n, &[("10.244.1.77".to_owned(), NODE)]);
    let first = sync(&mut syncer, &base, true).await;
    assert_eq!(
        (
            first.failed,
            first.messages.sent(Family::Ipvs, "NEW_SERVICE")
        ),
        (0, n as u64)
    );
    let idle = sync(&mut syncer, &base, false).await;
    let add = sync(&mut syncer, &added, false).await;
    let remove = sync(&mut syncer, &base, false).await;
    let delete = sync(&mut syncer, &base, false).await;
    // The real servers each sync reports (counted where it changed
    // something, not over all services) are the kernel's.
    let in_kernel = |extra: usize| n + extra;
    let reported = [&idle, &add, &remove, &delete].map(|o| o.summary.real_servers);
    assert_eq!(
        reported,
        [in_kernel(0), in_kernel(1), in_kernel(1), in_kernel(0)],
        "{n}: the removed real server drains, then goes"
    );
    let total: usize =
        kernel.with_state(|state| state.virtual_services.values().map(|(_, d)| d.len()).sum());
    assert_eq!(total, n);
    [idle, add, remove, delete].map(|outcome| {
        let mut all = writes(&outcome.messages);
        for kind in ["GET_DEST", "GET_SERVICE", "LIST"] {
            let family = if kind == "LIST" {
                Family::Ipset
            } else {
                Family::Ipvs
            };
            let sent = outcome.messages.sent(family, kind);
            if sent > 0 {
                all.insert(format!("{family} {kind}"), sent);
            }
        }
        (all, outcome.services_planned)
    })
}

#[tokio::test]
async fn a_no_op_sync_writes_nothing_and_one_endpoint_costs_the_same_at_any_scale() {
    let mut seen = Vec::new();
    for n in [10, 1000, 10_000] {
        let [(idle, idle_planned), (add, add_planned), (remove, remove_planned), (delete, delete_planned)] =
            endpoint_change_cost(n).await;
        // Only the changed service is planned (and, while its removed
        // real server drains, planned again), whatever the node holds.
        assert_eq!(
            [idle_planned, add_planned, remove_planned, delete_planned],
            [0, 1, 1, 1],
            "{n}"
        );
        assert!(idle.is_empty(), "{n}: {idle:?}");
        assert_eq!(
            add,
            counts(&[("ipvs NEW_DEST", 1), ("ipset ADD", 1)]),
            "{n}"
        );
        assert_eq!(
            remove,
            counts(&[("ipvs SET_DEST", 1), ("ipset DEL", 1)]),
            "{n}"
        );
        // The drained real server is deleted on counters read for it alone.
        assert_eq!(
            delete,
            counts(&[("ipvs GET_DEST", 1), ("ipvs DEL_DEST", 1)]),
            "{n}"
        );
        seen.push((add, remove, delete));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}
