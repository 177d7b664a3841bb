//! Keeping the cached kernel state in step with what was applied, so a
//! sync with no change plans nothing and reads nothing back.
//!
//! Only steps the kernel confirmed are recorded; a failed step stays
//! missing from the cache and is planned again on the next sync.

use std::collections::HashSet;

use kipvs_packet_ipvs::Destination;
use kipvs_planner::{entry_key, Action, Observed, VirtualServiceKey};

/// Applies one confirmed action to the cache. Set creation and
/// replacement and table replacement are re-read from the kernel instead (they need kernel-made
/// values: set indexes, rule handles).
pub fn record(observed: &mut Observed, action: &Action) {
    match action {
        Action::AddService(service) => {
            observed.virtual_services.insert(
                VirtualServiceKey(service.key),
                (service.clone(), Vec::new()),
            );
        }
        Action::UpdateService(service) => {
            if let Some(entry) = observed
                .virtual_services
                .get_mut(&VirtualServiceKey(service.key))
            {
                entry.0 = service.clone();
            }
        }
        Action::DeleteService(key) => {
            observed.virtual_services.remove(&VirtualServiceKey(*key));
        }
        Action::AddDestination(key, destination) => {
            if let Some((_, destinations)) =
                observed.virtual_services.get_mut(&VirtualServiceKey(*key))
            {
                destinations.retain(|d| !same_destination(d, destination));
                destinations.push(destination.clone());
            }
        }
        Action::UpdateDestination(key, destination) => {
            if let Some((_, destinations)) =
                observed.virtual_services.get_mut(&VirtualServiceKey(*key))
            {
                match destinations
                    .iter_mut()
                    .find(|d| same_destination(d, destination))
                {
                    // An update changes the settings, not the connections:
                    // a draining real server keeps its counters until
                    // they are read again.
                    Some(current) => {
                        *current = Destination {
                            active_conns: current.active_conns,
                            inactive_conns: current.inactive_conns,
                            persistent_conns: current.persistent_conns,
                            stats: current.stats,
                            ..destination.clone()
                        }
                    }
                    None => destinations.push(destination.clone()),
                }
            }
        }
        Action::DeleteDestination(key, addr, port) => {
            if let Some((_, destinations)) =
                observed.virtual_services.get_mut(&VirtualServiceKey(*key))
            {
                destinations.retain(|d| (d.addr, d.port) != (*addr, *port));
            }
        }
        Action::AddSetEntries { set, entries } => {
            if let Some(info) = observed.sets.get_mut(set) {
                // Keys once per action: sets hold an entry per service port.
                let mut present: HashSet<String> = info.entries.iter().map(entry_key).collect();
                for entry in entries {
                    if present.insert(entry_key(entry)) {
                        info.entries.push(entry.clone());
                    }
                }
            }
        }
        Action::DeleteSetEntries { set, entries } => {
            if let Some(info) = observed.sets.get_mut(set) {
                let gone: HashSet<String> = entries.iter().map(entry_key).collect();
                info.entries.retain(|e| !gone.contains(&entry_key(e)));
            }
        }
        Action::BindAddress(ip) => {
            observed.addresses.insert(*ip);
        }
        Action::UnbindAddress(ip) => {
            observed.addresses.remove(ip);
        }
        Action::CreateSet { .. } | Action::ReplaceSet { .. } | Action::ReplaceTable { .. } => {}
    }
}

fn same_destination(a: &Destination, b: &Destination) -> bool {
    (a.addr, a.port) == (b.addr, b.port)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use kipvs_packet_ipset::{Entry, SetInfo};
    use kipvs_packet_ipvs::{Protocol, Service, ServiceKey};
    use kipvs_planner::plan;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key() -> ServiceKey {
        ServiceKey::Tuple {
            addr: ip("10.96.0.10"),
            protocol: Protocol::Tcp,
            port: 80,
        }
    }

    #[test]
    fn recorded_ipvs_and_address_steps_show_in_the_cache() {
        let mut observed = Observed::default();
        record(
            &mut observed,
            &Action::AddService(Service::new(key(), "rr")),
        );
        record(
            &mut observed,
            &Action::AddDestination(key(), Destination::new(ip("10.244.1.2"), 8080)),
        );
        record(
            &mut observed,
            &Action::AddDestination(key(), Destination::new(ip("10.244.1.3"), 8080)),
        );
        let mut drained = Destination::new(ip("10.244.1.2"), 8080);
        drained.weight = 0;
        record(
            &mut observed,
            &Action::UpdateDestination(key(), drained.clone()),
        );
        record(
            &mut observed,
            &Action::DeleteDestination(key(), ip("10.244.1.3"), 8080),
        );
        record(&mut observed, &Action::BindAddress(ip("10.96.0.10")));
        let (service, destinations) = &observed.virtual_services[&VirtualServiceKey(key())];
        assert_eq!(service.scheduler, "rr");
        assert_eq!(destinations, &vec![drained]);
        assert!(observed.addresses.contains(&ip("10.96.0.10")));

        let mut sh = Service::new(key(), "sh");
        sh.timeout = 5;
        record(&mut observed, &Action::UpdateService(sh.clone()));
        assert_eq!(observed.virtual_services[&VirtualServiceKey(key())].0, sh);
        record(&mut observed, &Action::DeleteService(key()));
        record(&mut observed, &Action::UnbindAddress(ip("10.96.0.10")));
        assert_eq!(observed, Observed::default());
    }

    #[test]
    fn an_update_keeps_the_counters_and_the_place_of_the_real_server() {
        let mut observed = Observed::default();
        record(
            &mut observed,
            &Action::AddService(Service::new(key(), "rr")),
        );
        let mut busy = Destination::new(ip("10.244.1.2"), 8080);
        (busy.active_conns, busy.inactive_conns) = (2, 5);
        let first = busy.clone();
        observed
            .virtual_services
            .get_mut(&VirtualServiceKey(key()))
            .unwrap()
            .1
            .extend([busy, Destination::new(ip("10.244.1.3"), 8080)]);
        // Drained as the planner asks (the request carries no counters).
        let mut drain = Destination::new(ip("10.244.1.2"), 8080);
        drain.weight = 0;
        record(&mut observed, &Action::UpdateDestination(key(), drain));
        let dests = &observed.virtual_services[&VirtualServiceKey(key())].1;
        assert_eq!(dests[0], Destination { weight: 0, ..first });
        assert_eq!(dests[1].addr, ip("10.244.1.3"));
    }

    #[test]
    fn set_entries_are_matched_without_their_comments() {
        let mut observed = Observed::default();
        observed
            .sets
            .insert("KUBE-CLUSTER-IP".into(), SetInfo::default());
        let entry = Entry::ip_port(ip("10.96.0.10"), 6, 80).with_comment("default/web:http");
        let add = Action::AddSetEntries {
            set: "KUBE-CLUSTER-IP".into(),
            entries: vec![entry.clone()],
        };
        record(&mut observed, &add);
        record(&mut observed, &add);
        assert_eq!(observed.sets["KUBE-CLUSTER-IP"].entries, vec![entry]);
        let del = Action::DeleteSetEntries {
            set: "KUBE-CLUSTER-IP".into(),
            entries: vec![Entry::ip_port(ip("10.96.0.10"), 6, 80)],
        };
        record(&mut observed, &del);
        assert!(observed.sets["KUBE-CLUSTER-IP"].entries.is_empty());
    }

    #[test]
    fn after_recording_a_plan_the_same_desired_state_plans_nothing_more() {
        // Desired: one virtual service with one real server and its address;
        // sets and tables are left out (re-read from the kernel instead).
        let mut desired =
            kipvs_planner::desired(&[], &[], &kipvs_planner::NodeConfig::new("node-a"));
        desired.sets.clear();
        desired.tables.clear();
        let mut service = kipvs_planner::DesiredVirtualService {
            owner: kipvs_planner::ServicePortName::new("default", "web", "http"),
            kind: kipvs_planner::AddressKind::ClusterIp,
            service: Service::new(key(), "rr"),
            destinations: Default::default(),
        };
        service.destinations.insert(
            (ip("10.244.1.2"), 8080),
            Destination::new(ip("10.244.1.2"), 8080),
        );
        desired
            .virtual_services
            .insert(VirtualServiceKey(key()), service);
        desired.addresses.insert(ip("10.96.0.10"));
        let mut observed = Observed::default();
        let first = plan(&desired, &observed, &Default::default());
        assert!(!first.steps.is_empty());
        for step in &first.steps {
            record(&mut observed, &step.action);
        }
        assert!(plan(&desired, &observed, &Default::default())
            .steps
            .is_empty());
    }
}
