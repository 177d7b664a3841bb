//! Test helpers: k8s objects from JSON, observed state from desired state,
//! and a small model of the kernel that applies a plan.

#![allow(dead_code)]

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::Destination;
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

/// One of our sets by name.
pub fn id(name: &str) -> SetId {
    SetId::from_name(name).unwrap_or_else(|| panic!("{name} is not one of our sets"))
}

/// A desired set by name.
pub fn dset<'a>(desired: &'a Desired, name: &str) -> &'a DesiredSet {
    &desired.sets[&id(name)]
}

/// An observed set by name.
pub fn oset<'a>(observed: &'a mut Observed, name: &str) -> &'a mut ObservedSet {
    observed.sets.get_mut(&id(name)).expect("set observed")
}

/// Puts `entries` into an observed set, as if someone added them.
pub fn add_entries(observed: &mut Observed, set: &str, entries: Vec<Entry>) {
    let set = oset(observed, set);
    for entry in entries {
        set.entries.insert(EntryKey::of(&entry), entry);
    }
}

/// Entries of one desired set, as `ipset list` prints them (with comment).
pub fn set_entries(desired: &Desired, set: &str) -> Vec<String> {
    dset(desired, set)
        .entries()
        .map(|e| e.to_string())
        .collect()
}

/// Stable made-up kernel indexes for all our sets (both families).
pub fn indexes() -> BTreeMap<SetId, u16> {
    IpFamily::ALL
        .into_iter()
        .flat_map(|family| SetRole::ALL.map(|role| SetId::new(role, family)))
        .enumerate()
        .map(|(i, id)| (id, i as u16 + 3))
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
    dset(desired, set)
        .entries
        .keys()
        .map(ToString::to_string)
        .collect()
}

/// The addresses to bind, as strings.
pub fn bound(desired: &Desired) -> Vec<String> {
    desired.addresses.iter().map(ToString::to_string).collect()
}

/// The sets that have entries, with their entry counts, by name.
pub fn filled_sets(desired: &Desired) -> Vec<(String, usize)> {
    let mut filled: Vec<(String, usize)> = desired
        .sets
        .iter()
        .filter(|(_, set)| !set.entries.is_empty())
        .map(|(id, set)| (id.name().to_owned(), set.entries.len()))
        .collect();
    filled.sort();
    filled
}

/// Warnings as `object: reason` strings.
pub fn warning_lines(desired: &Desired) -> Vec<String> {
    desired.warnings.iter().map(ToString::to_string).collect()
}

/// What the kernel would report after programming `desired` perfectly,
/// made to look like real dumps: stats and counters filled in, entries as
/// listed, the tables with an attribute order and counter values of their
/// own (a dump's, see `RenderedTable`'s equality).
pub fn observed_from(desired: &Desired) -> Observed {
    let set_indexes = indexes();
    let mut observed = Observed {
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
    for (id, set) in &desired.sets {
        let mut listed = ObservedSet::created(*id, set_indexes.get(id).copied());
        listed.entries = set
            .entries
            .iter()
            .map(|(key, desired)| (*key, desired.entry.clone()))
            .collect();
        observed.sets.insert(*id, listed);
    }
    for table in &desired.tables {
        let rendered = table.render(&set_indexes).unwrap();
        observed.tables.insert(table.family, as_dumped(rendered));
    }
    observed
}

/// A table as a dump shows it: every expression's attributes in reverse
/// order, counters counting.
pub fn as_dumped(mut table: RenderedTable) -> RenderedTable {
    use kipvs_packet_nftables::{expr::CounterAttr, Expr};
    for rule in &mut table.rules {
        for expr in &mut rule.exprs {
            match expr {
                Expr::Counter(attrs) => {
                    attrs.push(CounterAttr::Bytes(4096));
                    attrs.push(CounterAttr::Packets(12));
                }
                Expr::Payload(a) => a.reverse(),
                Expr::Cmp(a) => a.reverse(),
                Expr::Meta(a) => a.reverse(),
                Expr::Immediate(a) => a.reverse(),
                Expr::Ct(a) => a.reverse(),
                Expr::Fib(a) => a.reverse(),
                _ => {}
            }
        }
    }
    table
}

/// A model of the kernel: applies `plan` to `observed` (with
/// [`Observed::apply`], as the runtime's cache does), and panics on
/// anything the kernel would refuse.
pub fn apply(plan: &Plan, observed: &Observed) -> Observed {
    let mut o = observed.clone();
    for step in &plan.steps {
        if let Err(refusal) = o.apply(&step.action) {
            panic!("the kernel refuses {step}: {refusal}");
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
