//! `manifests_source` on a real temporary directory: first snapshot, then rewriting, adding and
//! removing files. Waits are bounded; assertions are on content, not on timing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod common;

use kipvs_cluster::{manifests_source, ClusterError, Snapshot, SnapshotReceiver};
use kube::ResourceExt;

/// A fresh, uniquely named directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "kipvs-cluster-{test}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).expect("write manifest");
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.0.join(name)).expect("remove manifest");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn service(name: &str, cluster_ip: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  clusterIP: {cluster_ip}
  ports: [{{name: http, port: 80, protocol: TCP}}]
"
    )
}

fn slice(name: &str, service: &str, address: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: shop
  labels: {{kubernetes.io/service-name: {service}}}
addressType: IPv4
endpoints:
- addresses: [{address}]
ports: [{{name: http, port: 8080, protocol: TCP}}]
"
    )
}

fn node(name: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n")
}

/// The snapshot as comparable lines: kind, namespace/name and the one field each test changes.
fn summary(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = common::services_and_slices(snapshot);
    if let Some(node) = snapshot.node() {
        lines.push(format!("Node {}", node.name_any()));
    }
    lines
}

/// Waits (at most 10 s) for a published snapshot whose summary equals `expected`.
async fn expect_snapshot(receiver: &mut SnapshotReceiver, expected: &[&str]) -> Arc<Snapshot> {
    let wait = receiver.wait_for(|snapshot| {
        snapshot
            .as_deref()
            .is_some_and(|snapshot| summary(snapshot) == expected)
    });
    let outcome = match tokio::time::timeout(Duration::from_secs(10), wait).await {
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

#[tokio::test]
async fn follows_files_being_rewritten_added_and_removed() {
    let dir = TempDir::new("follow");
    dir.write(
        "web.yaml",
        &format!(
            "{}---\n{}",
            service("web", "10.96.0.10"),
            slice("web-1", "web", "10.244.1.5")
        ),
    );
    dir.write(
        "nodes.yml",
        &format!("{}---\n{}", node("node-b"), node("node-a")),
    );
    // Not a manifest by its name: ignored even though its content is valid.
    dir.write("notes.txt", &service("ignored", "10.96.0.99"));
    dir.write(".hidden.yaml", &service("hidden", "10.96.0.98"));

    let (mut receiver, driver) = manifests_source(dir.0.clone(), "node-a");
    let driver = tokio::spawn(driver);

    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.10",
            "EndpointSlice shop/web-1 10.244.1.5",
            "Node node-a",
        ],
    )
    .await;

    // Rewrite: a new clusterIP and a second endpoint, plus a broken document that is skipped.
    dir.write(
        "web.yaml",
        &format!(
            "{}---\nkind: [broken\n---\n{}",
            service("web", "10.96.0.11"),
            slice("web-1", "web", "10.244.1.5").replace(
                "- addresses: [10.244.1.5]",
                "- addresses: [10.244.1.5]\n- addresses: [10.244.2.7]"
            )
        ),
    );
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/web 10.96.0.11",
            "EndpointSlice shop/web-1 10.244.1.5,10.244.2.7",
            "Node node-a",
        ],
    )
    .await;

    // Add a file.
    dir.write("api.yaml", &service("api", "10.96.0.20"));
    expect_snapshot(
        &mut receiver,
        &[
            "Service shop/api 10.96.0.20",
            "Service shop/web 10.96.0.11",
            "EndpointSlice shop/web-1 10.244.1.5,10.244.2.7",
            "Node node-a",
        ],
    )
    .await;

    // Remove files: the web objects and our Node disappear.
    dir.remove("web.yaml");
    dir.remove("nodes.yml");
    let last = expect_snapshot(&mut receiver, &["Service shop/api 10.96.0.20"]).await;

    // Rewriting a file with identical content is not a change worth a snapshot.
    receiver.borrow_and_update();
    dir.write("api.yaml", &service("api", "10.96.0.20"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!receiver.has_changed().expect("source alive"));
    assert!(Arc::ptr_eq(
        &last,
        receiver.borrow().as_ref().expect("published")
    ));

    assert!(!driver.is_finished());
    driver.abort();
}

#[tokio::test]
async fn an_empty_directory_gives_an_empty_snapshot() {
    let dir = TempDir::new("empty");
    let (mut receiver, driver) = manifests_source(dir.0.clone(), "node-a");
    assert!(receiver.borrow().is_none());
    let driver = tokio::spawn(driver);
    let snapshot = expect_snapshot(&mut receiver, &[]).await;
    assert_eq!(*snapshot, Snapshot::default());
    driver.abort();
}

#[tokio::test]
async fn a_missing_directory_ends_the_source_with_an_error() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("does-not-exist");
    let (receiver, driver) = manifests_source(missing.clone(), "node-a");
    let result = tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the source gives up at once");
    match result {
        Err(ClusterError::ManifestsDir { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected result {other:?}"),
    }
    assert!(receiver.borrow().is_none());
}
