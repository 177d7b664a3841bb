//! One sync: desired state from a snapshot, planned against a cached view
//! of the kernel (read back on full resyncs), applied through a
//! [`Kernel`].

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use kipvs_cluster::Snapshot;
use kipvs_netlink::{Counters, CountersSnapshot};
use kipvs_planner::{
    conflicts, desired, draining, draining_in, plan_scoped, retiring, retiring_in, Desired, Dirty,
    HealthCheck, NodeConfig, Observed, Scope, VirtualServiceKey, Warning,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::changed_services::{changed_services, objects_of};
use crate::sync_summary::{real_servers_in, Drift, KernelErrors, Ownership, SyncSummary};
use crate::{
    apply_plan::apply_plan, drain::Drain, kernel::Kernel, netlink_kernel::NetlinkKernel, Result,
};

/// How the loop paces itself (kube-proxy's flags of the same names).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub node: NodeConfig,
    /// `--sync-period`: the full resync that also repairs drift.
    pub sync_period: Duration,
    /// `--min-sync-period`: the shortest time between two syncs.
    pub min_sync_period: Duration,
    /// `--ipvs-graceful-period`: the longest a removed TCP real server
    /// drains at weight 0 before it is deleted with connections left.
    pub graceful_period: Duration,
}

/// What one sync did, for the log line and for tests.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub full: bool,
    pub steps: usize,
    pub failed: usize,
    /// Steps not attempted because an earlier step of their service failed.
    pub skipped: usize,
    /// Failed steps that belong to no service (see
    /// [`crate::ApplyReport::node_wide_failed`]).
    pub node_wide_failed: usize,
    pub messages: CountersSnapshot,
    /// Real servers draining at weight 0 after this sync.
    pub draining: usize,
    /// Conntrack flows deleted after UDP real servers or services went.
    pub conntrack_deleted: usize,
    /// The virtual services the plan looked at: all of them, or (when only
    /// a few services changed) those the change touched and those whose
    /// real servers drain.
    pub services_planned: usize,
    /// Time spent reading the kernel: the full read-back, or the counters
    /// refreshed between full reads.
    pub read: Duration,
    /// The health-check node ports the desired state asks for.
    pub health_checks: BTreeMap<u16, HealthCheck>,
    /// What is programmed after this sync (for the metrics).
    pub summary: SyncSummary,
    pub kernel_errors: KernelErrors,
}

/// Plans and applies against a cached view of the kernel.
pub struct Syncer<K> {
    config: SyncConfig,
    kernel: K,
    observed: Option<Observed>,
    /// An apply found the kernel ahead of the cache (an add that already
    /// existed): the next sync reads the kernel back.
    observed_stale: bool,
    last_full: Instant,
    warnings: BTreeSet<Warning>,
    /// Real servers draining at weight 0, and since when.
    drain: Drain,
    /// The node's addresses (see [`NodeConfig::local_addresses`]), as the
    /// runtime last read them.
    local_addresses: BTreeSet<IpAddr>,
    /// The last sync's desired state and what it came from.
    previous: Option<Previous>,
    /// A step of the last plan failed or was skipped: the next plan looks
    /// at everything again, not only at what changed.
    replan_all: bool,
    /// What the last full read found changed behind the cache's back.
    drift: Drift,
    /// Which service port each programmed virtual service serves.
    ownership: Ownership,
    /// The real servers in `observed`.
    real_servers: usize,
}

/// The desired state of the last sync, with the snapshot and node config
/// it was computed from: the next sync folds in only the services that
/// changed since.
struct Previous {
    snapshot: Arc<Snapshot>,
    node: NodeConfig,
    desired: Desired,
}

impl Syncer<NetlinkKernel> {
    /// On the real kernel of this network namespace.
    pub async fn open(config: SyncConfig, counters: Counters) -> Result<Self> {
        Ok(Syncer::new(config, NetlinkKernel::open(counters).await?))
    }
}

impl<K: Kernel> Syncer<K> {
    pub fn new(config: SyncConfig, kernel: K) -> Self {
        Syncer {
            drain: Drain::new(config.graceful_period, Instant::now()),
            config,
            kernel,
            observed: None,
            observed_stale: false,
            last_full: Instant::now(),
            warnings: BTreeSet::new(),
            local_addresses: BTreeSet::new(),
            previous: None,
            replan_all: false,
            drift: Drift::default(),
            ownership: Ownership::default(),
            real_servers: 0,
        }
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The node's current addresses; the next sync plans node ports on
    /// them.
    pub fn set_local_addresses(&mut self, addresses: BTreeSet<IpAddr>) {
        self.local_addresses = addresses;
    }

    /// The node config for `snapshot`: the flags, this node's Node object
    /// (zone, primary addresses) and its current addresses.
    fn node_config(&self, snapshot: &Snapshot) -> NodeConfig {
        let mut node = self.config.node.with_node(snapshot.node().map(|n| &**n));
        node.local_addresses = self.local_addresses.clone();
        node
    }

    pub fn due_for_full_resync(&self) -> bool {
        self.observed.is_none() || self.last_full.elapsed() >= self.config.sync_period
    }

    pub fn force_full_resync(&mut self) {
        self.observed = None;
    }

    pub(crate) fn next_full_resync(&self) -> Instant {
        self.last_full + self.config.sync_period
    }

    /// When the syncer must run again although the cluster did not change:
    /// real servers are draining and their connection counters must be
    /// re-read (every 5 s), or a grace ends. The loop calls
    /// `sync(&snapshot, false)` at that instant. `None` when nothing
    /// drains.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.drain.next_wakeup()
    }

    /// One sync: desired state from the snapshot, the kernel read back if
    /// `full` (or nothing is cached, or the cache fell behind), the plan
    /// applied.
    pub async fn sync(&mut self, snapshot: &Arc<Snapshot>, full: bool) -> Result<SyncOutcome> {
        let started = Instant::now();
        let before = self.kernel.counters().snapshot();
        let node = self.node_config(snapshot);
        let full = full || self.observed.is_none() || std::mem::take(&mut self.observed_stale);
        let (desired, mut dirty) = self.desired_for(snapshot, &node, full);
        // A real server drains or retires only where one drained before or
        // where this change touches.
        if let Some(dirty) = &mut dirty {
            dirty.virtual_services.extend(self.drain.services());
        }
        let touched = dirty.as_ref().map(|d| d.virtual_services.clone());
        // Only the touched virtual services' real servers can change (the
        // counters refresh and the scoped plan stay within them).
        let untouched_real_servers = touched.as_ref().map(|keys| {
            let before = real_servers_in(self.observed.as_ref(), Some(keys));
            self.real_servers.saturating_sub(before)
        });
        let reading = Instant::now();
        let observed = if full {
            self.read_back(&desired).await?
        } else {
            let watched = dirty.as_ref().map(|d| &d.virtual_services);
            self.refresh_counters(&desired, watched).await?
        };
        let read = reading.elapsed();
        let mut warnings = desired.warnings.clone();
        warnings.extend(conflicts(&desired, observed));
        self.log_new_warnings(&warnings);
        let mut outcome = self.plan_and_apply(&desired, dirty).await;
        outcome.full = full;
        outcome.read = read;
        outcome.messages = self.kernel.counters().snapshot().since(&before);
        outcome.draining = self.drain.len();
        log_sync(&outcome, desired.virtual_services.len(), started.elapsed());
        let drift = std::mem::take(&mut self.drift);
        self.ownership = self.ownership.updated(&desired, touched.as_ref());
        let now = real_servers_in(self.observed.as_ref(), touched.as_ref());
        self.real_servers = untouched_real_servers.map_or(now, |n| n.saturating_add(now));
        outcome.summary = SyncSummary::of(
            &desired,
            self.observed.as_ref(),
            drift,
            &self.ownership,
            self.real_servers,
        );
        outcome.health_checks = desired.health_checks.clone();
        self.previous = Some(Previous {
            snapshot: Arc::clone(snapshot),
            node,
            desired,
        });
        Ok(outcome)
    }

    /// The desired state for `snapshot`: the previous one with the changed
    /// services folded in, when that gives exactly what a computation from
    /// scratch would, and there is no reason to look at everything (a full
    /// resync, a failed step, another node config); else computed whole.
    /// With `Some(dirty)`, only what `dirty` names can need kernel work.
    fn desired_for(
        &mut self,
        snapshot: &Arc<Snapshot>,
        node: &NodeConfig,
        full: bool,
    ) -> (Desired, Option<Dirty>) {
        let incremental = !full && !self.replan_all;
        if let Some(mut previous) = self
            .previous
            .take()
            .filter(|p| incremental && p.node == *node)
        {
            let changed = changed_services(&previous.snapshot, snapshot);
            let (services, slices) = objects_of(snapshot, &changed);
            if let Some(dirty) = previous.desired.update(&services, &slices, node, &changed) {
                debug!(changed = changed.len(), "desired state updated in place");
                return (previous.desired, Some(dirty));
            }
        }
        let desired = desired(snapshot.services(), snapshot.endpoint_slices(), node);
        (desired, None)
    }

    /// A full read of the kernel into the cache.
    async fn read_back(&mut self, desired: &Desired) -> Result<&Observed> {
        // The counters count as read when the reading starts: one that
        // fails is retried with the next refresh (or the loop's backoff),
        // not in a busy loop of wake-ups.
        self.drain.counters_read(Instant::now());
        let observed = self.kernel.observe(desired).await?;
        self.drift = Drift::between(self.observed.as_ref(), &observed);
        self.last_full = Instant::now();
        Ok(self.observed.insert(observed))
    }

    /// Between full reads, fresh connection counters where they decide
    /// something: the virtual services about to retire a real server, and
    /// (every 5 s) those with draining ones. Nothing else is read.
    /// `watched`: the only virtual services where a real server can
    /// retire (see [`Syncer::sync`]); `None`: any.
    async fn refresh_counters(
        &mut self,
        desired: &Desired,
        watched: Option<&BTreeSet<VirtualServiceKey>>,
    ) -> Result<&Observed> {
        let observed = self.observed.get_or_insert_with(Observed::default);
        let mut services = match watched {
            Some(keys) => retiring_in(desired, observed, keys),
            None => retiring(desired, observed),
        };
        if self.drain.refresh_due(Instant::now()) {
            self.drain.counters_read(Instant::now());
            services.extend(self.drain.services());
        }
        if !services.is_empty() {
            refresh_destinations(&mut self.kernel, &services, observed).await?;
        }
        Ok(observed)
    }

    /// Plans and applies, twice at most: creating sets gives them kernel
    /// indexes, and only then can the table that references them be
    /// planned. Then records what drains, read off the cache the plan was
    /// applied to.
    ///
    /// With `dirty`, the plan looks only at what it names (see
    /// [`Scope::Only`]), the draining virtual services among it.
    async fn plan_and_apply(&mut self, desired: &Desired, dirty: Option<Dirty>) -> SyncOutcome {
        let mut outcome = SyncOutcome::default();
        let observed = self.observed.get_or_insert_with(Observed::default);
        let expired = self.drain.expired(Instant::now());
        outcome.services_planned = dirty
            .as_ref()
            .map_or(desired.virtual_services.len(), |d| d.virtual_services.len());
        for _ in 0..2 {
            let scope = dirty.as_ref().map_or(Scope::All, Scope::Only);
            let plan = plan_scoped(desired, observed, &expired, scope);
            if plan.steps.is_empty() {
                break;
            }
            for step in &plan.steps {
                debug!(%step, "planned");
            }
            let report = apply_plan(&mut self.kernel, &plan, observed).await;
            outcome.steps += plan.steps.len();
            outcome.failed += report.failed;
            outcome.skipped += report.skipped;
            outcome.node_wide_failed += report.node_wide_failed;
            outcome.conntrack_deleted += report.conntrack_deleted;
            outcome.kernel_errors.add(&report.kernel_errors);
            // The kernel was not where the cache said: read everything
            // back on the next sync.
            self.observed_stale |= report.drift_seen;
            if !report.created_sets {
                break;
            }
        }
        self.replan_all = outcome.failed > 0 || outcome.skipped > 0 || outcome.node_wide_failed > 0;
        let draining = match &dirty {
            Some(dirty) => draining_in(desired, observed, &dirty.virtual_services),
            None => draining(desired, observed),
        };
        self.drain.update(draining, Instant::now());
        outcome
    }

    /// Each problem with a cluster object is logged once, when it appears.
    fn log_new_warnings(&mut self, warnings: &[Warning]) {
        let current: BTreeSet<Warning> = warnings.iter().cloned().collect();
        for warning in current.difference(&self.warnings) {
            warn!(object = %warning.object, reason = %warning.reason, "skipped");
        }
        self.warnings = current;
    }

    pub fn kernel(&mut self) -> &mut K {
        &mut self.kernel
    }
}

/// One info line per sync that did something (or read the kernel back).
fn log_sync(outcome: &SyncOutcome, virtual_services: usize, elapsed: Duration) {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let elapsed_ms = millis(elapsed);
    if outcome.steps > 0 || outcome.full {
        info!(
            full = outcome.full,
            steps = outcome.steps,
            failed = outcome.failed,
            messages_sent = outcome.messages.sent_all(),
            draining = outcome.draining,
            conntrack_deleted = outcome.conntrack_deleted,
            virtual_services,
            elapsed_ms,
            read_ms = millis(outcome.read),
            "sync"
        );
    } else {
        debug!(elapsed_ms, "sync: nothing to do");
    }
}

/// Reads the real servers of `services` again into the cache: the
/// connection counters of draining real servers, without a full resync.
async fn refresh_destinations<K: Kernel>(
    kernel: &mut K,
    services: &BTreeSet<VirtualServiceKey>,
    observed: &mut Observed,
) -> Result<()> {
    let keys: Vec<VirtualServiceKey> = services.iter().copied().collect();
    let dumps = kernel.read_destinations(&keys).await;
    for (key, destinations) in keys.iter().zip(dumps) {
        let destinations = destinations?;
        if let Some((_, cached)) = observed.virtual_services.get_mut(key) {
            *cached = destinations;
        }
    }
    Ok(())
}
