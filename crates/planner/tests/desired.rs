//! `desired()`: Services + EndpointSlices → virtual services, addresses,
//! sets and tables.

mod common;

use common::*;
use kipvs_packet_ipvs::{ForwardMethod, Protocol, ServiceFlags, DEFAULT_NETMASK_V6};
use kipvs_planner::*;
use serde_json::json;

fn key(addr: &str, protocol: Protocol, port: u16) -> VirtualServiceKey {
    VirtualServiceKey::tuple(ip(addr), protocol, port)
}

#[test]
fn single_service() {
    let services = [svc("default", "web", &["10.96.0.10"], &[("", 80, "")])];
    let slices = [slice(
        "default",
        "web-abc",
        "web",
        "IPv4",
        &[("", 8080, "TCP")],
        &[ep("10.244.1.2"), ep("10.244.2.3")],
    )];
    let d = desired(&services, &slices, &config());

    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(d.virtual_services.len(), 1);
    let vs = &d.virtual_services[&tcp_key("10.96.0.10", 80)];
    assert_eq!(vs.owner, ServicePortName::new("default", "web", ""));
    assert_eq!(vs.owner.to_string(), "default/web");
    assert_eq!(vs.service.scheduler, "rr");
    assert_eq!(vs.service.flags, ServiceFlags::EMPTY);
    assert_eq!(vs.service.netmask, 0xffff_ffff);
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.2:8080", "10.244.2.3:8080"]
    );
    for dest in vs.destinations.values() {
        assert_eq!((dest.forward, dest.weight), (ForwardMethod::Masq, 1));
    }
    assert_eq!(
        d.addresses.iter().copied().collect::<Vec<_>>(),
        [ip("10.96.0.10")]
    );
    assert_eq!(
        set_entries(&d, "KUBE-CLUSTER-IP"),
        [r#"10.96.0.10,tcp:80 comment "default/web""#]
    );
    assert_eq!(
        set_entries(&d, "KUBE-IPVS-IPS"),
        [r#"10.96.0.10 comment "default/web""#]
    );
    // No endpoint on node-a.
    assert!(dset(&d, "KUBE-LOOP-BACK").entries.is_empty());
    // All 18 sets (kube-proxy's 17 and KUBE-NODE-PORT-IPS) exist in both
    // families, the others empty, with kube-proxy's options.
    assert_eq!(d.sets.len(), 36);
    assert_eq!(
        filled_sets(&d),
        [
            ("KUBE-CLUSTER-IP".to_owned(), 1),
            ("KUBE-IPVS-IPS".to_owned(), 1)
        ]
    );
    let v6: Vec<&SetId> = d
        .sets
        .keys()
        .filter(|n| n.name().starts_with("KUBE-6-"))
        .collect();
    assert_eq!(v6.len(), 18);
    for set in v6 {
        assert_eq!(set.set_family(), kipvs_packet_ipset::SetFamily::Inet6);
        assert!(set.name().len() <= 31, "{set}");
    }
    let bitmap = id("KUBE-NODE-PORT-TCP");
    assert_eq!(bitmap.set_type(), kipvs_packet_ipset::SetType::BitmapPort);
    assert_eq!(
        (bitmap.options().port_range, bitmap.options().hash_size),
        (Some((0, 65535)), None)
    );
    assert_eq!(
        id("KUBE-LOOP-BACK").set_type(),
        kipvs_packet_ipset::SetType::HashIpPortIp
    );
    let options = id("KUBE-CLUSTER-IP").options();
    assert_eq!(
        (options.hash_size, options.max_elem, options.comment),
        (Some(1024), Some(65536), true)
    );
    assert_eq!(d.tables.len(), 2);
}

#[test]
fn multi_port_service_has_one_virtual_service_per_port() {
    let services = [svc(
        "shop",
        "api",
        &["10.96.0.20"],
        &[
            ("http", 80, "TCP"),
            ("https", 443, "TCP"),
            ("metrics", 9090, ""),
        ],
    )];
    let slices = [slice(
        "shop",
        "api-1",
        "api",
        "IPv4",
        &[
            ("http", 8080, ""),
            ("https", 8443, ""),
            ("metrics", 9100, ""),
        ],
        &[ep("10.244.1.5")],
    )];
    let d = desired(&services, &slices, &config());
    assert_eq!(d.virtual_services.len(), 3);
    assert_eq!(dests(&d, tcp_key("10.96.0.20", 80)), ["10.244.1.5:8080"]);
    assert_eq!(dests(&d, tcp_key("10.96.0.20", 443)), ["10.244.1.5:8443"]);
    assert_eq!(dests(&d, tcp_key("10.96.0.20", 9090)), ["10.244.1.5:9100"]);
    assert_eq!(
        d.virtual_services[&tcp_key("10.96.0.20", 443)]
            .owner
            .to_string(),
        "shop/api:https"
    );
    // One address for the three ports.
    assert_eq!(d.addresses.len(), 1);
    assert_eq!(dset(&d, "KUBE-CLUSTER-IP").entries.len(), 3);
    assert_eq!(dset(&d, "KUBE-IPVS-IPS").entries.len(), 1);
}

#[test]
fn mixed_tcp_udp_sctp() {
    let services = [svc(
        "kube-system",
        "dns",
        &["10.96.0.10"],
        &[
            ("dns", 53, "UDP"),
            ("dns-tcp", 53, "TCP"),
            ("sig", 3868, "SCTP"),
        ],
    )];
    let slices = [slice(
        "kube-system",
        "dns-x",
        "dns",
        "IPv4",
        &[
            ("dns", 5353, "UDP"),
            ("dns-tcp", 5354, "TCP"),
            ("sig", 3869, "SCTP"),
        ],
        &[ep("10.244.0.7")],
    )];
    let d = desired(&services, &slices, &config());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(
        dests(&d, key("10.96.0.10", Protocol::Udp, 53)),
        ["10.244.0.7:5353"]
    );
    assert_eq!(
        dests(&d, key("10.96.0.10", Protocol::Tcp, 53)),
        ["10.244.0.7:5354"]
    );
    assert_eq!(
        dests(&d, key("10.96.0.10", Protocol::Sctp, 3868)),
        ["10.244.0.7:3869"]
    );
    assert_eq!(
        set_entries(&d, "KUBE-CLUSTER-IP"),
        // (keyed by address, protocol number, port)
        [
            r#"10.96.0.10,tcp:53 comment "kube-system/dns:dns-tcp""#,
            r#"10.96.0.10,udp:53 comment "kube-system/dns:dns""#,
            r#"10.96.0.10,sctp:3868 comment "kube-system/dns:sig""#,
        ]
    );
}

#[test]
fn slice_ports_match_by_name_and_protocol() {
    // A UDP slice port named like the TCP service port does not match it.
    let services = [svc("ns", "s", &["10.96.1.1"], &[("p", 80, "TCP")])];
    let slices = [slice(
        "ns",
        "s-1",
        "s",
        "IPv4",
        &[("p", 9999, "UDP"), ("other", 7777, "TCP")],
        &[ep("10.244.1.1")],
    )];
    let d = desired(&services, &slices, &config());
    assert!(dests(&d, tcp_key("10.96.1.1", 80)).is_empty());
    // The virtual service stays, without real servers.
    assert!(d.virtual_services.contains_key(&tcp_key("10.96.1.1", 80)));
    assert!(d.addresses.contains(&ip("10.96.1.1")));
}

#[test]
fn named_target_ports_resolve_per_slice() {
    // targetPort: http resolves to 8080 in one set of pods, 9090 in another.
    let services = [svc("default", "web", &["10.96.0.10"], &[("http", 80, "")])];
    let slices = [
        slice(
            "default",
            "web-a",
            "web",
            "IPv4",
            &[("http", 8080, "")],
            &[ep("10.244.1.2")],
        ),
        slice(
            "default",
            "web-b",
            "web",
            "IPv4",
            &[("http", 9090, "")],
            &[ep("10.244.2.3")],
        ),
    ];
    let d = desired(&services, &slices, &config());
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.2:8080", "10.244.2.3:9090"]
    );
}

#[test]
fn endpoints_split_and_duplicated_across_slices_are_deduplicated() {
    let services = [svc("default", "web", &["10.96.0.10"], &[("", 80, "")])];
    let port = [("", 8080, "TCP")];
    let slices = [
        slice(
            "default",
            "web-1",
            "web",
            "IPv4",
            &port,
            &[ep("10.244.1.1"), ep("10.244.1.2")],
        ),
        slice(
            "default",
            "web-2",
            "web",
            "IPv4",
            &port,
            &[ep("10.244.1.2"), ep("10.244.1.3")],
        ),
        // Another service's slice and another namespace's slice: ignored.
        slice("default", "db-1", "db", "IPv4", &port, &[ep("10.244.9.9")]),
        slice("other", "web-1", "web", "IPv4", &port, &[ep("10.244.8.8")]),
    ];
    let d = desired(&services, &slices, &config());
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.1:8080", "10.244.1.2:8080", "10.244.1.3:8080"]
    );
}

#[test]
fn not_ready_endpoints_are_excluded_and_nil_ready_included() {
    let services = [svc("default", "web", &["10.96.0.10"], &[("", 80, "")])];
    let slices = [slice(
        "default",
        "web-1",
        "web",
        "IPv4",
        &[("", 8080, "")],
        &[
            ("10.244.1.1", Some(true), None),
            ("10.244.1.2", Some(false), None),
            ("10.244.1.3", None, None),
        ],
    )];
    let d = desired(&services, &slices, &config());
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.1:8080", "10.244.1.3:8080"]
    );

    // `conditions: {}` (ready absent) counts as ready too.
    let mut with_empty = (*slices[0]).clone();
    with_empty.endpoints[1].conditions = Some(Default::default());
    let d = desired(&services, &[std::sync::Arc::new(with_empty)], &config());
    assert_eq!(dests(&d, tcp_key("10.96.0.10", 80)).len(), 3);
}

#[test]
fn dual_stack_service_gets_each_family_its_own_endpoints() {
    let services = [svc(
        "default",
        "web",
        &["10.96.0.10", "fd00:10:96::10"],
        &[("http", 80, "")],
    )];
    let slices = [
        slice(
            "default",
            "web-v4",
            "web",
            "IPv4",
            &[("http", 8080, "")],
            &[ep("10.244.1.2")],
        ),
        slice(
            "default",
            "web-v6",
            "web",
            "IPv6",
            &[("http", 8080, "")],
            &[("fd00:244::2", Some(true), Some("node-a"))],
        ),
    ];
    let d = desired(&services, &slices, &config());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert_eq!(dests(&d, tcp_key("10.96.0.10", 80)), ["10.244.1.2:8080"]);
    assert_eq!(
        dests(&d, tcp_key("fd00:10:96::10", 80)),
        ["[fd00:244::2]:8080"]
    );
    let v6 = &d.virtual_services[&tcp_key("fd00:10:96::10", 80)].service;
    assert_eq!(v6.netmask, DEFAULT_NETMASK_V6);
    assert_eq!(
        d.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.96.0.10", "fd00:10:96::10"]
    );
    assert_eq!(
        set_entries(&d, "KUBE-6-CLUSTER-IP"),
        [r#"fd00:10:96::10,tcp:80 comment "default/web:http""#]
    );
    assert_eq!(
        set_entries(&d, "KUBE-6-IPVS-IPS"),
        [r#"fd00:10:96::10 comment "default/web""#]
    );
    assert_eq!(
        set_entries(&d, "KUBE-6-LOOP-BACK"),
        [r#"fd00:244::2,tcp:8080,fd00:244::2 comment "default/web:http""#]
    );
    assert!(dset(&d, "KUBE-LOOP-BACK").entries.is_empty());
}

#[test]
fn single_cluster_ip_without_cluster_ips_list_is_used() {
    let services = [svc_from(json!({
        "metadata": { "namespace": "default", "name": "old" },
        "spec": { "clusterIP": "10.96.5.5", "ports": [{ "port": 80 }] },
    }))];
    let d = desired(&services, &[], &config());
    assert!(d.virtual_services.contains_key(&tcp_key("10.96.5.5", 80)));
}

#[test]
fn headless_and_external_name_are_skipped_without_warning() {
    let services = [
        svc("default", "headless", &["None"], &[("", 80, "")]),
        svc_from(json!({
            "metadata": { "namespace": "default", "name": "ext" },
            "spec": { "type": "ExternalName", "externalName": "example.com",
                      "clusterIP": "10.96.0.99", "ports": [{ "port": 80 }] },
        })),
        // Not allocated (yet): nothing to program either.
        svc("default", "pending", &[], &[("", 80, "")]),
    ];
    let slices = [slice(
        "default",
        "headless-1",
        "headless",
        "IPv4",
        &[("", 80, "")],
        &[ep("10.244.1.1")],
    )];
    let d = desired(&services, &slices, &config());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert!(d.virtual_services.is_empty());
    assert!(d.addresses.is_empty());
}

#[test]
fn fqdn_slices_are_ignored() {
    let services = [svc("default", "web", &["10.96.0.10"], &[("", 80, "")])];
    let slices = [slice(
        "default",
        "web-fqdn",
        "web",
        "FQDN",
        &[("", 80, "")],
        &[ep("example.com")],
    )];
    let d = desired(&services, &slices, &config());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    assert!(dests(&d, tcp_key("10.96.0.10", 80)).is_empty());
}

#[test]
fn bad_objects_warn_and_leave_other_services_intact() {
    let services = [
        // Healthy, and must stay fully programmed.
        svc("default", "good", &["10.96.0.10"], &[("", 80, "")]),
        svc("default", "bad-ip", &["10.96.0.300"], &[("", 80, "")]),
        // One bad port of three: the others are still programmed.
        svc(
            "default",
            "ports",
            &["10.96.0.11"],
            &[
                ("zero", 0, ""),
                ("icmp", 81, "ICMP"),
                ("ok", 82, ""),
                ("big", 70000, ""),
            ],
        ),
        // Same cluster IP and port as `good`: first (by name) wins.
        svc("default", "thief", &["10.96.0.10"], &[("", 80, "")]),
        // Dual-stack with one broken IP: the valid family stays.
        svc(
            "default",
            "half",
            &["10.96.0.12", "fd00::zz"],
            &[("", 80, "")],
        ),
    ];
    let slices = [
        slice(
            "default",
            "good-1",
            "",
            "IPv4",
            &[("", 8080, "")],
            &[ep("10.244.1.1")],
        ),
        slice(
            "default",
            "good-abc",
            "good",
            "IPv4",
            &[("", 8080, "")],
            &[
                ep("10.244.1.1"),
                ep("fd00::1"),
                ep("not-an-ip"),
                ep("10.244.1.2"),
            ],
        ),
        slice(
            "default",
            "ports-abc",
            "ports",
            "IPv4",
            &[("ok", 0, ""), ("zero", 8080, "")],
            &[ep("10.244.2.1")],
        ),
    ];
    let d = desired(&services, &slices, &config());

    let warnings: Vec<String> = d.warnings.iter().map(ToString::to_string).collect();
    let expect = [
        ("EndpointSlice default/good-abc", "fd00::1"),
        ("EndpointSlice default/good-abc", "not-an-ip"),
        ("EndpointSlice default/ports-abc", "invalid target port 0"),
        ("Service default/bad-ip", "10.96.0.300"),
        ("Service default/half", "fd00::zz"),
        ("Service default/ports", "invalid port 0"),
        ("Service default/ports", "unsupported protocol \"ICMP\""),
        ("Service default/ports", "invalid port 70000"),
        ("Service default/thief", "already used by default/good"),
    ];
    for (object, reason) in expect {
        assert!(
            d.warnings
                .iter()
                .any(|w| w.object == object && w.reason.contains(reason)),
            "no warning for {object}: {reason} in {warnings:#?}"
        );
    }
    assert_eq!(d.warnings.len(), expect.len(), "{warnings:#?}");

    // Everything valid is programmed.
    assert_eq!(
        dests(&d, tcp_key("10.96.0.10", 80)),
        ["10.244.1.1:8080", "10.244.1.2:8080"]
    );
    assert_eq!(
        d.virtual_services[&tcp_key("10.96.0.10", 80)]
            .owner
            .to_string(),
        "default/good"
    );
    // Service port "ok" exists; its slice port was bad, so no endpoints.
    assert!(dests(&d, tcp_key("10.96.0.11", 82)).is_empty());
    assert!(d.virtual_services.contains_key(&tcp_key("10.96.0.12", 80)));
    let keys: Vec<String> = d
        .virtual_services
        .keys()
        .map(|k| format!("{:?}", k.key()))
        .collect();
    assert_eq!(d.virtual_services.len(), 3, "{keys:#?}");
    assert_eq!(
        d.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.96.0.10", "10.96.0.11", "10.96.0.12"]
    );
}

#[test]
fn service_without_valid_ports_binds_nothing() {
    let services = [svc("default", "s", &["10.96.0.13"], &[("", 0, "")])];
    let d = desired(&services, &[], &config());
    assert_eq!(d.warnings.len(), 1);
    assert!(d.addresses.is_empty());
    assert!(dset(&d, "KUBE-IPVS-IPS").entries.is_empty());
}

#[test]
fn local_endpoints_go_to_loop_back() {
    let services = [
        svc("default", "web", &["10.96.0.10"], &[("http", 80, "")]),
        // Another service over the same pod and port: one entry, first owner.
        svc("default", "web2", &["10.96.0.11"], &[("http", 80, "")]),
    ];
    let port = [("http", 8080, "")];
    let endpoints = [
        ("10.244.1.2", Some(true), Some("node-a")),
        ("10.244.1.3", Some(true), Some("node-b")),
        ("10.244.1.4", Some(false), Some("node-a")),
        ("10.244.1.5", None, Some("node-a")),
    ];
    let slices = [
        slice("default", "web-1", "web", "IPv4", &port, &endpoints),
        slice("default", "web2-1", "web2", "IPv4", &port, &endpoints[..1]),
    ];
    let d = desired(&services, &slices, &config());
    assert_eq!(
        set_entries(&d, "KUBE-LOOP-BACK"),
        [
            r#"10.244.1.2,tcp:8080,10.244.1.2 comment "default/web:http""#,
            r#"10.244.1.5,tcp:8080,10.244.1.5 comment "default/web:http""#,
        ]
    );
    let key = EntryKey::of(&kipvs_packet_ipset::Entry::ip_port_ip(
        ip("10.244.1.2"),
        6,
        8080,
        ip("10.244.1.2"),
    ));
    assert_eq!(
        dset(&d, "KUBE-LOOP-BACK").entries[&key].owner.to_string(),
        "default/web:http"
    );
}

#[test]
fn set_comments_name_the_service_port() {
    let services = [
        svc(
            "team-a",
            "api",
            &["10.96.3.1"],
            &[("grpc", 9000, ""), ("", 80, "")],
        ),
        svc("team-a", "db", &["10.96.3.2"], &[("", 5432, "")]),
    ];
    let d = desired(&services, &[], &config());
    assert_eq!(
        set_entries(&d, "KUBE-CLUSTER-IP"),
        [
            r#"10.96.3.1,tcp:80 comment "team-a/api""#,
            r#"10.96.3.1,tcp:9000 comment "team-a/api:grpc""#,
            r#"10.96.3.2,tcp:5432 comment "team-a/db""#,
        ]
    );
    assert_eq!(
        set_entries(&d, "KUBE-IPVS-IPS"),
        [
            r#"10.96.3.1 comment "team-a/api""#,
            r#"10.96.3.2 comment "team-a/db""#,
        ]
    );
    // The owner of the address is the first service port on it.
    assert_eq!(
        d.address_owner(ip("10.96.3.1")).unwrap().to_string(),
        "team-a/api"
    );
    assert_eq!(
        ServicePortName::from_comment("team-a/api:grpc"),
        Some(ServicePortName::new("team-a", "api", "grpc"))
    );
    assert_eq!(ServicePortName::from_comment("garbage"), None);
}

#[test]
fn scheduler_comes_from_the_config() {
    let services = [svc("default", "web", &["10.96.0.10"], &[("", 80, "")])];
    let mut cfg = config();
    cfg.scheduler = "wrr".into();
    let d = desired(&services, &[], &cfg);
    assert_eq!(
        d.virtual_services[&tcp_key("10.96.0.10", 80)]
            .service
            .scheduler,
        "wrr"
    );
}

#[test]
fn input_order_does_not_matter() {
    let services = vec![
        svc("default", "a", &["10.96.0.1"], &[("", 80, "")]),
        svc("default", "b", &["10.96.0.1"], &[("", 80, "")]),
        svc("default", "c", &["10.96.0.3"], &[("", 80, "")]),
    ];
    let port = [("", 8080, "")];
    let slices = vec![
        slice(
            "default",
            "a-1",
            "a",
            "IPv4",
            &port,
            &[("10.244.0.1", Some(true), Some("node-a"))],
        ),
        slice(
            "default",
            "b-1",
            "b",
            "IPv4",
            &port,
            &[("10.244.0.1", Some(true), Some("node-a"))],
        ),
        slice("default", "c-1", "c", "IPv4", &port, &[ep("10.244.0.3")]),
    ];
    let forward = desired(&services, &slices, &config());
    let mut rs = services.clone();
    rs.reverse();
    let mut rsl = slices.clone();
    rsl.reverse();
    let backward = desired(&rs, &rsl, &config());
    assert_eq!(forward, backward);
}

/// Services using every feature at once, sharing addresses and ports.
fn feature_soup() -> (
    Vec<std::sync::Arc<k8s_openapi::api::core::v1::Service>>,
    Vec<std::sync::Arc<k8s_openapi::api::discovery::v1::EndpointSlice>>,
) {
    let lb = |name: &str, cluster_ips: &[&str], spec: serde_json::Value, ips: &[&str]| {
        patched(
            patched(
                node_port_svc(
                    "LoadBalancer",
                    "default",
                    name,
                    cluster_ips,
                    &[("", 80, "", 0)],
                ),
                ingress(ips),
            ),
            json!({ "spec": spec }),
        )
    };
    let services = vec![
        lb(
            "a",
            &["10.96.0.1", "fd00:10:96::1"],
            json!({
                "ports": node_ports(&[("", 80, "", 30080), ("dns", 53, "UDP", 30053)]),
                "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                "loadBalancerSourceRanges": ["192.168.0.0/16", "fd00:50::/64"],
                "sessionAffinity": "ClientIP",
            }),
            &["198.51.100.1", "2001:db8::1"],
        ),
        lb(
            "b",
            &["10.96.0.2"],
            json!({
                "externalIPs": ["203.0.113.7", "10.96.0.1"],
                "internalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                "externalTrafficPolicy": "Local",
            }),
            &["198.51.100.1"],
        ),
        svc("default", "c", &["10.96.0.3"], &[("", 80, "SCTP")]),
    ];
    let port = [("", 8080, "")];
    let slices = vec![
        slice(
            "default",
            "a-1",
            "a",
            "IPv4",
            &port,
            &[("10.244.0.1", Some(true), Some("node-a")), ep("10.244.1.1")],
        ),
        slice(
            "default",
            "a-2",
            "a",
            "IPv6",
            &port,
            &[("fd00:244::1", Some(true), Some("node-a"))],
        ),
        slice("default", "b-1", "b", "IPv4", &port, &[ep("10.244.1.2")]),
    ];
    (services, slices)
}

#[test]
fn input_order_does_not_matter_with_every_feature() {
    let (services, slices) = feature_soup();
    let config = config_with_addresses(&["192.168.50.10", "fd00:50::10"]);
    let forward = desired(&services, &slices, &config);
    let mut rs = services.clone();
    rs.reverse();
    let mut rsl = slices.clone();
    rsl.reverse();
    assert_eq!(forward, desired(&rs, &rsl, &config));
    // b lost the LB address, the health-check port and a's cluster IP.
    assert_eq!(
        warning_lines(&forward),
        [
            "Service default/b: tcp 10.96.0.1:80 is already used by default/a",
            "Service default/b: tcp 198.51.100.1:80 is already used by default/a",
            "Service default/b: healthCheckNodePort 32000 is already used by default/a",
        ]
    );
    assert_eq!(forward.health_checks[&32000].local_endpoints, 2);
    assert_eq!(
        bare_entries(&forward, "KUBE-LOOP-BACK"),
        ["10.244.0.1,tcp:8080,10.244.0.1"]
    );
    assert_eq!(
        bare_entries(&forward, "KUBE-6-LOOP-BACK"),
        ["fd00:244::1,tcp:8080,fd00:244::1"]
    );
}

#[test]
fn programming_every_feature_leaves_nothing_to_do() {
    let (services, slices) = feature_soup();
    let config = config_with_addresses(&["192.168.50.10", "fd00:50::10"]);
    let d = desired(&services, &slices, &config);
    let empty = Observed::default();
    let first = plan(&d, &empty, &Default::default());
    // Every set is created, both tables installed.
    let creates = first
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::CreateSet { .. }))
        .count();
    assert_eq!(creates, 36);
    assert!(plan(&d, &observed_from(&d), &Default::default()).is_empty());
}
