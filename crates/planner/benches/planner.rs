//! The planner alone, on the host: what a sync costs in CPU before any
//! kernel work, at the sizes `make bench` runs in the VM (`BENCH_SIZES`,
//! default "100 1000 10000"), for the cluster it generates there: N
//! ClusterIP services, one TCP port each, 10 ready endpoints on another
//! node.
//!
//! - `planner_desired`: [`desired`] alone;
//! - `planner_noop`: `desired` + [`plan`] against a kernel that already
//!   matches (the planning part of a sync with nothing to do);
//! - `planner_one_endpoint`: the same with one endpoint replaced (what an
//!   endpoint change costs in planning);
//! - `planner_cold_plan`: `plan` against a kernel with the sets but none of
//!   their contents (the big plan of the cold sync).
//!
//! `cargo bench -p kipvs-planner`; criterion writes its figures under
//! target/criterion/, where `make bench`'s report reads them.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{collections::BTreeSet, net::Ipv4Addr, sync::Arc, time::Duration};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kipvs_planner::{
    desired, objects_of, plan, plan_scoped, services_touched, Desired, NodeConfig, Observed, Scope,
};
use serde_json::json;

const ENDPOINTS: usize = 10;

fn cluster_ip(i: usize) -> Ipv4Addr {
    let i = i as u32;
    Ipv4Addr::from(u32::from_be_bytes([10, 96, 0, 0]) + (i / 254) * 256 + i % 254 + 1)
}

fn endpoint_ip(i: usize, j: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from_be_bytes([10, 128, 0, 0]) + (i * ENDPOINTS + j) as u32 + 1)
}

fn service(i: usize) -> Arc<Service> {
    let ip = cluster_ip(i).to_string();
    common::svc_from(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
    }))
}

fn slice(i: usize, endpoints: &[Ipv4Addr]) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}, "nodeName": "node-b"}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("svc-{i}-bench"), "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap(),
    )
}

struct Cluster {
    services: Vec<Arc<Service>>,
    slices: Vec<Arc<EndpointSlice>>,
    /// The same with endpoint 0 of service n/2 replaced.
    changed_slices: Vec<Arc<EndpointSlice>>,
}

fn cluster(n: usize) -> Cluster {
    let services = (0..n).map(service).collect();
    let endpoints = |i| {
        (0..ENDPOINTS)
            .map(|j| endpoint_ip(i, j))
            .collect::<Vec<_>>()
    };
    let slices: Vec<_> = (0..n).map(|i| slice(i, &endpoints(i))).collect();
    let mut changed_slices = slices.clone();
    let mut replaced = endpoints(n / 2);
    replaced[0] = Ipv4Addr::new(10, 192, 0, 1);
    changed_slices[n / 2] = slice(n / 2, &replaced);
    Cluster {
        services,
        slices,
        changed_slices,
    }
}

fn config() -> NodeConfig {
    NodeConfig {
        cluster_cidrs: vec!["10.128.0.0/9".parse().unwrap()],
        ..NodeConfig::new("node-a")
    }
}

/// The kernel after a cold sync's first plan: our sets exist (with their
/// indexes), nothing else does.
fn sets_only(desired: &Desired) -> Observed {
    let full = common::observed_from(desired);
    let mut observed = Observed {
        sets: full.sets,
        ..Observed::default()
    };
    for set in observed.sets.values_mut() {
        set.entries.clear();
    }
    observed
}

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100 1000 10000".into())
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|s| s.parse().ok())
        .filter(|&n| n >= 2)
        .collect()
}

fn benches(c: &mut Criterion) {
    let config = config();
    let expired = BTreeSet::new();
    for n in sizes() {
        let cluster = cluster(n);
        let base = desired(&cluster.services, &cluster.slices, &config);
        assert_eq!(base.virtual_services.len(), n);
        let converged = common::observed_from(&base);
        assert!(plan(&base, &converged, &expired).is_empty());
        let changed = desired(&cluster.services, &cluster.changed_slices, &config);
        // One real server added, one drained.
        assert_eq!(plan(&changed, &converged, &expired).len(), 2);
        let empty = sets_only(&base);

        let mut group = c.benchmark_group("planner_desired");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| desired(black_box(&cluster.services), &cluster.slices, &config))
        });
        group.finish();

        let mut group = c.benchmark_group("planner_noop");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let d = desired(black_box(&cluster.services), &cluster.slices, &config);
                plan(&d, &converged, &expired)
            })
        });
        group.finish();

        let mut group = c.benchmark_group("planner_one_endpoint");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let d = desired(
                    black_box(&cluster.services),
                    &cluster.changed_slices,
                    &config,
                );
                plan(&d, &converged, &expired)
            })
        });
        group.finish();

        // The daemon's path: the one changed service folded into the
        // previous desired state, planned where it touched. Each iteration
        // goes to the other state (changed, then back), so no iteration
        // pays for a copy of ten thousand services.
        let middle = &cluster.changed_slices[n / 2];
        let changed_ids = services_touched([], [&**middle]);
        let states = [
            objects_of(&cluster.services, &cluster.changed_slices, &changed_ids),
            objects_of(&cluster.services, &cluster.slices, &changed_ids),
        ];
        let mut state = base.clone();
        let mut next = 0;
        let mut group = c.benchmark_group("planner_incremental");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let (services, slices) = &states[next];
                next = 1 - next;
                let dirty = state
                    .update(services, slices, &config, &changed_ids)
                    .expect("an endpoint change folds in");
                plan_scoped(&state, &converged, &expired, Scope::Only(&dirty))
            })
        });
        group.finish();
        assert_eq!(
            state,
            if next == 0 {
                base.clone()
            } else {
                changed.clone()
            }
        );

        let mut group = c.benchmark_group("planner_cold_plan");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| plan(black_box(&base), &empty, &expired))
        });
        group.finish();
    }
}

criterion_group! {
    name = planner;
    // Few samples: at 10 000 services one iteration takes tens of
    // milliseconds, and the figures are compared across sizes, not to the
    // last percent.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(planner);
