//! The kernel as the sync loop sees it: read back what kube-ipvs owns, and
//! apply plans step by step with failures isolated per service.

use std::{collections::BTreeSet, net::IpAddr};

use kipvs_netlink::{
    set_sysctl, Conntrack, Counters, ErrorClass, FlowFilter, Ipset, Ipvs, IpvsChange, Links,
    NfTables,
};
use kipvs_packet_ipset::{CreateOptions, Entry, SetFamily, SetType};
use kipvs_packet_ipvs::{Protocol, ServiceKey};
use kipvs_packet_nftables::del_table;
use ipnet::IpNet;
use kipvs_planner::{
    is_excluded, ownership, Action, Desired, IpFamily, Observed, ObservedTable, Plan,
    ServicePortName, SetRole, Step, VirtualServiceKey, TABLE_NAME,
};
use tracing::{debug, warn};

use crate::{record::record, Result};

/// The dummy link that carries every service address.
pub const DUMMY_LINK: &str = "kube-ipvs0";

/// The sysctls kube-proxy's IPVS mode sets (`pkg/proxy/ipvs/proxier.go`):
/// IPVS-forwarded packets must pass through conntrack so netfilter's NAT
/// (masquerade) sees them; connections to a removed real server are expired
/// instead of black-holed; forwarding on.
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.vs.conntrack", "1"),
    ("net.ipv4.vs.expire_nodest_conn", "1"),
    ("net.ipv4.vs.expire_quiescent_template", "1"),
];

/// The twin a set is built in before it is swapped in for a set of one of
/// our names that cannot hold our entries (`Action::ReplaceSet`). Only one
/// replacement runs at a time; a twin left behind by a daemon stopped
/// half-way is destroyed before the next one (and by `--cleanup`).
pub const SWAP_SET: &str = "KUBE-IPVS-SWAP";

/// Every ipset name kube-ipvs may create (and so owns).
pub fn owned_sets() -> BTreeSet<String> {
    IpFamily::ALL
        .into_iter()
        .flat_map(|family| {
            SetRole::ALL
                .into_iter()
                .map(move |role| role.set_name(family).to_owned())
        })
        .collect()
}

/// What one `apply` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: usize,
    pub failed: usize,
    /// Steps not attempted because an earlier step they depend on failed.
    pub skipped: usize,
    /// Failed steps that belong to no service (sets, tables): the node's
    /// own health, unlike a failure of one service.
    pub node_wide_failed: usize,
    /// Service ports with a failed step (retried on the next sync).
    pub failed_owners: BTreeSet<ServicePortName>,
    /// Sets were created: the plan must be made again with their indexes
    /// before the table that references them can be installed.
    pub created_sets: bool,
    /// An add found its object already in the kernel: the cache was behind,
    /// so the next sync should read the kernel back.
    pub drift_seen: bool,
    /// Conntrack flows deleted after UDP real servers or virtual services
    /// went (stale flows would keep a UDP client on the old backend).
    pub conntrack_deleted: usize,
}

/// The kernel clients kube-ipvs uses, in the network namespace it runs in.
pub struct Dataplane {
    ipvs: Ipvs,
    ipset: Ipset,
    nft: NfTables,
    links: Links,
    conntrack: Conntrack,
    counters: Counters,
    /// `kube-ipvs0`'s index, known once [`Dataplane::observe`] made sure
    /// the link exists.
    link_index: Option<u32>,
}

impl Dataplane {
    /// Opens every client; changes nothing in the kernel (the first
    /// [`Dataplane::observe`] creates `kube-ipvs0` and sets the sysctls).
    /// Fails when IPVS is missing.
    pub async fn open(counters: Counters) -> Result<Dataplane> {
        Ok(Dataplane {
            ipvs: Ipvs::open(counters.clone()).await?,
            ipset: Ipset::open(counters.clone())?,
            nft: NfTables::open(counters.clone())?,
            links: Links::open(counters.clone())?,
            conntrack: Conntrack::open(counters.clone())?,
            counters,
            link_index: None,
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn set_sysctls(&self) -> Result<()> {
        for (name, value) in SYSCTLS {
            set_sysctl(name, value)?;
        }
        Ok(())
    }

    /// Reads back everything kube-ipvs owns, one dump per kind of object
    /// (real servers: one dump per owned virtual service, run concurrently).
    /// Also repairs what the reading depends on: a deleted `kube-ipvs0` is
    /// created again, changed sysctls are set again.
    ///
    /// Which virtual services are ours is the planner's rule
    /// ([`kipvs_planner::ownership`]); only those are read further. Anything
    /// else in the IPVS table belongs to someone else and is never
    /// touched; one at a key `desired` wants is recorded in
    /// [`Observed::foreign`] so the planner leaves it alone.
    pub async fn observe(&mut self, desired: &Desired) -> Result<Observed> {
        self.set_sysctls()?;
        let link_index = self.links.ensure_dummy(DUMMY_LINK).await?;
        self.link_index = Some(link_index);
        let mut observed = Observed {
            addresses: self
                .links
                .addresses(link_index)
                .await?
                .into_iter()
                .collect(),
            ..Observed::default()
        };
        if self.read_sets(&mut observed).await? {
            // Left by a replacement cut short after its swap: it holds the
            // old set, which nothing refers to.
            self.ipset.destroy(SWAP_SET).await.or_else(not_found_is_done)?;
        }
        let kernel = self.ipvs.services().await?;
        let ownership = ownership(
            desired,
            &observed,
            kernel.iter().map(|s| VirtualServiceKey(s.key)),
        );
        observed.foreign = ownership.foreign;
        let services: Vec<_> = kernel
            .into_iter()
            .filter(|s| ownership.ours.contains(&VirtualServiceKey(s.key)))
            .collect();
        let keys: Vec<_> = services.iter().map(|s| s.key).collect();
        let destinations = self.ipvs.destinations_of(&keys).await;
        for (service, destinations) in services.into_iter().zip(destinations) {
            observed
                .virtual_services
                .insert(VirtualServiceKey(service.key), (service, destinations?));
        }
        self.read_tables(&mut observed).await?;
        Ok(observed)
    }

    /// Reads the real servers of `services` again (one GET_DEST dump each,
    /// concurrently) into the cache: the connection counters of draining
    /// real servers, without a full resync.
    pub async fn refresh_destinations(
        &mut self,
        services: &BTreeSet<VirtualServiceKey>,
        observed: &mut Observed,
    ) -> Result<()> {
        let keys: Vec<ServiceKey> = services.iter().map(VirtualServiceKey::key).collect();
        let dumps = self.ipvs.destinations_of(&keys).await;
        for (key, destinations) in services.iter().zip(dumps) {
            let destinations = destinations?;
            if let Some((_, cached)) = observed.virtual_services.get_mut(key) {
                *cached = destinations;
            }
        }
        Ok(())
    }

    /// Our ipsets and their kernel indexes, from one list dump; whether
    /// a [`SWAP_SET`] was left behind.
    async fn read_sets(&mut self, observed: &mut Observed) -> Result<bool> {
        let owned = owned_sets();
        observed.sets.clear();
        observed.set_indexes.clear();
        let mut twin = false;
        for set in self.ipset.list_all().await? {
            twin |= set.name == SWAP_SET;
            if owned.contains(&set.name) {
                if let Some(index) = set.index {
                    observed.set_indexes.insert(set.name.clone(), index);
                }
                observed.sets.insert(set.name.clone(), set);
            }
        }
        Ok(twin)
    }

    /// Our `kube-ipvs` tables: a chain dump and a rule dump per family.
    /// (One dump over both families does not work for rules: with a table
    /// name, the kernel's rule dump stops after the first table of that
    /// name, `nf_tables_dump_rules()` in 6.1.)
    async fn read_tables(&mut self, observed: &mut Observed) -> Result<()> {
        for family in IpFamily::ALL {
            self.read_table(observed, family).await?;
        }
        Ok(())
    }

    /// One family's `kube-ipvs` table (absent when it has no chain).
    async fn read_table(&mut self, observed: &mut Observed, family: IpFamily) -> Result<()> {
        observed.tables.remove(&family);
        let chains = self.nft.chains(family.nf_proto(), TABLE_NAME).await?;
        if !chains.is_empty() {
            let rules = self.nft.rules(family.nf_proto(), TABLE_NAME).await?;
            observed
                .tables
                .insert(family, ObservedTable { chains, rules });
        }
        Ok(())
    }

    /// Applies the plan in order. Consecutive IPVS changes and address
    /// changes are pipelined. When a step fails, the later steps of the same
    /// service port are skipped (its address stays unbound, so it is never
    /// reachable half-built) and every other service goes on; when a
    /// node-wide step (a set, a table) fails, no address is bound this time.
    pub async fn apply(&mut self, plan: &Plan, observed: &mut Observed) -> ApplyReport {
        let mut run = Run::default();
        let steps = &plan.steps;
        let mut i = 0;
        while i < steps.len() {
            let batch_end = batch_end(steps, i);
            let batch: Vec<&Step> = steps[i..batch_end]
                .iter()
                .filter(|step| run.admit(step))
                .collect();
            i = batch_end;
            if batch.is_empty() {
                continue;
            }
            match &batch[0].action {
                action if is_ipvs(action) => {
                    let changes: Vec<IpvsChange> = batch
                        .iter()
                        .filter_map(|s| ipvs_change(&s.action))
                        .collect();
                    let outcomes = self.ipvs.apply(&changes).await;
                    for (step, outcome) in batch.into_iter().zip(outcomes) {
                        if outcome
                            .as_ref()
                            .is_err_and(|e| e.class() == ErrorClass::AlreadyExists)
                        {
                            run.report.drift_seen = true;
                        }
                        run.settle(step, outcome.or_else(benign(&step.action)), observed);
                    }
                }
                Action::BindAddress(_) | Action::UnbindAddress(_) => {
                    let ips: Vec<IpAddr> = batch
                        .iter()
                        .filter_map(|s| match s.action {
                            Action::BindAddress(ip) | Action::UnbindAddress(ip) => Some(ip),
                            _ => None,
                        })
                        .collect();
                    let outcomes = match (self.link_index, &batch[0].action) {
                        (Some(index), Action::BindAddress(_)) => {
                            self.links.add_addresses(index, &ips).await
                        }
                        (Some(index), _) => self.links.del_addresses(index, &ips).await,
                        // Only if a plan were applied before observe().
                        (None, _) => ips.iter().map(|_| Err(no_link())).collect(),
                    };
                    for (step, outcome) in batch.into_iter().zip(outcomes) {
                        run.settle(step, outcome, observed);
                    }
                }
                Action::CreateSet { .. } => {
                    let mut outcomes = Vec::with_capacity(batch.len());
                    for step in &batch {
                        if let Action::CreateSet {
                            name,
                            set_type,
                            family,
                            options,
                        } = &step.action
                        {
                            outcomes
                                .push(self.ipset.create(name, set_type, *family, options).await);
                        }
                    }
                    // One list dump gives every new set its kernel index;
                    // without it the sets count as not made yet.
                    if let Err(error) = self.read_sets(observed).await {
                        let detail = format!("reading the ipsets back: {error}");
                        outcomes = outcomes
                            .into_iter()
                            .map(|_| {
                                Err(kipvs_netlink::Error::Unexpected {
                                    family: kipvs_netlink::Family::Ipset,
                                    kind: "LIST",
                                    detail: detail.clone(),
                                })
                            })
                            .collect();
                    }
                    for (step, outcome) in batch.into_iter().zip(outcomes) {
                        run.settle(step, outcome, observed);
                    }
                }
                _ => {
                    for step in batch {
                        let outcome = self.apply_one(&step.action, observed).await;
                        run.settle(step, outcome, observed);
                    }
                }
            }
        }
        run.report.conntrack_deleted = self.delete_stale_flows(&run.stale_flows).await;
        run.report
    }

    /// Deletes the conntrack flows of removed UDP real servers and virtual
    /// services, one dump per family that has any (kube-proxy §4, through
    /// netlink). Done after the IPVS deletions, so no new packet can make
    /// a fresh flow to the old backend. A failure is logged, not retried:
    /// the flows time out on their own (`nf_conntrack_udp_timeout`).
    async fn delete_stale_flows(&mut self, filters: &[FlowFilter]) -> usize {
        let mut deleted = 0;
        for ipv6 in [false, true] {
            let of_family: Vec<FlowFilter> = filters
                .iter()
                .filter(|f| f.original_dst.is_some_and(|a| a.is_ipv6() == ipv6))
                .copied()
                .collect();
            if of_family.is_empty() {
                continue;
            }
            match self.conntrack.delete_matching_any(ipv6, &of_family).await {
                Ok(n) => {
                    debug!(
                        ipv6,
                        filters = of_family.len(),
                        deleted = n,
                        "stale UDP conntrack flows"
                    );
                    deleted += n;
                }
                Err(error) => warn!(%error, "deleting stale UDP conntrack flows failed"),
            }
        }
        deleted
    }

    async fn apply_one(
        &mut self,
        action: &Action,
        observed: &mut Observed,
    ) -> kipvs_netlink::Result<()> {
        match action {
            Action::ReplaceTable { family, messages } => {
                self.nft.apply(messages.clone()).await?;
                let family = IpFamily::ALL
                    .into_iter()
                    .find(|f| f.nf_proto() == *family)
                    .unwrap_or(IpFamily::V4);
                self.read_table(observed, family)
                    .await
                    .map_err(into_kernel)?;
                Ok(())
            }
            Action::ReplaceSet {
                name,
                set_type,
                family,
                options,
                entries,
                ..
            } => {
                self.replace_set(name, set_type, *family, options, entries)
                    .await?;
                // The swapped-in set has new contents and options under the
                // old index: read it back like a created one.
                self.read_sets(observed).await.map_err(into_kernel)?;
                Ok(())
            }
            Action::AddSetEntries { set, entries } => self.ipset.add(set, entries).await,
            Action::DeleteSetEntries { set, entries } => self.ipset.del(set, entries).await,
            // IPVS and address steps go out in batches (see `apply`).
            other => Err(kipvs_netlink::Error::Unexpected {
                family: kipvs_netlink::Family::Ipvs,
                kind: "apply",
                detail: format!("step not applied one by one: {other}"),
            }),
        }
    }

    /// Builds `name`'s replacement in [`SWAP_SET`] and swaps it in. The
    /// twin is destroyed whatever happens: after the swap it holds the old
    /// set, which no rule refers to any more (the kernel swaps the
    /// references along with the names).
    async fn replace_set(
        &mut self,
        name: &str,
        set_type: &SetType,
        family: SetFamily,
        options: &CreateOptions,
        entries: &[Entry],
    ) -> kipvs_netlink::Result<()> {
        self.ipset.destroy(SWAP_SET).await.or_else(not_found_is_done)?;
        self.ipset.create(SWAP_SET, set_type, family, options).await?;
        let swapped = match self.ipset.add(SWAP_SET, entries).await {
            Ok(()) => self.ipset.swap(SWAP_SET, name).await,
            Err(error) => Err(error),
        };
        let destroyed = self.ipset.destroy(SWAP_SET).await;
        swapped?;
        destroyed
    }

    /// Removes everything kube-ipvs created, and nothing else: its
    /// nf_tables tables, its IPVS services (those its sets list), the link
    /// itself, then its ipsets (once no rule
    /// references them).
    /// Virtual services on addresses in `excluded` (`--ipvs-exclude-cidrs`)
    /// stay, even when our sets list them.
    pub async fn cleanup(&mut self, excluded: &[IpNet]) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        let mut observed = Observed::default();
        self.read_tables(&mut observed).await?;
        for family in observed.tables.keys() {
            self.nft
                .apply(vec![del_table(family.nf_proto(), TABLE_NAME)])
                .await?;
            report.tables += 1;
        }
        // Ours: the services our sets list (`Observed::claimed`).
        let twin = self.read_sets(&mut observed).await?;
        let claimed = observed.claimed();
        let ours: Vec<IpvsChange> = self
            .ipvs
            .services()
            .await?
            .into_iter()
            .map(|s| VirtualServiceKey(s.key))
            .filter(|key| claimed.contains(key) && !is_excluded(excluded, key))
            .map(|key| key.key())
            .map(IpvsChange::DeleteService)
            .collect();
        for outcome in self.ipvs.apply(&ours).await {
            outcome.or_else(not_found_is_done)?;
            report.virtual_services += 1;
        }
        if let Some(index) = self.links.link_index(DUMMY_LINK).await? {
            self.links.delete_link(index).await?;
        }
        for name in observed.sets.keys() {
            self.ipset.destroy(name).await?;
            report.sets += 1;
        }
        if twin {
            self.ipset.destroy(SWAP_SET).await?;
            report.sets += 1;
        }
        Ok(report)
    }
}

/// What `--cleanup` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub tables: usize,
    pub virtual_services: usize,
    pub sets: usize,
}

/// Bookkeeping of one `apply`: which owners failed, what to skip.
#[derive(Default)]
struct Run {
    report: ApplyReport,
    node_failed: bool,
    /// The conntrack flows made stale by the UDP deletions applied.
    stale_flows: Vec<FlowFilter>,
}

impl Run {
    fn admit(&mut self, step: &Step) -> bool {
        let blocked = step
            .owner
            .as_ref()
            .is_some_and(|o| self.report.failed_owners.contains(o))
            || (self.node_failed && matches!(step.action, Action::BindAddress(_)));
        if blocked {
            self.report.skipped += 1;
            debug!(owner = ?step.owner.as_ref().map(ToString::to_string), action = ?step.action, "skipped after an earlier failure");
        }
        !blocked
    }

    fn settle(&mut self, step: &Step, outcome: kipvs_netlink::Result<()>, observed: &mut Observed) {
        match outcome {
            Ok(()) => {
                self.report.applied += 1;
                if matches!(
                    step.action,
                    Action::CreateSet { .. } | Action::ReplaceSet { .. }
                ) {
                    self.report.created_sets = true;
                }
                self.stale_flows.extend(stale_udp_flows(&step.action));
                record(observed, &step.action);
            }
            Err(error) => {
                self.report.failed += 1;
                match &step.owner {
                    Some(owner) => {
                        warn!(service = %owner, step = %step.action, %error, "failed; the service is retried on the next sync");
                        self.report.failed_owners.insert(owner.clone());
                    }
                    None => {
                        warn!(step = %step.action, %error, "failed; no address is bound until it succeeds");
                        self.node_failed = true;
                        self.report.node_wide_failed += 1;
                    }
                }
            }
        }
    }
}

/// The conntrack flows a deletion leaves stale: for a UDP virtual service,
/// all its flows (original destination = its address and port); for a UDP
/// real server, those it answered (reply source = its address and port).
fn stale_udp_flows(action: &Action) -> Option<FlowFilter> {
    const UDP: u8 = 17;
    let (key, real_server) = match action {
        Action::DeleteService(key) => (key, None),
        Action::DeleteDestination(key, addr, port) => (key, Some((*addr, *port))),
        _ => return None,
    };
    let ServiceKey::Tuple {
        addr,
        protocol: Protocol::Udp,
        port,
    } = *key
    else {
        return None;
    };
    Some(FlowFilter {
        protocol: Some(UDP),
        original_dst: Some(addr),
        original_dport: Some(port),
        reply_src: real_server.map(|(addr, _)| addr),
        reply_sport: real_server.map(|(_, port)| port),
    })
}

fn no_link() -> kipvs_netlink::Error {
    kipvs_netlink::Error::Unexpected {
        family: kipvs_netlink::Family::Route,
        kind: "NEWADDR",
        detail: format!("{DUMMY_LINK} has not been looked up yet"),
    }
}

/// A delete that finds nothing to delete has done its job.
fn not_found_is_done(error: kipvs_netlink::Error) -> kipvs_netlink::Result<()> {
    if error.class() == ErrorClass::NotFound {
        Ok(())
    } else {
        Err(error)
    }
}

/// The end of the run of steps starting at `start` that go out together.
fn batch_end(steps: &[Step], start: usize) -> usize {
    let kind = |action: &Action| match action {
        a if is_ipvs(a) => 1,
        Action::BindAddress(_) => 2,
        Action::UnbindAddress(_) => 3,
        Action::CreateSet { .. } => 4,
        _ => 0,
    };
    let first = kind(&steps[start].action);
    if first == 0 {
        return start + 1;
    }
    start
        + steps[start..]
            .iter()
            .take_while(|s| kind(&s.action) == first)
            .count()
}

fn is_ipvs(action: &Action) -> bool {
    matches!(
        action,
        Action::AddService(_)
            | Action::UpdateService(_)
            | Action::DeleteService(_)
            | Action::AddDestination(..)
            | Action::UpdateDestination(..)
            | Action::DeleteDestination(..)
    )
}

fn ipvs_change(action: &Action) -> Option<IpvsChange> {
    Some(match action {
        Action::AddService(s) => IpvsChange::AddService(s.clone()),
        Action::UpdateService(s) => IpvsChange::UpdateService(s.clone()),
        Action::DeleteService(k) => IpvsChange::DeleteService(*k),
        Action::AddDestination(k, d) => IpvsChange::AddDestination(*k, d.clone()),
        Action::UpdateDestination(k, d) => IpvsChange::UpdateDestination(*k, d.clone()),
        Action::DeleteDestination(k, a, p) => IpvsChange::DeleteDestination(*k, *a, *p),
        _ => return None,
    })
}

/// The kernel already being in the state a step asks for is success: an
/// add that finds the object (it was made outside our cache's knowledge),
/// a delete that does not.
fn benign(action: &Action) -> impl Fn(kipvs_netlink::Error) -> kipvs_netlink::Result<()> + '_ {
    move |error| {
        let add = matches!(action, Action::AddService(_) | Action::AddDestination(..));
        let delete = matches!(
            action,
            Action::DeleteService(_) | Action::DeleteDestination(..)
        );
        match error.class() {
            ErrorClass::AlreadyExists if add => Ok(()),
            ErrorClass::NotFound if delete => Ok(()),
            _ => Err(error),
        }
    }
}

fn into_kernel(error: crate::RuntimeError) -> kipvs_netlink::Error {
    match error {
        crate::RuntimeError::Kernel(e) => e,
        other => kipvs_netlink::Error::Unexpected {
            family: kipvs_netlink::Family::Ipset,
            kind: "re-read",
            detail: other.to_string(),
        },
    }
}
