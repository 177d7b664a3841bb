//! The clock side of graceful termination: which real servers drain since
//! when, when a grace is over, when the connection counters of the
//! draining ones must be read again.
//!
//! The planner decides (weight 0, wait, delete); it has no clock, so this
//! record tells it which draining real servers have `expired`. The record
//! is rebuilt from the kernel after every plan (`kipvs_planner::draining`
//! on the cache): a real server counts from the first time it is seen
//! draining, whether this daemon set its weight to 0 or a previous one did
//! (after a restart it gets a fresh grace, so nothing stays at weight 0
//! for ever).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use kipvs_planner::{RealServerKey, VirtualServiceKey};
use tokio::time::Instant;

/// How often the counters of draining real servers are read again, so a
/// real server whose last connection ended is deleted within this time.
/// (kube-proxy checks every minute.)
pub const COUNTER_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Drain {
    graceful_period: Duration,
    /// Draining real servers and when each was first seen draining.
    since: BTreeMap<RealServerKey, Instant>,
    /// When the cache's real servers (and their counters) were last read
    /// from the kernel.
    counters_read: Instant,
    /// When the record was last updated (after a plan was applied).
    updated: Instant,
}

impl Drain {
    pub fn new(graceful_period: Duration, now: Instant) -> Self {
        Drain {
            graceful_period,
            since: BTreeMap::new(),
            counters_read: now,
            updated: now,
        }
    }

    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// Replaces the record with what drains now: new ones start their
    /// grace at `now`, the others keep theirs, those gone are forgotten.
    pub fn update(&mut self, draining: BTreeSet<RealServerKey>, now: Instant) {
        self.updated = now;
        let mut since = std::mem::take(&mut self.since);
        self.since = draining
            .into_iter()
            .map(|key| {
                let started = since.remove(&key).unwrap_or(now);
                (key, started)
            })
            .collect();
    }

    /// When a grace that started at `started` ends; `None` past the
    /// clock's range (a `--ipvs-graceful-period` of centuries never ends).
    fn grace_end(&self, started: Instant) -> Option<Instant> {
        started.checked_add(self.graceful_period)
    }

    /// Draining real servers whose grace is over at `now`.
    pub fn expired(&self, now: Instant) -> BTreeSet<RealServerKey> {
        self.since
            .iter()
            .filter(|(_, started)| self.grace_end(**started).is_some_and(|end| now >= end))
            .map(|(key, _)| *key)
            .collect()
    }

    /// The counters were read from the kernel at `now`.
    pub fn counters_read(&mut self, now: Instant) {
        self.counters_read = now;
    }

    /// Something drains and its counters are older than
    /// [`COUNTER_REFRESH`].
    pub fn refresh_due(&self, now: Instant) -> bool {
        !self.since.is_empty() && now >= self.counters_read + COUNTER_REFRESH
    }

    /// The virtual services with draining real servers: the only ones
    /// whose real servers a refresh reads.
    pub fn services(&self) -> BTreeSet<VirtualServiceKey> {
        self.since.keys().map(|key| key.service).collect()
    }

    /// When a sync is needed without a cluster change: the next counter
    /// refresh or the next grace to end, whichever comes first; `None`
    /// when nothing drains. A grace that had already ended at the last
    /// update was handed to a plan; if its deletion failed it is retried
    /// with the refreshes, never in a busy loop.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if self.since.is_empty() {
            return None;
        }
        let refresh = self.counters_read + COUNTER_REFRESH;
        let next_expiry = self
            .since
            .values()
            .filter_map(|started| self.grace_end(*started))
            .filter(|end| *end > self.updated)
            .min();
        Some(next_expiry.map_or(refresh, |end| end.min(refresh)))
    }
}

#[cfg(test)]
mod tests {
    use kipvs_packet_ipvs::Protocol;

    use super::*;

    fn real_server(last: u8) -> RealServerKey {
        RealServerKey {
            service: VirtualServiceKey::tuple("10.96.0.10".parse().unwrap(), Protocol::Tcp, 80),
            addr: format!("10.244.1.{last}").parse().unwrap(),
            port: 8080,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn nothing_draining_needs_no_wakeup_and_no_refresh() {
        let t0 = Instant::now();
        let drain = Drain::new(secs(60), t0);
        assert_eq!(drain.next_wakeup(), None);
        assert!(!drain.refresh_due(t0 + secs(3600)));
        assert!(drain.expired(t0 + secs(3600)).is_empty());
        assert!(drain.services().is_empty());
    }

    #[test]
    fn grace_counts_from_the_first_time_seen_and_ends_after_the_period() {
        let t0 = Instant::now();
        let mut drain = Drain::new(secs(60), t0);
        drain.update([real_server(2)].into(), t0);
        // Seen again later: the grace still counts from t0.
        drain.update([real_server(2), real_server(3)].into(), t0 + secs(30));
        assert_eq!(drain.len(), 2);
        assert!(drain.expired(t0 + secs(59)).is_empty());
        assert_eq!(drain.expired(t0 + secs(60)), [real_server(2)].into());
        assert_eq!(
            drain.expired(t0 + secs(90)),
            [real_server(2), real_server(3)].into()
        );
        // Gone from the kernel (deleted, or its endpoint came back):
        // forgotten; seen again later: a fresh grace.
        drain.update([real_server(3)].into(), t0 + secs(40));
        drain.update([real_server(2), real_server(3)].into(), t0 + secs(50));
        assert_eq!(drain.expired(t0 + secs(100)), [real_server(3)].into());
        assert_eq!(drain.services().len(), 1);
    }

    #[test]
    fn wakes_for_the_counter_refresh_or_the_first_expiry() {
        let t0 = Instant::now();
        let mut drain = Drain::new(secs(60), t0);
        drain.update([real_server(2)].into(), t0);
        assert_eq!(drain.next_wakeup(), Some(t0 + COUNTER_REFRESH));
        assert!(!drain.refresh_due(t0 + secs(4)));
        assert!(drain.refresh_due(t0 + secs(5)));
        drain.counters_read(t0 + secs(58));
        assert_eq!(drain.next_wakeup(), Some(t0 + secs(60)));

        let mut short = Drain::new(secs(2), t0);
        short.update([real_server(2)].into(), t0);
        assert_eq!(short.next_wakeup(), Some(t0 + secs(2)));
        // Expired at the last update and still there (its deletion
        // failed): retried with the next refresh, not at once again.
        short.update([real_server(2)].into(), t0 + secs(3));
        assert_eq!(short.next_wakeup(), Some(t0 + COUNTER_REFRESH));
    }
}
