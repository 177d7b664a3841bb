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
    contributions::{entangle, Contribution, Contributions},
    endpoints::{Endpoint, EndpointIndex},
    k8s,
    key::{IpFamily, VirtualServiceKey},
    limits::within_limits,
    names::{ServiceId, ServicePortName, Warning},
    service_ports::{PortSpec, ServiceView},
    sets::{DesiredSet, EntryKey, SetId, SetRole},
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
    /// Who put what here, service by service: what an incremental update
    /// ([`Desired::update`]) replaces.
    pub contributions: Contributions,
    /// Service ports with a `Local` traffic policy whose endpoints are all
    /// on other nodes (kube-proxy's `no_local_endpoints_total` metric),
    /// summed over the contributions.
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
    /// Every contribution's counts added up.
    pub(crate) fn sum(contributions: &Contributions) -> NoLocalEndpoints {
        let mut sum = NoLocalEndpoints::default();
        for contribution in contributions.values() {
            sum.add(&contribution.no_local_endpoints);
        }
        sum
    }

    /// Adds `other`'s counts.
    pub(crate) fn add(&mut self, other: &NoLocalEndpoints) {
        for (mine, theirs) in [
            (&mut self.internal, &other.internal),
            (&mut self.external, &other.external),
        ] {
            for (family, n) in theirs {
                let count = mine.entry(*family).or_default();
                *count = count.saturating_add(*n);
            }
        }
    }

    /// Takes `other`'s counts (added before) away; a family whose count
    /// reaches 0 is dropped, as [`NoLocalEndpoints::sum`] never lists it.
    pub(crate) fn subtract(&mut self, other: &NoLocalEndpoints) {
        for (mine, theirs) in [
            (&mut self.internal, &other.internal),
            (&mut self.external, &other.external),
        ] {
            for (family, n) in theirs {
                if let Some(count) = mine.get_mut(family) {
                    *count = count.saturating_sub(*n);
                    if *count == 0 {
                        mine.remove(family);
                    }
                }
            }
        }
    }

    pub(crate) fn count(&mut self, view: &ServiceView, t: &PortTargets) {
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
    let mut builder = build(
        services.iter().map(Arc::as_ref),
        slices.iter().map(Arc::as_ref),
        config,
    );
    builder.finish_addresses();
    builder.into_desired()
}

/// Runs the fold over `services` (with `slices`, of which those of other
/// services are ignored) alone.
pub(crate) fn build<'a, 's>(
    services: impl Iterator<Item = &'s K8sService>,
    slices: impl Iterator<Item = &'s EndpointSlice>,
    config: &'a NodeConfig,
) -> Builder<'a> {
    let mut contributions = Contributions::new();
    let endpoints = EndpointIndex::build(slices, &config.node_name, &mut contributions);

    let mut sorted: Vec<(String, Option<String>, &K8sService)> = services
        .map(|svc| {
            let (namespace, name) = k8s::namespaced_name(&svc.metadata);
            (namespace, name, svc)
        })
        .collect();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut views = Vec::with_capacity(sorted.len());
    for (namespace, name, svc) in sorted {
        let mut warnings = Vec::new();
        let view = ServiceView::read(
            &namespace,
            name.as_deref(),
            svc,
            &config.scheduler,
            &mut warnings,
        );
        let id = ServiceId::new(namespace, name.unwrap_or_default());
        if !warnings.is_empty() || view.is_some() {
            contributions
                .entry(id)
                .or_default()
                .warnings
                .extend(warnings);
        }
        views.extend(view);
    }

    let node_port_ips = config.node_port_ips();
    let views = within_limits(views, config, &node_port_ips, &mut contributions);

    let mut builder = Builder::new(config, node_port_ips, contributions);
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
            builder
                .contribution(view)
                .no_local_endpoints
                .count(view, port);
        }
        builder.add_health_check(view, targets.local_ready.len());
    }
    builder
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
    pub(crate) contributions: Contributions,
}

impl<'a> Builder<'a> {
    fn new(
        config: &'a NodeConfig,
        node_port_ips: BTreeSet<IpAddr>,
        contributions: Contributions,
    ) -> Self {
        Builder {
            config,
            node_port_ips,
            virtual_services: BTreeMap::new(),
            sets: SetId::all().map(|id| (id, DesiredSet::default())).collect(),
            bound: BTreeMap::new(),
            health_checks: BTreeMap::new(),
            contributions,
        }
    }

    /// What `view`'s service contributed so far.
    pub(crate) fn contribution(&mut self, view: &ServiceView) -> &mut Contribution {
        self.contributions.entry(view.id()).or_default()
    }

    /// A warning about `view`'s service.
    pub(crate) fn warn(&mut self, view: &ServiceView, reason: String) {
        let warning = Warning::new(&view.object, reason);
        self.contribution(view).warnings.push(warning);
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
            self.warn(view, reason);
            return false;
        }
        if let Some(existing) = self.virtual_services.get(&key) {
            let existing = existing.owner.clone();
            if existing != t.owner {
                let reason = format!(
                    "{} {} is already used by {existing}",
                    t.port.protocol,
                    SocketAddr::new(addr, port),
                );
                self.warn(view, reason);
            }
            entangle(&mut self.contributions, &existing.service_id(), &view.id());
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
        self.contribution(view).virtual_services.insert(key);
        true
    }

    /// `entry`, commented with the service port, in `role`'s set of `t`'s
    /// family.
    pub(crate) fn add_entry(&mut self, role: SetRole, t: &PortTargets, entry: Entry) {
        let entry = entry.with_comment(t.owner.comment());
        self.add_owned_entry(SetId::new(role, t.family), entry, &t.owner);
    }

    /// `entry` in `set` for `owner`, recorded as its service's; an entry
    /// another service has already entangles the two.
    pub(crate) fn add_owned_entry(&mut self, set: SetId, entry: Entry, owner: &ServicePortName) {
        let key = EntryKey::of(&entry);
        let existing = self
            .sets
            .entry(set)
            .or_default()
            .insert(entry, owner)
            .map(ServicePortName::service_id);
        let id = owner.service_id();
        match existing {
            Some(other) => entangle(&mut self.contributions, &other, &id),
            None => {
                self.contributions
                    .entry(id)
                    .or_default()
                    .entries
                    .insert((set, key));
            }
        }
    }

    pub(crate) fn bind(&mut self, ip: IpAddr, owner: &ServicePortName) {
        match self.bound.get(&ip) {
            Some(first) => {
                let first = first.service_id();
                entangle(&mut self.contributions, &first, &owner.service_id());
            }
            None => {
                self.bound.insert(ip, owner.clone());
                let id = owner.service_id();
                self.contributions
                    .entry(id)
                    .or_default()
                    .addresses
                    .insert(ip);
            }
        }
    }

    /// External and LB addresses another interface already has are left
    /// there: binding them to `kube-ipvs0` too would make their removal
    /// take the node's own address away.
    pub(crate) fn bind_unless_local(&mut self, ip: IpAddr, owner: &ServicePortName) {
        if !self.config.local_addresses.contains(&ip) {
            self.bind(ip, owner);
        }
    }

    /// KUBE-IPVS-IPS lists exactly what is bound (an IP whose ports were
    /// all invalid or taken is not), each for its first service.
    pub(crate) fn finish_addresses(&mut self) {
        let bound: Vec<(IpAddr, ServicePortName)> = self
            .bound
            .iter()
            .map(|(ip, owner)| (*ip, owner.clone()))
            .collect();
        for (addr, owner) in bound {
            let entry = Entry::ip(addr).with_comment(owner.service_comment());
            let set = SetId::new(SetRole::IpvsIps, IpFamily::of(&addr));
            self.add_owned_entry(set, entry, &owner);
        }
    }

    pub(crate) fn into_desired(self) -> Desired {
        Desired {
            virtual_services: self.virtual_services,
            addresses: self.bound.into_keys().collect(),
            sets: self.sets,
            tables: IpFamily::ALL
                .into_iter()
                .map(|family| DesiredTable::for_family(family, self.config))
                .collect(),
            warnings: all_warnings(&self.contributions),
            health_checks: self.health_checks,
            excluded: self.config.exclude_cidrs.clone(),
            no_local_endpoints: NoLocalEndpoints::sum(&self.contributions),
            contributions: self.contributions,
        }
    }
}

/// Every contribution's warnings, grouped by object (slices, then
/// services, by name), each object's in the order they were found.
pub(crate) fn all_warnings(contributions: &Contributions) -> Vec<Warning> {
    let mut warnings: Vec<Warning> = contributions
        .values()
        .flat_map(|c| c.warnings.iter().cloned())
        .collect();
    warnings.sort_by(|a, b| a.object.cmp(&b.object));
    warnings
}

/// `ip,proto:port` of a service port.
pub(crate) fn ip_port(ip: IpAddr, port: &PortSpec) -> Entry {
    Entry::ip_port(ip, k8s::ip_proto(port.protocol), port.port)
}
