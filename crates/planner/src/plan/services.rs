//! Phase 4: virtual services and their real servers.

use std::{collections::BTreeMap, net::IpAddr};

use kipvs_packet_ipvs::{Destination, Service};

use super::{
    drains::{retirement, Retirement},
    scoped_services, Action, Planner, RealServerKey,
};
use crate::{desired::DesiredVirtualService, key::VirtualServiceKey};

impl Planner<'_> {
    /// Each desired virtual service is added complete (service, then its
    /// real servers) or brought in line; none at a key another program's
    /// virtual service holds.
    pub(super) fn virtual_services(&mut self) {
        let (desired, observed) = (self.desired, self.observed);
        for (key, vs) in scoped_services(self.scope, &desired.virtual_services) {
            if observed.foreign.contains(key) {
                continue;
            }
            match observed.virtual_services.get(key) {
                None => self.add_virtual_service(vs),
                Some((current, dests)) => self.update_virtual_service(key, vs, current, dests),
            }
        }
    }

    fn add_virtual_service(&mut self, vs: &DesiredVirtualService) {
        let owner = Some(&vs.owner);
        self.push(owner, Action::AddService(vs.service.clone()));
        for dest in vs.destinations.values() {
            self.push(owner, Action::AddDestination(vs.service.key, dest.clone()));
        }
    }

    /// The service's settings if they changed; real servers added, then
    /// updated, then those the cluster no longer lists retired.
    fn update_virtual_service(
        &mut self,
        key: &VirtualServiceKey,
        vs: &DesiredVirtualService,
        current: &Service,
        current_dests: &[Destination],
    ) {
        let owner = Some(&vs.owner);
        let k = key.key();
        if service_differs(&vs.service, current) {
            self.push(owner, Action::UpdateService(vs.service.clone()));
        }
        let current_dests: BTreeMap<(IpAddr, u16), &Destination> = current_dests
            .iter()
            .map(|d| ((d.addr, d.port), d))
            .collect();
        let mut updates = Vec::new();
        for (addr_port, dest) in &vs.destinations {
            match current_dests.get(addr_port) {
                None => self.push(owner, Action::AddDestination(k, dest.clone())),
                Some(current) if destination_differs(dest, current) => {
                    updates.push(Action::UpdateDestination(k, dest.clone()))
                }
                Some(_) => {}
            }
        }
        for action in updates {
            self.push(owner, action);
        }
        for (&(addr, port), current) in &current_dests {
            if vs.destinations.contains_key(&(addr, port)) {
                continue;
            }
            let real_server = RealServerKey {
                service: *key,
                addr,
                port,
            };
            let expired = self.expired.contains(&real_server);
            match retirement(key, current, expired) {
                Retirement::Delete => self.push(owner, Action::DeleteDestination(k, addr, port)),
                Retirement::Drain => {
                    let drained = Destination {
                        weight: 0,
                        ..(*current).clone()
                    };
                    self.push(owner, Action::UpdateDestination(k, drained));
                }
                Retirement::Wait => {}
            }
        }
    }
}

/// What `UpdateService` can change; stats are ignored.
fn service_differs(desired: &Service, observed: &Service) -> bool {
    desired.scheduler != observed.scheduler
        || desired.flags != observed.flags
        || desired.timeout != observed.timeout
        || desired.netmask != observed.netmask
        || desired.pe_name != observed.pe_name
}

/// What `UpdateDestination` can change; counters and stats are ignored.
fn destination_differs(desired: &Destination, observed: &Destination) -> bool {
    desired.forward != observed.forward
        || desired.weight != observed.weight
        || desired.upper_threshold != observed.upper_threshold
        || desired.lower_threshold != observed.lower_threshold
}
