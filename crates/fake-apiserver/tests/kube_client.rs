//! The fake API server driven by the real kube-rs client, configured exactly as the daemon
//! configures its watchers. Waits are bounded with `tokio::time::timeout` while polling the
//! reflector store; assertions are on store contents and request counts only.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kipvs_fake_apiserver::FakeApiServer;
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Config, Resource};
use serde_json::{json, Value};

const KUBE_PROXY_SELECTOR: &str =
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";
const WAIT: Duration = Duration::from_secs(10);

async fn client(server: &FakeApiServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        server.url()
    );
    Client::try_from(config).expect("client")
}

fn service(name: &str, labels: Value, port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "default", "labels": labels},
           "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": port, "protocol": "TCP"}]}})
}

fn slice(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": "default", "labels": labels},
           "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}]})
}

fn node(name: &str, zone: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}})
}

/// Runs `watcher` + `reflector` in the background and returns the store once the initial list
/// is complete.
async fn reflect<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, config));
    tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(WAIT, reader.wait_until_ready())
        .await
        .expect("initial list in time")
        .expect("ready");
    reader
}

fn names<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>) -> Vec<String> {
    let mut names: Vec<String> = store
        .state()
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect();
    names.sort();
    names
}

/// Polls until `condition` holds; panics with `what` after `WAIT`.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let poll = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn services_config() -> watcher::Config {
    watcher::Config::default()
        .labels(KUBE_PROXY_SELECTOR)
        .any_semantic()
        .page_size(2)
}

fn port_of(store: &Store<Service>, name: &str) -> Option<i32> {
    let svc = store
        .state()
        .into_iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))?;
    Some(svc.spec.as_ref()?.ports.as_ref()?[0].port)
}

#[tokio::test]
async fn service_reflector_lists_in_pages_and_follows_changes() {
    let server = FakeApiServer::start().await;
    for name in ["a", "b", "c", "d", "e"] {
        server.apply(service(name, json!({"app": name}), 80));
    }
    server.apply(service(
        "headless",
        json!({"service.kubernetes.io/headless": ""}),
        80,
    ));
    server.apply(service(
        "other-proxy",
        json!({"service.kubernetes.io/service-proxy-name": "x"}),
        80,
    ));

    let store = reflect(
        Api::<Service>::all(client(&server).await),
        services_config(),
    )
    .await;
    assert_eq!(names(&store), ["a", "b", "c", "d", "e"]);
    // 5 matching objects in pages of 2: 2 + 2 + 1.
    assert_eq!(server.request_counts()["Service"].list, 3);

    // The watcher accepts a BOOKMARK (moving its resourceVersion) and goes on following events.
    server.bookmark();
    server.apply(service("f", json!({}), 80));
    server.apply(service("a", json!({"app": "a"}), 8080));
    assert!(server.delete("Service", Some("default"), "b"));
    eventually("ADDED f, MODIFIED a, DELETED b", || {
        names(&store) == ["a", "c", "d", "e", "f"] && port_of(&store, "a") == Some(8080)
    })
    .await;

    // Changing a label so that the object stops matching deletes it from the watch...
    server.apply(service(
        "c",
        json!({"service.kubernetes.io/headless": ""}),
        80,
    ));
    eventually("c leaving the selector", || {
        names(&store) == ["a", "d", "e", "f"]
    })
    .await;
    // ...and matching again adds it back; changes to non-matching objects are never seen.
    server.apply(service(
        "headless",
        json!({"service.kubernetes.io/headless": ""}),
        81,
    ));
    server.apply(service("c", json!({}), 82));
    eventually("c rejoining the selector", || {
        names(&store) == ["a", "c", "d", "e", "f"]
    })
    .await;
    assert_eq!(port_of(&store, "c"), Some(82));

    let counts = server.request_counts();
    assert_eq!(counts["Service"].list, 3, "no relist without compaction");
    assert_eq!(counts["Service"].watch, 1);
    assert_eq!(counts["EndpointSlice"].list + counts["Node"].list, 0);
}

#[tokio::test]
async fn compaction_makes_the_watcher_relist_and_stay_correct() {
    let server = FakeApiServer::start().await;
    for name in ["a", "b", "c"] {
        server.apply(service(name, json!({}), 80));
    }
    let store = reflect(
        Api::<Service>::all(client(&server).await),
        services_config(),
    )
    .await;
    assert_eq!(names(&store), ["a", "b", "c"]);
    let lists_before = server.request_counts()["Service"].list;

    server.compact();
    server.apply(service("d", json!({}), 80));
    assert!(server.delete("Service", Some("default"), "a"));
    server.apply(service(
        "b",
        json!({"service.kubernetes.io/service-proxy-name": "x"}),
        80,
    ));
    eventually("the state after compaction", || names(&store) == ["c", "d"]).await;
    eventually("a relist", || {
        server.request_counts()["Service"].list > lists_before
    })
    .await;

    // The relisted watcher keeps following changes.
    server.apply(service("e", json!({}), 80));
    eventually("ADDED e after the relist", || {
        names(&store) == ["c", "d", "e"]
    })
    .await;
}

#[tokio::test]
async fn endpoint_slices_and_the_node_field_selector() {
    let server = FakeApiServer::start().await;
    server.apply(slice(
        "web-abc",
        json!({"kubernetes.io/service-name": "web"}),
    ));
    server.apply(slice(
        "db-xyz",
        json!({"kubernetes.io/service-name": "db", "service.kubernetes.io/headless": ""}),
    ));
    server.apply(node("node-a", "z1"));
    server.apply(node("node-b", "z1"));
    let client = client(&server).await;

    let slices = reflect(Api::<EndpointSlice>::all(client.clone()), services_config()).await;
    assert_eq!(names(&slices), ["web-abc"]);
    let nodes = reflect(
        Api::<Node>::all(client),
        watcher::Config::default()
            .fields("metadata.name=node-a")
            .any_semantic(),
    )
    .await;
    assert_eq!(names(&nodes), ["node-a"]);

    server.apply(slice(
        "web-def",
        json!({"kubernetes.io/service-name": "web"}),
    ));
    server.delete("EndpointSlice", Some("default"), "web-abc");
    eventually("slice changes", || names(&slices) == ["web-def"]).await;

    server.apply(node("node-b", "z2"));
    server.apply(node("node-a", "z3"));
    let zone = |nodes: &Store<Node>| {
        nodes.state().first().and_then(|n| {
            n.metadata
                .labels
                .as_ref()?
                .get("topology.kubernetes.io/zone")
                .cloned()
        })
    };
    eventually("node-a relabelled", || {
        zone(&nodes).as_deref() == Some("z3")
    })
    .await;
    assert_eq!(names(&nodes), ["node-a"]);
    server.delete("Node", None, "node-a");
    eventually("node-a deleted", || names(&nodes).is_empty()).await;

    let counts = server.request_counts();
    assert_eq!((counts["EndpointSlice"].list, counts["Node"].list), (1, 1));
}

#[tokio::test]
async fn watch_stream_bookmarks_timeouts_and_expiry() {
    let server = FakeApiServer::start().await;
    let services = Api::<Service>::namespaced(client(&server).await, "default");
    server.apply(service("a", json!({}), 80));
    let version = server.resource_version().to_string();

    // Bookmarks carry the watch's current version; events still follow.
    let mut stream = services
        .watch(&WatchParams::default(), &version)
        .await
        .expect("watch")
        .boxed();
    server.bookmark();
    match within("a bookmark", stream.next()).await {
        Some(Ok(WatchEvent::Bookmark(bookmark))) => {
            assert_eq!(bookmark.metadata.resource_version, version)
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let stored = server.apply(service("b", json!({}), 80));
    loop {
        match within("ADDED b", stream.next()).await {
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            Some(Ok(WatchEvent::Added(svc))) => {
                assert_eq!(svc.metadata.name.as_deref(), Some("b"));
                assert_eq!(
                    svc.metadata.resource_version.as_ref(),
                    stored["metadata"]["resourceVersion"]
                        .as_str()
                        .map(String::from)
                        .as_ref()
                );
                assert!(svc.metadata.uid.is_some() && svc.metadata.creation_timestamp.is_some());
                break;
            }
            other => panic!("expected ADDED b, got {other:?}"),
        }
    }

    // Compaction ends the open watch with 410 Expired...
    server.compact();
    let expired = |event| matches!(event, Some(Ok(WatchEvent::Error(ref status))) if status.code == 410 && status.reason == "Expired");
    loop {
        match within("ERROR 410", stream.next()).await {
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            event => {
                assert!(expired(event), "expected 410 Expired");
                break;
            }
        }
    }
    assert!(within("end of the stream", stream.next()).await.is_none());
    // ...and resuming from a version before it gets one 410 Expired event and the end.
    let mut stream = services
        .watch(&WatchParams::default(), &version)
        .await
        .expect("watch")
        .boxed();
    assert!(expired(within("ERROR 410 on resume", stream.next()).await));
    assert!(within("end of the expired stream", stream.next())
        .await
        .is_none());

    // timeoutSeconds ends a stream cleanly.
    let now = server.resource_version().to_string();
    let mut stream = services
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &now)
        .await
        .expect("watch")
        .boxed();
    assert!(within("the watch timeout", stream.next()).await.is_none());
    assert_eq!(server.request_counts()["Service"].watch, 3);
}

#[tokio::test]
async fn rest_writes_and_errors() {
    let server = FakeApiServer::start().await;
    let client = client(&server).await;
    let services = Api::<Service>::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(service("web", json!({"app": "web"}), 80)).unwrap();

    let created = services
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    let conflict = services
        .create(&PostParams::default(), &svc)
        .await
        .expect_err("second create");
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409),
        "{conflict:?}"
    );

    let mut changed = created.clone();
    changed.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
    let replaced = services
        .replace("web", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(
        services
            .get("web")
            .await
            .expect("get")
            .spec
            .unwrap()
            .ports
            .unwrap()[0]
            .port,
        8080
    );

    // Namespaced collections only hold their namespace.
    let elsewhere = Api::<Service>::namespaced(client.clone(), "kube-system");
    assert!(elsewhere
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .is_empty());
    assert_eq!(
        Api::<Service>::all(client.clone())
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    let missing = services.get("web").await.expect_err("get after delete");
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404),
        "{missing:?}"
    );

    let bad = services
        .list(&kube::api::ListParams::default().labels("a b"))
        .await
        .expect_err("bad selector");
    assert!(
        matches!(bad, kube::Error::Api(ref s) if s.code == 400),
        "{bad:?}"
    );

    let nodes = Api::<Node>::all(client);
    let n: Node = serde_json::from_value(node("node-a", "z1")).unwrap();
    nodes
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    assert_eq!(
        nodes
            .get("node-a")
            .await
            .expect("get node")
            .metadata
            .namespace,
        None
    );
}
