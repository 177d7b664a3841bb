//! Reading one Service into what kube-ipvs programs for it: its virtual
//! addresses, ports, traffic policies and IPVS options. Bad fields are
//! reported and left out; the rest of the Service still counts.

use std::{net::IpAddr, sync::Arc};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service as K8sService, ServiceSpec};
use kipvs_packet_ipvs::Protocol;

use crate::{
    k8s,
    key::IpFamily,
    names::{
        cut_at_char_boundary, dns_label_problem, port_name_problem, ObjectWarnings, ServiceId,
        Warning,
    },
    scheduler::Scheduling,
};

/// kube-proxy's (and the API's) default `clientIP.timeoutSeconds`.
pub(crate) const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;
/// The API's upper bound for `clientIP.timeoutSeconds` (one day).
const MAX_AFFINITY_TIMEOUT: u32 = 86400;

/// A validated `spec.ports[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortSpec {
    pub name: Arc<str>,
    pub protocol: Protocol,
    pub port: u16,
    /// Only for types NodePort and LoadBalancer.
    pub node_port: Option<u16>,
}

/// One Service, as far as kube-ipvs cares.
#[derive(Debug, Clone)]
pub(crate) struct ServiceView {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// `Service namespace/name`, for warnings.
    pub object: String,
    /// Valid and distinct, in `spec.clusterIPs` order; never empty.
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<PortSpec>,
    /// `spec.externalIPs` of the service's families.
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip` of the service's families,
    /// except `ipMode: Proxy` ones (the load balancer proxies to the node
    /// ports itself).
    pub load_balancer_ips: Vec<IpAddr>,
    /// `None`: no `loadBalancerSourceRanges`, every source is allowed.
    /// `Some`: the valid ranges, possibly none (then no source is).
    pub source_ranges: Option<Vec<IpNet>>,
    /// `externalTrafficPolicy: Local`.
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `sessionAffinity: ClientIP`: the persistence timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// For type LoadBalancer with `externalTrafficPolicy: Local`.
    pub health_check_node_port: Option<u16>,
    pub scheduling: Scheduling,
}

impl ServiceView {
    pub(crate) fn id(&self) -> ServiceId {
        ServiceId {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// `None` for what has no virtual IP to program (ExternalName,
    /// headless, not yet allocated) or cannot be read at all.
    pub(crate) fn read(
        namespace: &str,
        name: Option<&str>,
        svc: &K8sService,
        default_scheduler: &str,
        warnings: &mut Vec<Warning>,
    ) -> Option<Self> {
        let object = k8s::object_label("Service", namespace, name);
        let mut sink = ObjectWarnings::new(&object, warnings);
        let mut warn = |reason: String| sink.warn(reason);
        let name = valid_name(namespace, name, &mut warn)?;
        let Some(spec) = &svc.spec else {
            warn("no spec".to_owned());
            return None;
        };
        let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
        // Like kube-proxy's ShouldSkipService: no virtual IP to program.
        if service_type == "ExternalName" {
            return None;
        }
        let cluster_ips = cluster_ips(spec, &mut warn)?;
        let families: Vec<IpFamily> = cluster_ips.iter().map(IpFamily::of).collect();
        let (external_ips, load_balancer_ips) = outside_addresses(svc, spec, &families, &mut warn);
        let node_ports = matches!(service_type, "NodePort" | "LoadBalancer");
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let health_check_node_port = match spec.health_check_node_port {
            Some(value) if service_type == "LoadBalancer" && external_local => {
                let port = k8s::port_number(value);
                if port.is_none() {
                    warn(format!("invalid healthCheckNodePort {value}"));
                }
                port
            }
            _ => None,
        };
        let scheduling =
            match Scheduling::for_service(svc.metadata.annotations.as_ref(), default_scheduler) {
                Ok(scheduling) => scheduling,
                Err(reason) => {
                    warn(format!(
                        "{reason}; using the default scheduler {default_scheduler}"
                    ));
                    Scheduling::plain(default_scheduler)
                }
            };
        Some(ServiceView {
            namespace: namespace.into(),
            name: name.into(),
            ports: ports(spec, node_ports, &mut warn),
            source_ranges: source_ranges(spec, &mut warn),
            affinity_timeout: affinity_timeout(spec, &mut warn),
            object: object.clone(),
            cluster_ips,
            external_ips,
            load_balancer_ips,
            external_local,
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            health_check_node_port,
            scheduling,
        })
    }

    /// The service's IP families, in `spec.clusterIPs` order.
    pub(crate) fn families(&self) -> Vec<IpFamily> {
        let mut families = Vec::new();
        for ip in &self.cluster_ips {
            push_unique(&mut families, IpFamily::of(ip));
        }
        families
    }
}

/// The service's name, if it and its namespace are names the API server
/// would admit. It never admits others, but the manifests source (and a
/// broken apiserver) may hand them over; they end up in log lines and
/// kernel comments, so they are refused here.
fn valid_name<'a>(
    namespace: &str,
    name: Option<&'a str>,
    warn: &mut dyn FnMut(String),
) -> Option<&'a str> {
    let Some(name) = name else {
        warn("no metadata.name".to_owned());
        return None;
    };
    if let Some(problem) = dns_label_problem(namespace) {
        warn(format!("invalid namespace: {problem}"));
        return None;
    }
    if let Some(problem) = dns_label_problem(name) {
        warn(format!("invalid name: {problem}"));
        return None;
    }
    Some(name)
}

/// `spec.externalIPs` and the load-balancer ingress IPs (but `ipMode:
/// Proxy` ones and hostnames), each valid, usable and of one of the
/// service's `families`, without repeats.
fn outside_addresses(
    svc: &K8sService,
    spec: &ServiceSpec,
    families: &[IpFamily],
    warn: &mut dyn FnMut(String),
) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut of_family = |what: &str, text: &str| {
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            warn(format!(
                "invalid {what} {:?}",
                cut_at_char_boundary(text, 64)
            ));
            return None;
        };
        if let Some(kind) = k8s::special_address(&ip) {
            warn(format!("{what} {ip} is {kind}; ignored"));
            return None;
        }
        if !families.contains(&IpFamily::of(&ip)) {
            let family = IpFamily::of(&ip).address_type();
            warn(format!(
                "{what} {ip} is {family}, the service has no {family} cluster IP"
            ));
            return None;
        }
        Some(ip)
    };
    let external: Vec<IpAddr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|text| of_family("externalIP", text))
        .collect();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let load_balancer: Vec<IpAddr> = ingress
        .into_iter()
        .flatten()
        .filter(|entry| entry.ip_mode.as_deref() != Some("Proxy"))
        .filter_map(|entry| entry.ip.as_deref().filter(|ip| !ip.is_empty()))
        .filter_map(|text| of_family("load-balancer ingress IP", text))
        .collect();
    (dedup_in_order(external), dedup_in_order(load_balancer))
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// `list` without repeats, first occurrences kept in order. Linear-ish
/// (a sorted set of what was seen): an object may list a hundred thousand
/// addresses, where a quadratic scan would stall every sync.
fn dedup_in_order<T: Ord + Clone>(list: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    list.into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// `spec.clusterIPs` (else `spec.clusterIP`); `None` when headless or not
/// allocated, or when none is valid.
fn cluster_ips(spec: &ServiceSpec, warn: &mut dyn FnMut(String)) -> Option<Vec<IpAddr>> {
    let texts: Vec<&str> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        _ => spec.cluster_ip.iter().map(String::as_str).collect(),
    };
    if texts.is_empty() || texts.iter().any(|ip| *ip == "None" || ip.is_empty()) {
        return None;
    }
    let mut ips = Vec::new();
    for text in texts {
        match text.parse::<IpAddr>() {
            Ok(ip) => match k8s::special_address(&ip) {
                Some(kind) => warn(format!("cluster IP {ip} is {kind}; ignored")),
                None => ips.push(ip),
            },
            Err(_) => warn(format!(
                "invalid cluster IP {:?}",
                cut_at_char_boundary(text, 64)
            )),
        }
    }
    let ips = dedup_in_order(ips);
    (!ips.is_empty()).then_some(ips)
}

fn ports(spec: &ServiceSpec, node_ports: bool, warn: &mut dyn FnMut(String)) -> Vec<PortSpec> {
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let name = port.name.clone().unwrap_or_default();
        if let Some(problem) = Some(name.as_str())
            .filter(|name| !name.is_empty())
            .and_then(port_name_problem)
        {
            warn(format!(
                "port {:?}: invalid port name: {problem}",
                cut_at_char_boundary(&name, 63)
            ));
            continue;
        }
        let protocol = match k8s::protocol(port.protocol.as_deref()) {
            Ok(protocol) => protocol,
            Err(reason) => {
                warn(format!("port {name:?}: {reason}"));
                continue;
            }
        };
        let Some(number) = k8s::port_number(port.port) else {
            warn(format!("port {name:?}: invalid port {}", port.port));
            continue;
        };
        let node_port = match port.node_port.filter(|_| node_ports) {
            // Unset or 0: not allocated (yet); nothing to serve.
            None | Some(0) => None,
            Some(value) => {
                let valid = k8s::port_number(value);
                if valid.is_none() {
                    warn(format!("port {name:?}: invalid nodePort {value}"));
                }
                valid
            }
        };
        ports.push(PortSpec {
            name: name.into(),
            protocol,
            port: number,
            node_port,
        });
    }
    ports
}

fn source_ranges(spec: &ServiceSpec, warn: &mut dyn FnMut(String)) -> Option<Vec<IpNet>> {
    let given: Vec<&str> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .map(|range| range.trim())
        .filter(|range| !range.is_empty())
        .collect();
    if given.is_empty() {
        return None;
    }
    let mut ranges = Vec::new();
    for text in given {
        match text.parse::<IpNet>() {
            Ok(range) => ranges.push(range.trunc()),
            Err(_) => warn(format!("invalid loadBalancerSourceRanges entry {text:?}")),
        }
    }
    let ranges = dedup_in_order(ranges);
    if ranges.is_empty() {
        // Fail closed: the owner asked to restrict the sources, and an
        // unreadable restriction must not turn into "everyone".
        warn("no valid loadBalancerSourceRanges: its load-balancer IPs accept no source".into());
    }
    Some(ranges)
}

fn affinity_timeout(spec: &ServiceSpec, warn: &mut dyn FnMut(String)) -> Option<u32> {
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return None;
    }
    let given = spec
        .session_affinity_config
        .as_ref()
        .and_then(|config| config.client_ip.as_ref())
        .and_then(|client_ip| client_ip.timeout_seconds);
    let Some(value) = given else {
        return Some(DEFAULT_AFFINITY_TIMEOUT);
    };
    match u32::try_from(value) {
        Ok(seconds) if (1..=MAX_AFFINITY_TIMEOUT).contains(&seconds) => Some(seconds),
        _ => {
            warn(format!(
                "invalid sessionAffinityConfig.clientIP.timeoutSeconds {value}; using {DEFAULT_AFFINITY_TIMEOUT}"
            ));
            Some(DEFAULT_AFFINITY_TIMEOUT)
        }
    }
}
