//! Limits that keep one Service from exhausting the node: a Service with
//! 1000 externalIPs and 1000 ports would ask for a million virtual
//! services (gigabytes of planner memory, and an IPVS table no node can
//! carry). Such a Service is skipped as a whole, with a warning naming it
//! and the limit; the others are planned as usual.

use std::{collections::BTreeSet, net::IpAddr};

use crate::{
    config::NodeConfig, contributions::Contributions, key::IpFamily, names::Warning,
    service_ports::ServiceView,
};

/// The views within the limits of `config`, in the order given (the first
/// services in `namespace/name` order get the room when the node-wide cap
/// is reached, so the outcome does not depend on the order objects
/// arrived in).
pub(crate) fn within_limits(
    views: Vec<ServiceView>,
    config: &NodeConfig,
    node_port_ips: &BTreeSet<IpAddr>,
    contributions: &mut Contributions,
) -> Vec<ServiceView> {
    let mut planned: usize = 0;
    let mut kept = Vec::with_capacity(views.len());
    for view in views {
        let addresses = view
            .external_ips
            .len()
            .saturating_add(view.load_balancer_ips.len());
        if addresses > config.max_service_addresses {
            let warnings = &mut contributions.entry(view.id()).or_default().warnings;
            warnings.push(Warning::new(
                &view.object,
                format!(
                    "{addresses} externalIPs and load-balancer IPs, more than the limit of {} \
                     (--max-service-addresses); the service is skipped",
                    config.max_service_addresses
                ),
            ));
            continue;
        }
        let needed = virtual_services_needed(&view, node_port_ips);
        let total = planned.saturating_add(needed);
        if total > config.max_virtual_services {
            // Whether a service fits depends on every service before it:
            // only a full computation decides it.
            let contribution = contributions.entry(view.id()).or_default();
            contribution.entangled = true;
            contribution.warnings.push(Warning::new(
                &view.object,
                format!(
                    "needs {needed} virtual services, which would take the node past its limit of {} \
                     (--max-virtual-services; {planned} planned before it); the service is skipped",
                    config.max_virtual_services
                ),
            ));
            continue;
        }
        planned = total;
        kept.push(view);
    }
    kept
}

/// An upper bound of the virtual services `view` asks for: per port and
/// family, one per cluster IP, externalIP, load-balancer IP and (with a
/// node port) node address of that family.
pub(crate) fn virtual_services_needed(
    view: &ServiceView,
    node_port_ips: &BTreeSet<IpAddr>,
) -> usize {
    let count = |ips: &mut dyn Iterator<Item = &IpAddr>, family: IpFamily| {
        ips.filter(|ip| IpFamily::of(ip) == family).count()
    };
    let mut needed: usize = 0;
    for family in view.families() {
        let addresses = count(&mut view.cluster_ips.iter(), family)
            .saturating_add(count(&mut view.external_ips.iter(), family))
            .saturating_add(count(&mut view.load_balancer_ips.iter(), family));
        let node_addresses = count(&mut node_port_ips.iter(), family);
        for port in &view.ports {
            let per_port = if port.node_port.is_some() {
                addresses.saturating_add(node_addresses)
            } else {
                addresses
            };
            needed = needed.saturating_add(per_port);
        }
    }
    needed
}
