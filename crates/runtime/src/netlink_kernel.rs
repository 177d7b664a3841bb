//! The real kernel, through the netlink clients: IPVS, ipset, nf_tables,
//! `kube-ipvs0`'s addresses, conntrack, and the sysctls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kipvs_netlink::{
    set_sysctl, Conntrack, Counters, ErrorClass, FlowFilter, Ipset, Ipvs, IpvsChange, Links,
    NfTables,
};
use kipvs_packet_ipset::Entry;
use kipvs_packet_ipvs::{Destination, ServiceKey};
use kipvs_packet_nftables::del_table;
use kipvs_planner::{
    is_excluded, ownership, Action, Desired, IpFamily, Observed, ObservedSet, SetId,
    VirtualServiceKey, TABLE_NAME,
};

use crate::{
    kernel::{BatchKind, Kernel, StepError},
    nft_table,
};

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
    SetId::all().map(|id| id.name().to_owned()).collect()
}

/// The kernel clients kube-ipvs uses, in the network namespace it runs in.
pub struct NetlinkKernel {
    ipvs: Ipvs,
    ipset: Ipset,
    nft: NfTables,
    links: Links,
    conntrack: Conntrack,
    counters: Counters,
    /// `kube-ipvs0`'s index, known once [`Kernel::observe`] made sure the
    /// link exists.
    link_index: Option<u32>,
}

impl NetlinkKernel {
    /// Opens every client; changes nothing in the kernel (the first
    /// [`Kernel::observe`] creates `kube-ipvs0` and sets the sysctls).
    /// Fails when IPVS is missing.
    pub async fn open(counters: Counters) -> Result<NetlinkKernel, StepError> {
        Ok(NetlinkKernel {
            ipvs: Ipvs::open(counters.clone()).await?,
            ipset: Ipset::open(counters.clone())?,
            nft: NfTables::open(counters.clone())?,
            links: Links::open(counters.clone())?,
            conntrack: Conntrack::open(counters.clone())?,
            counters,
            link_index: None,
        })
    }

    /// Our sets by the list dump (one), and whether a [`SWAP_SET`] was
    /// left behind.
    async fn list_sets(&mut self) -> Result<(BTreeMap<SetId, ObservedSet>, bool), StepError> {
        let mut sets = BTreeMap::new();
        let mut twin = false;
        for set in self.ipset.list_all().await? {
            twin |= set.name == SWAP_SET;
            if let Some(id) = SetId::from_name(&set.name) {
                sets.insert(id, ObservedSet::from_info(set));
            }
        }
        Ok((sets, twin))
    }

    /// Our `kube-ipvs` tables: a chain dump and a rule dump per family.
    /// (One dump over both families does not work for rules: with a table
    /// name, the kernel's rule dump stops after the first table of that
    /// name, `nf_tables_dump_rules()` in 6.1.) A family without chains has
    /// no table.
    async fn read_tables(&mut self, observed: &mut Observed) -> Result<(), StepError> {
        for family in IpFamily::ALL {
            let chains = self.nft.chains(family.nf_proto(), TABLE_NAME).await?;
            if !chains.is_empty() {
                let rules = self.nft.rules(family.nf_proto(), TABLE_NAME).await?;
                observed
                    .tables
                    .insert(family, nft_table::from_dump(&chains, &rules));
            }
        }
        Ok(())
    }

    /// Builds `set`'s replacement in [`SWAP_SET`] and swaps it in. The
    /// twin is destroyed whatever happens: after the swap it holds the old
    /// set, which no rule refers to any more (the kernel swaps the
    /// references along with the names).
    async fn replace_set(&mut self, set: SetId, entries: &[Entry]) -> Result<(), StepError> {
        self.ipset
            .destroy(SWAP_SET)
            .await
            .or_else(not_found_is_done)?;
        self.ipset
            .create(SWAP_SET, &set.set_type(), set.set_family(), &set.options())
            .await?;
        let swapped = match self.ipset.add(SWAP_SET, entries).await {
            Ok(()) => self.ipset.swap(SWAP_SET, set.name()).await,
            Err(error) => Err(error),
        };
        let destroyed = self.ipset.destroy(SWAP_SET).await;
        swapped?;
        Ok(destroyed?)
    }

    /// A run of actions of one kind.
    async fn execute_run(
        &mut self,
        kind: BatchKind,
        run: &[&Action],
    ) -> Vec<Result<(), StepError>> {
        match kind {
            BatchKind::Ipvs => self.ipvs_batch(run).await,
            BatchKind::Bind | BatchKind::Unbind => self.addresses(run).await,
            BatchKind::SetEntries => self.set_entries(run).await,
            BatchKind::CreateSet | BatchKind::Single => {
                let mut outcomes = Vec::with_capacity(run.len());
                for action in run {
                    outcomes.push(self.execute_one(action).await);
                }
                outcomes
            }
        }
    }

    /// One set creation or replacement, or one table.
    async fn execute_one(&mut self, action: &Action) -> Result<(), StepError> {
        match action {
            Action::CreateSet(set) => self.create_set(*set).await,
            Action::ReplaceSet { set, entries, .. } => self.replace_set(*set, entries).await,
            Action::ReplaceTable { family, table } => Ok(self
                .nft
                .apply(nft_table::replace_messages(*family, table))
                .await?),
            other => Err(StepError::WrongBatch(BatchKind::of(other))),
        }
    }

    /// Set entries added and deleted, all pipelined in one exchange.
    async fn set_entries(&mut self, run: &[&Action]) -> Vec<Result<(), StepError>> {
        let changes: Vec<Option<(bool, &str, &[Entry])>> = run
            .iter()
            .map(|action| match action {
                Action::AddSetEntries { set, entries } => Some((true, set.name(), &entries[..])),
                Action::DeleteSetEntries { set, entries } => {
                    Some((false, set.name(), &entries[..]))
                }
                _ => None,
            })
            .collect();
        let sendable: Vec<(bool, &str, &[Entry])> = changes.iter().flatten().copied().collect();
        let mut outcomes = self.ipset.adt_many(&sendable).await.into_iter();
        run.iter()
            .zip(changes)
            .map(|(action, change)| match (change, outcomes.next()) {
                (Some(_), Some(outcome)) => outcome.map_err(StepError::from),
                _ => Err(StepError::WrongBatch(BatchKind::of(action))),
            })
            .collect()
    }

    async fn create_set(&mut self, set: SetId) -> Result<(), StepError> {
        Ok(self
            .ipset
            .create(
                set.name(),
                &set.set_type(),
                set.set_family(),
                &set.options(),
            )
            .await?)
    }

    /// IPVS changes, pipelined.
    async fn ipvs_batch(&mut self, batch: &[&Action]) -> Vec<Result<(), StepError>> {
        let changes: Vec<Option<IpvsChange>> = batch.iter().map(|a| ipvs_change(a)).collect();
        let sendable: Vec<IpvsChange> = changes.iter().flatten().cloned().collect();
        let mut outcomes = self.ipvs.apply(&sendable).await.into_iter();
        batch
            .iter()
            .zip(changes)
            .map(|(action, change)| match (change, outcomes.next()) {
                (Some(_), Some(outcome)) => outcome.map_err(StepError::from),
                _ => Err(StepError::WrongBatch(BatchKind::of(action))),
            })
            .collect()
    }

    async fn addresses(&mut self, batch: &[&Action]) -> Vec<Result<(), StepError>> {
        let Some(index) = self.link_index else {
            return batch.iter().map(|_| Err(StepError::NoLink)).collect();
        };
        let (mut bind, mut unbind) = (Vec::new(), Vec::new());
        for action in batch {
            match action {
                Action::BindAddress(ip) => bind.push(*ip),
                Action::UnbindAddress(ip) => unbind.push(*ip),
                _ => {}
            }
        }
        let mut bound = self.links.add_addresses(index, &bind).await.into_iter();
        let mut unbound = self.links.del_addresses(index, &unbind).await.into_iter();
        batch
            .iter()
            .map(|action| {
                let outcome = match action {
                    Action::BindAddress(_) => bound.next(),
                    Action::UnbindAddress(_) => unbound.next(),
                    _ => None,
                };
                match outcome {
                    Some(outcome) => outcome.map_err(StepError::from),
                    None => Err(StepError::WrongBatch(BatchKind::of(action))),
                }
            })
            .collect()
    }

    /// Removes everything kube-ipvs created, and nothing else: its
    /// nf_tables tables, its IPVS services (those its sets list, but for
    /// those in `excluded`, `--ipvs-exclude-cidrs`), the link itself, then
    /// its ipsets (once no rule references them).
    pub async fn cleanup(&mut self, excluded: &[IpNet]) -> Result<CleanupReport, StepError> {
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
        let (sets, twin) = self.list_sets().await?;
        observed.sets = sets;
        let claimed = observed.claimed();
        let ours: Vec<IpvsChange> = self
            .ipvs
            .services()
            .await?
            .into_iter()
            .map(|s| VirtualServiceKey(s.key))
            .filter(|key| claimed.contains(key) && !is_excluded(excluded, key))
            .map(|key| IpvsChange::DeleteService(key.key()))
            .collect();
        for outcome in self.ipvs.apply(&ours).await {
            outcome.or_else(not_found_is_done)?;
            report.virtual_services += 1;
        }
        if let Some(index) = self.links.link_index(DUMMY_LINK).await? {
            self.links.delete_link(index).await?;
        }
        let names = observed.sets.keys().map(|id| id.name());
        for name in names.chain(twin.then_some(SWAP_SET)) {
            self.ipset.destroy(name).await?;
            report.sets += 1;
        }
        Ok(report)
    }
}

impl Kernel for NetlinkKernel {
    /// One dump per kind of object (real servers: one dump per owned
    /// virtual service, run concurrently). Only the virtual services the
    /// planner's ownership rule gives kube-ipvs are read further.
    async fn observe(&mut self, desired: &Desired) -> Result<Observed, StepError> {
        let mut took = ReadTimes::default();
        let started = Instant::now();
        for (name, value) in SYSCTLS {
            set_sysctl(name, value)?;
        }
        let link_index = self.links.ensure_dummy(DUMMY_LINK).await?;
        self.link_index = Some(link_index);
        took.link = started.elapsed();
        let started = Instant::now();
        let (sets, twin) = self.list_sets().await?;
        if twin {
            // Left by a replacement cut short after its swap: it holds the
            // old set, which nothing refers to.
            self.ipset
                .destroy(SWAP_SET)
                .await
                .or_else(not_found_is_done)?;
        }
        took.sets = started.elapsed();
        let started = Instant::now();
        let mut observed = Observed {
            addresses: self
                .links
                .addresses(link_index)
                .await?
                .into_iter()
                .collect(),
            sets,
            ..Observed::default()
        };
        took.addresses = started.elapsed();
        let started = Instant::now();
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
        let keys: Vec<ServiceKey> = services.iter().map(|s| s.key).collect();
        let destinations = self.ipvs.destinations_of(&keys).await;
        for (service, destinations) in services.into_iter().zip(destinations) {
            observed
                .virtual_services
                .insert(VirtualServiceKey(service.key), (service, destinations?));
        }
        took.ipvs = started.elapsed();
        let started = Instant::now();
        self.read_tables(&mut observed).await?;
        took.tables = started.elapsed();
        took.log(&observed);
        Ok(observed)
    }

    async fn read_sets(&mut self) -> Result<BTreeMap<SetId, ObservedSet>, StepError> {
        Ok(self.list_sets().await?.0)
    }

    async fn read_destinations(
        &mut self,
        services: &[VirtualServiceKey],
    ) -> Vec<Result<Vec<Destination>, StepError>> {
        let keys: Vec<ServiceKey> = services.iter().map(VirtualServiceKey::key).collect();
        self.ipvs
            .destinations_of(&keys)
            .await
            .into_iter()
            .map(|dump| dump.map_err(StepError::from))
            .collect()
    }

    /// Runs of one kind go out together; a batch holding several kinds
    /// (the runtime never sends one) is cut into such runs.
    async fn execute(&mut self, batch: &[&Action]) -> Vec<Result<(), StepError>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut rest = batch;
        while let Some(first) = rest.first() {
            let kind = BatchKind::of(first);
            let len = rest.iter().take_while(|a| BatchKind::of(a) == kind).count();
            let (run, later) = rest.split_at(len);
            outcomes.extend(self.execute_run(kind, run).await);
            rest = later;
        }
        outcomes
    }

    /// One conntrack dump per family that has filters.
    async fn delete_flows(&mut self, filters: &[FlowFilter]) -> Result<usize, StepError> {
        let mut deleted = 0;
        for ipv6 in [false, true] {
            let of_family: Vec<FlowFilter> = filters
                .iter()
                .filter(|f| f.original_dst.is_some_and(|a| a.is_ipv6() == ipv6))
                .copied()
                .collect();
            if !of_family.is_empty() {
                deleted += self.conntrack.delete_matching_any(ipv6, &of_family).await?;
            }
        }
        Ok(deleted)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// What `--cleanup` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub tables: usize,
    pub virtual_services: usize,
    pub sets: usize,
}

/// A delete that finds nothing to delete has done its job.
fn not_found_is_done(error: kipvs_netlink::Error) -> kipvs_netlink::Result<()> {
    if error.class() == ErrorClass::NotFound {
        Ok(())
    } else {
        Err(error)
    }
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

/// Where a full read of the kernel spent its time, logged once per read:
/// what an operator (and `make bench`) compares with `ipvsadm -Sn`,
/// `ipset list` and `ip addr show` when a resync is slow.
#[derive(Debug, Default)]
struct ReadTimes {
    /// The sysctls and the dummy link.
    link: Duration,
    sets: Duration,
    addresses: Duration,
    /// Virtual services and every one's real servers.
    ipvs: Duration,
    tables: Duration,
}

impl ReadTimes {
    fn log(&self, observed: &Observed) {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            ipvs_ms = millis(self.ipvs),
            sets_ms = millis(self.sets),
            addresses_ms = millis(self.addresses),
            tables_ms = millis(self.tables),
            link_ms = millis(self.link),
            virtual_services = observed.virtual_services.len(),
            "kernel read back"
        );
    }
}
