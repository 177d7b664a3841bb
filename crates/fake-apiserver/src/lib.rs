//! A fake Kubernetes API server speaking the real list/watch protocol over plain HTTP, for
//! Services, EndpointSlices and Nodes, so that kube-rs watchers run unmodified in tests (in
//! process) and in the VM (the `fake-apiserver` binary).
//!
//! What it implements, as the real server does:
//! - LIST with `labelSelector`, `fieldSelector` (`metadata.name`, `metadata.namespace`), `limit`
//!   and `continue` (every page consistent with the first page's resourceVersion);
//! - WATCH (`watch=true`) from a resourceVersion: newline-delimited `ADDED`/`MODIFIED`/`DELETED`
//!   events filtered by the selectors (an object that stops matching is `DELETED`), `BOOKMARK`s
//!   when `allowWatchBookmarks=true`, `timeoutSeconds`, and one `ERROR` 410 Expired event for a
//!   resourceVersion older than the retained history;
//! - GET, POST (409 when the object exists), PUT (replace, or create) and DELETE on objects.
//!
//! Plus what only a fake needs: [`FakeApiServer::compact`] (`POST /fake/compact`) to force
//! watchers through the 410 → relist path, and [`FakeApiServer::request_counts`].

mod http;
pub mod selectors;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use store::{Kind, RequestCount};
use store::{Notice, Store};

/// A running fake API server; serving stops when it is dropped.
pub struct FakeApiServer {
    store: http::Shared,
    addr: SocketAddr,
    serving: tokio::task::JoinHandle<()>,
}

impl FakeApiServer {
    /// Starts serving plain HTTP on 127.0.0.1:<random port> in the current tokio runtime.
    pub async fn start() -> FakeApiServer {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind 127.0.0.1:0")
    }

    /// Starts serving plain HTTP on `addr` in the current tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeApiServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store: http::Shared = Arc::new(Mutex::new(Store::new()));
        let app = http::router(store.clone());
        let serving = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake API server stopped");
            }
        });
        tracing::info!(%addr, "fake API server listening");
        Ok(FakeApiServer {
            store,
            addr,
            serving,
        })
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig pointing at this server, without authentication, with current-context set.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
users:
- name: fake
  user: {{}}
preferences: {{}}
",
            url = self.url()
        )
    }

    /// Creates or replaces an object (Service, EndpointSlice or Node, as JSON with
    /// apiVersion/kind/metadata); bumps the resourceVersion and emits ADDED or MODIFIED.
    /// Returns the stored object, with server-owned metadata filled in.
    ///
    /// # Panics
    /// When the object is not one this server stores (unknown kind, no name): a test bug.
    pub fn apply(&self, object: serde_json::Value) -> serde_json::Value {
        match self.store.lock().unwrap().put(object, false) {
            Ok(stored) => stored,
            Err(e) => panic!("FakeApiServer::apply: {e:?}"),
        }
    }

    /// Deletes an object by kind name ("Service", "EndpointSlice", "Node"); emits DELETED.
    /// Returns whether it existed. `namespace` is ignored for Nodes.
    ///
    /// # Panics
    /// On an unknown kind name.
    pub fn delete(&self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let kind = Kind::from_name(kind)
            .unwrap_or_else(|| panic!("FakeApiServer::delete: unknown kind {kind:?}"));
        self.store
            .lock()
            .unwrap()
            .remove(kind, namespace.unwrap_or("default"), name)
            .is_ok()
    }

    /// Forgets the event history: every open watch gets an ERROR 410 Expired event and ends, and
    /// resuming from any resourceVersion handed out so far gets 410, so kube-rs watchers relist.
    pub fn compact(&self) {
        self.store.lock().unwrap().compact();
    }

    /// Sends a BOOKMARK now on every open watch that allows bookmarks (they also get one every
    /// second).
    pub fn bookmark(&self) {
        self.store.lock().unwrap().notify(Notice::Bookmark);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.lock().unwrap().resource_version()
    }

    /// LIST and WATCH requests served so far, by kind name ("Service", "EndpointSlice", "Node";
    /// all three always present). Each LIST page counts as one LIST.
    pub fn request_counts(&self) -> BTreeMap<String, RequestCount> {
        let store = self.store.lock().unwrap();
        store
            .request_counts()
            .iter()
            .map(|(kind, count)| (kind.name().to_string(), *count))
            .collect()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.serving.abort();
        // Open watch streams would otherwise keep their connections (and clients) waiting.
        if let Ok(store) = self.store.lock() {
            store.notify(Notice::Shutdown);
        }
    }
}
