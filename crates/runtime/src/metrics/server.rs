//! `/metrics` on `--metrics-bind-address`, through the runtime's bounded
//! HTTP server. The IPVS counters are read from the kernel when scraped,
//! at most once a second however often scrapers come, on a netlink socket
//! of the server's own (the sync loop's stays the sync loop's).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use kipvs_netlink::{Counters, Ipvs};
use tokio::{sync::Mutex, time::Instant};
use tracing::{debug, info, warn};

use super::{Metrics, CONTENT_TYPE};
use crate::{
    health::listen,
    http_server::{self, Limits},
};

/// How long IPVS counters read for one scrape serve the next ones.
pub const STATS_MAX_AGE: Duration = Duration::from_secs(1);

/// How long to wait before trying again to listen.
const LISTEN_RETRY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct MetricsState {
    metrics: Metrics,
    /// Opened on the first scrape; `None` again after it failed, so the
    /// next scrape opens a new one. The lock also makes concurrent scrapes
    /// share one read.
    ipvs: Arc<Mutex<Option<Ipvs>>>,
    counters: Counters,
}

/// Serves `/metrics` on `address` until the task is dropped. A failure to
/// listen is logged and retried, never fatal.
pub async fn serve_metrics(address: SocketAddr, metrics: Metrics) {
    let router = metrics_router(metrics);
    loop {
        match listen(address) {
            Ok(listener) => {
                info!(%address, "serving /metrics");
                http_server::serve(listener, router.clone(), Limits::DEFAULT).await;
            }
            Err(error) => warn!(%address, %error, "cannot listen for /metrics; retrying"),
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// The `/metrics` route.
#[doc(hidden)]
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(MetricsState {
            counters: metrics.scrape_counters(),
            metrics,
            ipvs: Arc::new(Mutex::new(None)),
        })
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    refresh_stats(&state).await;
    let mut response = (StatusCode::OK, state.metrics.encode()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Reads the virtual services' counters unless a read younger than
/// [`STATS_MAX_AGE`] is there. A failed read keeps the last one.
async fn refresh_stats(state: &MetricsState) {
    let fresh = |metrics: &Metrics| {
        metrics
            .virtual_service_stats_read_at()
            .is_some_and(|at| at.elapsed() < STATS_MAX_AGE)
    };
    if fresh(&state.metrics) {
        return;
    }
    let mut ipvs = state.ipvs.lock().await;
    if fresh(&state.metrics) {
        return;
    }
    let started = Instant::now();
    if ipvs.is_none() {
        match Ipvs::open(state.counters.clone()).await {
            Ok(opened) => *ipvs = Some(opened),
            Err(error) => {
                debug!(%error, "cannot open IPVS for its counters");
                return;
            }
        }
    }
    let Some(socket) = ipvs.as_mut() else {
        return;
    };
    match socket.services().await {
        Ok(services) => state.metrics.set_virtual_service_stats(services, started),
        Err(error) => {
            debug!(%error, "cannot read the IPVS counters");
            *ipvs = None;
        }
    }
}
