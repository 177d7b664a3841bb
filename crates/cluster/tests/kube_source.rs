//! `kube_source` against the in-process fake API server (real list/watch protocol over HTTP),
//! with kube-rs' own HTTP client. Waits are bounded; assertions are on content.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

mod common;

use kipvs_cluster::{kube_source, Snapshot, SnapshotReceiver};
use kipvs_fake_apiserver::FakeApiServer;
use kube::client::{Body, ClientBuilder};
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio::sync::watch;

const NODE: &str = "node-a";

fn config(url: &str) -> kube::Config {
    kube::Config::new(url.parse().expect("server url"))
}

fn client(server: &FakeApiServer) -> kube::Client {
    kube::Client::try_from(config(&server.url())).expect("client")
}

/// Holds back every EndpointSlice request until the gate opens, so a test can look at the source
/// while the Service list is complete and the EndpointSlice one is not.
#[derive(Clone)]
struct Gate<S> {
    inner: S,
    open: watch::Receiver<bool>,
}

impl<S> tower::Service<http::Request<Body>> for Gate<S>
where
    S: tower::Service<http::Request<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let gated = request.uri().path().ends_with("/endpointslices");
        let mut open = self.open.clone();
        // The inner future is not polled before the gate opens, so no response reaches kube.
        let response = self.inner.call(request);
        Box::pin(async move {
            if gated {
                let _ = open.wait_for(|open| *open).await;
            }
            response.await
        })
    }
}

fn gated_client(server: &FakeApiServer, open: watch::Receiver<bool>) -> kube::Client {
    ClientBuilder::try_from(config(&server.url()))
        .expect("client builder")
        .with_layer(&tower::layer::layer_fn(move |inner| Gate {
            inner,
            open: open.clone(),
        }))
        .build()
}

fn service(name: &str, cluster_ip: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": labels,
            // Stripped by the source: memory only, the proxy never reads them.
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1"}],
        },
        "spec": {
            "clusterIP": cluster_ip,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        },
    })
}

fn slice(name: &str, service: &str, addresses: &[&str], extra_labels: Value) -> Value {
    let mut labels = json!({"kubernetes.io/service-name": service});
    if let (Value::Object(labels), Value::Object(extra)) = (&mut labels, extra_labels) {
        labels.extend(extra);
    }
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "addressType": "IPv4",
        "endpoints": addresses.iter().map(|a| json!({"addresses": [a]})).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

fn node(name: &str, zone: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
    })
}

/// The snapshot as comparable lines: kind, namespace/name and the fields the tests change.
fn summary(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = common::services_and_slices(snapshot);
    if let Some(node) = snapshot.node() {
        let zone = node.labels().get("topology.kubernetes.io/zone").cloned();
        lines.push(format!(
            "Node {} {}",
            node.name_any(),
            zone.unwrap_or_default()
        ));
    }
    lines
}

/// Waits (at most 20 s: the watcher's backoff may be in the way) for a published snapshot whose
/// summary equals `expected`.
async fn expect_snapshot(receiver: &mut SnapshotReceiver, expected: &[&str]) -> Arc<Snapshot> {
    let wait = receiver.wait_for(|snapshot| {
        snapshot
            .as_deref()
            .is_some_and(|snapshot| summary(snapshot) == expected)
    });
    let outcome = match tokio::time::timeout(Duration::from_secs(20), wait).await {
        Ok(Ok(snapshot)) => Ok(snapshot.clone().expect("checked Some")),
        Ok(Err(_)) => panic!("the source ended while waiting for {expected:?}"),
        Err(_) => Err(()),
    };
    match outcome {
        Ok(snapshot) => snapshot,
        Err(()) => panic!(
            "timed out waiting for {expected:?}; last published: {:?}",
            receiver.borrow().as_deref().map(summary)
        ),
    }
}

/// Waits (bounded) until `condition` holds on the server's request counts.
async fn until_requests(
    server: &FakeApiServer,
    what: &str,
    condition: impl Fn(&FakeApiServer) -> bool,
) {
    let poll = async {
        while !condition(server) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .is_err()
    {
        panic!(
            "timed out waiting for {what}: {:?}",
            server.request_counts()
        );
    }
}

fn populate(server: &FakeApiServer) {
    server.apply(service("web", "10.96.0.10", json!({"app": "web"})));
    server.apply(service(
        "other",
        "10.96.0.11",
        json!({"service.kubernetes.io/service-proxy-name": "someone-else"}),
    ));
    server.apply(slice("web-1", "web", &["10.244.1.5"], json!({})));
    server.apply(slice(
        "db-1",
        "db",
        &["10.244.1.9"],
        json!({"service.kubernetes.io/headless": ""}),
    ));
    server.apply(node("node-b", "z2"));
}

#[tokio::test]
async fn no_snapshot_until_both_lists_are_complete_then_only_selected_objects() {
    let server = FakeApiServer::start().await;
    populate(&server);
    let (open_gate, gate) = watch::channel(false);
    let (mut receiver, driver) = kube_source(gated_client(&server, gate), NODE);
    let driver = tokio::spawn(driver);

    // The Service list is done and its watch is running; the EndpointSlice list is held back.
    until_requests(&server, "the Service watch", |s| {
        s.request_counts()["Service"].watch >= 1
    })
    .await;
    until_requests(&server, "the Node watch", |s| {
        s.request_counts()["Node"].watch >= 1
    })
    .await;
    tokio::task::yield_now().await;
    assert!(
        receiver.borrow().is_none(),
        "published before the EndpointSlice list"
    );
    assert_eq!(server.request_counts()["EndpointSlice"].list, 0);

    open_gate.send_replace(true);
    // Headless slice and the other proxy's Service are filtered; node-b is not our Node.
    let first = expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.10",
            "EndpointSlice shop/web-1 10.244.1.5",
        ],
    )
    .await;
    assert_eq!(first.node(), None);
    assert!(first.services()[0].managed_fields().is_empty());

    assert!(!driver.is_finished());
    driver.abort();
}

#[tokio::test]
async fn changes_to_services_slices_and_our_node_produce_new_snapshots() {
    let server = FakeApiServer::start().await;
    populate(&server);
    let (mut receiver, driver) = kube_source(client(&server), NODE);
    let driver = tokio::spawn(driver);
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.10",
            "EndpointSlice shop/web-1 10.244.1.5",
        ],
    )
    .await;

    // Modify a Service and a slice, add a Service.
    server.apply(service("web", "10.96.0.12", json!({"app": "web"})));
    server.apply(slice(
        "web-1",
        "web",
        &["10.244.1.5", "10.244.2.6"],
        json!({}),
    ));
    server.apply(service("api", "10.96.0.20", json!({})));
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/api 10.96.0.20",
            "Service shop/web 10.96.0.12",
            "EndpointSlice shop/web-1 10.244.1.5,10.244.2.6",
        ],
    )
    .await;

    // Another node changing is not ours; our node appearing and changing is.
    server.apply(node("node-b", "z3"));
    server.apply(node(NODE, "z1"));
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/api 10.96.0.20",
            "Service shop/web 10.96.0.12",
            "EndpointSlice shop/web-1 10.244.1.5,10.244.2.6",
            "Node node-a z1",
        ],
    )
    .await;
    server.apply(node(NODE, "z9"));
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/api 10.96.0.20",
            "Service shop/web 10.96.0.12",
            "EndpointSlice shop/web-1 10.244.1.5,10.244.2.6",
            "Node node-a z9",
        ],
    )
    .await;

    // Deletions, and a Service that takes the other proxy's label leaves the selection.
    server.delete("Service", Some("shop"), "api");
    server.delete("EndpointSlice", Some("shop"), "web-1");
    server.apply(service(
        "web",
        "10.96.0.12",
        json!({"service.kubernetes.io/service-proxy-name": "someone-else"}),
    ));
    server.delete("Node", None, NODE);
    let empty = expect_snapshot(&mut receiver, &[]).await;
    assert_eq!(*empty, Snapshot::default());

    assert!(!driver.is_finished());
    driver.abort();
}

#[tokio::test]
async fn relists_after_compaction_and_stays_right() {
    let server = FakeApiServer::start().await;
    populate(&server);
    server.apply(node(NODE, "z1"));
    let (mut receiver, driver) = kube_source(client(&server), NODE);
    let driver = tokio::spawn(driver);
    let before = expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.10",
            "EndpointSlice shop/web-1 10.244.1.5",
            "Node node-a z1",
        ],
    )
    .await;
    let lists = |s: &FakeApiServer| {
        let counts = s.request_counts();
        (counts["Service"].list, counts["EndpointSlice"].list)
    };
    let (services_listed, slices_listed) = lists(&server);

    // Compaction breaks every watch with 410 Gone; changes made meanwhile must still arrive,
    // through the relist.
    server.compact();
    server.delete("Service", Some("shop"), "web");
    server.apply(slice("web-1", "web", &["10.244.3.3"], json!({})));
    until_requests(&server, "both relists", |s| {
        let (services, slices) = lists(s);
        services > services_listed && slices > slices_listed
    })
    .await;
    expect_snapshot(
        &mut receiver,
        &["EndpointSlice shop/web-1 10.244.3.3", "Node node-a z1"],
    )
    .await;

    // And the watches resumed after the relist.
    server.apply(service("late", "10.96.0.30", json!({})));
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/late 10.96.0.30",
            "EndpointSlice shop/web-1 10.244.3.3",
            "Node node-a z1",
        ],
    )
    .await;
    assert_ne!(
        before.services(),
        receiver.borrow().as_ref().expect("published").services()
    );

    assert!(!driver.is_finished());
    driver.abort();
}

#[tokio::test]
async fn an_unreachable_api_server_is_retried_without_ending_the_source() {
    // Reserve a free port, then leave it closed: every request is refused at first.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port");
    let url = format!("http://{addr}");
    let client = kube::Client::try_from(config(&url)).expect("client");
    let (mut receiver, driver) = kube_source(client, NODE);
    let driver = tokio::spawn(driver);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.borrow().is_none());
    assert!(!driver.is_finished(), "connection refused ended the source");

    let server = FakeApiServer::start_on(addr)
        .await
        .expect("bind the reserved port");
    populate(&server);
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.10",
            "EndpointSlice shop/web-1 10.244.1.5",
        ],
    )
    .await;
    driver.abort();
}
