//! Keeping the cached kernel state in step with what was applied, so a
//! sync with no change plans nothing and reads nothing back.
//!
//! Only steps the kernel confirmed are recorded; a failed step stays
//! missing from the cache and is planned again on the next sync.

use kipvs_packet_ipvs::Destination;
use kipvs_planner::{entry_key, Action, Observed, VirtualServiceKey};

/// Applies one confirmed action to the cache. Set creation and table
/// replacement are re-read from the kernel instead (they need kernel-made
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
        Action::AddDestination(key, destination) | Action::UpdateDestination(key, destination) => {
            if let Some((_, destinations)) =
                observed.virtual_services.get_mut(&VirtualServiceKey(*key))
            {
                destinations.retain(|d| !same_destination(d, destination));
                destinations.push(destination.clone());
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
                for entry in entries {
                    let key = entry_key(entry);
                    if !info.entries.iter().any(|e| entry_key(e) == key) {
                        info.entries.push(entry.clone());
                    }
                }
            }
        }
        Action::DeleteSetEntries { set, entries } => {
            if let Some(info) = observed.sets.get_mut(set) {
                let gone: Vec<String> = entries.iter().map(entry_key).collect();
                info.entries.retain(|e| !gone.contains(&entry_key(e)));
            }
        }
        Action::BindAddress(ip) => {
            observed.addresses.insert(*ip);
        }
        Action::UnbindAddress(ip) => {
            observed.addresses.remove(ip);
        }
        Action::CreateSet { .. } | Action::ReplaceTable { .. } => {}
    }
}

fn same_destination(a: &Destination, b: &Destination) -> bool {
    (a.addr, a.port) == (b.addr, b.port)
}
