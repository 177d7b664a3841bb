//! Desired + observed → the ordered kernel work.
//!
//! Phases, in execution order (traffic never breaks):
//! 1. `CreateSet` for missing sets;
//! 2. `ReplaceTable` for each family whose table differs, once every set
//!    it references has a kernel index;
//! 3. per virtual service (key order): `AddService` + its
//!    `AddDestination`s, or `UpdateService` and `Add`/`Update`/
//!    `DeleteDestination` for the differences;
//! 4. `AddSetEntries`, one step per (set, owner);
//! 5. `BindAddress` — only for a family whose sets exist and whose table
//!    could be rendered (so rules are in place before an address answers);
//!    otherwise the binding waits for the next plan, which the runtime
//!    makes right after creating sets;
//! 6. `UnbindAddress`;
//! 7. `DeleteSetEntries`, one step per (set, owner);
//! 8. `DeleteService` (which takes its real servers with it).
//!
//! Owners: additions and updates belong to the desired service port. For
//! removals the owner is read back from the `KUBE-CLUSTER-IP` /
//! `KUBE-6-CLUSTER-IP` entry comments we wrote (`ns/name:port`), so a
//! failing unbind of a removed service skips that service's deletion;
//! `None` when no comment names one.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::IpAddr,
};

use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetType};
use kipvs_packet_ipvs::{Destination, Service, ServiceKey};
use kipvs_packet_nftables::{NfProto, NftMessage};

use crate::{
    desired::Desired,
    key::{IpFamily, VirtualServiceKey},
    names::ServicePortName,
    observed::Observed,
    sets::{entry_key, SetRole},
    shape::TableShape,
    table::DesiredTable,
};

/// The steps, in execution order; empty when nothing is to be done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }
}

/// One piece of kernel work and the service port it is done for (`None`:
/// node-wide, such as sets and tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub owner: Option<ServicePortName>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateSet {
        name: String,
        set_type: SetType,
        family: SetFamily,
        options: CreateOptions,
    },
    /// (Re)creates one whole nf_tables table atomically: the messages
    /// (without BATCH_BEGIN/END) to send as ONE batch with
    /// `NfTables::apply`: NEWTABLE, DELTABLE, NEWTABLE, chains, rules.
    ReplaceTable {
        family: NfProto,
        messages: Vec<NftMessage>,
    },
    AddService(Service),
    UpdateService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    UpdateDestination(ServiceKey, Destination),
    DeleteDestination(ServiceKey, IpAddr, u16),
    AddSetEntries {
        set: String,
        entries: Vec<Entry>,
    },
    DeleteSetEntries {
        set: String,
        entries: Vec<Entry>,
    },
    BindAddress(IpAddr),
    UnbindAddress(IpAddr),
}

/// The steps that turn `observed` into `desired` (see the module docs for
/// the order).
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let mut steps = Vec::new();
    let mut push = |owner: Option<&ServicePortName>, action| {
        steps.push(Step {
            owner: owner.cloned(),
            action,
        })
    };

    // 1. Sets.
    for (name, set) in &desired.sets {
        if !observed.sets.contains_key(name) {
            push(
                None,
                Action::CreateSet {
                    name: name.clone(),
                    set_type: set.set_type.clone(),
                    family: set.family,
                    options: set.options.clone(),
                },
            );
        }
    }

    // 2. Tables. A family is ready for addresses once its sets exist and
    // its rules are (or are about to be) installed.
    let mut ready = BTreeSet::new();
    for table in &desired.tables {
        let Ok(contents) = table.contents(&observed.set_indexes) else {
            continue;
        };
        let sets_exist = desired.sets.iter().all(|(name, set)| {
            set.family != table.family.set_family() || observed.sets.contains_key(name)
        });
        if sets_exist {
            ready.insert(table.family);
        }
        let current = observed
            .tables
            .get(&table.family)
            .map(|t| TableShape::of(t.chains.iter().chain(&t.rules)));
        if current.as_ref() != Some(&TableShape::of(&contents)) {
            push(
                None,
                Action::ReplaceTable {
                    family: table.nf_proto(),
                    messages: DesiredTable::replace_with(table.nf_proto(), contents),
                },
            );
        }
    }

    // 3. Virtual services and real servers.
    for (key, vs) in &desired.virtual_services {
        let owner = Some(&vs.owner);
        let k = key.key();
        let Some((current, current_dests)) = observed.virtual_services.get(key) else {
            push(owner, Action::AddService(vs.service.clone()));
            for dest in vs.destinations.values() {
                push(owner, Action::AddDestination(k, dest.clone()));
            }
            continue;
        };
        if service_differs(&vs.service, current) {
            push(owner, Action::UpdateService(vs.service.clone()));
        }
        let current_dests: BTreeMap<(IpAddr, u16), &Destination> = current_dests
            .iter()
            .map(|d| ((d.addr, d.port), d))
            .collect();
        let mut updates = Vec::new();
        for (addr_port, dest) in &vs.destinations {
            match current_dests.get(addr_port) {
                None => push(owner, Action::AddDestination(k, dest.clone())),
                Some(current) if destination_differs(dest, current) => {
                    updates.push(Action::UpdateDestination(k, dest.clone()))
                }
                Some(_) => {}
            }
        }
        for action in updates {
            push(owner, action);
        }
        for (addr, port) in current_dests.keys() {
            if !vs.destinations.contains_key(&(*addr, *port)) {
                push(owner, Action::DeleteDestination(k, *addr, *port));
            }
        }
    }

    // 4. Set entries to add.
    for (name, set) in &desired.sets {
        let present = observed_keys(observed, name);
        let mut by_owner: BTreeMap<&ServicePortName, Vec<Entry>> = BTreeMap::new();
        for (key, entry) in &set.entries {
            if !present.contains(key) {
                if let Some(owner) = set.owners.get(key) {
                    by_owner.entry(owner).or_default().push(entry.clone());
                }
            }
        }
        for (owner, entries) in by_owner {
            push(
                Some(owner),
                Action::AddSetEntries {
                    set: name.clone(),
                    entries,
                },
            );
        }
    }

    // 5. Addresses to bind.
    for addr in &desired.addresses {
        if !observed.addresses.contains(addr) && ready.contains(&IpFamily::of(addr)) {
            push(desired.address_owner(*addr), Action::BindAddress(*addr));
        }
    }

    // Removals: who owned what, from our entry comments.
    let owners = ObservedOwners::read(observed);

    // 6. Addresses to unbind.
    for addr in &observed.addresses {
        if !desired.addresses.contains(addr) {
            push(owners.of_address(*addr), Action::UnbindAddress(*addr));
        }
    }

    // 7. Set entries to delete (only in our sets; never a whole set). The
    // KUBE-IPVS-IPS entries wait until step 9: they are how the runtime
    // still recognises a removed service's virtual service as ours once its
    // address is unbound, should the deletion fail or the daemon stop in
    // between. (They do not steer traffic once the address is unbound.)
    let mut ipvs_ips_deletions = Vec::new();
    for (name, set) in &desired.sets {
        let Some(info) = observed.sets.get(name) else {
            continue;
        };
        let role = SetRole::from_set_name(name).map(|(role, _)| role);
        let mut by_owner: BTreeMap<Option<ServicePortName>, Vec<Entry>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for entry in &info.entries {
            let key = entry_key(entry);
            if set.entries.contains_key(&key) || !seen.insert(key) {
                continue;
            }
            let owner = match (role, entry.ip) {
                (Some(SetRole::IpvsIps), Some(ip)) => owners.of_address(ip).cloned(),
                _ => entry
                    .comment
                    .as_deref()
                    .and_then(ServicePortName::from_comment),
            };
            // The kernel finds the element without its comment.
            let bare = Entry {
                comment: None,
                ..entry.clone()
            };
            by_owner.entry(owner).or_default().push(bare);
        }
        for (owner, entries) in by_owner {
            let action = Action::DeleteSetEntries {
                set: name.clone(),
                entries,
            };
            if role == Some(SetRole::IpvsIps) {
                ipvs_ips_deletions.push((owner, action));
            } else {
                push(owner.as_ref(), action);
            }
        }
    }

    // 8. Virtual services to delete.
    for key in observed.virtual_services.keys() {
        if !desired.virtual_services.contains_key(key) {
            push(owners.of_service(key), Action::DeleteService(key.key()));
        }
    }

    // 9. The KUBE-IPVS-IPS entries held back in step 7.
    for (owner, action) in ipvs_ips_deletions {
        push(owner.as_ref(), action);
    }

    Plan { steps }
}

/// Entry keys present in an observed set (none if the set is missing).
fn observed_keys(observed: &Observed, set: &str) -> BTreeSet<String> {
    observed
        .sets
        .get(set)
        .map(|info| info.entries.iter().map(entry_key).collect())
        .unwrap_or_default()
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

/// The service port of each observed `clusterIP,proto:port`, from the
/// comments of the cluster-IP sets.
struct ObservedOwners {
    by_tuple: BTreeMap<(IpAddr, u8, u16), ServicePortName>,
}

impl ObservedOwners {
    fn read(observed: &Observed) -> Self {
        let mut by_tuple = BTreeMap::new();
        for family in IpFamily::ALL {
            let Some(info) = observed.sets.get(SetRole::ClusterIp.set_name(family)) else {
                continue;
            };
            for entry in &info.entries {
                let (Some(ip), Some(proto), Some(port), Some(comment)) =
                    (entry.ip, entry.proto, entry.port, entry.comment.as_deref())
                else {
                    continue;
                };
                if let Some(owner) = ServicePortName::from_comment(comment) {
                    by_tuple.entry((ip, proto, port)).or_insert(owner);
                }
            }
        }
        ObservedOwners { by_tuple }
    }

    /// The first service port (by protocol and port) on `addr`.
    fn of_address(&self, addr: IpAddr) -> Option<&ServicePortName> {
        self.by_tuple
            .range((addr, 0, 0)..)
            .next()
            .filter(|((ip, _, _), _)| *ip == addr)
            .map(|(_, owner)| owner)
    }

    fn of_service(&self, key: &VirtualServiceKey) -> Option<&ServicePortName> {
        let ServiceKey::Tuple {
            addr,
            protocol,
            port,
        } = key.key()
        else {
            return None;
        };
        let proto = u8::try_from(u16::from(protocol)).ok()?;
        self.by_tuple.get(&(addr, proto, port))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |f: &mut fmt::Formatter<'_>, key: &ServiceKey| match key {
            ServiceKey::Tuple {
                addr,
                protocol,
                port,
            } => write!(f, "{protocol} {}", std::net::SocketAddr::new(*addr, *port)),
            ServiceKey::Fwmark { af, mark } => write!(f, "fwmark {mark} ({af})"),
        };
        match self {
            Action::CreateSet {
                name,
                set_type,
                family,
                ..
            } => write!(f, "create set {name} {set_type} family {family}"),
            Action::ReplaceTable { family, messages } => write!(
                f,
                "replace table {family:?} kube-ipvs ({} messages)",
                messages.len()
            ),
            Action::AddService(s) => {
                f.write_str("add service ")?;
                key(f, &s.key)?;
                write!(f, " {}", s.scheduler)
            }
            Action::UpdateService(s) => {
                f.write_str("update service ")?;
                key(f, &s.key)?;
                write!(f, " {}", s.scheduler)
            }
            Action::DeleteService(k) => {
                f.write_str("delete service ")?;
                key(f, k)
            }
            Action::AddDestination(k, d) | Action::UpdateDestination(k, d) => {
                let verb = if matches!(self, Action::AddDestination(..)) {
                    "add"
                } else {
                    "update"
                };
                write!(f, "{verb} real server ")?;
                write!(f, "{} to ", std::net::SocketAddr::new(d.addr, d.port))?;
                key(f, k)?;
                write!(f, " ({} weight {})", d.forward, d.weight)
            }
            Action::DeleteDestination(k, addr, port) => {
                write!(
                    f,
                    "delete real server {} from ",
                    std::net::SocketAddr::new(*addr, *port)
                )?;
                key(f, k)
            }
            Action::AddSetEntries { set, entries } => {
                write!(f, "add {} entries to {set}", entries.len())
            }
            Action::DeleteSetEntries { set, entries } => {
                write!(f, "delete {} entries from {set}", entries.len())
            }
            Action::BindAddress(addr) => write!(f, "bind {addr}"),
            Action::UnbindAddress(addr) => write!(f, "unbind {addr}"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(owner) => write!(f, "[{owner}] {}", self.action),
            None => write!(f, "[node] {}", self.action),
        }
    }
}
