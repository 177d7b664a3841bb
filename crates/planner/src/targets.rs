//! Which real servers each service port gets, per family and policy.

use std::{collections::BTreeSet, net::IpAddr};

use crate::{
    config::NodeConfig,
    endpoints::{Endpoint, EndpointIndex},
    key::IpFamily,
    names::ServicePortName,
    service_ports::{PortSpec, ServiceView},
    topology,
};

/// The real servers of one service port in one family.
pub(crate) struct PortTargets<'v> {
    pub(crate) port: &'v PortSpec,
    pub(crate) family: IpFamily,
    pub(crate) owner: ServicePortName,
    /// For cluster IPs, by `internalTrafficPolicy`.
    pub(crate) internal: Vec<Endpoint>,
    /// For node ports, external and load-balancer IPs, by
    /// `externalTrafficPolicy`.
    pub(crate) external: Vec<Endpoint>,
    /// The service port has endpoints in this family, on any node (what
    /// tells "no local endpoint" from "no endpoint at all").
    pub(crate) any_endpoints: bool,
}

pub(crate) struct ServiceTargets<'v> {
    pub(crate) ports: Vec<PortTargets<'v>>,
    /// Addresses of the service's ready endpoints on this node.
    pub(crate) local_ready: BTreeSet<IpAddr>,
}

impl<'v> ServiceTargets<'v> {
    pub(crate) fn select(
        view: &'v ServiceView,
        endpoints: &EndpointIndex,
        config: &NodeConfig,
    ) -> Self {
        let mut targets = ServiceTargets {
            ports: Vec::new(),
            local_ready: BTreeSet::new(),
        };
        let id = view.id();
        for port in &view.ports {
            for family in view.families() {
                let candidates = endpoints.endpoints(&id, &port.name, port.protocol, family);
                targets.local_ready.extend(
                    candidates
                        .iter()
                        .filter(|e| e.local && e.conditions.ready)
                        .map(|e| e.addr),
                );
                let split =
                    topology::categorize(&candidates, &config.node_name, config.zone.as_deref());
                let by_policy = |local: bool| {
                    if local {
                        split.local.clone()
                    } else {
                        split.cluster.clone()
                    }
                };
                targets.ports.push(PortTargets {
                    port,
                    family,
                    owner: ServicePortName::new(
                        view.namespace.clone(),
                        view.name.clone(),
                        port.name.clone(),
                    ),
                    internal: by_policy(view.internal_local),
                    external: by_policy(view.external_local),
                    any_endpoints: !candidates.is_empty(),
                });
            }
        }
        targets
    }
}
