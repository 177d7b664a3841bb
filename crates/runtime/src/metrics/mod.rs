//! Prometheus metrics (`--metrics-bind-address`, `/metrics`): kube-proxy's
//! `kubeproxy_*` series under its names, types and buckets, so its
//! dashboards and alerts keep working, and kube-ipvs's own `kube_ipvs_*`
//! ones (netlink messages, kernel errors, what is programmed, drift,
//! per-virtual-service IPVS counters).
//!
//! Everything a sync contributes is recorded in one place,
//! [`Metrics::record_sync`], from its [`SyncOutcome`]; the netlink and
//! IPVS counters are read when scraped (see [`collectors`]).

mod changes;
mod collectors;
mod server;
#[cfg(test)]
mod tests;

use std::{
    sync::{atomic::AtomicU64, Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use kipvs_cluster::Snapshot;
use kipvs_netlink::Counters;
use kipvs_packet_ipvs::Service;
use kipvs_planner::IpFamily;
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::time::Instant;

pub use self::server::{metrics_router, serve_metrics};
use self::{
    changes::{changed_objects, trigger_time, Changed},
    collectors::{NetlinkMessages, VirtualServiceStats},
};
use crate::{sync::SyncOutcome, sync_summary::SyncSummary, RuntimeError};

/// The `Content-Type` of the answer: the text format kube-proxy serves.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// kube-proxy's sync-duration buckets: 1 ms doubling to about 16 s.
fn sync_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// kube-proxy's network-programming buckets: 0, 0.25 s, 0.5 s, every second
/// to 59 s, every 5 s to 115 s, every 30 s to 5 min.
fn programming_buckets() -> Histogram {
    let mut buckets = vec![0.0, 0.25, 0.5];
    buckets.extend((1..60).map(f64::from));
    buckets.extend((0..12).map(|i| f64::from(60 + 5 * i)));
    buckets.extend((0..7).map(|i| f64::from(120 + 30 * i)));
    Histogram::new(buckets)
}

/// The metrics of one daemon. Cheap to clone; the sync loop records, the
/// HTTP handler encodes.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    sync_duration: Family<Labels, Histogram, fn() -> Histogram>,
    sync_full_duration: Family<Labels, Histogram, fn() -> Histogram>,
    sync_partial_duration: Family<Labels, Histogram, fn() -> Histogram>,
    network_programming: Family<Labels, Histogram, fn() -> Histogram>,
    last_timestamp: Family<Labels, FloatGauge>,
    last_queued_timestamp: Family<Labels, FloatGauge>,
    endpoint_changes: Counter,
    service_changes: Counter,
    endpoint_changes_pending: Gauge,
    service_changes_pending: Gauge,
    no_local_endpoints: Family<Labels, Gauge>,
    kernel_errors: Family<Labels, Counter>,
    virtual_services: Gauge,
    real_servers: Gauge,
    set_entries: Family<Labels, Gauge>,
    drift_repairs: Family<Labels, Counter>,
    draining: Gauge,
    steps: Family<Labels, Counter>,
    stats: Arc<VirtualServiceStats>,
    /// The metrics server's own netlink messages (its IPVS reads), apart
    /// from the sync loop's, whose per-sync counts they would blur.
    scrape_counters: Counters,
    state: Mutex<State>,
}

/// What recording needs to remember between syncs.
struct State {
    /// The snapshot the last successful sync applied.
    synced: Option<Arc<Snapshot>>,
    /// The families of the last sync (the `ip_family` label values).
    families: Vec<IpFamily>,
    /// Trigger times before this are of changes made before the daemon
    /// started (kube-proxy ignores them too): not this daemon's latency.
    started: SystemTime,
}

impl Metrics {
    /// `counters`: the netlink counters of the daemon's sockets.
    pub fn new(counters: Counters) -> Metrics {
        let inner = Inner::unregistered();
        let mut registry = Registry::default();
        inner.register_kube_proxy_series(&mut registry);
        inner.register_own_series(&mut registry, counters);
        Metrics {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    /// A change arrived (`latest`): the pending-change gauges and the
    /// last-queued time.
    pub fn queued(&self, latest: Option<&Snapshot>) {
        let state = self.state();
        let now = seconds_since_epoch(SystemTime::now());
        for family in &state.families {
            self.inner
                .last_queued_timestamp
                .get_or_create(&ip_family(*family))
                .set(now);
        }
        if let Some(latest) = latest {
            let changed = changed_objects(state.synced.as_deref(), latest);
            self.inner
                .endpoint_changes_pending
                .set(gauge_value(changed.slice_changes()));
            self.inner
                .service_changes_pending
                .set(gauge_value(changed.services));
        }
    }

    /// Records one sync of `snapshot` that took `elapsed`: `healthy` as
    /// the proxy's health counts it (see `sync_loop`).
    pub fn record_sync(
        &self,
        result: &Result<SyncOutcome, RuntimeError>,
        snapshot: &Arc<Snapshot>,
        elapsed: Duration,
        healthy: bool,
    ) {
        let now = SystemTime::now();
        let mut state = self.state();
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                if let RuntimeError::Kernel(step) = error {
                    self.count_kernel_error(step.class());
                }
                for family in state.families.clone() {
                    self.inner
                        .sync_duration
                        .get_or_create(&ip_family(family))
                        .observe(elapsed.as_secs_f64());
                }
                return;
            }
        };
        state.families = outcome.summary.families.iter().copied().collect();
        for family in &state.families {
            let labels = ip_family(*family);
            self.inner
                .sync_duration
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
            let by_kind = if outcome.full {
                &self.inner.sync_full_duration
            } else {
                &self.inner.sync_partial_duration
            };
            by_kind
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
            if healthy {
                self.inner
                    .last_timestamp
                    .get_or_create(&labels)
                    .set(seconds_since_epoch(now));
            }
        }
        let changed = changed_objects(state.synced.as_deref(), snapshot);
        self.record_changes(&changed, state.started, now);
        state.synced = Some(Arc::clone(snapshot));
        drop(state);
        self.record_outcome(outcome);
    }

    /// The change counters, and for each EndpointSlice changed since the
    /// last sync, the time from its change to now.
    fn record_changes(&self, changed: &Changed, started: SystemTime, now: SystemTime) {
        self.inner
            .endpoint_changes
            .inc_by(changed.slice_changes() as u64);
        self.inner.service_changes.inc_by(changed.services as u64);
        self.inner.endpoint_changes_pending.set(0);
        self.inner.service_changes_pending.set(0);
        for slice in &changed.slices {
            let Some((family, triggered)) = trigger_time(slice) else {
                continue;
            };
            if triggered < started {
                continue;
            }
            let latency = now.duration_since(triggered).unwrap_or_default();
            self.inner
                .network_programming
                .get_or_create(&ip_family(family))
                .observe(latency.as_secs_f64());
        }
    }

    fn record_outcome(&self, outcome: &SyncOutcome) {
        let inner = &self.inner;
        let summary: &SyncSummary = &outcome.summary;
        inner.no_local_endpoints.clear();
        for family in &summary.families {
            for (policy, counts) in [
                ("internal", &summary.no_local_endpoints.internal),
                ("external", &summary.no_local_endpoints.external),
            ] {
                let mut labels = ip_family(*family);
                labels.push(("traffic_policy", policy.to_owned()));
                let count = counts.get(family).copied().unwrap_or(0);
                inner
                    .no_local_endpoints
                    .get_or_create(&labels)
                    .set(gauge_value(count));
            }
        }
        for (class, count) in outcome.kernel_errors.by_class() {
            inner
                .kernel_errors
                .get_or_create(&vec![("class", class.to_owned())])
                .inc_by(count as u64);
        }
        inner
            .virtual_services
            .set(gauge_value(summary.virtual_services));
        inner.real_servers.set(gauge_value(summary.real_servers));
        inner.set_entries.clear();
        for (set, count) in &summary.set_entries {
            inner
                .set_entries
                .get_or_create(&vec![("set", (*set).to_owned())])
                .set(gauge_value(*count));
        }
        for (kind, count) in summary.drift.by_kind() {
            inner
                .drift_repairs
                .get_or_create(&vec![("kind", kind.to_owned())])
                .inc_by(count as u64);
        }
        inner.draining.set(gauge_value(outcome.draining));
        let applied = outcome
            .steps
            .saturating_sub(outcome.failed)
            .saturating_sub(outcome.skipped);
        for (result, count) in [
            ("applied", applied),
            ("failed", outcome.failed),
            ("skipped", outcome.skipped),
        ] {
            inner
                .steps
                .get_or_create(&vec![("result", result.to_owned())])
                .inc_by(count as u64);
        }
        inner.stats.set_owners(Arc::clone(&summary.owners));
    }

    fn count_kernel_error(&self, class: kipvs_netlink::ErrorClass) {
        let mut errors = crate::sync_summary::KernelErrors::default();
        errors.record(class);
        for (class, count) in errors.by_class() {
            self.inner
                .kernel_errors
                .get_or_create(&vec![("class", class.to_owned())])
                .inc_by(count as u64);
        }
    }

    /// The IPVS counters of the virtual services as just read from the
    /// kernel (`read_at`), for the per-virtual-service series.
    pub fn set_virtual_service_stats(&self, services: Vec<Service>, read_at: Instant) {
        self.inner.stats.set_services(services, read_at);
    }

    /// When the IPVS counters were last read; `None` before the first read.
    pub fn virtual_service_stats_read_at(&self) -> Option<Instant> {
        self.inner.stats.read_at()
    }

    /// Where the metrics server counts its own netlink messages.
    pub(crate) fn scrape_counters(&self) -> Counters {
        self.inner.scrape_counters.clone()
    }

    /// Every metric, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, nor can any of the metrics.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry);
        text
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment: a panic elsewhere cannot
        // leave the state half-written.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Every metric at its start value; its `registry` is a placeholder
    /// that [`Metrics::new`] replaces once the metrics are registered.
    fn unregistered() -> Inner {
        let sync_duration = Family::new_with_constructor(sync_buckets as fn() -> Histogram);
        let sync_full_duration = Family::new_with_constructor(sync_buckets as fn() -> Histogram);
        let sync_partial_duration = Family::new_with_constructor(sync_buckets as fn() -> Histogram);
        let network_programming =
            Family::new_with_constructor(programming_buckets as fn() -> Histogram);
        Inner {
            sync_duration,
            sync_full_duration,
            sync_partial_duration,
            network_programming,
            last_timestamp: Family::default(),
            last_queued_timestamp: Family::default(),
            endpoint_changes: Counter::default(),
            service_changes: Counter::default(),
            endpoint_changes_pending: Gauge::default(),
            service_changes_pending: Gauge::default(),
            no_local_endpoints: Family::default(),
            kernel_errors: Family::default(),
            virtual_services: Gauge::default(),
            real_servers: Gauge::default(),
            set_entries: Family::default(),
            drift_repairs: Family::default(),
            draining: Gauge::default(),
            steps: Family::default(),
            stats: Arc::new(VirtualServiceStats::default()),
            scrape_counters: Counters::default(),
            state: Mutex::new(State {
                synced: None,
                families: vec![IpFamily::V4],
                started: SystemTime::now(),
            }),
            registry: Registry::default(),
        }
    }

    /// kube-proxy's series, under its names and help texts.
    fn register_kube_proxy_series(&self, r: &mut Registry) {
        r.register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            self.sync_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs",
            self.sync_full_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs",
            self.sync_partial_duration.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_timestamp.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
            "The last time a sync of proxy rules was queued",
            self.last_queued_timestamp.clone(),
        );
        r.register(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            self.network_programming.clone(),
        );
        // Counter names get their `_total` when encoded.
        r.register(
            "kubeproxy_sync_proxy_rules_endpoint_changes",
            "Cumulative proxy rules Endpoint changes",
            self.endpoint_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_service_changes",
            "Cumulative proxy rules Service changes",
            self.service_changes.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
            "Pending proxy rules Endpoint changes",
            self.endpoint_changes_pending.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_service_changes_pending",
            "Pending proxy rules Service changes",
            self.service_changes_pending.clone(),
        );
        r.register(
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
            "Number of services with a Local traffic policy and no endpoints",
            self.no_local_endpoints.clone(),
        );
    }

    /// kube-ipvs's own series, and the counters read when scraped.
    fn register_own_series(&self, r: &mut Registry, counters: Counters) {
        r.register(
            "kube_ipvs_kernel_errors",
            "Errors the kernel answered to sync steps and reads, by class",
            self.kernel_errors.clone(),
        );
        r.register(
            "kube_ipvs_virtual_services",
            "IPVS virtual services kube-ipvs has programmed after the last sync",
            self.virtual_services.clone(),
        );
        r.register(
            "kube_ipvs_real_servers",
            "IPVS real servers of those virtual services, draining ones included",
            self.real_servers.clone(),
        );
        r.register(
            "kube_ipvs_set_entries",
            "Entries of each ipset kube-ipvs owns after the last sync",
            self.set_entries.clone(),
        );
        r.register(
            "kube_ipvs_drift_repairs",
            "Differences a full resync found between the kernel and what kube-ipvs had programmed, and put back, by kind",
            self.drift_repairs.clone(),
        );
        r.register(
            "kube_ipvs_real_servers_draining",
            "Removed real servers kept at weight 0 until their connections end",
            self.draining.clone(),
        );
        r.register(
            "kube_ipvs_sync_steps",
            "Kernel changes planned by syncs, by result",
            self.steps.clone(),
        );
        r.register_collector(Box::new(NetlinkMessages::new(vec![
            counters,
            self.scrape_counters.clone(),
        ])));
        r.register_collector(Box::new(Arc::clone(&self.stats)));
    }
}

fn ip_family(family: IpFamily) -> Labels {
    vec![("ip_family", family.address_type().to_owned())]
}

fn seconds_since_epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
