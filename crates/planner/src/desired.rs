//! Services + EndpointSlices → the state the kernel should be in.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use k8s_openapi::api::{core::v1::Service as K8sService, discovery::v1::EndpointSlice};
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Destination, Protocol, Service, ServiceFlags};

use crate::{
    config::NodeConfig,
    endpoints::{Endpoint, EndpointIndex},
    k8s,
    key::{IpFamily, VirtualServiceKey},
    limits::within_limits,
    names::{ServicePortName, Warning},
    service_ports::{PortSpec, ServiceView},
    sets::{DesiredSet, SetId, SetRole},
    table::DesiredTable,
    targets::{PortTargets, ServiceTargets},
};

/// Which of a service's addresses a virtual service is on. It decides
/// ownership: a cluster IP was allocated to the Service by the API server,
/// so any virtual service at a wanted cluster-IP key is stale proxy state
/// and kube-ipvs's to correct; external, load-balancer and node addresses
/// are shared with the rest of the node and only what kube-ipvs's sets
/// list is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressKind {
    ClusterIp,
    NodePort,
    ExternalIp,
    LoadBalancer,
}

/// One IPVS virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVirtualService {
    pub owner: ServicePortName,
    pub kind: AddressKind,
    /// Key, scheduler, flags (scheduler flags, `persistent` for ClientIP
    /// affinity), timeout; the family's default netmask.
    pub service: Service,
    /// Masq, weight 1, by (address, port).
    pub destinations: BTreeMap<(IpAddr, u16), Destination>,
}

/// Everything kube-ipvs should have programmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub virtual_services: BTreeMap<VirtualServiceKey, DesiredVirtualService>,
    /// To bind on `kube-ipvs0` (as /32 and /128): cluster IPs, and the
    /// external and load-balancer IPs no other interface of the node has.
    pub addresses: BTreeSet<IpAddr>,
    /// Every set of [`SetId::all`], also when empty.
    pub sets: BTreeMap<SetId, DesiredSet>,
    /// `kube-ipvs` for ip, then ip6.
    pub tables: Vec<DesiredTable>,
    /// What was skipped and why.
    pub warnings: Vec<Warning>,
    /// `healthCheckNodePort` → the service it reports on, for services of
    /// type LoadBalancer with externalTrafficPolicy Local. The runtime
    /// serves one HTTP listener per port.
    pub health_checks: BTreeMap<u16, HealthCheck>,
    /// `--ipvs-exclude-cidrs`: virtual services on these addresses are
    /// neither planned nor adopted nor removed (see [`crate::ownership`]).
    pub excluded: Vec<IpNet>,
    /// Service ports with a `Local` traffic policy whose endpoints are all
    /// on other nodes (kube-proxy's `no_local_endpoints_total` metric).
    pub no_local_endpoints: NoLocalEndpoints,
}

/// Per family, the service ports with a `Local` traffic policy, endpoints,
/// and none of them on this node: their traffic of that policy is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoLocalEndpoints {
    /// `internalTrafficPolicy: Local` (cluster IPs).
    pub internal: BTreeMap<IpFamily, usize>,
    /// `externalTrafficPolicy: Local`, for services reachable from outside
    /// (node ports, external and load-balancer IPs).
    pub external: BTreeMap<IpFamily, usize>,
}

impl NoLocalEndpoints {
    fn count(&mut self, view: &ServiceView, t: &PortTargets) {
        if !t.any_endpoints {
            return;
        }
        if view.internal_local && t.internal.is_empty() {
            *self.internal.entry(t.family).or_default() += 1;
        }
        let external = t.port.node_port.is_some()
            || !view.external_ips.is_empty()
            || !view.load_balancer_ips.is_empty();
        if external && view.external_local && t.external.is_empty() {
            *self.external.entry(t.family).or_default() += 1;
        }
    }
}

/// What one health-check node port answers (kube-proxy's
/// `service_health.go`): 200 when `local_endpoints > 0`, else 503, with
/// body `{"service":{"namespace":…,"name":…},"localEndpoints":N,
/// "serviceProxyHealthy":bool}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub namespace: String,
    pub name: String,
    /// Ready endpoints of the service on this node, each address counted
    /// once. Terminating ones do not count even when traffic falls back to
    /// them: the load balancer should stop sending new clients to a node
    /// whose endpoints are all going away (KEP-1669).
    pub local_endpoints: usize,
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

/// Computes the desired state, kube-proxy IPVS style, with Kubernetes'
/// traffic-policy semantics.
///
/// The result does not depend on the order of the inputs: services and
/// slices are taken in `namespace/name` order, and when two objects claim
/// the same thing (an address and port, a local endpoint, a health-check
/// port) the first wins. Cluster IPs are claimed before any external,
/// load-balancer or node address, so a Service cannot take over another
/// one's cluster IP through `externalIPs` (CVE-2020-8554).
pub fn desired(
    services: &[Arc<K8sService>],
    slices: &[Arc<EndpointSlice>],
    config: &NodeConfig,
) -> Desired {
    let mut warnings = Vec::new();
    let endpoints = EndpointIndex::build(slices, &config.node_name, &mut warnings);

    let mut sorted: Vec<(String, Option<String>, &K8sService)> = services
        .iter()
        .map(|svc| {
            let (namespace, name) = k8s::namespaced_name(&svc.metadata);
            (namespace, name, svc.as_ref())
        })
        .collect();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let views: Vec<ServiceView> = sorted
        .into_iter()
        .filter_map(|(namespace, name, svc)| {
            ServiceView::read(
                &namespace,
                name.as_deref(),
                svc,
                &config.scheduler,
                &mut warnings,
            )
        })
        .collect();

    let node_port_ips = config.node_port_ips();
    let views = within_limits(views, config, &node_port_ips, &mut warnings);

    let mut builder = Builder::new(config, node_port_ips, warnings);
    let targets: Vec<ServiceTargets> = views
        .iter()
        .map(|view| ServiceTargets::select(view, &endpoints, config))
        .collect();
    for (view, targets) in views.iter().zip(&targets) {
        for port in &targets.ports {
            builder.add_cluster_ips(view, port);
        }
    }
    for (view, targets) in views.iter().zip(&targets) {
        for port in &targets.ports {
            builder.add_node_ports(view, port);
            builder.add_external_ips(view, port);
            builder.add_load_balancer_ips(view, port);
            builder.no_local_endpoints.count(view, port);
        }
        builder.add_health_check(view, targets.local_ready.len());
    }
    builder.finish()
}

pub(crate) struct Builder<'a> {
    pub(crate) config: &'a NodeConfig,
    /// [`NodeConfig::node_port_ips`], computed once.
    pub(crate) node_port_ips: BTreeSet<IpAddr>,
    pub(crate) virtual_services: BTreeMap<VirtualServiceKey, DesiredVirtualService>,
    pub(crate) sets: BTreeMap<SetId, DesiredSet>,
    /// Addresses for `kube-ipvs0`, with the first service port bound there.
    pub(crate) bound: BTreeMap<IpAddr, ServicePortName>,
    pub(crate) health_checks: BTreeMap<u16, HealthCheck>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) no_local_endpoints: NoLocalEndpoints,
}

impl<'a> Builder<'a> {
    fn new(
        config: &'a NodeConfig,
        node_port_ips: BTreeSet<IpAddr>,
        warnings: Vec<Warning>,
    ) -> Self {
        Builder {
            config,
            node_port_ips,
            virtual_services: BTreeMap::new(),
            sets: SetId::all().map(|id| (id, DesiredSet::default())).collect(),
            bound: BTreeMap::new(),
            health_checks: BTreeMap::new(),
            warnings,
            no_local_endpoints: NoLocalEndpoints::default(),
        }
    }

    fn add_cluster_ips(&mut self, view: &ServiceView, t: &PortTargets) {
        for &ip in view
            .cluster_ips
            .iter()
            .filter(|ip| IpFamily::of(ip) == t.family)
        {
            if self.add_virtual_service(
                view,
                t,
                AddressKind::ClusterIp,
                ip,
                t.port.port,
                &t.internal,
            ) {
                self.add_entry(SetRole::ClusterIp, t, ip_port(ip, t.port));
                self.bind(ip, &t.owner);
            }
        }
    }

    /// Adds the virtual service `addr:port` of `t` with `dests` as real
    /// servers. `false` when another service port already has it (with a
    /// warning; the first one keeps it) — or this one does, through
    /// another of its addresses lists, which is not worth a warning.
    pub(crate) fn add_virtual_service(
        &mut self,
        view: &ServiceView,
        t: &PortTargets,
        kind: AddressKind,
        addr: IpAddr,
        port: u16,
        dests: &[Endpoint],
    ) -> bool {
        let key = VirtualServiceKey::tuple(addr, t.port.protocol, port);
        if self
            .config
            .exclude_cidrs
            .iter()
            .any(|cidr| cidr.contains(&addr))
        {
            let reason = format!(
                "{} {} is in --ipvs-exclude-cidrs; left alone",
                t.port.protocol,
                SocketAddr::new(addr, port)
            );
            self.warnings.push(Warning::new(&view.object, reason));
            return false;
        }
        if let Some(existing) = self.virtual_services.get(&key) {
            if existing.owner != t.owner {
                let reason = format!(
                    "{} {} is already used by {}",
                    t.port.protocol,
                    SocketAddr::new(addr, port),
                    existing.owner
                );
                self.warnings.push(Warning::new(&view.object, reason));
            }
            return false;
        }
        let mut service = Service::new(key.key(), view.scheduling.scheduler.clone());
        service.flags = view.scheduling.flags;
        if let Some(timeout) = view.affinity_timeout {
            service.flags |= ServiceFlags::PERSISTENT;
            service.timeout = timeout;
        }
        let mut destinations = BTreeMap::new();
        for endpoint in dests {
            destinations.insert(
                (endpoint.addr, endpoint.port),
                Destination::new(endpoint.addr, endpoint.port),
            );
            if endpoint.local {
                // Hairpin: a pod reaching itself through the service.
                let proto = k8s::ip_proto(t.port.protocol);
                let entry = Entry::ip_port_ip(endpoint.addr, proto, endpoint.port, endpoint.addr);
                self.add_entry(SetRole::LoopBack, t, entry);
            }
        }
        self.virtual_services.insert(
            key,
            DesiredVirtualService {
                owner: t.owner.clone(),
                kind,
                service,
                destinations,
            },
        );
        true
    }

    /// `entry`, commented with the service port, in `role`'s set of `t`'s
    /// family.
    pub(crate) fn add_entry(&mut self, role: SetRole, t: &PortTargets, entry: Entry) {
        let entry = entry.with_comment(t.owner.comment());
        self.set(role, t.family).insert(entry, &t.owner);
    }

    pub(crate) fn set(&mut self, role: SetRole, family: IpFamily) -> &mut DesiredSet {
        self.sets.entry(SetId::new(role, family)).or_default()
    }

    pub(crate) fn bind(&mut self, ip: IpAddr, owner: &ServicePortName) {
        self.bound.entry(ip).or_insert_with(|| owner.clone());
    }

    /// External and LB addresses another interface already has are left
    /// there: binding them to `kube-ipvs0` too would make their removal
    /// take the node's own address away.
    pub(crate) fn bind_unless_local(&mut self, ip: IpAddr, owner: &ServicePortName) {
        if !self.config.local_addresses.contains(&ip) {
            self.bind(ip, owner);
        }
    }

    fn finish(mut self) -> Desired {
        // KUBE-IPVS-IPS lists exactly what is bound: an IP whose ports were
        // all invalid or taken is not.
        // Grouped by object (slices, then services, by name), each
        // object's warnings in the order they were found.
        self.warnings.sort_by(|a, b| a.object.cmp(&b.object));
        let bound = std::mem::take(&mut self.bound);
        for (addr, owner) in &bound {
            let entry = Entry::ip(*addr).with_comment(owner.service_comment());
            self.set(SetRole::IpvsIps, IpFamily::of(addr))
                .insert(entry, owner);
        }
        Desired {
            virtual_services: self.virtual_services,
            addresses: bound.into_keys().collect(),
            sets: self.sets,
            tables: IpFamily::ALL
                .into_iter()
                .map(|family| DesiredTable::for_family(family, self.config))
                .collect(),
            warnings: self.warnings,
            health_checks: self.health_checks,
            excluded: self.config.exclude_cidrs.clone(),
            no_local_endpoints: self.no_local_endpoints,
        }
    }
}

/// `ip,proto:port` of a service port.
pub(crate) fn ip_port(ip: IpAddr, port: &PortSpec) -> Entry {
    Entry::ip_port(ip, k8s::ip_proto(port.protocol), port.port)
}
