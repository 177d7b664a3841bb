//! Reading one Service into what kube-ipvs programs for it: its virtual
//! addresses, ports, traffic policies and IPVS options. Bad fields are
//! reported and left out; the rest of the Service still counts.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service as K8sService, ServiceSpec};
use kipvs_packet_ipvs::Protocol;

use crate::{k8s, key::IpFamily, names::Warning, scheduler::Scheduling};

/// kube-proxy's (and the API's) default `clientIP.timeoutSeconds`.
pub(crate) const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;
/// The API's upper bound for `clientIP.timeoutSeconds` (one day).
const MAX_AFFINITY_TIMEOUT: u32 = 86400;

/// A validated `spec.ports[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortSpec {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    /// Only for types NodePort and LoadBalancer.
    pub node_port: Option<u16>,
}

/// One Service, as far as kube-ipvs cares.
#[derive(Debug, Clone)]
pub(crate) struct ServiceView {
    pub namespace: String,
    pub name: String,
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
        let mut warn = |reason: String| warnings.push(Warning::new(&object, reason));
        let Some(name) = name else {
            warn("no metadata.name".to_owned());
            return None;
        };
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
        let of_family = |what: &str, text: &str, warn: &mut dyn FnMut(String)| {
            let Ok(ip) = text.trim().parse::<IpAddr>() else {
                warn(format!("invalid {what} {text:?}"));
                return None;
            };
            if !families.contains(&IpFamily::of(&ip)) {
                let family = IpFamily::of(&ip).address_type();
                warn(format!(
                    "{what} {ip} is {family}, the service has no {family} cluster IP"
                ));
                return None;
            }
            Some(ip)
        };

        let mut external_ips = Vec::new();
        for text in spec.external_ips.iter().flatten() {
            if let Some(ip) = of_family("externalIP", text, &mut warn) {
                push_unique(&mut external_ips, ip);
            }
        }
        let mut load_balancer_ips = Vec::new();
        let ingress = svc
            .status
            .as_ref()
            .and_then(|status| status.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for entry in ingress.into_iter().flatten() {
            let Some(text) = entry.ip.as_deref().filter(|ip| !ip.is_empty()) else {
                continue; // hostname-only ingress
            };
            if entry.ip_mode.as_deref() == Some("Proxy") {
                continue;
            }
            if let Some(ip) = of_family("load-balancer ingress IP", text, &mut warn) {
                push_unique(&mut load_balancer_ips, ip);
            }
        }

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
            namespace: namespace.to_owned(),
            name: name.to_owned(),
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

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
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
            Ok(ip) => push_unique(&mut ips, ip),
            Err(_) => warn(format!("invalid cluster IP {text:?}")),
        }
    }
    (!ips.is_empty()).then_some(ips)
}

fn ports(spec: &ServiceSpec, node_ports: bool, warn: &mut dyn FnMut(String)) -> Vec<PortSpec> {
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let name = port.name.clone().unwrap_or_default();
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
            name,
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
            Ok(range) => push_unique(&mut ranges, range.trunc()),
            Err(_) => warn(format!("invalid loadBalancerSourceRanges entry {text:?}")),
        }
    }
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
