use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Duration};

use kipvs_netlink::{Counters, Family};
use kipvs_packet_ipvs::{Protocol, Service, Stats};
use kipvs_planner::{AddressKind, IpFamily, ServicePortName, VirtualServiceKey};
use tokio::time::Instant;

use super::*;
use crate::sync_summary::{Drift, KernelErrors};

/// The value of the one series named exactly `series` (name and labels as
/// encoded), if any.
pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn type_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("# TYPE {name} ")))
}

fn key(addr: &str, port: u16) -> VirtualServiceKey {
    VirtualServiceKey::tuple(addr.parse::<IpAddr>().unwrap(), Protocol::Tcp, port)
}

fn web() -> ServicePortName {
    ServicePortName::new("default", "web", "http")
}

fn outcome() -> SyncOutcome {
    let mut owners = BTreeMap::new();
    owners.insert(key("10.96.0.10", 80), (web(), AddressKind::ClusterIp));
    owners.insert(key("192.168.1.5", 30080), (web(), AddressKind::NodePort));
    owners.insert(key("192.168.1.6", 30080), (web(), AddressKind::NodePort));
    let mut summary = SyncSummary {
        virtual_services: 3,
        real_servers: 6,
        set_entries: [("KUBE-CLUSTER-IP", 1), ("KUBE-NODE-PORT-TCP", 1)]
            .into_iter()
            .collect(),
        families: [IpFamily::V4].into_iter().collect(),
        owners: Arc::new(owners),
        drift: Drift {
            real_servers: 2,
            ..Drift::default()
        },
        ..SyncSummary::default()
    };
    summary.no_local_endpoints.external.insert(IpFamily::V4, 1);
    let mut kernel_errors = KernelErrors::default();
    kernel_errors.record(kipvs_netlink::ErrorClass::Retryable);
    SyncOutcome {
        full: true,
        steps: 10,
        failed: 1,
        skipped: 2,
        draining: 4,
        summary,
        kernel_errors,
        ..SyncOutcome::default()
    }
}

#[test]
fn kube_proxy_series_have_its_names_types_and_labels() {
    let metrics = Metrics::new(Counters::default());
    let snapshot = Arc::new(Snapshot::default());
    metrics.queued(None);
    metrics.record_sync(&Ok(outcome()), &snapshot, Duration::from_millis(3), true);
    // A partial sync, and a change programmed in 0.3 s: every family has
    // a series.
    let partial = SyncOutcome {
        full: false,
        ..outcome()
    };
    metrics.record_sync(&Ok(partial), &snapshot, Duration::from_secs(100), true);
    metrics
        .inner
        .network_programming
        .get_or_create(&ip_family(IpFamily::V4))
        .observe(0.3);
    metrics.set_virtual_service_stats(
        vec![Service {
            stats: Some(Stats::default()),
            ..Service::new(key("10.96.0.10", 80).key(), "rr")
        }],
        Instant::now(),
    );
    let text = metrics.encode();
    for (name, kind) in [
        ("kubeproxy_sync_proxy_rules_duration_seconds", "histogram"),
        (
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "histogram",
        ),
        (
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "histogram",
        ),
        (
            "kubeproxy_network_programming_duration_seconds",
            "histogram",
        ),
        ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge"),
        (
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
            "gauge",
        ),
        (
            "kubeproxy_sync_proxy_rules_endpoint_changes_total",
            "counter",
        ),
        (
            "kubeproxy_sync_proxy_rules_service_changes_total",
            "counter",
        ),
        (
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
            "gauge",
        ),
        (
            "kubeproxy_sync_proxy_rules_service_changes_pending",
            "gauge",
        ),
        (
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
            "gauge",
        ),
        ("kube_ipvs_netlink_messages_total", "counter"),
        ("kube_ipvs_kernel_errors_total", "counter"),
        ("kube_ipvs_virtual_services", "gauge"),
        ("kube_ipvs_real_servers", "gauge"),
        ("kube_ipvs_set_entries", "gauge"),
        ("kube_ipvs_drift_repairs_total", "counter"),
        ("kube_ipvs_real_servers_draining", "gauge"),
        ("kube_ipvs_sync_steps_total", "counter"),
        ("kube_ipvs_virtual_service_connections_total", "counter"),
        ("kube_ipvs_virtual_service_packets_total", "counter"),
        ("kube_ipvs_virtual_service_bytes_total", "counter"),
    ] {
        assert_eq!(type_of(&text, name), Some(kind), "{name} in\n{text}");
    }
    // kube-proxy's buckets: 1 ms doubling, 15 of them.
    let sync = "kubeproxy_sync_proxy_rules_duration_seconds";
    assert_eq!(
        value(
            &text,
            &format!("{sync}_bucket{{ip_family=\"IPv4\",le=\"0.002\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("{sync}_bucket{{ip_family=\"IPv4\",le=\"0.004\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("{sync}_bucket{{ip_family=\"IPv4\",le=\"16.384\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("{sync}_bucket{{ip_family=\"IPv4\",le=\"+Inf\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, &format!("{sync}_count{{ip_family=\"IPv4\"}}")),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}"
        ),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(
        value(
            &text,
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"external\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"internal\"}"
        ),
        Some(0.0)
    );
    // The network-programming buckets start at 0 and end at 5 min.
    let programming = "kubeproxy_network_programming_duration_seconds";
    for (le, count) in [
        ("0", 0.0),
        ("0.25", 0.0),
        ("0.5", 1.0),
        ("59", 1.0),
        ("115", 1.0),
        ("300", 1.0),
    ] {
        assert_eq!(
            value(
                &text,
                &format!("{programming}_bucket{{ip_family=\"IPv4\",le=\"{le}\"}}")
            ),
            Some(count),
            "le {le} in\n{text}"
        );
    }
}

#[test]
fn kube_ipvs_series_follow_the_outcome() {
    let metrics = Metrics::new(Counters::default());
    let snapshot = Arc::new(Snapshot::default());
    metrics.record_sync(&Ok(outcome()), &snapshot, Duration::from_millis(3), true);
    metrics.record_sync(&Ok(outcome()), &snapshot, Duration::from_millis(3), true);
    let text = metrics.encode();
    for (series, expected) in [
        ("kube_ipvs_virtual_services", 3.0),
        ("kube_ipvs_real_servers", 6.0),
        ("kube_ipvs_real_servers_draining", 4.0),
        ("kube_ipvs_set_entries{set=\"KUBE-CLUSTER-IP\"}", 1.0),
        ("kube_ipvs_drift_repairs_total{kind=\"real_server\"}", 4.0),
        (
            "kube_ipvs_drift_repairs_total{kind=\"virtual_service\"}",
            0.0,
        ),
        ("kube_ipvs_kernel_errors_total{class=\"retryable\"}", 2.0),
        ("kube_ipvs_kernel_errors_total{class=\"fatal\"}", 0.0),
        ("kube_ipvs_sync_steps_total{result=\"applied\"}", 14.0),
        ("kube_ipvs_sync_steps_total{result=\"failed\"}", 2.0),
        ("kube_ipvs_sync_steps_total{result=\"skipped\"}", 4.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
}

#[test]
fn netlink_messages_are_counted_by_family_kind_and_direction() {
    let counters = Counters::default();
    let metrics = Metrics::new(counters.clone());
    counters.record_sent(Family::Ipvs, "NEW_SERVICE");
    counters.record_sent(Family::Ipvs, "NEW_SERVICE");
    counters.record_received(Family::Ipvs, "NEW_SERVICE");
    counters.record_sendmsg(Family::Ipvs);
    let text = metrics.encode();
    let series = |direction: &str| {
        format!(
            "kube_ipvs_netlink_messages_total{{family=\"ipvs\",kind=\"NEW_SERVICE\",direction=\"{direction}\"}}"
        )
    };
    assert_eq!(value(&text, &series("sent")), Some(2.0));
    assert_eq!(value(&text, &series("received")), Some(1.0));
    assert_eq!(
        value(&text, "kube_ipvs_netlink_sendmsg_total{family=\"ipvs\"}"),
        Some(1.0)
    );
}

#[test]
fn virtual_service_counters_are_summed_per_service_port_and_kind() {
    let metrics = Metrics::new(Counters::default());
    metrics.record_sync(
        &Ok(outcome()),
        &Arc::new(Snapshot::default()),
        Duration::ZERO,
        true,
    );
    let with_stats = |key: VirtualServiceKey, conns: u64, inbytes: u64| {
        let mut service = Service::new(key.key(), "rr");
        service.stats = Some(Stats {
            conns,
            inbytes,
            ..Stats::default()
        });
        service
    };
    metrics.set_virtual_service_stats(
        vec![
            with_stats(key("10.96.0.10", 80), 5, 500),
            with_stats(key("192.168.1.5", 30080), 1, 10),
            with_stats(key("192.168.1.6", 30080), 2, 20),
            // Not ours: left out.
            with_stats(key("10.1.1.1", 80), 100, 100),
        ],
        Instant::now(),
    );
    let text = metrics.encode();
    let labels = |kind: &str| {
        format!("namespace=\"default\",name=\"web\",port=\"http\",protocol=\"TCP\",kind=\"{kind}\"")
    };
    assert_eq!(
        value(
            &text,
            &format!(
                "kube_ipvs_virtual_service_connections_total{{{}}}",
                labels("cluster_ip")
            )
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "kube_ipvs_virtual_service_connections_total{{{}}}",
                labels("node_port")
            )
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "kube_ipvs_virtual_service_bytes_total{{{},direction=\"in\"}}",
                labels("node_port")
            )
        ),
        Some(30.0)
    );
    assert_eq!(
        text.matches("kube_ipvs_virtual_service_connections_total{")
            .count(),
        2,
        "{text}"
    );
    assert!(!text.contains("10.1.1.1"));
}

#[test]
fn pending_changes_count_objects_not_yet_synced() {
    let metrics = Metrics::new(Counters::default());
    let slice = |name: &str| {
        Arc::new(
            serde_json::from_value::<k8s_openapi::api::discovery::v1::EndpointSlice>(
                serde_json::json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "addressType": "IPv4", "endpoints": []
                }),
            )
            .unwrap(),
        )
    };
    let first = Arc::new(Snapshot::new(Vec::new(), vec![slice("a")], None));
    metrics.record_sync(&Ok(outcome()), &first, Duration::ZERO, true);
    let second = Snapshot::new(Vec::new(), vec![slice("a"), slice("b"), slice("c")], None);
    metrics.queued(Some(&second));
    let text = metrics.encode();
    assert_eq!(
        value(&text, "kubeproxy_sync_proxy_rules_endpoint_changes_pending"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "kubeproxy_sync_proxy_rules_endpoint_changes_total"),
        Some(1.0)
    );
    metrics.record_sync(&Ok(outcome()), &Arc::new(second), Duration::ZERO, true);
    let text = metrics.encode();
    assert_eq!(
        value(&text, "kubeproxy_sync_proxy_rules_endpoint_changes_pending"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "kubeproxy_sync_proxy_rules_endpoint_changes_total"),
        Some(3.0)
    );
}

#[tokio::test]
async fn metrics_are_served_through_the_bounded_http_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let metrics = Metrics::new(Counters::default());
    metrics.record_sync(
        &Ok(outcome()),
        &Arc::new(Snapshot::default()),
        Duration::ZERO,
        true,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(crate::http_server::serve(
        listener,
        metrics_router(metrics),
        crate::http_server::Limits::DEFAULT,
    ));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{answer}"
    );
    assert!(
        answer.contains("\nkube_ipvs_virtual_services 3\n"),
        "{answer}"
    );
}
