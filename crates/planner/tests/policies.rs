//! Traffic policies, terminating endpoints, topology hints and
//! health-check node ports.

mod common;

use common::*;
use kipvs_planner::*;
use serde_json::{json, Value};

/// default/web: LoadBalancer 10.96.0.10:80 (nodePort 30080) with LB
/// address 198.51.100.1, patched with `spec`.
fn web(spec: Value) -> std::sync::Arc<k8s_openapi::api::core::v1::Service> {
    patched(
        patched(
            node_port_svc(
                "LoadBalancer",
                "default",
                "web",
                &["10.96.0.10"],
                &[("", 80, "", 30080)],
            ),
            ingress(&["198.51.100.1"]),
        ),
        json!({ "spec": spec }),
    )
}

fn web_slice(endpoints: Value) -> std::sync::Arc<k8s_openapi::api::discovery::v1::EndpointSlice> {
    slice_json(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("", 8080, "")],
        endpoints,
    )
}

fn node_config() -> NodeConfig {
    config_with_addresses(&["192.168.50.10"])
}

const CLUSTER: (&str, u16) = ("10.96.0.10", 80);
const NODE_PORT: (&str, u16) = ("192.168.50.10", 30080);
const LB: (&str, u16) = ("198.51.100.1", 80);

fn at(d: &Desired, (addr, port): (&str, u16)) -> Vec<String> {
    dests(d, tcp_key(addr, port))
}

fn two_nodes() -> Value {
    json!([
        ep_json("10.244.1.2", "node-a", json!({})),
        ep_json("10.244.2.3", "node-b", json!({})),
    ])
}

#[test]
fn cluster_policies_use_every_ready_endpoint() {
    let d = desired(&[web(json!({}))], &[web_slice(two_nodes())], &node_config());
    for vs in [CLUSTER, NODE_PORT, LB] {
        assert_eq!(at(&d, vs), ["10.244.1.2:8080", "10.244.2.3:8080"]);
    }
}

#[test]
fn internal_traffic_policy_local_narrows_only_the_cluster_ip() {
    let services = [web(json!({ "internalTrafficPolicy": "Local" }))];
    let d = desired(&services, &[web_slice(two_nodes())], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080"]);
    assert_eq!(at(&d, NODE_PORT), ["10.244.1.2:8080", "10.244.2.3:8080"]);
    assert_eq!(at(&d, LB), ["10.244.1.2:8080", "10.244.2.3:8080"]);

    // No local endpoint: no real server (the kernel refuses), no fallback
    // to remote endpoints as kube-proxy's IPVS mode would.
    let other_node = json!([ep_json("10.244.2.3", "node-b", json!({}))]);
    let d = desired(&services, &[web_slice(other_node)], &node_config());
    assert!(at(&d, CLUSTER).is_empty());
    assert!(d
        .virtual_services
        .contains_key(&tcp_key(CLUSTER.0, CLUSTER.1)));
    assert_eq!(at(&d, NODE_PORT), ["10.244.2.3:8080"]);
}

#[test]
fn external_traffic_policy_local_narrows_node_port_and_load_balancer() {
    let services = [web(json!({ "externalTrafficPolicy": "Local" }))];
    let d = desired(&services, &[web_slice(two_nodes())], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080", "10.244.2.3:8080"]);
    assert_eq!(at(&d, NODE_PORT), ["10.244.1.2:8080"]);
    assert_eq!(at(&d, LB), ["10.244.1.2:8080"]);

    let other_node = json!([ep_json("10.244.2.3", "node-b", json!({}))]);
    let d = desired(&services, &[web_slice(other_node)], &node_config());
    assert!(at(&d, NODE_PORT).is_empty());
    assert!(at(&d, LB).is_empty());
    assert_eq!(at(&d, CLUSTER), ["10.244.2.3:8080"]);
    // The sets still say "do not masquerade".
    assert_eq!(bare_entries(&d, "KUBE-NODE-PORT-LOCAL-TCP"), ["30080"]);
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-LOCAL"),
        ["198.51.100.1,tcp:80"]
    );
}

fn conditions(ready: Option<bool>, serving: Option<bool>, terminating: Option<bool>) -> Value {
    let mut c = json!({});
    for (key, value) in [
        ("ready", ready),
        ("serving", serving),
        ("terminating", terminating),
    ] {
        if let Some(value) = value {
            c[key] = json!(value);
        }
    }
    json!({ "conditions": c })
}

#[test]
fn terminating_endpoints_are_a_fallback_for_cluster_and_local_independently() {
    let draining = conditions(Some(false), Some(true), Some(true));
    let gone = conditions(Some(false), Some(false), Some(true));
    let services = [web(json!({ "externalTrafficPolicy": "Local" }))];
    // Remote: one ready. Local: one serving-terminating, one terminating
    // but no longer serving.
    let endpoints = json!([
        ep_json("10.244.2.3", "node-b", json!({})),
        ep_json("10.244.1.2", "node-a", draining.clone()),
        ep_json("10.244.1.9", "node-a", gone.clone()),
    ]);
    let d = desired(&services, &[web_slice(endpoints)], &node_config());
    // Cluster: the ready one; local: the draining local one.
    assert_eq!(at(&d, CLUSTER), ["10.244.2.3:8080"]);
    assert_eq!(at(&d, NODE_PORT), ["10.244.1.2:8080"]);
    assert_eq!(
        bare_entries(&d, "KUBE-LOOP-BACK"),
        ["10.244.1.2,tcp:8080,10.244.1.2"]
    );

    // Nothing ready anywhere: the cluster set falls back too.
    let endpoints = json!([
        ep_json("10.244.2.3", "node-b", draining.clone()),
        ep_json("10.244.1.2", "node-a", draining),
        ep_json("10.244.1.9", "node-a", gone),
    ]);
    let d = desired(&services, &[web_slice(endpoints)], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080", "10.244.2.3:8080"]);
    assert_eq!(at(&d, NODE_PORT), ["10.244.1.2:8080"]);
}

#[test]
fn a_ready_local_endpoint_beats_terminating_ones() {
    let draining = conditions(Some(false), Some(true), Some(true));
    let services = [web(json!({ "internalTrafficPolicy": "Local" }))];
    let endpoints = json!([
        ep_json("10.244.1.2", "node-a", draining),
        ep_json("10.244.1.3", "node-a", json!({})),
    ]);
    let d = desired(&services, &[web_slice(endpoints)], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.3:8080"]);
}

#[test]
fn absent_serving_follows_ready() {
    // ready false, serving absent, terminating true: not serving.
    let services = [web(json!({}))];
    let endpoints = json!([ep_json(
        "10.244.2.3",
        "node-b",
        conditions(Some(false), None, Some(true))
    )]);
    let d = desired(&services, &[web_slice(endpoints)], &node_config());
    assert!(at(&d, CLUSTER).is_empty());
    // ready absent = true, terminating absent = false: ready.
    let endpoints = json!([ep_json(
        "10.244.2.3",
        "node-b",
        conditions(None, None, None)
    )]);
    let d = desired(&services, &[web_slice(endpoints)], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.2.3:8080"]);
}

fn hinted(addr: &str, node: &str, zones: &[&str], nodes: &[&str]) -> Value {
    let mut hints = json!({});
    if !zones.is_empty() {
        hints["forZones"] = zones.iter().map(|z| json!({ "name": z })).collect();
    }
    if !nodes.is_empty() {
        hints["forNodes"] = nodes.iter().map(|n| json!({ "name": n })).collect();
    }
    ep_json(addr, node, json!({ "hints": hints }))
}

fn zoned_config() -> NodeConfig {
    let mut config = node_config();
    config.zone = Some("zone-a".into());
    config
}

#[test]
fn zone_hints_narrow_cluster_policies_when_every_endpoint_has_one() {
    let services = [web(json!({}))];
    let all_hinted = json!([
        hinted("10.244.1.2", "node-a", &["zone-a"], &[]),
        hinted("10.244.2.3", "node-b", &["zone-b"], &[]),
        hinted("10.244.3.4", "node-c", &["zone-a"], &[]),
    ]);
    let d = desired(&services, &[web_slice(all_hinted)], &zoned_config());
    for vs in [CLUSTER, NODE_PORT, LB] {
        assert_eq!(at(&d, vs), ["10.244.1.2:8080", "10.244.3.4:8080"]);
    }

    // One endpoint without a hint: hints are ignored.
    let one_unhinted = json!([
        hinted("10.244.1.2", "node-a", &["zone-a"], &[]),
        ep_json("10.244.2.3", "node-b", json!({})),
    ]);
    let d = desired(&services, &[web_slice(one_unhinted)], &zoned_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080", "10.244.2.3:8080"]);

    // No endpoint for this zone: hints are ignored (rather than nothing).
    let no_match = json!([
        hinted("10.244.1.2", "node-a", &["zone-b"], &[]),
        hinted("10.244.2.3", "node-b", &["zone-c"], &[]),
    ]);
    let d = desired(&services, &[web_slice(no_match)], &zoned_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080", "10.244.2.3:8080"]);

    // A node without a zone label ignores zone hints.
    let all_hinted = json!([
        hinted("10.244.1.2", "node-a", &["zone-a"], &[]),
        hinted("10.244.2.3", "node-b", &["zone-b"], &[]),
    ]);
    let d = desired(&services, &[web_slice(all_hinted)], &node_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080", "10.244.2.3:8080"]);
}

#[test]
fn node_hints_come_before_zone_hints() {
    let services = [web(json!({}))];
    let endpoints = json!([
        hinted("10.244.1.2", "node-a", &["zone-a"], &["node-a"]),
        hinted("10.244.1.3", "node-x", &["zone-a"], &["node-x"]),
        hinted("10.244.2.3", "node-b", &["zone-b"], &["node-b"]),
    ]);
    let d = desired(&services, &[web_slice(endpoints)], &zoned_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080"]);
}

#[test]
fn hints_do_not_apply_to_local_policies() {
    // iTP Local uses the local endpoint even though its hint is for
    // another zone; eTP Cluster follows the hints.
    let services = [web(json!({ "internalTrafficPolicy": "Local" }))];
    let endpoints = json!([
        hinted("10.244.1.2", "node-a", &["zone-b"], &[]),
        hinted("10.244.2.3", "node-b", &["zone-a"], &[]),
    ]);
    let d = desired(&services, &[web_slice(endpoints)], &zoned_config());
    assert_eq!(at(&d, CLUSTER), ["10.244.1.2:8080"]);
    assert_eq!(at(&d, NODE_PORT), ["10.244.2.3:8080"]);
}

#[test]
fn health_check_node_port_counts_local_ready_endpoints() {
    let services = [patched(
        web(json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000 })),
        json!({ "spec": { "ports": node_ports(&[("http", 80, "", 30080), ("https", 443, "", 30443)]) } }),
    )];
    let draining = conditions(Some(false), Some(true), Some(true));
    let endpoints = json!([
        ep_json("10.244.1.2", "node-a", json!({})),
        ep_json("10.244.1.3", "node-a", json!({})),
        ep_json("10.244.1.4", "node-a", draining),
        ep_json("10.244.2.3", "node-b", json!({})),
    ]);
    let slices = [slice_json(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, ""), ("https", 8443, "")],
        endpoints,
    )];
    let d = desired(&services, &slices, &node_config());
    assert_eq!(
        d.health_checks,
        [(
            32000,
            HealthCheck {
                namespace: "default".into(),
                name: "web".into(),
                // Two ports, two local ready pods: counted once per pod;
                // the draining one does not count.
                local_endpoints: 2,
            }
        )]
        .into_iter()
        .collect()
    );
    assert_eq!(
        set_entries(&d, "KUBE-HEALTH-CHECK-NODE-PORT"),
        [r#"32000 comment "default/web""#]
    );
    assert!(dset(&d, "KUBE-6-HEALTH-CHECK-NODE-PORT").entries.is_empty());

    // No local endpoint: the port still answers (503).
    let d = desired(&services, &[], &node_config());
    assert_eq!(d.health_checks[&32000].local_endpoints, 0);
}

#[test]
fn health_checks_only_for_local_load_balancers_and_first_claim_wins() {
    let hc = |name: &str, spec: Value| {
        patched(
            node_port_svc("LoadBalancer", "default", name, &["10.96.0.10"], &[]),
            json!({ "spec": spec }),
        )
    };
    let services = [
        hc(
            "a",
            json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000 }),
        ),
        hc(
            "b",
            json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000 }),
        ),
        // Cluster policy: the field is ignored.
        hc(
            "c",
            json!({ "externalTrafficPolicy": "Cluster", "healthCheckNodePort": 32001 }),
        ),
        hc(
            "d",
            json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 0 }),
        ),
        hc(
            "e",
            json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 32002 }),
        ),
    ];
    let mut with_type_node_port = services.to_vec();
    with_type_node_port.push(patched(
        hc(
            "f",
            json!({ "externalTrafficPolicy": "Local", "healthCheckNodePort": 32003 }),
        ),
        json!({ "spec": { "type": "NodePort" } }),
    ));
    let d = desired(&with_type_node_port, &[], &config());
    let ports: Vec<(u16, String)> = d
        .health_checks
        .iter()
        .map(|(port, hc)| (*port, format!("{}/{}", hc.namespace, hc.name)))
        .collect();
    assert_eq!(
        ports,
        [
            (32000, "default/a".to_owned()),
            (32002, "default/e".to_owned())
        ]
    );
    assert_eq!(
        warning_lines(&d),
        [
            "Service default/b: healthCheckNodePort 32000 is already used by default/a",
            "Service default/d: invalid healthCheckNodePort 0",
        ]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-HEALTH-CHECK-NODE-PORT"),
        ["32000", "32002"]
    );
}

#[test]
fn local_policies_without_a_local_endpoint_are_counted_per_family() {
    let local = json!({"externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local"});
    let remote_only = json!([ep_json("10.244.2.3", "node-b", json!({}))]);
    let d = desired(
        &[web(local.clone())],
        &[web_slice(remote_only)],
        &node_config(),
    );
    assert_eq!(d.no_local_endpoints.internal.get(&IpFamily::V4), Some(&1));
    assert_eq!(d.no_local_endpoints.external.get(&IpFamily::V4), Some(&1));
    // A local endpoint: nothing dropped.
    let d = desired(
        &[web(local.clone())],
        &[web_slice(two_nodes())],
        &node_config(),
    );
    assert_eq!(d.no_local_endpoints, NoLocalEndpoints::default());
    // No endpoint anywhere is not "no local endpoint".
    let d = desired(&[web(local)], &[web_slice(json!([]))], &node_config());
    assert_eq!(d.no_local_endpoints, NoLocalEndpoints::default());
    // Cluster policies never count.
    let remote_only = json!([ep_json("10.244.2.3", "node-b", json!({}))]);
    let d = desired(&[web(json!({}))], &[web_slice(remote_only)], &node_config());
    assert_eq!(d.no_local_endpoints, NoLocalEndpoints::default());
}
