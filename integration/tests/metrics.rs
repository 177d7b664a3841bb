//! `/metrics` and `kube-ipvs list` on a node, the operator's way: the
//! daemon runs with `--metrics-bind-address 127.0.0.1:10249`, curl scrapes
//! it in the node's namespace after the first sync, after an endpoint
//! change and after real connections; `kube-ipvs list` prints the service's
//! owner next to its virtual service.

mod daemon_support;

use daemon_support::{slices_path, web_service, web_slice, Node};
use kipvs_integration::{built_binary, http, pod, run_checked};
use serde_json::{json, Value};

const METRICS: &str = "http://127.0.0.1:10249/metrics";
const SYNCS: &str = "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}";
const ENDPOINT_CHANGES: &str = "kubeproxy_sync_proxy_rules_endpoint_changes_total";
const NEW_DEST_SENT: &str =
    "kube_ipvs_netlink_messages_total{family=\"ipvs\",kind=\"NEW_DEST\",direction=\"sent\"}";
const PROGRAMMING: &str =
    "kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"}";
const WEB_CONNECTIONS: &str = "kube_ipvs_virtual_service_connections_total{namespace=\"default\",name=\"web\",port=\"http\",protocol=\"TCP\",kind=\"cluster_ip\"}";

/// The scrape, or `None` while nothing listens yet.
fn scrape(node: &Node) -> Option<String> {
    let (ok, text) = node.netns.try_exec(&["curl", "-sS", "-m", "5", METRICS]);
    ok.then_some(text)
}

/// The value of the series named exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn scraped(node: &Node, series: &str) -> f64 {
    let text = scrape(node).expect("/metrics answers");
    value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_move_with_syncs_endpoint_changes_and_connections() {
    let node = Node::new();
    let _pod1 = pod(&node.netns, 1, "10.244.1.2");
    let _pod2 = pod(&node.netns, 2, "10.244.1.3");
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2"]));
    let _daemon = node.start_daemon_with_flags(&["--metrics-bind-address", "127.0.0.1:10249"]);
    node.wait_for("web in ipvsadm", || {
        node.ipvsadm()
            .block("TCP  10.96.0.10:80")
            .is_some_and(|b| b.len() == 2)
    });
    node.wait_for("the first sync in /metrics", || {
        scrape(&node).is_some_and(|text| value(&text, SYNCS).is_some_and(|n| n >= 1.0))
    });
    let text = scrape(&node).unwrap();
    assert!(
        text.contains("# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram"),
        "{text}"
    );
    let first =
        |series: &str| value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    let syncs = first(SYNCS);
    let endpoint_changes = first(ENDPOINT_CHANGES);
    let new_dest = first(NEW_DEST_SENT);
    assert!(endpoint_changes >= 1.0, "{text}");
    assert!(new_dest >= 1.0, "{text}");
    assert_eq!(first("kube_ipvs_virtual_services"), 1.0, "{text}");
    assert_eq!(first("kube_ipvs_real_servers"), 1.0, "{text}");
    assert_eq!(
        first("kube_ipvs_set_entries{set=\"KUBE-CLUSTER-IP\"}"),
        1.0,
        "{text}"
    );

    // pod2 joins, with the EndpointSlice controller's trigger time.
    let mut slice = web_slice(&["10.244.1.2", "10.244.1.3"]);
    let now = run_checked(&["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    slice["metadata"]["annotations"] =
        json!({"endpoints.kubernetes.io/last-change-trigger-time": now.trim()});
    node.replace(&format!("{}/web-slice", slices_path("default")), &slice);
    node.wait_for("pod2 in ipvsadm", || {
        node.ipvsadm()
            .block("TCP  10.96.0.10:80")
            .is_some_and(|b| b.len() == 3)
    });
    node.wait_for("the endpoint change in /metrics", || {
        scrape(&node).is_some_and(|text| {
            value(&text, ENDPOINT_CHANGES).is_some_and(|n| n > endpoint_changes)
                && value(&text, "kube_ipvs_real_servers") == Some(2.0)
        })
    });
    assert!(scraped(&node, SYNCS) > syncs);
    assert!(scraped(&node, NEW_DEST_SENT) > new_dest);
    assert_eq!(scraped(&node, PROGRAMMING), 1.0);

    // Real connections through the virtual service: its IPVS counter (the
    // kernel folds per-CPU counters every 2 s, so poll).
    let answers = http(&node.netns, "http://10.96.0.10/", 4);
    assert!(answers.iter().all(|a| a.starts_with("pod")), "{answers:?}");
    node.wait_for("4 connections counted for default/web:http", || {
        scrape(&node).is_some_and(|text| value(&text, WEB_CONNECTIONS).is_some_and(|n| n >= 4.0))
    });

    // Nobody touched the kernel: the full resyncs (every 2 s) found
    // nothing to repair.
    let full = "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"}";
    node.wait_for("three full resyncs", || {
        scrape(&node).is_some_and(|text| value(&text, full).is_some_and(|n| n >= 3.0))
    });
    let text = scrape(&node).unwrap();
    for kind in [
        "virtual_service",
        "real_server",
        "address",
        "set",
        "set_entry",
        "table",
    ] {
        let series = format!("kube_ipvs_drift_repairs_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&text, &series), Some(0.0), "{series} in\n{text}");
    }
}

#[test]
fn list_shows_the_owner_of_each_virtual_service() {
    let node = Node::new();
    let _pod1 = pod(&node.netns, 1, "10.244.1.2");
    node.create_node_object();
    node.create_service(&web_service(), &web_slice(&["10.244.1.2"]));
    let _daemon = node.start_daemon();
    node.wait_for("web in ipvsadm", || {
        node.ipvsadm()
            .block("TCP  10.96.0.10:80")
            .is_some_and(|b| b.len() == 2)
    });
    let binary = built_binary("kube-ipvs");
    let binary = binary.to_str().unwrap();

    let table = node.netns.exec(&[binary, "list"]);
    let lines: Vec<&str> = table.lines().collect();
    let web = lines
        .iter()
        .position(|l| l.starts_with("TCP  10.96.0.10:80 rr"))
        .unwrap_or_else(|| panic!("no web line in\n{table}"));
    assert_eq!(
        lines[web], "TCP  10.96.0.10:80 rr  default/web:http (ClusterIP)",
        "{table}"
    );
    assert!(
        lines[web + 1].starts_with("  -> 10.244.1.2:8080              Masq    1"),
        "{table}"
    );

    let json: Value = serde_json::from_str(&node.netns.exec(&[binary, "list", "-o", "json"]))
        .expect("list -o json is JSON");
    let services = json["virtualServices"].as_array().expect("virtualServices");
    let web = services
        .iter()
        .find(|s| s["address"] == "10.96.0.10:80")
        .unwrap_or_else(|| panic!("no web in {json}"));
    assert_eq!(web["service"], "default/web:http");
    assert_eq!(web["kind"], "ClusterIP");
    assert_eq!(web["realServers"][0]["address"], "10.244.1.2:8080");
}
