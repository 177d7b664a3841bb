//! Desired + observed → the ordered kernel work.
//!
//! Phases, in execution order (traffic never breaks):
//! 1. `CreateSet` for missing sets, `ReplaceSet` for sets of our names that
//!    cannot hold our entries (kube-proxy's, made without comments);
//! 2. `ReplaceTable` for each family whose table differs, once every set
//!    it references has a kernel index;
//! 3. `AddSetEntries`, one step per (set, owner): exempting and allowing
//!    sets first, and before the virtual services, so a virtual service
//!    is claimed as ours and its traffic marked from the moment it exists;
//! 4. per virtual service (key order): `AddService` + its
//!    `AddDestination`s, or `UpdateService` and `Add`/`Update`/
//!    `DeleteDestination` for the differences; a real server the cluster
//!    no longer lists is retired gracefully (see below);
//! 5. `BindAddress` — only for a family whose sets exist and whose table
//!    could be rendered (so rules are in place before an address answers);
//!    otherwise the binding waits for the next plan, which the runtime
//!    makes right after creating sets;
//! 6. `UnbindAddress`;
//! 7. `DeleteSetEntries`, one step per (set, owner);
//! 8. `DeleteService` (which takes its real servers with it, at once:
//!    kube-proxy does not drain a removed service either);
//! 9. `DeleteSetEntries` of the sets that claim virtual services
//!    ([`SetRole::claims_virtual_services`]): until the virtual service is
//!    gone they are how the runtime knows it is ours.
//!
//! A desired virtual service whose key another program's virtual service
//! holds ([`Observed::foreign`]) gets no step at all, and no claiming
//! entry: kube-ipvs never takes over what it did not create.
//!
//! Graceful termination (kube-proxy's `graceful_termination.go`, with a
//! bound): a real server present but no longer desired, on a TCP (or
//! fwmark) virtual service, is set to weight 0 — new connections go
//! elsewhere, established ones go on. At weight 0 it is left alone until
//! its connections (active + inactive, read after the weight went to 0)
//! reach 0 or the runtime reports its grace `expired` (the planner has no
//! clock), then deleted. UDP and SCTP real servers are deleted at once (a
//! datagram "connection" has no end to wait for). A desired real server
//! found at weight 0 (its endpoint came back) is updated to its desired
//! weight.
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
use kipvs_packet_ipvs::{Destination, Protocol, Service, ServiceKey};
use kipvs_packet_nftables::{NfProto, NftMessage};

use crate::{
    desired::Desired,
    k8s::ip_proto,
    key::{IpFamily, VirtualServiceKey},
    names::{ServicePortName, Warning},
    observed::Observed,
    sets::{entry_key, replacement_reason, SetRole},
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
    /// Replaces an existing set of one of our names that cannot hold our
    /// entries (see `replacement_reason`) without a moment where it is
    /// missing or empty: a twin of the right kind is created and filled
    /// with `entries`, swapped in (`ipset swap` keeps the kernel index, so
    /// every rule that refers to the set, ours or kube-proxy's, goes on
    /// matching), and the old one destroyed.
    ReplaceSet {
        name: String,
        set_type: SetType,
        family: SetFamily,
        options: CreateOptions,
        entries: Vec<Entry>,
        reason: String,
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

/// One real server of one virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealServerKey {
    pub service: VirtualServiceKey,
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for RealServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {}",
            std::net::SocketAddr::new(self.addr, self.port),
            self.service
        )
    }
}

/// The steps that turn `observed` into `desired` (see the module docs for
/// the order). `expired`: draining real servers whose grace is over, as
/// the runtime counts time; they are deleted even with connections left.
pub fn plan(desired: &Desired, observed: &Observed, expired: &BTreeSet<RealServerKey>) -> Plan {
    let mut steps = Vec::new();
    let mut push = |owner: Option<&ServicePortName>, action| {
        steps.push(Step {
            owner: owner.cloned(),
            action,
        })
    };

    // 1. Sets: the missing ones created, the unusable ones replaced whole
    // (their entries are not diffed below: the replacement comes filled).
    let mut replaced = BTreeSet::new();
    for (name, set) in &desired.sets {
        let Some(info) = observed.sets.get(name) else {
            push(
                None,
                Action::CreateSet {
                    name: name.clone(),
                    set_type: set.set_type.clone(),
                    family: set.family,
                    options: set.options.clone(),
                },
            );
            continue;
        };
        if let Some(reason) = replacement_reason(info, set) {
            replaced.insert(name);
            let claims = SetRole::from_set_name(name)
                .is_some_and(|(role, _)| role.claims_virtual_services());
            push(
                None,
                Action::ReplaceSet {
                    name: name.clone(),
                    set_type: set.set_type.clone(),
                    family: set.family,
                    options: set.options.clone(),
                    entries: set
                        .entries
                        .values()
                        .filter(|entry| !(claims && observed.is_foreign(entry)))
                        .cloned()
                        .collect(),
                    reason,
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

    // 3. Set entries to add, before the virtual services they describe:
    // the claiming entries make a virtual service ours the moment it
    // exists (a daemon stopped right after creating it still owns it), and
    // traffic to a new node port or external address is marked for
    // masquerade from its first packet. Sets whose entries exempt or allow
    // (`-LOCAL`, source ranges) are filled before the sets that mark or
    // firewall, so a changed service is never briefly masqueraded or
    // dropped. Claiming entries for a key another program's virtual
    // service holds are not added (see `Observed::foreign`).
    let mut add_order: Vec<(&String, &crate::sets::DesiredSet)> = desired.sets.iter().collect();
    add_order.sort_by_key(|(name, _)| (!exempts_first(name), *name));
    for (name, set) in add_order {
        if replaced.contains(name) {
            continue;
        }
        let present = observed_keys(observed, name);
        let claims = SetRole::from_set_name(name)
            .is_some_and(|(role, _)| role.claims_virtual_services());
        let mut by_owner: BTreeMap<&ServicePortName, Vec<Entry>> = BTreeMap::new();
        for (key, entry) in &set.entries {
            if present.contains(key) || (claims && observed.is_foreign(entry)) {
                continue;
            }
            if let Some(owner) = set.owners.get(key) {
                by_owner.entry(owner).or_default().push(entry.clone());
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

    // 4. Virtual services and real servers (none at a key another
    // program's virtual service holds: that is reported, not touched).
    for (key, vs) in &desired.virtual_services {
        let owner = Some(&vs.owner);
        if observed.foreign.contains(key) {
            continue;
        }
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
        for (&(addr, port), current) in &current_dests {
            if vs.destinations.contains_key(&(addr, port)) {
                continue;
            }
            let real_server = RealServerKey {
                service: *key,
                addr,
                port,
            };
            match retirement(key, current, expired.contains(&real_server)) {
                Retirement::Delete => push(owner, Action::DeleteDestination(k, addr, port)),
                Retirement::Drain => push(
                    owner,
                    Action::UpdateDestination(
                        k,
                        Destination {
                            weight: 0,
                            ..(*current).clone()
                        },
                    ),
                ),
                Retirement::Wait => {}
            }
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
    // entries of sets that claim virtual services wait until step 9: they
    // are how the runtime still recognises a removed service's virtual
    // service as ours (once its address is unbound, or when it never was
    // on kube-ipvs0: node ports, external addresses of other interfaces),
    // should the deletion fail or the daemon stop in between. (They steer
    // no traffic to a virtual service that is gone.)
    let mut claiming_deletions = Vec::new();
    let mut delete_order: Vec<(&String, &crate::sets::DesiredSet)> =
        desired.sets.iter().collect();
    delete_order.sort_by_key(|(name, _)| (exempts_first(name), *name));
    for (name, set) in delete_order {
        let Some(info) = observed.sets.get(name).filter(|_| !replaced.contains(name)) else {
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
            if role.is_some_and(SetRole::claims_virtual_services) {
                claiming_deletions.push((owner, action));
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

    // 9. The claiming entries held back in step 7.
    for (owner, action) in claiming_deletions {
        push(owner.as_ref(), action);
    }

    Plan { steps }
}

/// Desired virtual services at a key another program's virtual service
/// holds ([`Observed::foreign`]): the plan leaves them alone; these
/// warnings say so, naming the service.
pub fn conflicts(desired: &Desired, observed: &Observed) -> Vec<Warning> {
    observed
        .foreign
        .iter()
        .filter_map(|key| {
            let vs = desired.virtual_services.get(key)?;
            Some(Warning::new(
                format!("Service {}", vs.owner.service()),
                format!(
                    "port {:?}: {key} is held by an IPVS virtual service kube-ipvs did not create; left alone",
                    vs.owner.port
                ),
            ))
        })
        .collect()
}

/// Real servers that drain: present at weight 0 in a virtual service that
/// is still desired, not desired themselves, on a protocol that drains.
/// Computed on the cache after a plan was applied, it is the runtime's
/// record of what drains — also right after a restart, when the kernel
/// holds the only trace of it.
pub fn draining(desired: &Desired, observed: &Observed) -> BTreeSet<RealServerKey> {
    let mut draining = BTreeSet::new();
    for (key, vs) in &desired.virtual_services {
        let Some((_, current)) = observed.virtual_services.get(key) else {
            continue;
        };
        if !drains_gracefully(key) {
            continue;
        }
        for dest in current {
            if dest.weight == 0 && !vs.destinations.contains_key(&(dest.addr, dest.port)) {
                draining.insert(RealServerKey {
                    service: *key,
                    addr: dest.addr,
                    port: dest.port,
                });
            }
        }
    }
    draining
}

/// Virtual services where a draining real server (weight 0, no longer
/// listed) would be deleted because the cache shows no connection: the
/// runtime reads their real servers again first, so the delete is decided
/// on counters read after the weight went to 0, never on the older ones
/// the cache may hold (a connection opened before must not be cut).
pub fn retiring(desired: &Desired, observed: &Observed) -> BTreeSet<VirtualServiceKey> {
    desired
        .virtual_services
        .iter()
        .filter(|(key, _)| drains_gracefully(key))
        .filter(|(key, vs)| {
            observed.virtual_services.get(key).is_some_and(|(_, current)| {
                current.iter().any(|dest| {
                    dest.weight == 0
                        && dest.active_conns == 0
                        && dest.inactive_conns == 0
                        && !vs.destinations.contains_key(&(dest.addr, dest.port))
                })
            })
        })
        .map(|(key, _)| *key)
        .collect()
}

/// What becomes of a real server the cluster no longer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retirement {
    Delete,
    /// To weight 0: no new connections, established ones go on.
    Drain,
    /// At weight 0 already, connections left, grace not over.
    Wait,
}

/// A real server still in service always goes to weight 0 first, even when
/// the counters say it has no connection: they are only as fresh as the
/// last read, and a connection scheduled since would be cut by the delete
/// (`expire_nodest_conn`). Once at weight 0 it gets no new connection, so
/// counters read after that (see [`retiring`]) can be trusted to reach 0.
fn retirement(key: &VirtualServiceKey, current: &Destination, expired: bool) -> Retirement {
    let connections = u64::from(current.active_conns) + u64::from(current.inactive_conns);
    if !drains_gracefully(key) {
        Retirement::Delete
    } else if current.weight > 0 {
        Retirement::Drain
    } else if connections == 0 || expired {
        Retirement::Delete
    } else {
        Retirement::Wait
    }
}

/// kube-proxy's `IsRsGracefulTerminationNeeded`: everything but UDP and
/// SCTP, whose real servers are deleted at once (IPVS expires their
/// entries on the next packet, `expire_nodest_conn`).
fn drains_gracefully(key: &VirtualServiceKey) -> bool {
    !matches!(
        key.key(),
        ServiceKey::Tuple {
            protocol: Protocol::Udp | Protocol::Sctp,
            ..
        }
    )
}

/// Sets whose entries exempt traffic from marking (`-LOCAL`) or allow
/// sources (source ranges): added before, deleted after, their
/// counterparts.
fn exempts_first(set: &str) -> bool {
    SetRole::from_set_name(set).is_some_and(|(role, _)| {
        matches!(
            role,
            SetRole::ExternalIpLocal
                | SetRole::LoadBalancerLocal
                | SetRole::NodePortLocalTcp
                | SetRole::NodePortLocalUdp
                | SetRole::NodePortLocalSctp
                | SetRole::LoadBalancerSourceCidr
                | SetRole::LoadBalancerSourceIp
        )
    })
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

/// The service port of each observed virtual service, from the comments
/// we wrote on the `addr,proto:port` entries of the sets that claim virtual
/// services (`KUBE-CLUSTER-IP`, `KUBE-NODE-PORT-IPS`, …).
struct ObservedOwners {
    by_tuple: BTreeMap<(IpAddr, u8, u16), ServicePortName>,
}

impl ObservedOwners {
    fn read(observed: &Observed) -> Self {
        let mut by_tuple = BTreeMap::new();
        let roles = SetRole::ALL
            .into_iter()
            .filter(|role| role.claims_virtual_services());
        for role in roles {
            for family in IpFamily::ALL {
                let Some(info) = observed.sets.get(role.set_name(family)) else {
                    continue;
                };
                for entry in &info.entries {
                    let owner = entry
                        .comment
                        .as_deref()
                        .and_then(ServicePortName::from_comment);
                    if let (Some(owner), Some(ip), Some(proto), Some(port)) =
                        (owner, entry.ip, entry.proto, entry.port)
                    {
                        by_tuple.entry((ip, proto, port)).or_insert(owner);
                    }
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
        self.by_tuple.get(&(addr, ip_proto(protocol), port))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key =
            |f: &mut fmt::Formatter<'_>, key: &ServiceKey| write!(f, "{}", VirtualServiceKey(*key));
        match self {
            Action::CreateSet {
                name,
                set_type,
                family,
                ..
            } => write!(f, "create set {name} {set_type} family {family}"),
            Action::ReplaceSet {
                name,
                set_type,
                entries,
                reason,
                ..
            } => write!(
                f,
                "replace set {name} with a {set_type} of {} entries ({reason})",
                entries.len()
            ),
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
