//! The sync loop: wait for a change (or the periodic resync), plan, apply.
//!
//! - No sync happens before the first complete snapshot, so a half-read
//!   cluster never deletes rules.
//! - A change is a new snapshot or a change of the node's addresses
//!   (rtnetlink notifications, see [`NodeAddresses`]).
//! - Bursts of changes are coalesced: after a sync, the next one starts no
//!   sooner than `min_sync_period` later, and then sees every change since.
//! - Between full resyncs the kernel state is a cache kept in step with
//!   what was applied: a sync with no change reads and writes nothing.
//! - Every `sync_period` a full resync reads the kernel back (repairing
//!   drift: a deleted virtual service, a flushed set, a removed address or
//!   table); after a failure the next full resync comes sooner, backing off.
//! - While real servers drain, the syncer asks to run again at a given
//!   instant ([`Syncer::next_wakeup`]) to re-read their connections.
//! - After each sync the health-check node ports are made to match the
//!   desired state, and the proxy's health is reported ([`ProxyHealth`]).
//!   Only a node-wide failure counts against it: one service the kernel
//!   refuses (a scheduler whose module is missing) is retried, but does
//!   not make load balancers drain the node for every other service.

use std::{
    collections::BTreeSet, future::Future, net::IpAddr, pin::Pin, sync::Arc, time::Duration,
};

use kipvs_cluster::{Snapshot, SnapshotReceiver};
use kipvs_netlink::Counters;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use crate::{
    backoff::Backoff,
    health::ProxyHealth,
    health_check::HealthCheckServers,
    kernel::Kernel,
    metrics::Metrics,
    node_addresses::NodeAddresses,
    sync::{SyncConfig, SyncOutcome, Syncer},
    Result, RuntimeError,
};

/// The first retry after a failed sync; doubles up to `sync_period`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Where the node's addresses come from ([`NodeAddresses`] on a real
/// node): node ports are served on them.
#[allow(async_fn_in_trait)]
pub trait AddressSource {
    /// The addresses as last known.
    fn current(&mut self) -> BTreeSet<IpAddr>;
    /// Completes when they changed.
    async fn changed(&mut self);
    /// Called before each full resync (a source without notifications
    /// re-reads them then).
    async fn before_full_resync(&mut self);
}

impl AddressSource for NodeAddresses {
    fn current(&mut self) -> BTreeSet<IpAddr> {
        NodeAddresses::current(self)
    }

    async fn changed(&mut self) {
        NodeAddresses::changed(self).await
    }

    async fn before_full_resync(&mut self) {
        NodeAddresses::before_full_resync(self).await
    }
}

/// Runs until `shutdown` completes (SIGTERM), leaving the kernel state in
/// place so traffic keeps flowing across a restart. `health` is where the
/// loop reports its progress (read by `/healthz` and the health-check node
/// ports) and `metrics` what it did. On the real kernel of this network
/// namespace, opened once the first complete snapshot is there.
pub async fn run(
    config: SyncConfig,
    health: ProxyHealth,
    metrics: Metrics,
    mut snapshots: SnapshotReceiver,
    counters: Counters,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    health.queued();
    metrics.queued(None);
    let Some(snapshot) = first_snapshot(&mut snapshots, shutdown.as_mut()).await? else {
        return Ok(());
    };
    info!(node = %config.node.node_name, "initial cluster state read; starting to sync");
    let addresses = NodeAddresses::start(counters.clone()).await?;
    let syncer = Syncer::open(config, counters).await?;
    let observers = Observers { health, metrics };
    sync_forever(syncer, addresses, observers, snapshot, snapshots, shutdown).await
}

/// [`run`] on any kernel and address source (the in-memory kernel in
/// tests).
pub async fn run_with<K: Kernel>(
    mut syncer: Syncer<K>,
    addresses: impl AddressSource,
    health: ProxyHealth,
    snapshots: SnapshotReceiver,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let metrics = Metrics::new(syncer.kernel().counters().clone());
    run_with_metrics(syncer, addresses, health, metrics, snapshots, shutdown).await
}

/// [`run_with`], recording into `metrics`.
pub async fn run_with_metrics<K: Kernel>(
    syncer: Syncer<K>,
    addresses: impl AddressSource,
    health: ProxyHealth,
    metrics: Metrics,
    mut snapshots: SnapshotReceiver,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    health.queued();
    metrics.queued(None);
    let Some(snapshot) = first_snapshot(&mut snapshots, shutdown.as_mut()).await? else {
        return Ok(());
    };
    let observers = Observers { health, metrics };
    sync_forever(syncer, addresses, observers, snapshot, snapshots, shutdown).await
}

/// Who hears about the loop's progress: the proxy's health and the
/// metrics.
struct Observers {
    health: ProxyHealth,
    metrics: Metrics,
}

impl Observers {
    /// A change arrived that a sync must apply.
    fn queued(&self, latest: Option<&Snapshot>) {
        self.health.queued();
        self.metrics.queued(latest);
    }
}

/// The first complete snapshot; `None` when `shutdown` came first. No
/// sync happens before it, so a half-read cluster never deletes rules (the
/// initial cluster state counts as a queued change meanwhile).
async fn first_snapshot(
    snapshots: &mut SnapshotReceiver,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Arc<Snapshot>>> {
    loop {
        if let Some(snapshot) = snapshots.borrow_and_update().clone() {
            return Ok(Some(snapshot));
        }
        tokio::select! {
            changed = snapshots.changed() => changed.map_err(|_| RuntimeError::SourceStopped)?,
            () = shutdown.as_mut() => return Ok(None),
        }
    }
}

/// The loop itself (see the module docs).
async fn sync_forever<K: Kernel>(
    mut syncer: Syncer<K>,
    mut addresses: impl AddressSource,
    observers: Observers,
    mut snapshot: Arc<Snapshot>,
    mut snapshots: SnapshotReceiver,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<()> {
    let config = syncer.config().clone();
    let Observers { health, metrics } = &observers;
    let mut health_checks = HealthCheckServers::new(health.clone());
    let retry = Backoff {
        first: FIRST_RETRY,
        last: config.sync_period.max(FIRST_RETRY),
    };
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let full = syncer.due_for_full_resync();
        if full {
            addresses.before_full_resync().await;
        }
        syncer.set_local_addresses(addresses.current());
        health.observe_node(&snapshot);
        // A sync that cannot read the kernel back (a dump lost to ENOBUFS, a
        // sysctl that cannot be written) is retried like a failed step: the
        // daemon keeps running and the kernel keeps its last good state.
        let synced = syncer.sync(&snapshot, full).await;
        let result = match &synced {
            Ok(outcome) => {
                health_checks.update(&outcome.health_checks).await;
                SyncResult::of(outcome)
            }
            Err(error) => {
                warn!(%error, "sync failed; retrying with a full resync");
                SyncResult::NodeFailed
            }
        };
        metrics.record_sync(&synced, &snapshot, started.elapsed(), result.healthy());
        if result.healthy() {
            health.updated();
        }
        let next_full = if result.retry() {
            failures = failures.saturating_add(1);
            syncer.force_full_resync();
            started + retry.after(failures)
        } else {
            failures = 0;
            syncer.next_full_resync()
        };
        // Coalesce changes: no sync sooner than min_sync_period after the
        // last one started.
        let coalesce_until = started + config.min_sync_period;
        tokio::select! {
            () = shutdown.as_mut() => return stopping(),
            changed = snapshots.changed() => {
                changed.map_err(|_| RuntimeError::SourceStopped)?;
                observers.queued(snapshots.borrow().as_deref());
                if !wait_or_stop(coalesce_until, shutdown.as_mut()).await {
                    return stopping();
                }
            }
            () = addresses.changed() => {
                observers.queued(None);
                if !wait_or_stop(coalesce_until, shutdown.as_mut()).await {
                    return stopping();
                }
            }
            () = sleep_until(next_full) => {}
            () = sleep_until_some(syncer.next_wakeup()) => {}
        }
        if let Some(latest) = snapshots.borrow_and_update().clone() {
            snapshot = latest;
        }
    }
}

/// What a sync's failures mean for the loop and for the proxy's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncResult {
    /// Everything planned was applied.
    Applied,
    /// Steps of some services failed (each logged with its service): those
    /// services are retried with backoff, but everything else is in place,
    /// so the proxy stays healthy. Otherwise one service the kernel always
    /// refuses would turn `/healthz` and every health-check node port to
    /// 503, and load balancers would drain the node for all its services.
    ServicesFailed,
    /// The sync could not run (the kernel could not be read back, a sysctl
    /// could not be written) or a step no single service owns failed (a
    /// set, the nftables table, an address): the node as a whole is not
    /// programmed, which is what proxy health reports.
    NodeFailed,
}

impl SyncResult {
    fn of(outcome: &SyncOutcome) -> SyncResult {
        if outcome.node_wide_failed > 0 {
            SyncResult::NodeFailed
        } else if outcome.failed > 0 {
            SyncResult::ServicesFailed
        } else {
            SyncResult::Applied
        }
    }

    /// Whether the next sync comes early (with backoff) and reads the
    /// kernel back.
    fn retry(self) -> bool {
        self != SyncResult::Applied
    }

    /// Whether the queued changes count as applied for the proxy's health.
    fn healthy(self) -> bool {
        self != SyncResult::NodeFailed
    }
}

/// SIGTERM: stop syncing, leave the kernel as it is.
fn stopping() -> Result<()> {
    info!("shutting down; the kernel state stays in place");
    Ok(())
}

/// Sleeps until `until`; false if `shutdown` came first.
async fn wait_or_stop(until: Instant, shutdown: Pin<&mut impl Future<Output = ()>>) -> bool {
    tokio::select! {
        () = sleep_until(until) => true,
        () = shutdown => false,
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(failed: usize, node_wide_failed: usize) -> SyncOutcome {
        SyncOutcome {
            steps: 10,
            failed,
            node_wide_failed,
            ..SyncOutcome::default()
        }
    }

    #[test]
    fn only_node_wide_failures_count_against_proxy_health() {
        let applied = SyncResult::of(&outcome(0, 0));
        assert_eq!(applied, SyncResult::Applied);
        assert!(applied.healthy());
        assert!(!applied.retry());
        // One service the kernel refuses (say its scheduler's module is
        // missing): retried, and the proxy stays healthy.
        let service = SyncResult::of(&outcome(1, 0));
        assert_eq!(service, SyncResult::ServicesFailed);
        assert!(service.healthy());
        assert!(service.retry());
        // A set or the table failed too: the node is not programmed.
        let node = SyncResult::of(&outcome(3, 1));
        assert_eq!(node, SyncResult::NodeFailed);
        assert!(!node.healthy());
        assert!(node.retry());
        // A sync that errors out is node-wide (see `run`).
        assert!(!SyncResult::NodeFailed.healthy());
    }

    #[test]
    fn a_service_failure_keeps_the_proxy_healthy_past_the_timeout() {
        let timeout = Duration::from_secs(60);
        // A change is queued, a sync reports the way `run` does, and the
        // health is read twice the timeout later.
        let after = |result: SyncResult| {
            let health = ProxyHealth::new(timeout);
            health.updated();
            health.queued();
            if result.healthy() {
                health.updated();
            }
            health.is_healthy_at(Instant::now() + timeout * 2)
        };
        assert!(after(SyncResult::of(&outcome(0, 0))));
        assert!(after(SyncResult::of(&outcome(2, 0))));
        assert!(!after(SyncResult::of(&outcome(2, 1))));
    }
}
