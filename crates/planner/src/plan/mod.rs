//! Desired + observed → the ordered kernel work.
//!
//! **The ordering rule**: nothing is reachable before everything it needs
//! is in place, and nothing is taken away while something reachable still
//! needs it. So a service's traffic never breaks, and a daemon stopped
//! between two steps leaves a state the next one completes. The phases, in
//! execution order:
//! 1. [sets](sets): missing sets created, sets of our names that cannot
//!    hold our entries replaced whole;
//! 2. [tables](tables): each family's table replaced when it differs, once
//!    every set it references has a kernel index;
//! 3. [set entries to add](sets), before the virtual services they
//!    describe: claiming entries make a virtual service ours the moment it
//!    exists, and traffic to a new address is marked from its first
//!    packet; exempting and allowing sets ([`crate::SetRole::exempts`]) first;
//! 4. [virtual services and real servers](services): added complete, or
//!    updated; a real server the cluster no longer lists is retired
//!    gracefully ([drains](drains));
//! 5. [addresses](addresses) bound, only in a family whose sets exist and
//!    whose table is (about to be) installed: rules before the address
//!    answers;
//! 6. [removals](removals): addresses unbound, set entries deleted
//!    (exempting ones last), virtual services deleted, and last the
//!    claiming entries: until a virtual service is gone they are how the
//!    runtime knows it is ours.
//!
//! A desired virtual service at a key another program's virtual service
//! holds ([`Observed::foreign`]) gets no step at all, and no claiming
//! entry: kube-ipvs never takes over what it did not create.
//!
//! Each step names the service port it is for ([`Step::owner`]; `None` for
//! node-wide work such as sets and tables), so the runtime can skip the
//! rest of a service whose step failed and go on with the others.

mod addresses;
mod display;
mod drains;
mod removals;
mod services;
mod sets;
mod tables;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Destination, Service, ServiceKey};

pub use self::drains::{draining, draining_in, retiring, retiring_in};
use crate::{
    contributions::Dirty,
    desired::Desired,
    key::{IpFamily, VirtualServiceKey},
    names::{ServicePortName, Warning},
    observed::Observed,
    rendered::RenderedTable,
    sets::{EntryKey, SetId},
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
    /// `ipset create` with the set's type and kube-proxy's options.
    CreateSet(SetId),
    /// Replaces an existing set of one of our names that cannot hold our
    /// entries (see [`crate::replacement_reason`]) without a moment where
    /// it is missing or empty: a twin of the right kind is created and
    /// filled with `entries`, swapped in (`ipset swap` keeps the kernel
    /// index, so every rule that refers to the set, ours or kube-proxy's,
    /// goes on matching), and the old one destroyed.
    ReplaceSet {
        set: SetId,
        entries: Vec<Entry>,
        reason: String,
    },
    /// (Re)creates one family's whole table atomically.
    ReplaceTable {
        family: IpFamily,
        table: RenderedTable,
    },
    AddService(Service),
    UpdateService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    UpdateDestination(ServiceKey, Destination),
    DeleteDestination(ServiceKey, IpAddr, u16),
    AddSetEntries {
        set: SetId,
        entries: Vec<Entry>,
    },
    DeleteSetEntries {
        set: SetId,
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

/// The steps that turn `observed` into `desired`, phase by phase (see the
/// module docs). `expired`: draining real servers whose grace is over, as
/// the runtime counts time; they are deleted even with connections left.
pub fn plan(desired: &Desired, observed: &Observed, expired: &BTreeSet<RealServerKey>) -> Plan {
    plan_scoped(desired, observed, expired, Scope::All)
}

/// What a plan looks at.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Everything: sets, tables, every virtual service, entry and
    /// address.
    All,
    /// Only these virtual services, entries and addresses (what an
    /// incremental update of the desired state touched, and the virtual
    /// services with draining real servers), on a kernel whose sets and
    /// tables a plan of [`Scope::All`] already made: a change costs what
    /// it touches, not what the node holds.
    Only(&'a Dirty),
}

/// [`plan`] within `scope`.
pub fn plan_scoped(
    desired: &Desired,
    observed: &Observed,
    expired: &BTreeSet<RealServerKey>,
    scope: Scope<'_>,
) -> Plan {
    let mut planner = Planner {
        desired,
        observed,
        expired,
        scope,
        steps: Vec::new(),
        replaced: BTreeSet::new(),
        ready: BTreeSet::new(),
    };
    match scope {
        Scope::All => {
            planner.sets();
            planner.tables();
        }
        Scope::Only(_) => planner.installed_tables(),
    }
    planner.set_entries_to_add();
    planner.virtual_services();
    planner.addresses_to_bind();
    planner.removals();
    Plan {
        steps: planner.steps,
    }
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

/// The state one plan is made from, and the steps so far.
struct Planner<'a> {
    desired: &'a Desired,
    observed: &'a Observed,
    expired: &'a BTreeSet<RealServerKey>,
    scope: Scope<'a>,
    steps: Vec<Step>,
    /// Sets replaced whole in phase 1: their entries are not diffed.
    replaced: BTreeSet<SetId>,
    /// Families whose sets exist and whose table is (about to be)
    /// installed: addresses may be bound in them.
    ready: BTreeSet<IpFamily>,
}

impl Planner<'_> {
    fn push(&mut self, owner: Option<&ServicePortName>, action: Action) {
        self.steps.push(Step {
            owner: owner.cloned(),
            action,
        });
    }
}

/// Sets whose entries may name virtual services of other programs are not
/// filled with those (see [`Observed::is_foreign`]).
fn claims(set: SetId) -> bool {
    set.role.claims_virtual_services()
}

/// The virtual service keys in scope among `keys` (all of them, or
/// the dirty ones that are there), in key order.
pub(super) fn scoped_services<'k, V>(
    scope: Scope<'k>,
    keys: &'k BTreeMap<VirtualServiceKey, V>,
) -> Box<dyn Iterator<Item = (&'k VirtualServiceKey, &'k V)> + 'k> {
    match scope {
        Scope::All => Box::new(keys.iter()),
        Scope::Only(dirty) => Box::new(
            dirty
                .virtual_services
                .iter()
                .filter_map(|key| keys.get_key_value(key)),
        ),
    }
}

/// The addresses in scope among `addresses`, in order.
pub(super) fn scoped_addresses<'k>(
    scope: Scope<'k>,
    addresses: &'k BTreeSet<IpAddr>,
) -> Box<dyn Iterator<Item = &'k IpAddr> + 'k> {
    match scope {
        Scope::All => Box::new(addresses.iter()),
        Scope::Only(dirty) => Box::new(
            dirty
                .addresses
                .iter()
                .filter(|addr| addresses.contains(addr)),
        ),
    }
}

/// The entries of `set` in scope among `entries`, in key order.
pub(super) fn scoped_entries<'k, V>(
    scope: Scope<'k>,
    set: SetId,
    entries: &'k BTreeMap<EntryKey, V>,
) -> Box<dyn Iterator<Item = (&'k EntryKey, &'k V)> + 'k> {
    match scope {
        Scope::All => Box::new(entries.iter()),
        Scope::Only(dirty) => Box::new(
            dirty
                .entries
                .iter()
                .filter(move |(s, _)| *s == set)
                .filter_map(|(_, key)| entries.get_key_value(key)),
        ),
    }
}
