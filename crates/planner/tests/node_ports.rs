//! NodePort: a virtual service per node address × nodePort, and the
//! node-port sets.

mod common;

use common::*;
use kipvs_planner::*;
use serde_json::json;

const NODE: [&str; 5] = [
    "127.0.0.1",
    "192.168.50.10",
    "10.0.0.5",
    "fd00:50::10",
    "fe80::1",
];

fn web_slice(endpoints: &[Ep]) -> std::sync::Arc<k8s_openapi::api::discovery::v1::EndpointSlice> {
    slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("http", 8080, "")],
        endpoints,
    )
}

#[test]
fn a_virtual_service_per_node_address_never_bound() {
    let services = [node_port_svc(
        "NodePort",
        "default",
        "web",
        &["10.96.0.10"],
        &[("http", 80, "TCP", 30080)],
    )];
    let slices = [web_slice(&[ep("10.244.1.2"), ep("10.244.2.3")])];
    let d = desired(&services, &slices, &config_with_addresses(&NODE));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.0.0.5:30080",
            "tcp 10.96.0.10:80",
            "tcp 192.168.50.10:30080"
        ]
    );
    for key in [tcp_key("10.0.0.5", 30080), tcp_key("192.168.50.10", 30080)] {
        assert_eq!(dests(&d, key), ["10.244.1.2:8080", "10.244.2.3:8080"]);
        assert_eq!(
            d.virtual_services[&key].owner.to_string(),
            "default/web:http"
        );
    }
    // Only the cluster IP is bound and listed in KUBE-IPVS-IPS.
    assert_eq!(bound(&d), ["10.96.0.10"]);
    assert_eq!(bare_entries(&d, "KUBE-IPVS-IPS"), ["10.96.0.10"]);
    assert_eq!(
        set_entries(&d, "KUBE-NODE-PORT-TCP"),
        [r#"30080 comment "default/web:http""#]
    );
    // Which node-port virtual services are ours: exactly these two.
    assert_eq!(
        bare_entries(&d, "KUBE-NODE-PORT-IPS"),
        ["10.0.0.5,tcp:30080", "192.168.50.10,tcp:30080"]
    );
    assert_eq!(
        filled_sets(&d),
        [
            ("KUBE-CLUSTER-IP".to_owned(), 1),
            ("KUBE-IPVS-IPS".to_owned(), 1),
            ("KUBE-NODE-PORT-IPS".to_owned(), 2),
            ("KUBE-NODE-PORT-TCP".to_owned(), 1),
        ]
    );
}

#[test]
fn one_port_number_for_tcp_and_udp_uses_a_bitmap_per_protocol() {
    let services = [node_port_svc(
        "NodePort",
        "kube-system",
        "dns",
        &["10.96.0.53"],
        &[("dns", 53, "UDP", 30053), ("dns-tcp", 53, "TCP", 30053)],
    )];
    let d = desired(&services, &[], &config_with_addresses(&["192.168.50.10"]));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.96.0.53:53",
            "udp 10.96.0.53:53",
            "tcp 192.168.50.10:30053",
            "udp 192.168.50.10:30053",
        ]
    );
    assert_eq!(
        set_entries(&d, "KUBE-NODE-PORT-TCP"),
        [r#"30053 comment "kube-system/dns:dns-tcp""#]
    );
    assert_eq!(
        set_entries(&d, "KUBE-NODE-PORT-UDP"),
        [r#"30053 comment "kube-system/dns:dns""#]
    );
}

#[test]
fn sctp_node_ports_are_listed_per_node_address() {
    let services = [patched(
        node_port_svc(
            "NodePort",
            "tel",
            "sig",
            &["10.96.0.20", "fd00:10:96::20"],
            &[("sig", 3868, "SCTP", 31868)],
        ),
        json!({ "spec": { "externalTrafficPolicy": "Local" } }),
    )];
    let d = desired(&services, &[], &config_with_addresses(&NODE));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let hash = [
        "10.0.0.5,sctp:31868 comment \"tel/sig:sig\"",
        "192.168.50.10,sctp:31868 comment \"tel/sig:sig\"",
    ];
    assert_eq!(set_entries(&d, "KUBE-NODE-PORT-SCTP-HASH"), hash);
    assert_eq!(set_entries(&d, "KUBE-NODE-PORT-LOCAL-SCTP-HASH"), hash);
    assert_eq!(
        bare_entries(&d, "KUBE-6-NODE-PORT-SCTP-HASH"),
        ["fd00:50::10,sctp:31868"]
    );
    assert_eq!(
        bare_entries(&d, "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS"),
        ["fd00:50::10,sctp:31868"]
    );
    // The bitmap sets cannot hold SCTP.
    assert!(dset(&d, "KUBE-NODE-PORT-TCP").entries.is_empty());
    assert!(dset(&d, "KUBE-NODE-PORT-LOCAL-TCP").entries.is_empty());
}

#[test]
fn external_traffic_policy_local_fills_the_local_set_too() {
    let services = [patched(
        node_port_svc(
            "NodePort",
            "default",
            "web",
            &["10.96.0.10"],
            &[("http", 80, "TCP", 30080)],
        ),
        json!({ "spec": { "externalTrafficPolicy": "Local" } }),
    )];
    let slices = [web_slice(&[
        ("10.244.1.2", Some(true), Some("node-a")),
        ep("10.244.2.3"),
    ])];
    let d = desired(
        &services,
        &slices,
        &config_with_addresses(&["192.168.50.10"]),
    );
    // kube-proxy keeps the port in the non-local set as well.
    assert_eq!(bare_entries(&d, "KUBE-NODE-PORT-TCP"), ["30080"]);
    assert_eq!(bare_entries(&d, "KUBE-NODE-PORT-LOCAL-TCP"), ["30080"]);
    // Node port: local endpoints only; cluster IP: all.
    assert_eq!(
        dests(&d, tcp_key("192.168.50.10", 30080)),
        ["10.244.1.2:8080"]
    );
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.2:8080", "10.244.2.3:8080"]
    );
}

#[test]
fn v6_node_ports_on_v6_node_addresses_only() {
    let services = [node_port_svc(
        "LoadBalancer",
        "default",
        "web",
        &["fd00:10:96::10", "10.96.0.10"],
        &[("http", 80, "TCP", 30080)],
    )];
    let slices = [
        web_slice(&[ep("10.244.1.2")]),
        slice(
            "default",
            "web-2",
            "web",
            "IPv6",
            &[("http", 8080, "")],
            &[("fd00:244::2", Some(true), Some("node-b"))],
        ),
    ];
    let d = desired(&services, &slices, &config_with_addresses(&NODE));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.0.0.5:30080",
            "tcp 10.96.0.10:80",
            "tcp 192.168.50.10:30080",
            "tcp [fd00:10:96::10]:80",
            "tcp [fd00:50::10]:30080",
        ]
    );
    assert_eq!(
        dests(&d, tcp_key("fd00:50::10", 30080)),
        ["[fd00:244::2]:8080"]
    );
    assert_eq!(dests(&d, tcp_key("10.0.0.5", 30080)), ["10.244.1.2:8080"]);
    assert_eq!(bare_entries(&d, "KUBE-6-NODE-PORT-TCP"), ["30080"]);
    assert_eq!(bare_entries(&d, "KUBE-NODE-PORT-TCP"), ["30080"]);
    assert_eq!(bound(&d), ["10.96.0.10", "fd00:10:96::10"]);
}

#[test]
fn nodeport_addresses_modes() {
    let services = [node_port_svc(
        "NodePort",
        "default",
        "web",
        &["10.96.0.10", "fd00:10:96::10"],
        &[("http", 80, "TCP", 30080)],
    )];
    let node_port_keys = |mode: NodePortAddresses, primary: &[&str]| {
        let mut config = config_with_addresses(&NODE);
        config.nodeport_addresses = mode;
        config.primary_ips = primary.iter().map(|a| ip(a)).collect();
        let d = desired(&services, &[], &config);
        vs_keys(&d)
            .into_iter()
            .filter(|k| k.ends_with(":30080"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        node_port_keys(NodePortAddresses::All, &[]),
        [
            "tcp 10.0.0.5:30080",
            "tcp 192.168.50.10:30080",
            "tcp [fd00:50::10]:30080"
        ]
    );
    assert_eq!(
        node_port_keys(
            NodePortAddresses::Primary,
            &["192.168.50.10", "fd00:50::10"]
        ),
        ["tcp 192.168.50.10:30080", "tcp [fd00:50::10]:30080"]
    );
    // No Node object seen yet: no primary address, no node ports.
    assert!(node_port_keys(NodePortAddresses::Primary, &[]).is_empty());
    assert_eq!(
        node_port_keys(
            NodePortAddresses::Cidrs(vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.0/8".parse().unwrap(),
                "fe80::/10".parse().unwrap()
            ]),
            &[]
        ),
        ["tcp 10.0.0.5:30080"]
    );
}

#[test]
fn without_node_addresses_nothing_is_marked_for_node_ports() {
    let services = [node_port_svc(
        "NodePort",
        "default",
        "web",
        &["10.96.0.10"],
        &[("http", 80, "TCP", 30080)],
    )];
    let d = desired(&services, &[], &config());
    assert_eq!(vs_keys(&d), ["tcp 10.96.0.10:80"]);
    assert!(dset(&d, "KUBE-NODE-PORT-TCP").entries.is_empty());
}

#[test]
fn only_node_port_and_load_balancer_types_get_node_ports() {
    // A ClusterIP service with a stray nodePort (not possible through the
    // API, but the field is there): no node port.
    let services = [
        node_port_svc(
            "ClusterIP",
            "default",
            "a",
            &["10.96.0.11"],
            &[("", 80, "", 30081)],
        ),
        // nodePort 0: not allocated (allocateLoadBalancerNodePorts: false).
        node_port_svc(
            "LoadBalancer",
            "default",
            "b",
            &["10.96.0.12"],
            &[("", 80, "", 0)],
        ),
        node_port_svc(
            "NodePort",
            "default",
            "c",
            &["10.96.0.13"],
            &[("", 80, "", 70000)],
        ),
    ];
    let d = desired(&services, &[], &config_with_addresses(&["192.168.50.10"]));
    assert_eq!(
        vs_keys(&d),
        [
            "tcp 10.96.0.11:80",
            "tcp 10.96.0.12:80",
            "tcp 10.96.0.13:80"
        ]
    );
    assert_eq!(
        warning_lines(&d),
        [r#"Service default/c: port "": invalid nodePort 70000"#]
    );
}

#[test]
fn a_node_address_port_taken_by_an_external_ip_warns() {
    // default/a's externalIP is a node address on the port default/b's
    // node port uses. a sorts first and keeps it.
    let services = [
        patched(
            svc("default", "a", &["10.96.0.11"], &[("", 30080, "")]),
            json!({ "spec": { "externalIPs": ["192.168.50.10"] } }),
        ),
        node_port_svc(
            "NodePort",
            "default",
            "b",
            &["10.96.0.12"],
            &[("", 80, "", 30080)],
        ),
    ];
    let d = desired(
        &services,
        &[],
        &config_with_addresses(&["192.168.50.10", "10.0.0.5"]),
    );
    assert_eq!(
        warning_lines(&d),
        ["Service default/b: tcp 192.168.50.10:30080 is already used by default/a"]
    );
    let key = tcp_key("192.168.50.10", 30080);
    assert_eq!(d.virtual_services[&key].owner.to_string(), "default/a");
    assert_eq!(
        d.virtual_services[&tcp_key("10.0.0.5", 30080)]
            .owner
            .to_string(),
        "default/b"
    );
    // The node address stays unbound: another interface has it.
    assert_eq!(bound(&d), ["10.96.0.11", "10.96.0.12"]);
}
