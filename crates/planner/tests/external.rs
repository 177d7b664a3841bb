//! externalIPs, load-balancer ingress IPs and loadBalancerSourceRanges.

mod common;

use common::*;
use kipvs_planner::*;
use serde_json::json;

fn lb(
    ns: &str,
    name: &str,
    cluster_ips: &[&str],
    ports: &[Port],
    ips: &[&str],
) -> std::sync::Arc<k8s_openapi::api::core::v1::Service> {
    patched(
        patched(svc(ns, name, cluster_ips, ports), ingress(ips)),
        json!({ "spec": { "type": "LoadBalancer" } }),
    )
}

#[test]
fn external_ips_are_bound_unless_the_node_has_them() {
    let services = [patched(
        svc(
            "default",
            "web",
            &["10.96.0.10"],
            &[("http", 80, ""), ("dns", 53, "UDP")],
        ),
        json!({ "spec": { "externalIPs": ["203.0.113.7", "192.168.50.10", "203.0.113.7"] } }),
    )];
    let slices = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, ""), ("dns", 5353, "UDP")],
        &[ep("10.244.1.2")],
    )];
    let d = desired(
        &services,
        &slices,
        &config_with_addresses(&["192.168.50.10"]),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.96.0.10:80",
            "udp 10.96.0.10:53",
            "tcp 192.168.50.10:80",
            "udp 192.168.50.10:53",
            "tcp 203.0.113.7:80",
            "udp 203.0.113.7:53",
        ]
    );
    assert_eq!(dests(&d, tcp_key("203.0.113.7", 80)), ["10.244.1.2:8080"]);
    assert_eq!(bound(&d), ["10.96.0.10", "203.0.113.7"]);
    assert_eq!(
        bare_entries(&d, "KUBE-IPVS-IPS"),
        ["10.96.0.10", "203.0.113.7"]
    );
    assert_eq!(
        set_entries(&d, "KUBE-EXTERNAL-IP"),
        [
            r#"192.168.50.10,tcp:80 comment "default/web:http""#,
            r#"192.168.50.10,udp:53 comment "default/web:dns""#,
            r#"203.0.113.7,tcp:80 comment "default/web:http""#,
            r#"203.0.113.7,udp:53 comment "default/web:dns""#,
        ]
    );
    assert!(dset(&d, "KUBE-EXTERNAL-IP-LOCAL").entries.is_empty());
}

#[test]
fn external_ips_of_local_policy_services_go_to_the_local_set_only() {
    let services = [patched(
        svc("default", "web", &["10.96.0.10"], &[("", 80, "")]),
        json!({ "spec": { "externalIPs": ["203.0.113.7"], "externalTrafficPolicy": "Local" } }),
    )];
    let d = desired(&services, &[], &config());
    assert_eq!(
        bare_entries(&d, "KUBE-EXTERNAL-IP-LOCAL"),
        ["203.0.113.7,tcp:80"]
    );
    assert!(dset(&d, "KUBE-EXTERNAL-IP").entries.is_empty());
    // No local endpoint: the virtual service exists without real servers.
    assert!(dests(&d, tcp_key("203.0.113.7", 80)).is_empty());
}

#[test]
fn addresses_of_a_family_the_service_lacks_are_reported_and_skipped() {
    let services = [patched(
        lb(
            "default",
            "web",
            &["10.96.0.10"],
            &[("", 80, "")],
            &["198.51.100.1", "2001:db8::1", "bogus"],
        ),
        json!({ "spec": { "externalIPs": ["2001:db8::7", "203.0.113.7", "300.1.1.1"] } }),
    )];
    let d = desired(&services, &[], &config());
    assert_eq!(
        warning_lines(&d),
        [
            "Service default/web: externalIP 2001:db8::7 is IPv6, the service has no IPv6 cluster IP",
            "Service default/web: invalid externalIP \"300.1.1.1\"",
            "Service default/web: load-balancer ingress IP 2001:db8::1 is IPv6, the service has no IPv6 cluster IP",
            "Service default/web: invalid load-balancer ingress IP \"bogus\"",
        ]
    );
    // The rest still applies.
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.96.0.10:80",
            "tcp 198.51.100.1:80",
            "tcp 203.0.113.7:80"
        ]
    );
    assert!(dset(&d, "KUBE-6-EXTERNAL-IP").entries.is_empty());
    assert!(dset(&d, "KUBE-6-LOAD-BALANCER").entries.is_empty());
}

#[test]
fn load_balancer_ips_skip_proxy_mode_and_hostnames() {
    let services = [patched(
        lb(
            "default",
            "web",
            &["10.96.0.10", "fd00:10:96::10"],
            &[("", 80, "")],
            &[],
        ),
        json!({
            "spec": { "externalTrafficPolicy": "Local" },
            "status": { "loadBalancer": { "ingress": [
                { "ip": "198.51.100.1", "ipMode": "VIP" },
                { "ip": "198.51.100.2", "ipMode": "Proxy" },
                { "hostname": "lb.example.com" },
                { "ip": "2001:db8::1" },
                { "ip": "192.168.50.10" },
            ] } },
        }),
    )];
    let slices = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("", 8080, "")],
        &[("10.244.1.2", Some(true), Some("node-a")), ep("10.244.2.3")],
    )];
    let d = desired(
        &services,
        &slices,
        &config_with_addresses(&["192.168.50.10"]),
    );
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER"),
        ["192.168.50.10,tcp:80", "198.51.100.1,tcp:80"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-LOCAL"),
        ["192.168.50.10,tcp:80", "198.51.100.1,tcp:80"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-6-LOAD-BALANCER"),
        ["2001:db8::1,tcp:80"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-6-LOAD-BALANCER-LOCAL"),
        ["2001:db8::1,tcp:80"]
    );
    // Bound, except the node's own address.
    assert_eq!(
        bound(&d),
        [
            "10.96.0.10",
            "198.51.100.1",
            "2001:db8::1",
            "fd00:10:96::10"
        ]
    );
    // Local policy: only the local endpoint behind the LB address.
    assert_eq!(dests(&d, tcp_key("198.51.100.1", 80)), ["10.244.1.2:8080"]);
    // No v6 endpoint at all, local or not.
    assert!(dests(&d, tcp_key("2001:db8::1", 80)).is_empty());
    // No firewall without source ranges.
    assert!(dset(&d, "KUBE-LOAD-BALANCER-FW").entries.is_empty());
}

#[test]
fn services_sharing_a_load_balancer_address() {
    let services = [
        lb(
            "default",
            "a",
            &["10.96.0.11"],
            &[("", 80, ""), ("dns", 53, "UDP")],
            &["198.51.100.1"],
        ),
        // Another port on the same address: fine.
        lb(
            "default",
            "b",
            &["10.96.0.12"],
            &[("", 443, "")],
            &["198.51.100.1"],
        ),
        // The same port but UDP: fine too.
        lb(
            "default",
            "c",
            &["10.96.0.13"],
            &[("", 80, "UDP")],
            &["198.51.100.1"],
        ),
        // The same address, port and protocol as a: a keeps it.
        lb(
            "default",
            "d",
            &["10.96.0.14"],
            &[("", 80, "")],
            &["198.51.100.1"],
        ),
    ];
    let d = desired(&services, &[], &config());
    assert_eq!(
        warning_lines(&d),
        ["Service default/d: tcp 198.51.100.1:80 is already used by default/a"]
    );
    let owners: Vec<String> = d
        .virtual_services
        .iter()
        .filter(|(k, _)| k.addr() == Some(ip("198.51.100.1")))
        .map(|(_, vs)| vs.owner.to_string())
        .collect();
    // tcp 80, tcp 443, udp 53, udp 80 (key order).
    assert_eq!(
        owners,
        ["default/a", "default/b", "default/a:dns", "default/c"]
    );
    assert_eq!(
        set_entries(&d, "KUBE-LOAD-BALANCER"),
        [
            r#"198.51.100.1,tcp:80 comment "default/a""#,
            r#"198.51.100.1,tcp:443 comment "default/b""#,
            r#"198.51.100.1,udp:53 comment "default/a:dns""#,
            r#"198.51.100.1,udp:80 comment "default/c""#,
        ]
    );
    // Bound once, listed once.
    assert_eq!(
        bare_entries(&d, "KUBE-IPVS-IPS")
            .iter()
            .filter(|e| e.as_str() == "198.51.100.1")
            .count(),
        1
    );
}

#[test]
fn an_external_ip_never_takes_a_cluster_ip_over() {
    // "aaa" sorts first, but cluster IPs are claimed before external
    // addresses (CVE-2020-8554).
    let services = [
        patched(
            svc("default", "aaa", &["10.96.0.11"], &[("", 80, "")]),
            json!({ "spec": { "externalIPs": ["10.96.0.12"] } }),
        ),
        svc("default", "zzz", &["10.96.0.12"], &[("", 80, "")]),
    ];
    let d = desired(&services, &[], &config());
    assert_eq!(
        warning_lines(&d),
        ["Service default/aaa: tcp 10.96.0.12:80 is already used by default/zzz"]
    );
    assert_eq!(
        d.virtual_services[&tcp_key("10.96.0.12", 80)]
            .owner
            .to_string(),
        "default/zzz"
    );
    assert!(dset(&d, "KUBE-EXTERNAL-IP").entries.is_empty());
}

fn ranged(
    ranges: &[&str],
    ips: &[&str],
    cluster_ips: &[&str],
) -> std::sync::Arc<k8s_openapi::api::core::v1::Service> {
    patched(
        lb("default", "web", cluster_ips, &[("", 443, "")], ips),
        json!({ "spec": { "loadBalancerSourceRanges": ranges } }),
    )
}

#[test]
fn source_ranges_firewall_the_load_balancer_address() {
    let services = [ranged(
        &["203.0.113.0/24", " 10.1.0.0/16 ", "2001:db8:77::/48"],
        &["198.51.100.1"],
        &["10.96.0.10"],
    )];
    // The node is not in any range.
    let d = desired(&services, &[], &config_with_addresses(&["192.168.50.10"]));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        set_entries(&d, "KUBE-LOAD-BALANCER-FW"),
        [r#"198.51.100.1,tcp:443 comment "default/web""#]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-SOURCE-CIDR"),
        [
            "198.51.100.1,tcp:443,10.1.0.0/16",
            "198.51.100.1,tcp:443,203.0.113.0/24"
        ]
    );
    assert!(dset(&d, "KUBE-LOAD-BALANCER-SOURCE-IP").entries.is_empty());
    // Cluster IPs and node ports are not firewalled.
    assert_eq!(dset(&d, "KUBE-LOAD-BALANCER-FW").entries.len(), 1);
}

#[test]
fn a_range_covering_the_node_lets_the_node_reach_the_address() {
    let services = [ranged(
        &["192.168.0.0/16"],
        &["198.51.100.1"],
        &["10.96.0.10"],
    )];
    let d = desired(&services, &[], &config_with_addresses(&["192.168.50.10"]));
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-SOURCE-IP"),
        ["198.51.100.1,tcp:443,198.51.100.1"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-SOURCE-CIDR"),
        ["198.51.100.1,tcp:443,192.168.0.0/16"]
    );
}

#[test]
fn unusable_ranges_fail_closed() {
    let services = [ranged(
        &["not-a-cidr", "10.0.0.0/33"],
        &["198.51.100.1"],
        &["10.96.0.10"],
    )];
    let d = desired(&services, &[], &config_with_addresses(&["192.168.50.10"]));
    assert_eq!(
        warning_lines(&d),
        [
            "Service default/web: invalid loadBalancerSourceRanges entry \"not-a-cidr\"",
            "Service default/web: invalid loadBalancerSourceRanges entry \"10.0.0.0/33\"",
            "Service default/web: no valid loadBalancerSourceRanges: its load-balancer IPs accept no source",
        ]
    );
    // Still firewalled, nobody allowed.
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-FW"),
        ["198.51.100.1,tcp:443"]
    );
    assert!(dset(&d, "KUBE-LOAD-BALANCER-SOURCE-CIDR")
        .entries
        .is_empty());
    assert!(dset(&d, "KUBE-LOAD-BALANCER-SOURCE-IP").entries.is_empty());
}

#[test]
fn dual_stack_ranges_apply_per_family() {
    let services = [ranged(
        &["203.0.113.0/24", "fd00:50::/64"],
        &["198.51.100.1", "2001:db8::1"],
        &["10.96.0.10", "fd00:10:96::10"],
    )];
    let d = desired(
        &services,
        &[],
        &config_with_addresses(&["192.168.50.10", "fd00:50::10"]),
    );
    assert_eq!(
        bare_entries(&d, "KUBE-6-LOAD-BALANCER-SOURCE-CID"),
        ["2001:db8::1,tcp:443,fd00:50::/64"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-6-LOAD-BALANCER-SOURCE-IP"),
        ["2001:db8::1,tcp:443,2001:db8::1"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-LOAD-BALANCER-SOURCE-CIDR"),
        ["198.51.100.1,tcp:443,203.0.113.0/24"]
    );
    assert!(dset(&d, "KUBE-LOAD-BALANCER-SOURCE-IP").entries.is_empty());

    // Only v4 ranges: the v6 address is firewalled with nobody allowed
    // (the owner restricted the sources; a v6 client is in no range).
    let services = [ranged(
        &["203.0.113.0/24"],
        &["198.51.100.1", "2001:db8::1"],
        &["10.96.0.10", "fd00:10:96::10"],
    )];
    let d = desired(&services, &[], &config());
    assert_eq!(
        bare_entries(&d, "KUBE-6-LOAD-BALANCER-FW"),
        ["2001:db8::1,tcp:443"]
    );
    assert!(dset(&d, "KUBE-6-LOAD-BALANCER-SOURCE-CID")
        .entries
        .is_empty());
}
