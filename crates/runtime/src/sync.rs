//! The sync loop: wait for a change (or the periodic resync), plan, apply.
//!
//! - No sync happens before the first complete snapshot, so a half-read
//!   cluster never deletes rules.
//! - Bursts of changes are coalesced: after a sync, the next one starts no
//!   sooner than `min_sync_period` later, and then sees every change since.
//! - Between full resyncs the kernel state is a cache kept in step with
//!   what was applied: a sync with no change reads and writes nothing.
//! - Every `sync_period` a full resync reads the kernel back (repairing
//!   drift: a deleted virtual service, a flushed set, a removed address or
//!   table); after a failure the next full resync comes sooner, backing off.

use std::{collections::BTreeSet, future::Future, sync::Arc, time::Duration};

use kipvs_cluster::{Snapshot, SnapshotReceiver};
use kipvs_netlink::{Counters, CountersSnapshot};
use kipvs_planner::{desired, plan, NodeConfig, Observed, Warning};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use crate::{dataplane::Dataplane, Result, RuntimeError};

/// How the loop paces itself (kube-proxy's flags of the same names).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub node: NodeConfig,
    /// `--sync-period`: the full resync that also repairs drift.
    pub sync_period: Duration,
    /// `--min-sync-period`: the shortest time between two syncs.
    pub min_sync_period: Duration,
}

/// What one sync did, for the log line and for tests.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub full: bool,
    pub steps: usize,
    pub failed: usize,
    pub messages: CountersSnapshot,
}

/// The first retry after a failed sync; doubles up to `sync_period`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown` completes (SIGTERM), leaving the kernel state in
/// place so traffic keeps flowing across a restart.
pub async fn run(
    config: SyncConfig,
    mut snapshots: SnapshotReceiver,
    counters: Counters,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut snapshot = loop {
        if let Some(snapshot) = snapshots.borrow_and_update().clone() {
            break snapshot;
        }
        tokio::select! {
            changed = snapshots.changed() => changed.map_err(|_| RuntimeError::SourceStopped)?,
            () = &mut shutdown => return Ok(()),
        }
    };
    info!(node = %config.node.node_name, "initial cluster state read; starting to sync");
    let mut syncer = Syncer::open(config.clone(), counters).await?;
    let mut retry = FIRST_RETRY;
    loop {
        let started = Instant::now();
        let full = syncer.due_for_full_resync();
        // A sync that cannot read the kernel back (a dump lost to ENOBUFS, a
        // sysctl that cannot be written) is retried like a failed step: the
        // daemon keeps running and the kernel keeps its last good state.
        let failed = match syncer.sync(&snapshot, full).await {
            Ok(outcome) => outcome.failed,
            Err(error) => {
                warn!(%error, "sync failed; retrying with a full resync");
                1
            }
        };
        let next_full = if failed > 0 {
            let at = started + retry;
            retry = (retry * 2).min(config.sync_period);
            syncer.force_full_resync();
            at
        } else {
            retry = FIRST_RETRY;
            syncer.next_full_resync()
        };
        tokio::select! {
            () = &mut shutdown => {
                info!("shutting down; the kernel state stays in place");
                return Ok(());
            }
            changed = snapshots.changed() => {
                changed.map_err(|_| RuntimeError::SourceStopped)?;
                // Coalesce: no sync sooner than min_sync_period after the
                // last one started; SIGTERM still ends the wait.
                tokio::select! {
                    () = sleep_until(started + config.min_sync_period) => {}
                    () = &mut shutdown => {
                        info!("shutting down; the kernel state stays in place");
                        return Ok(());
                    }
                }
            }
            () = sleep_until(next_full) => {}
        }
        if let Some(latest) = snapshots.borrow_and_update().clone() {
            snapshot = latest;
        }
    }
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
}

impl Syncer {
    pub async fn open(config: SyncConfig, counters: Counters) -> Result<Syncer> {
        Ok(Syncer {
            config,
            dataplane: Dataplane::open(counters).await?,
            observed: None,
            observed_stale: false,
            last_full: Instant::now(),
            warnings: BTreeSet::new(),
        })
    }

    pub fn due_for_full_resync(&self) -> bool {
        self.observed.is_none() || self.last_full.elapsed() >= self.config.sync_period
    }

    pub fn force_full_resync(&mut self) {
        self.observed = None;
    }

    fn next_full_resync(&self) -> Instant {
        self.last_full + self.config.sync_period
    }

    /// One sync: desired state from the snapshot, the kernel read back if
    /// `full` (or nothing is cached), the plan applied.
    pub async fn sync(&mut self, snapshot: &Arc<Snapshot>, full: bool) -> Result<SyncOutcome> {
        let started = Instant::now();
        let before = self.dataplane.counters().snapshot();
        let desired = desired(
            &snapshot.services,
            &snapshot.endpoint_slices,
            &self.config.node,
        );
        self.log_new_warnings(&desired.warnings);
        let full = full || self.observed.is_none() || std::mem::take(&mut self.observed_stale);
        if full {
            self.observed = Some(self.dataplane.observe(&desired.addresses).await?);
            self.last_full = Instant::now();
        }
        let observed = self.observed.as_mut().expect("observed above");
        let mut steps = 0;
        let mut failed = 0;
        // Twice at most: creating sets gives them kernel indexes, and only
        // then can the table that references them be planned.
        for _ in 0..2 {
            let plan = plan(&desired, observed);
            if plan.steps.is_empty() {
                break;
            }
            for step in &plan.steps {
                debug!(%step, "planned");
            }
            let report = self.dataplane.apply(&plan, observed).await;
            steps += plan.steps.len();
            failed += report.failed;
            if report.drift_seen {
                // The kernel held something the cache did not know about:
                // read everything back on the next sync.
                self.observed_stale = true;
            }
            if !report.created_sets {
                break;
            }
        }
        let messages = self.dataplane.counters().snapshot().since(&before);
        let elapsed = started.elapsed();
        if steps > 0 || full {
            info!(
                full,
                steps,
                failed,
                messages_sent = messages.sent_all(),
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
            messages,
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
