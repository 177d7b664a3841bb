//! The metrics move as the sync loop works, on the in-memory kernel: after
//! the first sync, and after an endpoint change.

use std::{collections::BTreeSet, net::IpAddr, sync::Arc, time::Duration};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_cluster::Snapshot;
use kipvs_planner::NodeConfig;
use kipvs_runtime::{
    run_with_metrics, AddressSource, Kernel, MemoryKernel, Metrics, ProxyHealth, SyncConfig, Syncer,
};
use serde_json::json;
use tokio::{sync::watch, time::sleep};

const NODE: &str = "node-a";

fn service(name: &str, ip: &str, internal_traffic_policy: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "internalTrafficPolicy": internal_traffic_policy,
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
        }))
        .unwrap(),
    )
}

/// The slice of `service` with ready endpoints on node-b.
fn slice(service: &str, addresses: &[&str], trigger: &str) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = addresses
        .iter()
        .map(|a| json!({"addresses": [a], "conditions": {"ready": true}, "nodeName": "node-b"}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-abcde"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": trigger}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap(),
    )
}

/// `web` with endpoints at `addresses`, and `local-only`
/// (internalTrafficPolicy Local) with its one endpoint on another node.
fn snapshot(addresses: &[&str], trigger: &str) -> Option<Arc<Snapshot>> {
    let old = "2020-01-01T00:00:00Z";
    Some(Arc::new(Snapshot::new(
        vec![
            service("web", "10.96.0.10", "Cluster"),
            service("local-only", "10.96.0.11", "Local"),
        ],
        vec![
            slice("web", addresses, trigger),
            slice("local-only", &["10.244.3.1"], old),
        ],
        None,
    )))
}

struct NoAddresses;

impl AddressSource for NoAddresses {
    fn current(&mut self) -> BTreeSet<IpAddr> {
        BTreeSet::new()
    }
    async fn changed(&mut self) {
        std::future::pending::<()>().await
    }
    async fn before_full_resync(&mut self) {}
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

// Paused time: the sleeps only order the steps.
#[tokio::test(start_paused = true)]
async fn metrics_move_after_a_sync_and_after_an_endpoint_change() {
    let kernel = MemoryKernel::new();
    let metrics = Metrics::new(kernel.counters().clone());
    let config = SyncConfig {
        node: NodeConfig::new(NODE),
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::ZERO,
        graceful_period: Duration::from_secs(900),
    };
    // The first trigger time is from before the daemon started: not its
    // latency.
    let (tx, rx) = watch::channel(snapshot(&["10.244.2.1"], "2020-01-01T00:00:00Z"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = async {
        sleep(Duration::from_millis(300)).await;
        let first = metrics.encode();
        tx.send(snapshot(&["10.244.2.1", "10.244.2.2"], &now_rfc3339()))
            .unwrap();
        sleep(Duration::from_millis(300)).await;
        let second = metrics.encode();
        let _ = stop.send(());
        (first, second)
    };
    let run = run_with_metrics(
        Syncer::new(config, kernel.clone()),
        NoAddresses,
        ProxyHealth::new(Duration::from_secs(60)),
        metrics.clone(),
        rx,
        async {
            let _ = stopped.await;
        },
    );
    let (result, (first, second)) = tokio::join!(run, driver);
    result.unwrap();

    let syncs = "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}";
    let full = "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}";
    let partial = "kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}";
    let endpoint_changes = "kubeproxy_sync_proxy_rules_endpoint_changes_total";
    let service_changes = "kubeproxy_sync_proxy_rules_service_changes_total";
    let sent =
        "kube_ipvs_netlink_messages_total{family=\"ipvs\",kind=\"NEW_DEST\",direction=\"sent\"}";
    let programming = "kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"}";
    let no_local = "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"internal\"}";

    // The first sync: full, every object a change, the real server added.
    assert_eq!(value(&first, syncs), 1.0);
    assert_eq!(value(&first, full), 1.0);
    assert_eq!(value(&first, endpoint_changes), 2.0);
    assert_eq!(value(&first, service_changes), 2.0);
    assert_eq!(value(&first, sent), 1.0);
    assert_eq!(value(&first, "kube_ipvs_virtual_services"), 2.0);
    assert_eq!(value(&first, "kube_ipvs_real_servers"), 1.0);
    assert_eq!(
        value(&first, "kube_ipvs_set_entries{set=\"KUBE-CLUSTER-IP\"}"),
        2.0
    );
    assert!(!first.contains(programming), "{first}");
    // internalTrafficPolicy Local, endpoints only on node-b.
    assert_eq!(value(&first, no_local), 1.0);
    assert!(
        value(
            &first,
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"}"
        ) > 0.0
    );

    // The endpoint change: one partial sync more, one endpoint change, one
    // real server more, its latency observed; the service did not change.
    assert_eq!(value(&second, syncs), 2.0);
    assert_eq!(value(&second, partial), 1.0);
    assert_eq!(value(&second, endpoint_changes), 3.0);
    assert_eq!(value(&second, service_changes), 2.0);
    assert_eq!(value(&second, sent), 2.0);
    assert_eq!(value(&second, "kube_ipvs_real_servers"), 2.0);
    assert_eq!(value(&second, programming), 1.0);
    assert_eq!(
        value(
            &second,
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending"
        ),
        0.0
    );
    assert!(
        value(
            &second,
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family=\"IPv4\"}"
        ) > 0.0
    );
}
