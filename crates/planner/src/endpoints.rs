//! EndpointSlices, validated once and indexed by the service they belong to.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kipvs_packet_ipvs::Protocol;

use crate::{k8s, key::IpFamily, names::Warning};

/// `kubernetes.io/service-name`: which Service a slice is for.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The usable part of one slice.
struct SliceView {
    family: IpFamily,
    /// `(name, protocol number) → target port`; the first entry wins.
    ports: BTreeMap<(String, u16), u16>,
    /// Ready endpoints: address and whether it runs on this node.
    endpoints: Vec<(IpAddr, bool)>,
}

/// One ready endpoint of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadyEndpoint {
    pub addr: IpAddr,
    pub port: u16,
    pub local: bool,
}

#[derive(Default)]
pub(crate) struct EndpointIndex {
    /// `(namespace, service name) → slices`, in slice name order.
    by_service: BTreeMap<(String, String), Vec<SliceView>>,
}

impl EndpointIndex {
    pub(crate) fn build(
        slices: &[Arc<EndpointSlice>],
        node_name: &str,
        warnings: &mut Vec<Warning>,
    ) -> Self {
        let mut sorted: Vec<(String, Option<String>, &EndpointSlice)> = slices
            .iter()
            .map(|slice| {
                let (namespace, name) = k8s::namespaced_name(&slice.metadata);
                (namespace, name, slice.as_ref())
            })
            .collect();
        sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        let mut index = EndpointIndex::default();
        for (namespace, name, slice) in sorted {
            let object = k8s::object_label("EndpointSlice", &namespace, name.as_deref());
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
                .filter(|service| !service.is_empty())
            else {
                // Not managed for a Service (custom slices); nothing to do.
                continue;
            };
            if let Some(view) = view(slice, node_name, &object, warnings) {
                index
                    .by_service
                    .entry((namespace, service.clone()))
                    .or_default()
                    .push(view);
            }
        }
        index
    }

    /// The ready endpoints of one service port in one family, across all
    /// its slices, deduplicated by (address, target port).
    pub(crate) fn ready(
        &self,
        namespace: &str,
        service: &str,
        port_name: &str,
        protocol: Protocol,
        family: IpFamily,
    ) -> Vec<ReadyEndpoint> {
        let mut found: BTreeMap<(IpAddr, u16), bool> = BTreeMap::new();
        let slices = self
            .by_service
            .get(&(namespace.to_owned(), service.to_owned()));
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
            for (addr, local) in &slice.endpoints {
                *found.entry((*addr, *port)).or_default() |= *local;
            }
        }
        found
            .into_iter()
            .map(|((addr, port), local)| ReadyEndpoint { addr, port, local })
            .collect()
    }
}

/// Validates one slice; `None` when nothing in it is usable.
fn view(
    slice: &EndpointSlice,
    node_name: &str,
    object: &str,
    warnings: &mut Vec<Warning>,
) -> Option<SliceView> {
    let family = match slice.address_type.as_str() {
        "IPv4" => IpFamily::V4,
        "IPv6" => IpFamily::V6,
        // Never used for Services with selectors; kube-proxy ignores it too.
        "FQDN" => return None,
        other => {
            warnings.push(Warning::new(
                object,
                format!("unsupported addressType {other:?}"),
            ));
            return None;
        }
    };

    let mut ports = BTreeMap::new();
    for port in slice.ports.iter().flatten() {
        let name = port.name.clone().unwrap_or_default();
        let protocol = match k8s::protocol(port.protocol.as_deref()) {
            Ok(protocol) => protocol,
            Err(reason) => {
                warnings.push(Warning::new(object, format!("port {name:?}: {reason}")));
                continue;
            }
        };
        let Some(number) = port.port.and_then(k8s::port_number) else {
            let shown = port.port.map_or("none".to_owned(), |p| p.to_string());
            warnings.push(Warning::new(
                object,
                format!("port {name:?}: invalid target port {shown}"),
            ));
            continue;
        };
        ports.entry((name, u16::from(protocol))).or_insert(number);
    }

    let mut endpoints = Vec::new();
    let mut seen = BTreeSet::new();
    for endpoint in &slice.endpoints {
        // Absent `ready` means ready (EndpointConditions API docs).
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !ready {
            continue;
        }
        // Only the first address has defined semantics (Endpoint API
        // docs); kube-proxy ignores the others too.
        let Some(text) = endpoint.addresses.first() else {
            warnings.push(Warning::new(object, "endpoint without an address"));
            continue;
        };
        let addr = match text.parse::<IpAddr>() {
            Ok(addr) if IpFamily::of(&addr) == family => addr,
            Ok(_) => {
                warnings.push(Warning::new(
                    object,
                    format!("endpoint address {text} is not {}", family.address_type()),
                ));
                continue;
            }
            Err(_) => {
                warnings.push(Warning::new(
                    object,
                    format!("invalid endpoint address {text:?}"),
                ));
                continue;
            }
        };
        let local = endpoint.node_name.as_deref() == Some(node_name);
        if seen.insert(addr) {
            endpoints.push((addr, local));
        }
    }
    Some(SliceView {
        family,
        ports,
        endpoints,
    })
}
