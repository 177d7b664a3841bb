//! EndpointSlices, validated once and indexed by the service they belong to.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use k8s_openapi::api::discovery::v1::{Endpoint as K8sEndpoint, EndpointSlice};
use kipvs_packet_ipvs::Protocol;

use crate::{
    contributions::Contributions,
    k8s,
    key::IpFamily,
    names::{cut_at_char_boundary, ObjectWarnings, ServiceId, Warning},
};

/// `kubernetes.io/service-name`: which Service a slice is for.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The usable part of one slice.
struct SliceView {
    family: IpFamily,
    /// `(name, protocol number) → target port`; the first entry wins.
    ports: BTreeMap<(String, u16), u16>,
    /// Endpoints that may carry traffic (ready, or serving while
    /// terminating), one per address.
    endpoints: Vec<EndpointView>,
}

/// One endpoint of a slice, without its port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EndpointView {
    addr: IpAddr,
    local: bool,
    conditions: Conditions,
    hints: Hints,
}

/// An endpoint's conditions with the API's defaults applied (kube-proxy's
/// `endpointslicecache.go`): absent `ready` is true, absent `serving`
/// follows `ready` (the API says to defer to it), absent `terminating` is
/// false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conditions {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

impl Conditions {
    /// Serving and terminating: a fallback when nothing is ready.
    pub(crate) fn draining(self) -> bool {
        self.serving && self.terminating
    }

    /// Anything else is never used, not even as a fallback (kube-proxy's
    /// `CategorizeEndpoints`).
    fn usable(self) -> bool {
        self.ready || self.draining()
    }
}

/// Topology hints: the zones and nodes an endpoint is meant for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hints {
    pub zones: BTreeSet<String>,
    pub nodes: BTreeSet<String>,
}

/// One endpoint of a service port in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
    /// It runs on this node.
    pub local: bool,
    pub conditions: Conditions,
    pub hints: Hints,
}

#[derive(Default)]
pub(crate) struct EndpointIndex {
    /// The slices of each service, in slice name order.
    by_service: BTreeMap<ServiceId, Vec<SliceView>>,
}

impl EndpointIndex {
    /// The index of `slices`; each slice's problems go to the
    /// contribution of the service it is labelled for.
    pub(crate) fn build<'s>(
        slices: impl Iterator<Item = &'s EndpointSlice>,
        node_name: &str,
        contributions: &mut Contributions,
    ) -> Self {
        let mut sorted: Vec<(String, Option<String>, &EndpointSlice)> = slices
            .map(|slice| {
                let (namespace, name) = k8s::namespaced_name(&slice.metadata);
                (namespace, name, slice)
            })
            .collect();
        sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        let mut index = EndpointIndex::default();
        for (namespace, name, slice) in sorted {
            let Some(service) = service_label(slice) else {
                // Not managed for a Service (custom slices); nothing to do.
                continue;
            };
            let id = ServiceId::new(namespace.as_str(), service);
            let object = k8s::object_label("EndpointSlice", &namespace, name.as_deref());
            let mut warnings = Vec::new();
            let view = view(slice, node_name, &object, &mut warnings);
            if !warnings.is_empty() {
                contributions
                    .entry(id.clone())
                    .or_default()
                    .warnings
                    .extend(warnings);
            }
            if let Some(view) = view {
                index.by_service.entry(id).or_default().push(view);
            }
        }
        index
    }

    /// The endpoints of one service port in one family, across all its
    /// slices, deduplicated by (address, target port): the first slice (by
    /// name) wins, except that a local copy replaces a remote one, as in
    /// kube-proxy's `endpointslicecache.go`.
    pub(crate) fn endpoints(
        &self,
        service: &ServiceId,
        port_name: &str,
        protocol: Protocol,
        family: IpFamily,
    ) -> Vec<Endpoint> {
        let mut found: BTreeMap<(IpAddr, u16), &EndpointView> = BTreeMap::new();
        let slices = self.by_service.get(service);
        for slice in slices.into_iter().flatten() {
            if slice.family != family {
                continue;
            }
            // Each slice names its own target port: a named targetPort may
            // resolve to different numbers in different pods.
            let Some(port) = slice
                .ports
                .get(&(port_name.to_owned(), u16::from(protocol)))
            else {
                continue;
            };
            for endpoint in &slice.endpoints {
                let slot = found.entry((endpoint.addr, *port)).or_insert(endpoint);
                if endpoint.local && !slot.local {
                    *slot = endpoint;
                }
            }
        }
        found
            .into_iter()
            .map(|((addr, port), endpoint)| Endpoint {
                addr,
                port,
                local: endpoint.local,
                conditions: endpoint.conditions,
                hints: endpoint.hints.clone(),
            })
            .collect()
    }
}

/// The service a slice is for (its `kubernetes.io/service-name` label);
/// `None` for a slice no Service manages.
pub fn service_label(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        .map(String::as_str)
        .filter(|service| !service.is_empty())
}

/// Validates one slice; `None` when nothing in it is usable.
fn view(
    slice: &EndpointSlice,
    node_name: &str,
    object: &str,
    warnings: &mut Vec<Warning>,
) -> Option<SliceView> {
    let mut warnings = ObjectWarnings::new(object, warnings);
    let family = match slice.address_type.as_str() {
        "IPv4" => IpFamily::V4,
        "IPv6" => IpFamily::V6,
        // Never used for Services with selectors; kube-proxy ignores it too.
        "FQDN" => return None,
        other => {
            warnings.warn(format!(
                "unsupported addressType {:?}",
                cut_at_char_boundary(other, 64)
            ));
            return None;
        }
    };
    Some(SliceView {
        family,
        ports: slice_ports(slice, &mut warnings),
        endpoints: slice_endpoints(slice, family, node_name, &mut warnings),
    })
}

/// The slice's ports by (name, protocol): each slice names its own target
/// port number.
fn slice_ports(
    slice: &EndpointSlice,
    warnings: &mut ObjectWarnings<'_>,
) -> BTreeMap<(String, u16), u16> {
    let mut ports = BTreeMap::new();
    for port in slice.ports.iter().flatten() {
        let name = port.name.clone().unwrap_or_default();
        let protocol = match k8s::protocol(port.protocol.as_deref()) {
            Ok(protocol) => protocol,
            Err(reason) => {
                warnings.warn(format!("port {name:?}: {reason}"));
                continue;
            }
        };
        let Some(number) = port.port.and_then(k8s::port_number) else {
            let shown = port.port.map_or("none".to_owned(), |p| p.to_string());
            warnings.warn(format!("port {name:?}: invalid target port {shown}"));
            continue;
        };
        ports.entry((name, u16::from(protocol))).or_insert(number);
    }
    ports
}

/// The slice's usable endpoints (see [`Conditions::usable`]), each address
/// once.
fn slice_endpoints(
    slice: &EndpointSlice,
    family: IpFamily,
    node_name: &str,
    warnings: &mut ObjectWarnings<'_>,
) -> Vec<EndpointView> {
    let mut endpoints = Vec::new();
    let mut seen = BTreeSet::new();
    for endpoint in &slice.endpoints {
        let conditions = conditions(endpoint);
        if !conditions.usable() {
            continue;
        }
        // Only the first address has defined semantics (Endpoint API
        // docs); kube-proxy ignores the others too.
        let Some(text) = endpoint.addresses.first() else {
            warnings.warn("endpoint without an address");
            continue;
        };
        let addr = match text.parse::<IpAddr>() {
            Ok(addr) if IpFamily::of(&addr) != family => {
                warnings.warn(format!(
                    "endpoint address {text} is not {}",
                    family.address_type()
                ));
                continue;
            }
            // The API refuses these for endpoints too; a real server there
            // would send service traffic to the node itself.
            Ok(addr) => match k8s::special_address(&addr) {
                Some(kind) => {
                    warnings.warn(format!("endpoint address {addr} is {kind}"));
                    continue;
                }
                None => addr,
            },
            Err(_) => {
                warnings.warn(format!(
                    "invalid endpoint address {:?}",
                    cut_at_char_boundary(text, 64)
                ));
                continue;
            }
        };
        if seen.insert(addr) {
            endpoints.push(EndpointView {
                addr,
                local: endpoint.node_name.as_deref() == Some(node_name),
                conditions,
                hints: hints(endpoint),
            });
        }
    }
    endpoints
}

fn conditions(endpoint: &K8sEndpoint) -> Conditions {
    let given = endpoint.conditions.clone().unwrap_or_default();
    let ready = given.ready.unwrap_or(true);
    Conditions {
        ready,
        serving: given.serving.unwrap_or(ready),
        terminating: given.terminating.unwrap_or(false),
    }
}

fn hints(endpoint: &K8sEndpoint) -> Hints {
    let Some(hints) = &endpoint.hints else {
        return Hints::default();
    };
    Hints {
        zones: hints
            .for_zones
            .iter()
            .flatten()
            .map(|zone| zone.name.clone())
            .collect(),
        nodes: hints
            .for_nodes
            .iter()
            .flatten()
            .map(|node| node.name.clone())
            .collect(),
    }
}
