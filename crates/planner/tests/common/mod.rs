//! Test helpers: k8s objects from JSON, observed state from desired state,
//! and a small model of the kernel that applies a plan.

#![allow(dead_code)]

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_packet_ipset::{Entry, SetInfo};
use kipvs_packet_ipvs::Destination;
use kipvs_packet_nftables::{ChainAttr, NftBody, NftMessage, RuleAttr};
use kipvs_planner::*;
use serde_json::{json, Value};

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// `(name, port, protocol)`; name "" = unnamed, protocol "" = unset.
pub type Port<'a> = (&'a str, i64, &'a str);

fn port_json(ports: &[Port], number_key: &str) -> Vec<Value> {
    ports
        .iter()
        .map(|(name, port, protocol)| {
            let mut p = json!({ number_key: port });
            if !name.is_empty() {
                p["name"] = json!(name);
            }
            if !protocol.is_empty() {
                p["protocol"] = json!(protocol);
            }
            p
        })
        .collect()
}

/// A ClusterIP Service with `spec.clusterIPs` (and `clusterIP` = the first).
pub fn svc(ns: &str, name: &str, cluster_ips: &[&str], ports: &[Port]) -> Arc<K8sService> {
    let mut spec = json!({ "type": "ClusterIP", "ports": port_json(ports, "port") });
    if let Some(first) = cluster_ips.first() {
        spec["clusterIP"] = json!(first);
        spec["clusterIPs"] = json!(cluster_ips);
    }
    svc_from(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "namespace": ns, "name": name },
        "spec": spec,
    }))
}

pub fn svc_from(value: Value) -> Arc<K8sService> {
    Arc::new(serde_json::from_value(value).unwrap())
}

/// An endpoint: address, `conditions.ready` (None = no conditions at all),
/// node name.
pub type Ep<'a> = (&'a str, Option<bool>, Option<&'a str>);

pub fn ep(addr: &str) -> Ep<'_> {
    (addr, Some(true), Some("node-b"))
}

pub fn slice(
    ns: &str,
    name: &str,
    service: &str,
    address_type: &str,
    ports: &[Port],
    endpoints: &[Ep],
) -> Arc<EndpointSlice> {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(addr, ready, node)| {
            let mut e = json!({ "addresses": [addr] });
            if let Some(ready) = ready {
                e["conditions"] = json!({ "ready": ready });
            }
            if let Some(node) = node {
                e["nodeName"] = json!(node);
            }
            e
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "namespace": ns, "name": name,
                "labels": { "kubernetes.io/service-name": service },
            },
            "addressType": address_type,
            "ports": port_json(ports, "port"),
            "endpoints": endpoints,
        }))
        .unwrap(),
    )
}

pub fn config() -> NodeConfig {
    NodeConfig::new("node-a")
}

pub fn tcp_key(addr: &str, port: u16) -> VirtualServiceKey {
    VirtualServiceKey::tuple(ip(addr), kipvs_packet_ipvs::Protocol::Tcp, port)
}

/// Destinations of one virtual service, as `addr:port` strings.
pub fn dests(desired: &Desired, key: VirtualServiceKey) -> Vec<String> {
    desired.virtual_services[&key]
        .destinations
        .values()
        .map(|d| std::net::SocketAddr::new(d.addr, d.port).to_string())
        .collect()
}

/// Entries of one desired set, as `ipset list` prints them (with comment).
pub fn set_entries(desired: &Desired, set: &str) -> Vec<String> {
    desired.sets[set]
        .entries
        .values()
        .map(|e| e.to_string())
        .collect()
}

/// Stable made-up kernel indexes for all our sets (both families).
pub fn indexes() -> BTreeMap<String, u16> {
    IpFamily::ALL
        .into_iter()
        .flat_map(|family| SetRole::ALL.map(|role| role.set_name(family)))
        .enumerate()
        .map(|(i, name)| (name.to_owned(), i as u16 + 3))
        .collect()
}

/// `base` with `patch` merged in: objects merge key by key, anything else
/// (arrays included) replaces. For Services beyond [`svc`]'s ClusterIP.
pub fn patched(base: Arc<K8sService>, patch: Value) -> Arc<K8sService> {
    fn merge(into: &mut Value, patch: Value) {
        match (into, patch) {
            (Value::Object(into), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(into.entry(key).or_insert(Value::Null), value);
                }
            }
            (into, patch) => *into = patch,
        }
    }
    let mut value = serde_json::to_value(base.as_ref()).unwrap();
    merge(&mut value, patch);
    svc_from(value)
}

/// A slice whose endpoints are given as JSON (conditions, hints, ...).
pub fn slice_json(
    ns: &str,
    name: &str,
    service: &str,
    address_type: &str,
    ports: &[Port],
    endpoints: Value,
) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "namespace": ns, "name": name,
                "labels": { "kubernetes.io/service-name": service },
            },
            "addressType": address_type,
            "ports": port_json(ports, "port"),
            "endpoints": endpoints,
        }))
        .unwrap(),
    )
}

/// A config for node `node-a` with these node addresses.
pub fn config_with_addresses(addresses: &[&str]) -> NodeConfig {
    let mut config = config();
    config.local_addresses = addresses.iter().map(|a| ip(a)).collect();
    config
}

/// Keys of the virtual services, as `PROTO addr:port` strings.
pub fn vs_keys(desired: &Desired) -> Vec<String> {
    desired
        .virtual_services
        .keys()
        .map(|key| match key.key() {
            kipvs_packet_ipvs::ServiceKey::Tuple {
                addr,
                protocol,
                port,
            } => format!("{protocol} {}", std::net::SocketAddr::new(addr, port)),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Entries of one desired set without comments.
pub fn bare_entries(desired: &Desired, set: &str) -> Vec<String> {
    desired.sets[set].entries.keys().cloned().collect()
}

/// The addresses to bind, as strings.
pub fn bound(desired: &Desired) -> Vec<String> {
    desired.addresses.iter().map(ToString::to_string).collect()
}

/// The sets that have entries, with their entry counts.
pub fn filled_sets(desired: &Desired) -> Vec<(String, usize)> {
    desired
        .sets
        .iter()
        .filter(|(_, set)| !set.entries.is_empty())
        .map(|(name, set)| (name.clone(), set.entries.len()))
        .collect()
}

/// Warnings as `object: reason` strings.
pub fn warning_lines(desired: &Desired) -> Vec<String> {
    desired.warnings.iter().map(ToString::to_string).collect()
}

/// What the kernel would report after programming `desired` perfectly,
/// made to look like real dumps: stats and counters filled in, chains and
/// rules with handles, use counts and policies, entries as listed.
pub fn observed_from(desired: &Desired) -> Observed {
    let set_indexes = indexes();
    let mut observed = Observed {
        set_indexes: set_indexes.clone(),
        addresses: desired.addresses.clone(),
        ..Observed::default()
    };
    for (key, vs) in &desired.virtual_services {
        let mut service = vs.service.clone();
        service.stats = Some(Default::default());
        let dests = vs
            .destinations
            .values()
            .map(|d| Destination {
                active_conns: 3,
                inactive_conns: 7,
                stats: Some(Default::default()),
                ..d.clone()
            })
            .collect();
        observed.virtual_services.insert(*key, (service, dests));
    }
    for (name, set) in &desired.sets {
        observed.sets.insert(
            name.clone(),
            SetInfo {
                name: name.clone(),
                type_name: set.set_type.type_name().to_owned(),
                family: set.family.into(),
                index: set_indexes.get(name).copied(),
                hash_size: set.options.hash_size,
                max_elem: set.options.max_elem,
                comment: true,
                elements: set.entries.len() as u32,
                entries: set.entries.values().cloned().collect(),
                ..SetInfo::default()
            },
        );
    }
    for table in &desired.tables {
        let contents = table.contents(&set_indexes).unwrap();
        observed
            .tables
            .insert(table.family, observed_table(contents));
    }
    observed
}

/// Turns requests into dump-like replies (handles, use counts, policy).
pub fn observed_table(contents: Vec<NftMessage>) -> ObservedTable {
    let mut table = ObservedTable::default();
    let mut handle = 1;
    for mut message in contents {
        handle += 1;
        match &mut message.body {
            NftBody::NewChain(attrs) => {
                attrs.insert(2, ChainAttr::Handle(handle));
                if attrs.iter().any(|a| matches!(a, ChainAttr::Hook(_))) {
                    attrs.push(ChainAttr::Policy(
                        kipvs_packet_nftables::ChainPolicy::Accept,
                    ));
                    attrs.push(ChainAttr::Flags(1));
                }
                attrs.push(ChainAttr::Use(1));
                table.chains.push(message);
            }
            NftBody::NewRule(attrs) => {
                attrs.insert(2, RuleAttr::Handle(handle));
                table.rules.push(message);
            }
            _ => {}
        }
    }
    table
}

/// A model of the kernel: applies `plan` to `observed` the way the
/// runtime would, and panics on anything the kernel would refuse
/// (adding what exists, removing what does not).
pub fn apply(plan: &Plan, observed: &Observed) -> Observed {
    let mut o = observed.clone();
    for step in &plan.steps {
        match &step.action {
            Action::CreateSet {
                name,
                set_type,
                family,
                options,
            } => {
                assert!(!o.sets.contains_key(name), "{name} exists");
                let index = o.set_indexes.values().max().map_or(0, |i| i + 1);
                o.sets.insert(
                    name.clone(),
                    SetInfo {
                        name: name.clone(),
                        type_name: set_type.type_name().to_owned(),
                        family: (*family).into(),
                        index: Some(index),
                        comment: options.comment,
                        ..SetInfo::default()
                    },
                );
                o.set_indexes.insert(name.clone(), index);
            }
            Action::ReplaceSet {
                name,
                set_type,
                family,
                options,
                entries,
                ..
            } => {
                // Swapped in under the old index.
                let info = o.sets.get_mut(name).expect("set exists");
                *info = SetInfo {
                    name: name.clone(),
                    type_name: set_type.type_name().to_owned(),
                    family: (*family).into(),
                    index: info.index,
                    comment: options.comment,
                    entries: entries.clone(),
                    ..SetInfo::default()
                };
            }
            Action::ReplaceTable { family, messages } => {
                assert!(matches!(messages[1].body, NftBody::DelTable(_)));
                let fam = if *family == kipvs_packet_nftables::NfProto::Ipv4 {
                    IpFamily::V4
                } else {
                    IpFamily::V6
                };
                o.tables.insert(fam, observed_table(messages[3..].to_vec()));
            }
            Action::AddService(s) => {
                let prev = o.virtual_services.insert(s.key.into(), (s.clone(), vec![]));
                assert!(prev.is_none(), "service exists: {s:?}");
            }
            Action::UpdateService(s) => {
                let vs = o.virtual_services.get_mut(&s.key.into()).unwrap();
                vs.0 = s.clone();
            }
            Action::DeleteService(k) => {
                assert!(o.virtual_services.remove(&(*k).into()).is_some());
            }
            Action::AddDestination(k, d) => {
                let vs = o.virtual_services.get_mut(&(*k).into()).expect("service");
                assert!(!vs.1.iter().any(|x| (x.addr, x.port) == (d.addr, d.port)));
                vs.1.push(d.clone());
            }
            Action::UpdateDestination(k, d) => {
                let vs = o.virtual_services.get_mut(&(*k).into()).expect("service");
                let x =
                    vs.1.iter_mut()
                        .find(|x| (x.addr, x.port) == (d.addr, d.port));
                *x.expect("destination") = d.clone();
            }
            Action::DeleteDestination(k, addr, port) => {
                let vs = o.virtual_services.get_mut(&(*k).into()).expect("service");
                let before = vs.1.len();
                vs.1.retain(|x| (x.addr, x.port) != (*addr, *port));
                assert_eq!(vs.1.len(), before - 1);
            }
            Action::AddSetEntries { set, entries } => {
                let info = o.sets.get_mut(set).expect("set exists");
                for e in entries {
                    assert!(!info.entries.iter().any(|x| entry_key(x) == entry_key(e)));
                    info.entries.push(e.clone());
                }
            }
            Action::DeleteSetEntries { set, entries } => {
                let info = o.sets.get_mut(set).expect("set exists");
                for e in entries {
                    let before = info.entries.len();
                    info.entries.retain(|x| entry_key(x) != entry_key(e));
                    assert_eq!(info.entries.len(), before - 1, "{e}");
                }
            }
            Action::BindAddress(a) => assert!(o.addresses.insert(*a)),
            Action::UnbindAddress(a) => assert!(o.addresses.remove(a)),
        }
    }
    o
}

/// One-line form of each step, for readable assertions.
pub fn lines(plan: &Plan) -> Vec<String> {
    plan.steps.iter().map(|s| s.to_string()).collect()
}

/// Position of the first step matching `pred`.
pub fn pos(plan: &Plan, pred: impl Fn(&Action) -> bool) -> usize {
    plan.steps
        .iter()
        .position(|s| pred(&s.action))
        .unwrap_or_else(|| panic!("no such step in {:#?}", lines(plan)))
}

pub fn entry_strings(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| e.to_string()).collect()
}

/// `spec.ports` with node ports: `(name, port, protocol, nodePort)`.
pub fn node_ports(ports: &[(&str, i64, &str, i64)]) -> Value {
    ports
        .iter()
        .map(|(name, port, protocol, node_port)| {
            let mut p = json!({ "port": port, "nodePort": node_port });
            if !name.is_empty() {
                p["name"] = json!(name);
            }
            if !protocol.is_empty() {
                p["protocol"] = json!(protocol);
            }
            p
        })
        .collect()
}

/// A Service of type NodePort (or LoadBalancer) with `spec.ports` =
/// [`node_ports`].
pub fn node_port_svc(
    type_: &str,
    ns: &str,
    name: &str,
    cluster_ips: &[&str],
    ports: &[(&str, i64, &str, i64)],
) -> Arc<K8sService> {
    patched(
        svc(ns, name, cluster_ips, &[]),
        json!({ "spec": { "type": type_, "ports": node_ports(ports) } }),
    )
}

/// `status.loadBalancer.ingress` with these IPs.
pub fn ingress(ips: &[&str]) -> Value {
    let ingress: Vec<Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
    json!({ "status": { "loadBalancer": { "ingress": ingress } } })
}

/// An endpoint as JSON: address, node, and extra fields (conditions, hints).
pub fn ep_json(addr: &str, node: &str, extra: Value) -> Value {
    let mut e = json!({ "addresses": [addr], "nodeName": node });
    if let (Value::Object(e), Value::Object(extra)) = (&mut e, extra) {
        e.extend(extra);
    }
    e
}
