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

use std::{future::Future, pin::Pin, time::Duration};

use kipvs_cluster::SnapshotReceiver;
use kipvs_netlink::Counters;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use crate::{
    health::ProxyHealth,
    health_check::HealthCheckServers,
    node_addresses::NodeAddresses,
    sync::{SyncConfig, SyncOutcome, Syncer},
    Result, RuntimeError,
};

/// The first retry after a failed sync; doubles up to `sync_period`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Runs until `shutdown` completes (SIGTERM), leaving the kernel state in
/// place so traffic keeps flowing across a restart. `health` is where the
/// loop reports its progress (read by `/healthz` and the health-check node
/// ports).
pub async fn run(
    config: SyncConfig,
    health: ProxyHealth,
    mut snapshots: SnapshotReceiver,
    counters: Counters,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    // The initial cluster state is a change waiting to be applied.
    health.queued();
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
    let mut addresses = NodeAddresses::start(counters.clone()).await?;
    let mut syncer = Syncer::open(config.clone(), counters).await?;
    let mut health_checks = HealthCheckServers::new(health.clone());
    let mut retry = FIRST_RETRY;
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
        let result = match syncer.sync(&snapshot, full).await {
            Ok(outcome) => {
                health_checks.update(&outcome.health_checks).await;
                SyncResult::of(&outcome)
            }
            Err(error) => {
                warn!(%error, "sync failed; retrying with a full resync");
                SyncResult::NodeFailed
            }
        };
        if result.healthy() {
            health.updated();
        }
        let next_full = if result.retry() {
            let at = started + retry;
            retry = (retry * 2).min(config.sync_period);
            syncer.force_full_resync();
            at
        } else {
            retry = FIRST_RETRY;
            syncer.next_full_resync()
        };
        // Coalesce changes: no sync sooner than min_sync_period after the
        // last one started.
        let coalesce_until = started + config.min_sync_period;
        tokio::select! {
            () = &mut shutdown => return stopping(),
            changed = snapshots.changed() => {
                changed.map_err(|_| RuntimeError::SourceStopped)?;
                health.queued();
                if !wait_or_stop(coalesce_until, shutdown.as_mut()).await {
                    return stopping();
                }
            }
            () = addresses.changed() => {
                health.queued();
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
