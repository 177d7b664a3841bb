//! One sync: desired state from a snapshot, planned against a cached view
//! of the kernel (read back on full resyncs), applied.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use kipvs_cluster::Snapshot;
use kipvs_netlink::{Counters, CountersSnapshot};
use kipvs_planner::{
    conflicts, desired, draining, plan, retiring, HealthCheck, NodeConfig, Observed, Warning,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::{dataplane::Dataplane, drain::Drain, Result};

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
    /// Failed steps that belong to no service (see
    /// [`crate::ApplyReport::node_wide_failed`]).
    pub node_wide_failed: usize,
    pub messages: CountersSnapshot,
    /// Real servers draining at weight 0 after this sync.
    pub draining: usize,
    /// Conntrack flows deleted after UDP real servers or services went.
    pub conntrack_deleted: usize,
    /// The health-check node ports the desired state asks for.
    pub health_checks: BTreeMap<u16, HealthCheck>,
}

/// Plans and applies against a cached view of the kernel.
pub struct Syncer {
    config: SyncConfig,
    dataplane: Dataplane,
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
}

impl Syncer {
    pub async fn open(config: SyncConfig, counters: Counters) -> Result<Syncer> {
        Ok(Syncer {
            drain: Drain::new(config.graceful_period, Instant::now()),
            config,
            dataplane: Dataplane::open(counters).await?,
            observed: None,
            observed_stale: false,
            last_full: Instant::now(),
            warnings: BTreeSet::new(),
            local_addresses: BTreeSet::new(),
        })
    }

    /// The node's current addresses; the next sync plans node ports on
    /// them.
    pub fn set_local_addresses(&mut self, addresses: BTreeSet<IpAddr>) {
        self.local_addresses = addresses;
    }

    /// The node config for `snapshot`: the flags, this node's Node object
    /// (zone, primary addresses) and its current addresses.
    fn node_config(&self, snapshot: &Snapshot) -> NodeConfig {
        let mut node = self.config.node.with_node(snapshot.node.as_deref());
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
    /// `full` (or nothing is cached), the plan applied.
    pub async fn sync(&mut self, snapshot: &Arc<Snapshot>, full: bool) -> Result<SyncOutcome> {
        let started = Instant::now();
        let before = self.dataplane.counters().snapshot();
        let node = self.node_config(snapshot);
        let desired = desired(&snapshot.services, &snapshot.endpoint_slices, &node);
        let full = full || self.observed.is_none() || std::mem::take(&mut self.observed_stale);
        // The counters count as read when the reading starts: one that
        // fails is retried with the next refresh (or the loop's backoff),
        // not in a busy loop of wake-ups.
        if full {
            self.drain.counters_read(Instant::now());
            self.observed = Some(self.dataplane.observe(&desired).await?);
            self.last_full = Instant::now();
        }
        let mut warnings = desired.warnings.clone();
        if let Some(observed) = &self.observed {
            warnings.extend(conflicts(&desired, observed));
        }
        self.log_new_warnings(&warnings);
        let observed = self.observed.as_mut().expect("observed above");
        if !full {
            // Fresh connection counters where they decide something: the
            // virtual services about to retire a real server, and (every
            // 5 s) those with draining ones. Nothing else is read.
            let mut services = retiring(&desired, observed);
            if self.drain.refresh_due(Instant::now()) {
                self.drain.counters_read(Instant::now());
                services.extend(self.drain.services());
            }
            if !services.is_empty() {
                self.dataplane
                    .refresh_destinations(&services, observed)
                    .await?;
            }
        }
        let expired = self.drain.expired(Instant::now());
        let mut steps = 0;
        let mut failed = 0;
        let mut node_wide_failed = 0;
        let mut conntrack_deleted = 0;
        // Twice at most: creating sets gives them kernel indexes, and only
        // then can the table that references them be planned.
        for _ in 0..2 {
            let plan = plan(&desired, observed, &expired);
            if plan.steps.is_empty() {
                break;
            }
            for step in &plan.steps {
                debug!(%step, "planned");
            }
            let report = self.dataplane.apply(&plan, observed).await;
            steps += plan.steps.len();
            failed += report.failed;
            node_wide_failed += report.node_wide_failed;
            conntrack_deleted += report.conntrack_deleted;
            if report.drift_seen {
                // The kernel held something the cache did not know about:
                // read everything back on the next sync.
                self.observed_stale = true;
            }
            if !report.created_sets {
                break;
            }
        }
        // What drains now, read off the cache the plan was applied to.
        self.drain
            .update(draining(&desired, observed), Instant::now());
        let messages = self.dataplane.counters().snapshot().since(&before);
        let elapsed = started.elapsed();
        if steps > 0 || full {
            info!(
                full,
                steps,
                failed,
                messages_sent = messages.sent_all(),
                draining = self.drain.len(),
                conntrack_deleted,
                virtual_services = desired.virtual_services.len(),
                elapsed_ms = elapsed.as_millis() as u64,
                "sync"
            );
        } else {
            debug!(
                elapsed_ms = elapsed.as_millis() as u64,
                "sync: nothing to do"
            );
        }
        Ok(SyncOutcome {
            full,
            steps,
            failed,
            node_wide_failed,
            messages,
            draining: self.drain.len(),
            conntrack_deleted,
            health_checks: desired.health_checks,
        })
    }

    /// Each problem with a cluster object is logged once, when it appears.
    fn log_new_warnings(&mut self, warnings: &[Warning]) {
        let current: BTreeSet<Warning> = warnings.iter().cloned().collect();
        for warning in current.difference(&self.warnings) {
            warn!(object = %warning.object, reason = %warning.reason, "skipped");
        }
        self.warnings = current;
    }

    pub fn dataplane(&mut self) -> &mut Dataplane {
        &mut self.dataplane
    }
}
