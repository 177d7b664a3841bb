//! Services + EndpointSlices → the state the kernel should be in.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Destination, Protocol, Service};

use crate::{
    config::NodeConfig,
    endpoints::EndpointIndex,
    k8s,
    key::{IpFamily, VirtualServiceKey},
    names::{ServicePortName, Warning},
    sets::{DesiredSet, SetRole},
    table::DesiredTable,
};

/// One IPVS virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVirtualService {
    pub owner: ServicePortName,
    /// Key, scheduler, flags, timeout, netmask (`Service::new` defaults).
    pub service: Service,
    /// Masq, weight 1, by (address, port).
    pub destinations: BTreeMap<(IpAddr, u16), Destination>,
}

/// Everything kube-ipvs should have programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub virtual_services: BTreeMap<VirtualServiceKey, DesiredVirtualService>,
    /// To bind on `kube-ipvs0` (as /32 and /128).
    pub addresses: BTreeSet<IpAddr>,
    /// All six sets, also when empty.
    pub sets: BTreeMap<String, DesiredSet>,
    /// `kube-ipvs` for ip, then ip6.
    pub tables: Vec<DesiredTable>,
    /// What was skipped and why.
    pub warnings: Vec<Warning>,
}

impl Desired {
    /// The service port an address is bound for: the owner of the first
    /// virtual service (in key order) on it.
    pub fn address_owner(&self, addr: IpAddr) -> Option<&ServicePortName> {
        self.virtual_services
            .range(VirtualServiceKey::tuple(addr, Protocol::from(0u16), 0)..)
            .next()
            .filter(|(key, _)| key.addr() == Some(addr))
            .map(|(_, vs)| &vs.owner)
    }
}

/// Computes the desired state, kube-proxy IPVS style, for ClusterIP.
///
/// The result does not depend on the order of the inputs: services and
/// slices are taken in `namespace/name` order, and when two objects claim
/// the same thing (a cluster IP and port, a local endpoint) the first wins.
pub fn desired(
    services: &[Arc<K8sService>],
    slices: &[Arc<EndpointSlice>],
    config: &NodeConfig,
) -> Desired {
    let mut warnings = Vec::new();
    let endpoints = EndpointIndex::build(slices, &config.node_name, &mut warnings);
    let mut builder = Builder {
        config,
        endpoints: &endpoints,
        virtual_services: BTreeMap::new(),
        sets: IpFamily::ALL
            .into_iter()
            .flat_map(|family| {
                SetRole::ALL.into_iter().map(move |role| {
                    (
                        role.set_name(family).to_owned(),
                        DesiredSet::new(role, family),
                    )
                })
            })
            .collect(),
        warnings,
    };

    let mut sorted: Vec<(String, Option<String>, &K8sService)> = services
        .iter()
        .map(|svc| {
            let (namespace, name) = k8s::namespaced_name(&svc.metadata);
            (namespace, name, svc.as_ref())
        })
        .collect();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (namespace, name, svc) in sorted {
        builder.add_service(&namespace, name.as_deref(), svc);
    }
    builder.finish()
}

struct Builder<'a> {
    config: &'a NodeConfig,
    endpoints: &'a EndpointIndex,
    virtual_services: BTreeMap<VirtualServiceKey, DesiredVirtualService>,
    sets: BTreeMap<String, DesiredSet>,
    warnings: Vec<Warning>,
}

/// A validated `spec.ports[]` entry.
struct PortSpec {
    name: String,
    protocol: Protocol,
    port: u16,
}

impl Builder<'_> {
    fn warn(&mut self, object: &str, reason: impl Into<String>) {
        self.warnings.push(Warning::new(object, reason));
    }

    fn add_service(&mut self, namespace: &str, name: Option<&str>, svc: &K8sService) {
        let object = k8s::object_label("Service", namespace, name);
        let Some(name) = name else {
            self.warn(&object, "no metadata.name");
            return;
        };
        let Some(spec) = &svc.spec else {
            self.warn(&object, "no spec");
            return;
        };
        // Like kube-proxy's ShouldSkipService: no virtual IP to program.
        if spec.type_.as_deref() == Some("ExternalName") {
            return;
        }
        let ips: Vec<&str> = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            _ => spec.cluster_ip.iter().map(String::as_str).collect(),
        };
        if ips.is_empty() || ips.iter().any(|ip| *ip == "None" || ip.is_empty()) {
            // Headless, or not allocated yet.
            return;
        }

        let mut cluster_ips = Vec::new();
        for text in ips {
            match text.parse::<IpAddr>() {
                Ok(ip) if !cluster_ips.contains(&ip) => cluster_ips.push(ip),
                Ok(_) => {}
                Err(_) => self.warn(&object, format!("invalid cluster IP {text:?}")),
            }
        }

        let mut ports = Vec::new();
        for port in spec.ports.iter().flatten() {
            let port_name = port.name.clone().unwrap_or_default();
            let protocol = match k8s::protocol(port.protocol.as_deref()) {
                Ok(protocol) => protocol,
                Err(reason) => {
                    self.warn(&object, format!("port {port_name:?}: {reason}"));
                    continue;
                }
            };
            let Some(number) = k8s::port_number(port.port) else {
                self.warn(
                    &object,
                    format!("port {port_name:?}: invalid port {}", port.port),
                );
                continue;
            };
            ports.push(PortSpec {
                name: port_name,
                protocol,
                port: number,
            });
        }

        for ip in cluster_ips {
            for port in &ports {
                self.add_service_port(&object, namespace, name, ip, port);
            }
        }
    }

    fn add_service_port(
        &mut self,
        object: &str,
        namespace: &str,
        name: &str,
        ip: IpAddr,
        port: &PortSpec,
    ) {
        let owner = ServicePortName::new(namespace, name, port.name.clone());
        let key = VirtualServiceKey::tuple(ip, port.protocol, port.port);
        if let Some(existing) = self.virtual_services.get(&key) {
            let reason = format!(
                "{} {ip}:{} is already used by {}",
                port.protocol, port.port, existing.owner
            );
            self.warn(object, reason);
            return;
        }
        let family = IpFamily::of(&ip);
        let proto = k8s::ip_proto(port.protocol);
        let comment = owner.to_string();

        let mut destinations = BTreeMap::new();
        for endpoint in self
            .endpoints
            .ready(namespace, name, &port.name, port.protocol, family)
        {
            destinations.insert(
                (endpoint.addr, endpoint.port),
                Destination::new(endpoint.addr, endpoint.port),
            );
            if endpoint.local {
                let entry = Entry::ip_port_ip(endpoint.addr, proto, endpoint.port, endpoint.addr)
                    .with_comment(comment.clone());
                self.set(SetRole::LoopBack, family).insert(entry, &owner);
            }
        }
        let entry = Entry::ip_port(ip, proto, port.port).with_comment(comment);
        self.set(SetRole::ClusterIp, family).insert(entry, &owner);

        self.virtual_services.insert(
            key,
            DesiredVirtualService {
                service: Service::new(key.key(), self.config.scheduler.clone()),
                owner,
                destinations,
            },
        );
    }

    fn set(&mut self, role: SetRole, family: IpFamily) -> &mut DesiredSet {
        self.sets
            .get_mut(role.set_name(family))
            .expect("every set is created up front")
    }

    fn finish(mut self) -> Desired {
        // Addresses, and KUBE-IPVS-IPS, follow the programmed virtual
        // services: an IP whose ports were all invalid is not bound.
        let mut addresses = BTreeSet::new();
        let owners: Vec<(IpAddr, ServicePortName)> = self
            .virtual_services
            .iter()
            .filter_map(|(key, vs)| Some((key.addr()?, vs.owner.clone())))
            .collect();
        for (addr, owner) in owners {
            if addresses.insert(addr) {
                let entry = Entry::ip(addr).with_comment(owner.service());
                self.set(SetRole::IpvsIps, IpFamily::of(&addr))
                    .insert(entry, &owner);
            }
        }
        Desired {
            virtual_services: self.virtual_services,
            addresses,
            sets: self.sets,
            tables: IpFamily::ALL
                .into_iter()
                .map(|family| DesiredTable::for_family(family, self.config))
                .collect(),
            warnings: self.warnings,
        }
    }
}
