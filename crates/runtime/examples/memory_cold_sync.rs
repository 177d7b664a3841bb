//! A cold sync of N ClusterIP services x 10 endpoints on the in-memory
//! kernel, then a no-op full resync and one endpoint change: the CPU and
//! memory the daemon itself spends, without a kernel. For profiling:
//! `cargo run --release -p kipvs-runtime --example memory_cold_sync -- 10000`.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_cluster::Snapshot;
use kipvs_planner::NodeConfig;
use kipvs_runtime::{MemoryKernel, SyncConfig, Syncer};
use serde_json::json;

fn service(i: usize) -> Arc<Service> {
    let ip = format!("10.{}.{}.{}", 96 + i / 62500, (i / 250) % 250, i % 250 + 1);
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
        }))
        .unwrap(),
    )
}

fn slice(i: usize, shift: usize) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = (0..10)
        .map(|e| {
            let n = i * 10 + e + shift;
            json!({"addresses": [format!("10.{}.{}.{}", 128 + n / 62500, (n / 250) % 250, n % 250 + 1)],
                   "conditions": {"ready": true}, "nodeName": "node-b"})
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap(),
    )
}

/// `VmRSS` and `VmHWM` of this process, in MB.
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    format!("rss {} MB, peak {} MB", field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let services: Vec<_> = (0..n).map(service).collect();
    let slices: Vec<_> = (0..n).map(|i| slice(i, 0)).collect();
    let snapshot = Arc::new(Snapshot::new(services.clone(), slices.clone(), None));
    let mut changed = slices;
    changed[n / 2] = slice(n / 2, 5_000_000);
    let changed = Arc::new(Snapshot::new(services, changed, None));
    let config = SyncConfig {
        node: NodeConfig {
            cluster_cidrs: vec!["10.128.0.0/9".parse().unwrap()],
            ..NodeConfig::new("node-a")
        },
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::ZERO,
        graceful_period: Duration::from_secs(900),
    };
    println!("snapshots built: {}", rss());
    let kernel = MemoryKernel::new();
    let mut syncer = Syncer::new(config, kernel);
    for (what, snapshot, full) in [
        ("cold sync", &snapshot, true),
        ("no-op full resync", &snapshot, true),
        ("no-op sync", &snapshot, false),
        ("endpoint change", &changed, false),
    ] {
        let started = std::time::Instant::now();
        let outcome = syncer.sync(snapshot, full).await.unwrap();
        println!(
            "{what}: {} steps, {} messages, {:?}",
            outcome.steps,
            outcome.messages.sent_all(),
            started.elapsed()
        );
        println!("  {}", rss());
    }
}
