//! Odd and hostile objects: what a tenant who may create Services (or
//! write `services/status`, or an EndpointSlice, or a manifest file) can
//! hand the planner. Each case runs next to a well-formed Service, which
//! must come out programmed exactly as on its own: a bad object is skipped
//! (or the bad part of it), with a warning that names it, and never
//! disturbs another service. None may panic, and none gets a virtual
//! service for what is invalid.

mod common;

use std::sync::Arc;

use common::*;
use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_planner::*;
use serde_json::{json, Value};

/// What a case must show besides "no panic, the good service untouched".
type Check = Box<dyn Fn(&Desired) -> Result<(), String>>;

struct Case {
    name: &'static str,
    services: Vec<Arc<K8sService>>,
    slices: Vec<Arc<EndpointSlice>>,
    config: NodeConfig,
    check: Check,
}

fn case(name: &'static str, services: Vec<Arc<K8sService>>, check: Check) -> Case {
    Case {
        name,
        services,
        slices: Vec::new(),
        config: config_with_addresses(&["192.168.50.10"]),
        check,
    }
}

fn with_slices(mut case: Case, slices: Vec<Arc<EndpointSlice>>) -> Case {
    case.slices = slices;
    case
}

/// A Service from a full JSON object (for names and shapes `svc` cannot
/// make).
fn raw(metadata: Value, spec: Value) -> Arc<K8sService> {
    svc_from(json!({ "apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec }))
}

/// `default/bad` with this spec.
fn bad_spec(spec: Value) -> Arc<K8sService> {
    raw(json!({ "namespace": "default", "name": "bad" }), spec)
}

/// `default/bad`, ClusterIP 10.96.9.9, with these ports.
fn bad_ports(ports: Value) -> Arc<K8sService> {
    bad_spec(json!({ "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"], "ports": ports }))
}

/// `default/bad`, port 80, with these cluster IPs.
fn bad_cluster_ips(ips: &[&str]) -> Arc<K8sService> {
    bad_spec(json!({ "clusterIP": ips.first(), "clusterIPs": ips, "ports": [{ "port": 80 }] }))
}

/// `default/bad` ClusterIP 10.96.9.9:80 patched with `patch`.
fn bad_patched(patch: Value) -> Arc<K8sService> {
    patched(
        svc("default", "bad", &["10.96.9.9"], &[("", 80, "")]),
        patch,
    )
}

/// A warning on `object` whose reason contains `text`.
fn warns(object: &str, text: &str) -> Check {
    let (object, text) = (object.to_owned(), text.to_owned());
    Box::new(move |d| {
        let found = d
            .warnings
            .iter()
            .any(|w| w.object == object && w.reason.contains(&text));
        if found {
            Ok(())
        } else {
            Err(format!(
                "no warning on {object} containing {text:?}: {:?}",
                warning_lines(d)
            ))
        }
    })
}

/// No virtual service belongs to `ns/name`.
fn no_virtual_service(service: &str) -> Check {
    let service = service.to_owned();
    Box::new(move |d| {
        match d
            .virtual_services
            .iter()
            .find(|(_, vs)| vs.owner.service() == service)
        {
            Some((key, _)) => Err(format!("{service} has virtual service {key}")),
            None => Ok(()),
        }
    })
}

/// Exactly these virtual service keys belong to `ns/name`.
fn virtual_services(service: &str, expected: &[&str]) -> Check {
    let service = service.to_owned();
    let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    Box::new(move |d| {
        let keys: Vec<String> = d
            .virtual_services
            .iter()
            .filter(|(_, vs)| vs.owner.service() == service)
            .map(|(key, _)| key.to_string())
            .collect();
        if keys == expected {
            Ok(())
        } else {
            Err(format!("{service}: {keys:?}, expected {expected:?}"))
        }
    })
}

/// No warning at all (for shapes that are simply not programmed, or are
/// fine).
fn quiet() -> Check {
    Box::new(|d| {
        if d.warnings.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected warnings: {:?}", warning_lines(d)))
        }
    })
}

fn all(checks: Vec<Check>) -> Check {
    Box::new(move |d| checks.iter().try_for_each(|check| check(d)))
}

/// The bad object is skipped whole, with a warning.
fn skipped(object: &str, text: &str) -> Check {
    all(vec![warns(object, text), no_virtual_service("default/bad")])
}

const BAD: &str = "Service default/bad";
const BAD_SLICE: &str = "EndpointSlice default/bad-1";

fn bad_slice(address_type: &str, ports: &[Port], endpoints: &[Ep]) -> Arc<EndpointSlice> {
    slice("default", "bad-1", "bad", address_type, ports, endpoints)
}

fn good_service() -> Arc<K8sService> {
    svc("default", "good", &["10.96.0.10"], &[("http", 80, "")])
}

fn good_slice() -> Arc<EndpointSlice> {
    slice(
        "default",
        "good-1",
        "good",
        "IPv4",
        &[("http", 8080, "TCP")],
        &[ep("10.244.1.2"), ep("10.244.2.3")],
    )
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

fn name_cases() -> Vec<Case> {
    let named = |ns: &str, name: &str| {
        raw(
            json!({ "namespace": ns, "name": name }),
            json!({ "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"], "ports": [{ "port": 80 }] }),
        )
    };
    let label_5000 = format!("Service default/{}…(5000 bytes)", long(253));
    let max_ns = format!("n{}", long(62));
    let max_name = format!("s{}", long(62));
    let max_comment = format!("{max_ns}/{max_name}:port-name-15chr");
    vec![
        case(
            "empty name",
            vec![named("default", "")],
            all(vec![
                warns("Service default/<unnamed>", "no metadata.name"),
                no_virtual_service("default/"),
            ]),
        ),
        case(
            "5000-character name",
            vec![named("default", &long(5000))],
            all(vec![
                warns(&label_5000, "invalid name: is 5000 bytes long"),
                Box::new(|d| {
                    // The log line stays readable.
                    match d.warnings.iter().all(|w| w.object.len() < 300) {
                        true => Ok(()),
                        false => Err("a warning names the object in full".into()),
                    }
                }),
            ]),
        ),
        case(
            "64-character name",
            vec![named("default", &long(64))],
            warns(&format!("Service default/{}", long(64)), "more than 63"),
        ),
        case(
            "unicode name",
            vec![named("default", "wéb")],
            warns("Service default/wéb", "contains 'é'"),
        ),
        case(
            "upper-case name",
            vec![named("default", "Web")],
            warns("Service default/Web", "contains 'W'"),
        ),
        case(
            "name with a slash",
            vec![named("default", "a/b")],
            warns("Service default/a/b", "contains '/'"),
        ),
        case(
            "name with a colon",
            vec![named("default", "a:b")],
            warns("Service default/a:b", "contains ':'"),
        ),
        case(
            "name with a space and a quote",
            vec![named("default", "a \"b")],
            warns("Service default/a \"b", "contains ' '"),
        ),
        case(
            "name starting with a dash",
            vec![named("default", "-web")],
            warns("Service default/-web", "starts or ends with '-'"),
        ),
        case(
            "invalid namespace",
            vec![named("Default", "bad")],
            all(vec![
                warns("Service Default/bad", "invalid namespace"),
                no_virtual_service("Default/bad"),
            ]),
        ),
        case(
            "5000-character namespace",
            vec![named(&long(5000), "bad")],
            warns(
                &format!("Service {}…(5000 bytes)/bad", long(253)),
                "invalid namespace: is 5000 bytes long",
            ),
        ),
        case(
            "the API's longest names: 63-character namespace and name, 15-character port name",
            vec![raw(
                json!({ "namespace": max_ns, "name": max_name }),
                json!({ "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"],
                        "ports": [{ "name": "port-name-15chr", "port": 80 }] }),
            )],
            all(vec![
                quiet(),
                virtual_services(&format!("{max_ns}/{max_name}"), &["tcp 10.96.9.9:80"]),
                Box::new(move |d| {
                    let entries = set_entries(d, "KUBE-CLUSTER-IP");
                    let wanted = format!("10.96.9.9,tcp:80 comment \"{max_comment}\"");
                    match entries.contains(&wanted) && max_comment.len() == 143 {
                        true => Ok(()),
                        false => Err(format!("{entries:?} lacks {wanted}")),
                    }
                }),
            ]),
        ),
        case(
            "two services with the same invalid name: one warning each",
            vec![named("default", &long(100)), named("default", &long(100))],
            Box::new(|d| match d.warnings.len() {
                2 => Ok(()),
                n => Err(format!("{n} warnings: {:?}", warning_lines(d))),
            }),
        ),
    ]
}

fn port_cases() -> Vec<Case> {
    vec![
        case(
            "port 0",
            vec![bad_ports(json!([{ "port": 0 }]))],
            skipped(BAD, "invalid port 0"),
        ),
        case(
            "port 65536",
            vec![bad_ports(json!([{ "port": 65536 }]))],
            skipped(BAD, "invalid port 65536"),
        ),
        case(
            "negative port",
            vec![bad_ports(json!([{ "port": -1 }]))],
            skipped(BAD, "invalid port -1"),
        ),
        case(
            "port i32::MAX",
            vec![bad_ports(json!([{ "port": i32::MAX }]))],
            skipped(BAD, "invalid port 2147483647"),
        ),
        case(
            "ICMP",
            vec![bad_ports(json!([{ "port": 80, "protocol": "ICMP" }]))],
            skipped(BAD, "unsupported protocol \"ICMP\""),
        ),
        case(
            "empty protocol",
            vec![bad_ports(json!([{ "port": 80, "protocol": "" }]))],
            skipped(BAD, "unsupported protocol \"\""),
        ),
        case(
            "lower-case protocol",
            vec![bad_ports(json!([{ "port": 80, "protocol": "tcp" }]))],
            skipped(BAD, "unsupported protocol \"tcp\""),
        ),
        case(
            "16-character port name",
            vec![bad_ports(
                json!([{ "name": "sixteen-chars-xx", "port": 80 }]),
            )],
            skipped(BAD, "invalid port name: is 16 bytes long"),
        ),
        case(
            "upper-case port name",
            vec![bad_ports(json!([{ "name": "HTTP", "port": 80 }]))],
            skipped(BAD, "invalid port name: contains 'H'"),
        ),
        case(
            "port name with a colon",
            vec![bad_ports(json!([{ "name": "a:b", "port": 80 }]))],
            skipped(BAD, "invalid port name: contains ':'"),
        ),
        case(
            "port name of digits only",
            vec![bad_ports(json!([{ "name": "8080", "port": 80 }]))],
            skipped(BAD, "invalid port name: has no letter"),
        ),
        case(
            "5000-byte unicode port name",
            vec![bad_ports(json!([{ "name": "é".repeat(2500), "port": 80 }]))],
            skipped(BAD, "invalid port name: is 5000 bytes long"),
        ),
        case(
            "one bad port among good ones",
            vec![bad_ports(
                json!([{ "name": "a", "port": 0 }, { "name": "b", "port": 81 }]),
            )],
            all(vec![
                warns(BAD, "port \"a\": invalid port 0"),
                virtual_services("default/bad", &["tcp 10.96.9.9:81"]),
            ]),
        ),
        case(
            "the same port twice",
            vec![bad_ports(json!([{ "port": 80 }, { "port": 80 }]))],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "the same number under two names",
            vec![bad_ports(
                json!([{ "name": "a", "port": 80 }, { "name": "b", "port": 80 }]),
            )],
            all(vec![
                warns(BAD, "tcp 10.96.9.9:80 is already used by default/bad:a"),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "no ports",
            vec![bad_ports(json!([]))],
            all(vec![quiet(), no_virtual_service("default/bad")]),
        ),
        case(
            "nodePort 70000",
            vec![bad_patched(json!({ "spec": { "type": "NodePort",
                "ports": [{ "port": 80, "nodePort": 70000 }] } }))],
            all(vec![
                warns(BAD, "invalid nodePort 70000"),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "negative nodePort",
            vec![bad_patched(json!({ "spec": { "type": "NodePort",
                "ports": [{ "port": 80, "nodePort": -5 }] } }))],
            warns(BAD, "invalid nodePort -5"),
        ),
        case(
            "nodePort on a ClusterIP service is not served",
            vec![bad_patched(
                json!({ "spec": { "ports": [{ "port": 80, "nodePort": 30080 }] } }),
            )],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "1000 ports",
            vec![bad_ports(Value::Array(
                (1..=1000)
                    .map(|p| json!({ "name": format!("p{p}"), "port": p }))
                    .collect(),
            ))],
            Box::new(|d| {
                let count = d
                    .virtual_services
                    .values()
                    .filter(|vs| vs.owner.service() == "default/bad")
                    .count();
                match count {
                    1000 => Ok(()),
                    n => Err(format!("{n} virtual services")),
                }
            }),
        ),
    ]
}

fn address_cases() -> Vec<Case> {
    let special = [
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("169.254.1.1", "a link-local address"),
        ("255.255.255.255", "the broadcast address"),
        ("::1", "a loopback address"),
        ("::", "the unspecified address"),
        ("ff02::1", "a multicast address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:10.96.0.1", "an IPv4-mapped IPv6 address"),
    ];
    let mut cases: Vec<Case> = special
        .iter()
        .map(|&(addr, kind)| {
            case(
                "special cluster IP",
                vec![bad_cluster_ips(&[addr])],
                skipped(BAD, &format!("cluster IP {addr} is {kind}; ignored")),
            )
        })
        .collect();
    cases.extend([
        case(
            "invalid cluster IP",
            vec![bad_cluster_ips(&["10.96.0.300"])],
            skipped(BAD, "invalid cluster IP \"10.96.0.300\""),
        ),
        case(
            "5000-byte cluster IP",
            vec![bad_cluster_ips(&[&long(5000)])],
            Box::new(|d| match d.warnings.iter().all(|w| w.reason.len() < 200) {
                true => no_virtual_service("default/bad")(d),
                false => Err("the whole 5000 bytes went into a warning".into()),
            }),
        ),
        case(
            "headless",
            vec![bad_cluster_ips(&["None"])],
            all(vec![quiet(), no_virtual_service("default/bad")]),
        ),
        case(
            "cluster IP not allocated yet",
            vec![bad_spec(json!({ "ports": [{ "port": 80 }] }))],
            all(vec![quiet(), no_virtual_service("default/bad")]),
        ),
        case(
            "duplicate cluster IPs",
            vec![bad_cluster_ips(&["10.96.9.9", "10.96.9.9"])],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "a special address beside a valid one",
            vec![bad_cluster_ips(&["10.96.9.9", "::1"])],
            all(vec![
                warns(BAD, "cluster IP ::1 is a loopback address"),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "dual-stack cluster IPs",
            vec![bad_cluster_ips(&["10.96.9.9", "fd00::9"])],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80", "tcp [fd00::9]:80"]),
            ]),
        ),
        case(
            // The API server never allocates a cluster IP twice; from a
            // manifest, the first service by namespace/name keeps it.
            "another service's cluster IP and port",
            vec![svc("default", "zbad", &["10.96.0.10"], &[("", 80, "")])],
            all(vec![
                warns(
                    "Service default/zbad",
                    "tcp 10.96.0.10:80 is already used by default/good:http",
                ),
                no_virtual_service("default/zbad"),
            ]),
        ),
        case(
            "ExternalName",
            vec![bad_spec(
                json!({ "type": "ExternalName", "externalName": "example.com",
                                   "clusterIP": "10.96.9.9", "ports": [{ "port": 80 }] }),
            )],
            all(vec![quiet(), no_virtual_service("default/bad")]),
        ),
        case(
            "unknown type is served as ClusterIP",
            vec![bad_patched(json!({ "spec": { "type": "Bogus" } }))],
            virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
        ),
        case(
            "no spec",
            vec![svc_from(json!({ "apiVersion": "v1", "kind": "Service",
                                  "metadata": { "namespace": "default", "name": "bad" } }))],
            skipped(BAD, "no spec"),
        ),
    ]);
    for &(addr, kind) in &special[..5] {
        cases.push(case(
            "special externalIP",
            vec![bad_patched(json!({ "spec": { "externalIPs": [addr] } }))],
            all(vec![
                warns(BAD, &format!("externalIP {addr} is {kind}; ignored")),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ));
        cases.push(case(
            "special load-balancer IP",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer" },
                "status": { "loadBalancer": { "ingress": [{ "ip": addr }] } } }))],
            all(vec![
                warns(
                    BAD,
                    &format!("load-balancer ingress IP {addr} is {kind}; ignored"),
                ),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ));
    }
    cases
}

fn external_cases() -> Vec<Case> {
    let many_ips = |n: usize| -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!(format!("198.51.{}.{}", i / 250, i % 250 + 1)))
                .collect(),
        )
    };
    vec![
        case(
            "ingress 127.0.0.1 on port 22",
            vec![patched(
                svc("default", "bad", &["10.96.9.9"], &[("ssh", 22, "")]),
                json!({ "spec": { "type": "LoadBalancer" },
                        "status": { "loadBalancer": { "ingress": [{ "ip": "127.0.0.1" }] } } }),
            )],
            all(vec![
                warns(
                    BAD,
                    "load-balancer ingress IP 127.0.0.1 is a loopback address",
                ),
                virtual_services("default/bad", &["tcp 10.96.9.9:22"]),
                Box::new(|d| match d.addresses.iter().any(|a| a.is_loopback()) {
                    true => Err("127.0.0.1 is bound".into()),
                    false => Ok(()),
                }),
            ]),
        ),
        case(
            "invalid externalIP",
            vec![bad_patched(json!({ "spec": { "externalIPs": ["1.2.3"] } }))],
            warns(BAD, "invalid externalIP \"1.2.3\""),
        ),
        case(
            "IPv6 externalIP on an IPv4 service",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": ["2001:db8::1"] } }),
            )],
            warns(
                BAD,
                "externalIP 2001:db8::1 is IPv6, the service has no IPv6 cluster IP",
            ),
        ),
        case(
            "externalIP that is another service's cluster IP",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": ["10.96.0.10"] } }),
            )],
            all(vec![
                warns(
                    BAD,
                    "tcp 10.96.0.10:80 is already used by default/good:http",
                ),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "externalIP that is a node address is served there, not bound",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": ["192.168.50.10"] } }),
            )],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80", "tcp 192.168.50.10:80"]),
                Box::new(|d| match d.addresses.contains(&ip("192.168.50.10")) {
                    true => Err("the node's address is bound to kube-ipvs0".into()),
                    false => Ok(()),
                }),
            ]),
        ),
        case(
            "the same externalIP twice",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": ["198.51.100.1", "198.51.100.1"] } }),
            )],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80", "tcp 198.51.100.1:80"]),
            ]),
        ),
        case(
            "257 externalIPs",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": many_ips(257) } }),
            )],
            skipped(
                BAD,
                "257 externalIPs and load-balancer IPs, more than the limit of 256",
            ),
        ),
        case(
            "256 externalIPs are within the limit",
            vec![bad_patched(
                json!({ "spec": { "externalIPs": many_ips(256) } }),
            )],
            Box::new(|d| {
                let n = d
                    .virtual_services
                    .values()
                    .filter(|vs| vs.owner.service() == "default/bad")
                    .count();
                match n {
                    257 => Ok(()),
                    n => Err(format!("{n} virtual services")),
                }
            }),
        ),
        case(
            "1000 externalIPs x 1000 ports",
            vec![bad_patched(json!({ "spec": {
                "externalIPs": many_ips(1000),
                "ports": (1..=1000).map(|p| json!({ "name": format!("p{p}"), "port": p })).collect::<Vec<_>>(),
            } }))],
            skipped(
                BAD,
                "1000 externalIPs and load-balancer IPs, more than the limit of 256",
            ),
        ),
        case(
            "100 000 externalIPs, all invalid: ten warnings and a count",
            vec![bad_patched(json!({ "spec": {
                "externalIPs": (0..100_000).map(|i| json!(format!("x{i}"))).collect::<Vec<_>>(),
            } }))],
            all(vec![
                warns(BAD, "99990 more problems like the above"),
                Box::new(|d| match d.warnings.len() {
                    11 => Ok(()),
                    n => Err(format!("{n} warnings")),
                }),
            ]),
        ),
        case(
            "hostname-only ingress",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer" },
                "status": { "loadBalancer": { "ingress": [{ "hostname": "lb.example.com" }] } } }))],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "ingress with ipMode Proxy",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer" },
                "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7", "ipMode": "Proxy" }] } } }))],
            all(vec![
                quiet(),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
        case(
            "invalid ingress IP",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer" },
                "status": { "loadBalancer": { "ingress": [{ "ip": "lb" }] } } }))],
            warns(BAD, "invalid load-balancer ingress IP \"lb\""),
        ),
        case(
            "unreadable source ranges fail closed",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer",
                "loadBalancerSourceRanges": ["everyone"] },
                "status": { "loadBalancer": { "ingress": [{ "ip": "203.0.113.7" }] } } }))],
            all(vec![
                warns(BAD, "no valid loadBalancerSourceRanges"),
                Box::new(|d| match set_entries(d, "KUBE-LOAD-BALANCER-FW").len() {
                    1 => Ok(()),
                    n => Err(format!("{n} firewall entries")),
                }),
            ]),
        ),
        case(
            "invalid healthCheckNodePort",
            vec![bad_patched(json!({ "spec": { "type": "LoadBalancer",
                "externalTrafficPolicy": "Local", "healthCheckNodePort": 70000 } }))],
            all(vec![
                warns(BAD, "invalid healthCheckNodePort 70000"),
                Box::new(|d| match d.health_checks.is_empty() {
                    true => Ok(()),
                    false => Err("a health check was planned".into()),
                }),
            ]),
        ),
        case(
            "affinity timeout 0",
            vec![bad_patched(
                json!({ "spec": { "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 0 } } } }),
            )],
            warns(
                BAD,
                "invalid sessionAffinityConfig.clientIP.timeoutSeconds 0; using 10800",
            ),
        ),
        case(
            "unknown scheduler annotation",
            vec![bad_patched(json!({ "metadata": { "annotations": {
                "ipvs.kube-ipvs.io/scheduler": "fastest" } } }))],
            all(vec![
                warns(BAD, "using the default scheduler rr"),
                virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
            ]),
        ),
    ]
}

fn slice_cases() -> Vec<Case> {
    let bad = || svc("default", "bad", &["10.96.9.9"], &[("", 80, "")]);
    let port = [("", 8080, "TCP")];
    let many = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("10.{}.{}.{}", 100 + i / 62500, (i / 250) % 250, i % 250 + 1))
            .collect()
    };
    vec![
        with_slices(
            case(
                "FQDN slice",
                vec![bad()],
                all(vec![
                    quiet(),
                    virtual_services("default/bad", &["tcp 10.96.9.9:80"]),
                ]),
            ),
            vec![bad_slice(
                "FQDN",
                &port,
                &[("example.com", Some(true), None)],
            )],
        ),
        with_slices(
            case(
                "unknown addressType",
                vec![bad()],
                warns(BAD_SLICE, "unsupported addressType \"IPv5\""),
            ),
            vec![bad_slice("IPv5", &port, &[ep("10.244.1.9")])],
        ),
        with_slices(
            case(
                "invalid endpoint address",
                vec![bad()],
                warns(BAD_SLICE, "invalid endpoint address \"10.244.1\""),
            ),
            vec![bad_slice("IPv4", &port, &[ep("10.244.1")])],
        ),
        with_slices(
            case(
                "loopback endpoint",
                vec![bad()],
                all(vec![
                    warns(
                        BAD_SLICE,
                        "endpoint address 127.0.0.1 is a loopback address",
                    ),
                    Box::new(|d| match dests(d, tcp_key("10.96.9.9", 80)).as_slice() {
                        [one] if one == "10.244.1.9:8080" => Ok(()),
                        other => Err(format!("{other:?}")),
                    }),
                ]),
            ),
            vec![bad_slice(
                "IPv4",
                &port,
                &[ep("127.0.0.1"), ep("10.244.1.9")],
            )],
        ),
        with_slices(
            case(
                "endpoint of the other family",
                vec![bad()],
                warns(BAD_SLICE, "endpoint address fd00::1 is not IPv4"),
            ),
            vec![bad_slice("IPv4", &port, &[ep("fd00::1")])],
        ),
        with_slices(
            case(
                "target port 0",
                vec![bad()],
                warns(BAD_SLICE, "invalid target port 0"),
            ),
            vec![bad_slice("IPv4", &[("", 0, "TCP")], &[ep("10.244.1.9")])],
        ),
        with_slices(
            case("slice without the service-name label", vec![bad()], quiet()),
            vec![Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": { "namespace": "default", "name": "bad-1" },
                    "addressType": "IPv4",
                    "endpoints": [{ "addresses": ["10.244.1.9"] }],
                }))
                .unwrap(),
            )],
        ),
        with_slices(
            case(
                "30 invalid endpoints: ten warnings and a count",
                vec![bad()],
                all(vec![
                    warns(BAD_SLICE, "20 more problems like the above"),
                    Box::new(|d| match d.warnings.len() {
                        11 => Ok(()),
                        n => Err(format!("{n} warnings")),
                    }),
                ]),
            ),
            vec![{
                let addrs: Vec<String> = (0..30).map(|i| format!("bad{i}")).collect();
                let eps: Vec<Ep> = addrs.iter().map(|a| ep(a)).collect();
                bad_slice("IPv4", &port, &eps)
            }],
        ),
        with_slices(
            case(
                "100 000 endpoints",
                vec![bad()],
                Box::new(|d| {
                    match d.virtual_services[&tcp_key("10.96.9.9", 80)]
                        .destinations
                        .len()
                    {
                        100_000 => Ok(()),
                        n => Err(format!("{n} real servers")),
                    }
                }),
            ),
            {
                let addrs = many(100_000);
                // At most 1000 endpoints per slice, as the API allows.
                addrs
                    .chunks(1000)
                    .enumerate()
                    .map(|(i, chunk)| {
                        let eps: Vec<Ep> = chunk.iter().map(|a| ep(a)).collect();
                        slice("default", &format!("bad-{i}"), "bad", "IPv4", &port, &eps)
                    })
                    .collect()
            },
        ),
        with_slices(
            case(
                "5000-character slice name",
                vec![bad()],
                warns(
                    &format!("EndpointSlice default/{}…(5000 bytes)", long(253)),
                    "invalid endpoint address",
                ),
            ),
            vec![slice(
                "default",
                &long(5000),
                "bad",
                "IPv4",
                &port,
                &[ep("x")],
            )],
        ),
    ]
}

fn limit_cases() -> Vec<Case> {
    let mut capped = case(
        "node-wide cap on virtual services",
        vec![
            svc("default", "a", &["10.96.1.1"], &[("", 80, "")]),
            svc("default", "bad", &["10.96.9.9"], &[("a", 80, ""), ("b", 81, "")]),
        ],
        all(vec![
            warns(BAD, "needs 2 virtual services, which would take the node past its limit of 2 (--max-virtual-services; 1 planned before it)"),
            no_virtual_service("default/bad"),
            virtual_services("default/a", &["tcp 10.96.1.1:80"]),
        ]),
    );
    capped.config.max_virtual_services = 2;
    let mut excluded = case(
        "cluster IP in --ipvs-exclude-cidrs",
        vec![bad_cluster_ips(&["10.96.9.9"])],
        skipped(
            BAD,
            "tcp 10.96.9.9:80 is in --ipvs-exclude-cidrs; left alone",
        ),
    );
    excluded.config.exclude_cidrs = vec!["10.96.9.0/24".parse().unwrap()];
    let mut few = case(
        "--max-service-addresses 1",
        vec![bad_patched(
            json!({ "spec": { "externalIPs": ["198.51.100.1", "198.51.100.2"] } }),
        )],
        skipped(
            BAD,
            "2 externalIPs and load-balancer IPs, more than the limit of 1",
        ),
    );
    few.config.max_service_addresses = 1;
    vec![capped, excluded, few]
}

#[test]
fn hostile_objects_are_skipped_with_a_warning_and_disturb_nothing() {
    let alone = desired(&[good_service()], &[good_slice()], &config());
    let cases: Vec<Case> = [
        name_cases(),
        port_cases(),
        address_cases(),
        external_cases(),
        slice_cases(),
        limit_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let mut services = vec![good_service()];
        services.extend(case.services.iter().cloned());
        let mut slices = vec![good_slice()];
        slices.extend(case.slices.iter().cloned());
        let d = desired(&services, &slices, &case.config);
        let key = tcp_key("10.96.0.10", 80);
        if d.virtual_services.get(&key) != alone.virtual_services.get(&key) {
            failures.push(format!("{}: the good service changed", case.name));
        }
        if !d.addresses.contains(&ip("10.96.0.10")) {
            failures.push(format!("{}: the good service is not bound", case.name));
        }
        if d.warnings
            .iter()
            .any(|w| w.object == "Service default/good")
        {
            failures.push(format!("{}: the good service got a warning", case.name));
        }
        if let Err(problem) = (case.check)(&d) {
            failures.push(format!("{}: {problem}", case.name));
        }
        // Whatever was planned fits the kernel's comment limit.
        for (name, set) in &d.sets {
            let name = name.name();
            for entry in set.entries() {
                if entry
                    .comment
                    .as_ref()
                    .is_some_and(|c| c.len() > IPSET_MAX_COMMENT_SIZE)
                {
                    failures.push(format!(
                        "{}: {name} has a comment over 255 bytes",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} hostile cases", cases.len());
}
