//! The proxy's own health, as kube-proxy defines it (`proxy_health.go`),
//! and its `/healthz` and `/livez` endpoints (`--healthz-bind-address`).
//!
//! Unhealthy means: a change was queued (the cluster or the node's
//! addresses changed) longer than the timeout (2 × `--sync-period`) ago and
//! no sync has succeeded since. A sync whose only failures belong to
//! single services (retried on their own) counts as a success here; one
//! that errs, or fails a step no service owns, does not. Before the first successful sync the
//! proxy counts as healthy, as kube-proxy's does while starting up.
//! `/healthz` is also 503 while the node is being deleted (deletion
//! timestamp, or the cluster autoscaler's `ToBeDeletedByClusterAutoscaler`
//! taint), so load balancers drain the node first.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};
use kipvs_cluster::Snapshot;

use crate::http_server::{self, Limits};
use tokio::time::Instant;
use tracing::{info, warn};

/// The cluster autoscaler's taint on a node it is about to delete.
const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// How long to wait before trying again to listen on the healthz address.
const LISTEN_RETRY: Duration = Duration::from_secs(5);

/// The proxy's health, shared by the sync loop (which reports) and the
/// HTTP handlers (which read). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProxyHealth {
    state: Arc<Mutex<HealthState>>,
    timeout: Duration,
}

#[derive(Debug)]
struct HealthState {
    /// When a sync last fully succeeded.
    last_updated: Option<SystemTime>,
    /// The oldest change not yet applied by a successful sync.
    oldest_queued: Option<Instant>,
    node_eligible: bool,
}

/// What the health endpoints report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    healthy: bool,
    last_updated: Option<SystemTime>,
}

impl ProxyHealth {
    /// `timeout`: how long a queued change may wait for a successful sync
    /// (kube-proxy: 2 × `--sync-period`).
    pub fn new(timeout: Duration) -> ProxyHealth {
        ProxyHealth {
            state: Arc::new(Mutex::new(HealthState {
                last_updated: None,
                oldest_queued: None,
                // Eligible while starting up, until the Node says otherwise.
                node_eligible: true,
            })),
            timeout,
        }
    }

    /// A change arrived that a sync must apply.
    pub fn queued(&self) {
        self.lock().oldest_queued.get_or_insert_with(Instant::now);
    }

    /// A sync applied everything but (perhaps) some services' steps: the
    /// node as a whole is programmed. A failure confined to one service
    /// does not count against the proxy's health (see `sync_loop`), as it
    /// would drain the node for every other service.
    pub fn updated(&self) {
        let mut state = self.lock();
        state.oldest_queued = None;
        state.last_updated = Some(SystemTime::now());
    }

    /// Takes the node's eligibility from its Node object; without one
    /// (not seen yet, or gone) the last known value stays.
    pub fn observe_node(&self, snapshot: &Snapshot) {
        let Some(node) = snapshot.node() else {
            return;
        };
        let tainted = node
            .spec
            .as_ref()
            .and_then(|spec| spec.taints.as_ref())
            .is_some_and(|taints| taints.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
        self.lock().node_eligible = node.metadata.deletion_timestamp.is_none() && !tainted;
    }

    /// The proxy's own health, without the node's eligibility (what the
    /// health-check node ports report as `serviceProxyHealthy`).
    pub fn is_healthy(&self) -> bool {
        self.is_healthy_at(Instant::now())
    }

    pub(crate) fn is_healthy_at(&self, now: Instant) -> bool {
        self.status_at(now).healthy
    }

    pub fn node_eligible(&self) -> bool {
        self.lock().node_eligible
    }

    fn status_at(&self, now: Instant) -> Status {
        let state = self.lock();
        let late = state
            .oldest_queued
            .is_some_and(|queued| now.saturating_duration_since(queued) >= self.timeout);
        Status {
            // Never updated yet: healthy, still starting up.
            healthy: state.last_updated.is_none() || !late,
            last_updated: state.last_updated,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HealthState> {
        // Every update is a plain assignment: a panic elsewhere cannot
        // leave the state half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves `/healthz` and `/livez` on `address` until the task is dropped.
/// A failure to listen is logged and retried (as kube-proxy does), never
/// fatal: the proxy works without its health endpoint.
/// Connections are bounded as [`crate::http_server`] describes.
pub async fn serve_healthz(address: SocketAddr, health: ProxyHealth) {
    let router = healthz_router(health);
    loop {
        match listen(address) {
            Ok(listener) => {
                info!(%address, "serving /healthz and /livez");
                http_server::serve(listener, router.clone(), Limits::DEFAULT).await;
            }
            Err(error) => warn!(%address, %error, "cannot listen for /healthz; retrying"),
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// The `/healthz` and `/livez` routes.
#[doc(hidden)]
pub fn healthz_router(health: ProxyHealth) -> Router {
    Router::new()
        .route("/healthz", any(healthz))
        .route("/livez", any(livez))
        .with_state(health)
}

async fn healthz(axum::extract::State(health): axum::extract::State<ProxyHealth>) -> Response {
    let status = health.status_at(Instant::now());
    let eligible = health.node_eligible();
    let (code, body) = healthz_answer(status, eligible, SystemTime::now());
    json_response(code, body)
}

async fn livez(axum::extract::State(health): axum::extract::State<ProxyHealth>) -> Response {
    let (code, body) = livez_answer(health.status_at(Instant::now()), SystemTime::now());
    json_response(code, body)
}

/// kube-proxy's `/healthz` answer, byte for byte (but for Go's monotonic
/// clock suffix): healthy and eligible → 200 with `lastUpdated` = now (its
/// compatibility rule), else 503.
fn healthz_answer(status: Status, node_eligible: bool, now: SystemTime) -> (StatusCode, String) {
    let (code, last_updated) = answer(status.healthy && node_eligible, status, now);
    let body = format!(
        r#"{{"lastUpdated": "{}","currentTime": "{}", "nodeEligible": {node_eligible}}}"#,
        go_time(last_updated),
        go_time(now)
    );
    (code, body)
}

/// kube-proxy's `/livez` answer: the same without the node's eligibility.
fn livez_answer(status: Status, now: SystemTime) -> (StatusCode, String) {
    let (code, last_updated) = answer(status.healthy, status, now);
    let body = format!(
        r#"{{"lastUpdated": "{}","currentTime": "{}"}}"#,
        go_time(last_updated),
        go_time(now)
    );
    (code, body)
}

fn answer(ok: bool, status: Status, now: SystemTime) -> (StatusCode, SystemTime) {
    if ok {
        (StatusCode::OK, now)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            status.last_updated.unwrap_or(UNIX_EPOCH),
        )
    }
}

/// A JSON answer with kube-proxy's headers.
pub(crate) fn json_response(code: StatusCode, body: String) -> Response {
    let mut response = (code, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A listening TCP socket on `address`, as Go's `net.Listen` makes one:
/// `SO_REUSEADDR` (a port closed a moment ago can be listened on again at
/// once) and, on an IPv6 wildcard, both families (`IPV6_V6ONLY` off,
/// whatever `net.ipv6.bindv6only` says).
pub(crate) fn listen(address: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Go's `time.Time.String()` for a UTC time (kube-proxy prints its times
/// with `%q`): `2006-01-02 15:04:05.999999999 +0000 UTC`, the fraction's
/// trailing zeros cut.
fn go_time(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let mut text = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    let nanos = since_epoch.subsec_nanos();
    if nanos != 0 {
        text.push('.');
        text.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::{
        api::core::v1::{Node, NodeSpec, Taint},
        apimachinery::pkg::apis::meta::v1::Time,
    };

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn at(seconds: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(seconds, nanos)
    }

    #[test]
    fn times_print_as_go_prints_them() {
        assert_eq!(go_time(UNIX_EPOCH), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time(at(1_700_000_000, 120_000_000)),
            "2023-11-14 22:13:20.12 +0000 UTC"
        );
        // A leap day, and the last second of a year.
        assert_eq!(go_time(at(951_782_400, 0)), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(
            go_time(at(1_704_067_199, 5)),
            "2023-12-31 23:59:59.000000005 +0000 UTC"
        );
    }

    #[test]
    fn healthy_while_starting_and_while_a_queued_change_is_recent() {
        let health = ProxyHealth::new(TIMEOUT);
        let start = Instant::now();
        health.queued();
        // Never updated: healthy however long the first sync takes.
        assert!(health.status_at(start + TIMEOUT * 3).healthy);
        health.updated();
        health.queued();
        let status = health.status_at(Instant::now() + TIMEOUT / 2);
        assert!(status.healthy);
        assert!(status.last_updated.is_some());
    }

    #[test]
    fn a_queued_change_older_than_the_timeout_without_a_sync_is_unhealthy() {
        let health = ProxyHealth::new(TIMEOUT);
        health.updated();
        health.queued();
        let late = Instant::now() + TIMEOUT * 2;
        assert!(!health.status_at(late).healthy);
        // A second change does not restart the clock: the oldest counts.
        health.queued();
        assert!(!health.status_at(late).healthy);
        health.updated();
        assert!(health.status_at(late).healthy);
    }

    #[test]
    fn answers_match_kube_proxy() {
        let now = at(1_700_000_000, 0);
        let updated = at(1_699_999_000, 0);
        let healthy = Status {
            healthy: true,
            last_updated: Some(updated),
        };
        let (code, body) = healthz_answer(healthy, true, now);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"lastUpdated": "2023-11-14 22:13:20 +0000 UTC","currentTime": "2023-11-14 22:13:20 +0000 UTC", "nodeEligible": true}"#
        );
        let (code, body) = healthz_answer(healthy, false, now);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"lastUpdated": "2023-11-14 21:56:40 +0000 UTC","currentTime": "2023-11-14 22:13:20 +0000 UTC", "nodeEligible": false}"#
        );
        // /livez ignores the node.
        let (code, body) = livez_answer(healthy, now);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"lastUpdated": "2023-11-14 22:13:20 +0000 UTC","currentTime": "2023-11-14 22:13:20 +0000 UTC"}"#
        );
        let stuck = Status {
            healthy: false,
            last_updated: Some(updated),
        };
        let (code, body) = livez_answer(stuck, now);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"lastUpdated": "2023-11-14 21:56:40 +0000 UTC","currentTime": "2023-11-14 22:13:20 +0000 UTC"}"#
        );
    }

    fn snapshot_with(node: Option<Node>) -> Snapshot {
        Snapshot::new(Vec::new(), Vec::new(), node.map(Arc::new))
    }

    #[test]
    fn a_node_being_deleted_is_not_eligible() {
        let health = ProxyHealth::new(TIMEOUT);
        assert!(health.node_eligible());
        let tainted = Node {
            spec: Some(NodeSpec {
                taints: Some(vec![Taint {
                    key: TO_BE_DELETED_TAINT.to_owned(),
                    effect: "NoSchedule".to_owned(),
                    ..Taint::default()
                }]),
                ..NodeSpec::default()
            }),
            ..Node::default()
        };
        health.observe_node(&snapshot_with(Some(tainted)));
        assert!(!health.node_eligible());
        // No Node object in the snapshot: the last verdict stays.
        health.observe_node(&snapshot_with(None));
        assert!(!health.node_eligible());
        health.observe_node(&snapshot_with(Some(Node::default())));
        assert!(health.node_eligible());
        let mut deleting = Node::default();
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        health.observe_node(&snapshot_with(Some(deleting)));
        assert!(!health.node_eligible());
    }
}
