//! The HTTP face: the Kubernetes REST paths for the three kinds (LIST, WATCH, GET, POST, PUT,
//! DELETE) plus `POST /fake/compact`, answering in the API server's JSON shapes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::selectors::Filter;
use crate::store::{Change, Kind, Notice, Replay, Store, StoreError};

pub type Shared = Arc<Mutex<Store>>;

/// How often a watch that allows bookmarks gets one without being asked.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

pub fn router(store: Shared) -> Router {
    let mut router = Router::new()
        .route("/fake/compact", post(compact))
        .route("/version", get(version));
    for kind in Kind::ALL {
        router = resource_routes(router, kind);
    }
    router
        .layer(middleware::from_fn(log_request))
        .with_state(store)
}

fn resource_routes(router: Router<Shared>, kind: Kind) -> Router<Shared> {
    let (prefix, plural) = (kind.api_prefix(), kind.plural());
    let collection = get(move |State(s): State<Shared>, Query(q): Query<Params>| {
        read_collection(s, kind, None, q)
    });
    if !kind.namespaced() {
        return router
            .route(
                &format!("{prefix}/{plural}"),
                collection
                    .post(move |State(s): State<Shared>, body: Bytes| create(s, kind, None, body)),
            )
            .route(
                &format!("{prefix}/{plural}/{{name}}"),
                get(move |State(s): State<Shared>, Path(name): Path<String>| {
                    read_one(s, kind, String::new(), name)
                })
                .put(
                    move |State(s): State<Shared>, Path(name): Path<String>, body: Bytes| {
                        replace(s, kind, None, name, body)
                    },
                )
                .delete(
                    move |State(s): State<Shared>, Path(name): Path<String>| {
                        remove(s, kind, String::new(), name)
                    },
                ),
            );
    }
    router
        .route(&format!("{prefix}/{plural}"), collection)
        .route(
            &format!("{prefix}/namespaces/{{namespace}}/{plural}"),
            get(
                move |State(s): State<Shared>, Path(ns): Path<String>, Query(q): Query<Params>| {
                    read_collection(s, kind, Some(ns), q)
                },
            )
            .post(
                move |State(s): State<Shared>, Path(ns): Path<String>, body: Bytes| {
                    create(s, kind, Some(ns), body)
                },
            ),
        )
        .route(
            &format!("{prefix}/namespaces/{{namespace}}/{plural}/{{name}}"),
            get(
                move |State(s): State<Shared>, Path((ns, name)): Path<(String, String)>| {
                    read_one(s, kind, ns, name)
                },
            )
            .put(
                move |State(s): State<Shared>,
                      Path((ns, name)): Path<(String, String)>,
                      body: Bytes| { replace(s, kind, Some(ns), name, body) },
            )
            .delete(
                move |State(s): State<Shared>, Path((ns, name)): Path<(String, String)>| {
                    remove(s, kind, ns, name)
                },
            ),
        )
}

async fn log_request(request: Request, next: Next) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "request");
    response
}

type Params = HashMap<String, String>;

async fn read_collection(
    store: Shared,
    kind: Kind,
    namespace: Option<String>,
    params: Params,
) -> Response {
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let filter = match Filter::parse(param("labelSelector"), param("fieldSelector")) {
        Ok(filter) => filter,
        Err(e) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let filter = match &namespace {
        // A namespaced collection is the cluster-wide one restricted to that namespace.
        Some(ns) => Filter {
            fields: filter.fields.and_namespace(ns),
            ..filter
        },
        None => filter,
    };
    if matches!(param("watch"), Some("true" | "1")) {
        return watch(store, kind, filter, &params);
    }
    let limit = param("limit").and_then(|l| l.parse().ok());
    // resourceVersion (unset, "0" or a version) is served from current state: this server is
    // always up to date, which satisfies both "Any" and "NotOlderThan".
    let page = store
        .lock()
        .unwrap()
        .list(kind, &filter, limit, param("continue"));
    match page {
        Ok(page) => {
            let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
            if let Some(token) = page.continue_token {
                metadata["continue"] = json!(token);
            }
            let list = json!({"apiVersion": kind.api_version(), "kind": kind.list_name(),
                              "metadata": metadata, "items": page.items});
            json_response(StatusCode::OK, &list)
        }
        Err(e) => store_error_response(e),
    }
}

/// Streams newline-delimited watch events from a producer task. The task ends when the client
/// goes away, on `timeoutSeconds`, or after a terminal ERROR event.
fn watch(store: Shared, kind: Kind, filter: Filter, params: &Params) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let from = match param("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
        None => None,
        Some(v) => match v.parse() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return status_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("invalid resourceVersion {v:?}"),
                )
            }
        },
    };
    let watcher = Watcher {
        kind,
        filter,
        bookmarks: param("allowWatchBookmarks") == Some("true"),
        timeout: param("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    match store.lock().unwrap().watch(kind, from) {
        // The real server answers an expired watch with 200 and one ERROR event.
        Err(StoreError::Expired(message)) => {
            let _ = tx.try_send(event_line(
                "ERROR",
                &status_object(410, "Expired", &message),
            ));
        }
        Err(e) => return store_error_response(e),
        Ok(start) => {
            tokio::spawn(watcher.run(start.replay, start.resource_version, start.notices, tx));
        }
    }
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .expect("static response parts")
}

struct Watcher {
    kind: Kind,
    filter: Filter,
    bookmarks: bool,
    timeout: Option<Duration>,
}

impl Watcher {
    async fn run(
        self,
        replay: Replay,
        mut resource_version: u64,
        mut notices: broadcast::Receiver<Notice>,
        tx: mpsc::Sender<Bytes>,
    ) {
        let lines: Vec<Bytes> = match replay {
            Replay::Objects(objects) => objects
                .iter()
                .filter(|o| self.filter.matches(o))
                .map(|o| event_line("ADDED", o))
                .collect(),
            Replay::Changes(changes) => changes.iter().filter_map(|c| self.event(c)).collect(),
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(self.timeout.unwrap_or_default());
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.reset();
        loop {
            let line = tokio::select! {
                () = &mut deadline, if self.timeout.is_some() => return,
                () = tx.closed() => return,
                _ = ticker.tick(), if self.bookmarks => self.bookmark(resource_version),
                notice = notices.recv() => match notice {
                    Ok(Notice::Change(change)) => {
                        // Changes to other kinds advance this watch's version too (one counter).
                        resource_version = change.resource_version;
                        match self.event(&change) {
                            Some(line) => line,
                            None => continue,
                        }
                    }
                    Ok(Notice::Bookmark) if self.bookmarks => self.bookmark(resource_version),
                    Ok(Notice::Bookmark) => continue,
                    Ok(Notice::Compacted) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let status = status_object(410, "Expired", "the watch fell out of the retained history");
                        let _ = tx.send(event_line("ERROR", &status)).await;
                        return;
                    }
                    Ok(Notice::Shutdown) | Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    }

    /// What a watch with this filter sees of a change: an object that starts matching is ADDED,
    /// one that stops matching is DELETED (its previous state at the change's version), as the
    /// real watch cache does.
    fn event(&self, change: &Change) -> Option<Bytes> {
        if change.kind != self.kind {
            return None;
        }
        let was = change.old.as_ref().filter(|o| self.filter.matches(o));
        let is = change.new.as_ref().filter(|o| self.filter.matches(o));
        match (was, is) {
            (None, Some(new)) => Some(event_line("ADDED", new)),
            (Some(_), Some(new)) => Some(event_line("MODIFIED", new)),
            (Some(old), None) => {
                let mut old = old.clone();
                old["metadata"]["resourceVersion"] = json!(change.resource_version.to_string());
                Some(event_line("DELETED", &old))
            }
            (None, None) => None,
        }
    }

    fn bookmark(&self, resource_version: u64) -> Bytes {
        let object = json!({"kind": self.kind.name(), "apiVersion": self.kind.api_version(),
                            "metadata": {"resourceVersion": resource_version.to_string()}});
        event_line("BOOKMARK", &object)
    }
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).expect("JSON value");
    line.push(b'\n');
    Bytes::from(line)
}

async fn read_one(store: Shared, kind: Kind, namespace: String, name: String) -> Response {
    match store.lock().unwrap().get(kind, &namespace, &name) {
        Ok(object) => json_response(StatusCode::OK, &object),
        Err(e) => store_error_response(e),
    }
}

async fn create(store: Shared, kind: Kind, namespace: Option<String>, body: Bytes) -> Response {
    match body_object(kind, namespace.as_deref(), None, &body) {
        Ok(object) => match store.lock().unwrap().put(object, true) {
            Ok(stored) => json_response(StatusCode::CREATED, &stored),
            Err(e) => store_error_response(e),
        },
        Err(e) => store_error_response(e),
    }
}

/// PUT creates the object when absent (as `kubectl replace` against a server allowing
/// create-on-update), which keeps shell scripts simple.
async fn replace(
    store: Shared,
    kind: Kind,
    namespace: Option<String>,
    name: String,
    body: Bytes,
) -> Response {
    match body_object(kind, namespace.as_deref(), Some(&name), &body) {
        Ok(object) => match store.lock().unwrap().put(object, false) {
            Ok(stored) => json_response(StatusCode::OK, &stored),
            Err(e) => store_error_response(e),
        },
        Err(e) => store_error_response(e),
    }
}

async fn remove(store: Shared, kind: Kind, namespace: String, name: String) -> Response {
    match store.lock().unwrap().remove(kind, &namespace, &name) {
        Ok(old) => {
            let mut status = status_object(200, "", "");
            status["status"] = json!("Success");
            status["details"] =
                json!({"name": name, "kind": kind.plural(), "uid": old["metadata"]["uid"]});
            json_response(StatusCode::OK, &status)
        }
        Err(e) => store_error_response(e),
    }
}

async fn compact(State(store): State<Shared>) -> Response {
    let mut store = store.lock().unwrap();
    store.compact();
    let mut status = status_object(
        200,
        "",
        &format!("compacted at {}", store.resource_version()),
    );
    status["status"] = json!("Success");
    json_response(StatusCode::OK, &status)
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake-apiserver"}),
    )
}

/// Parses a write's body and checks it against the URL, filling in the URL's namespace.
fn body_object(
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
    body: &[u8],
) -> Result<Value, StoreError> {
    let mut object: Value = serde_json::from_slice(body)
        .map_err(|e| StoreError::Invalid(format!("body is not a JSON object: {e}")))?;
    let field = |o: &Value, f: &str| o["metadata"][f].as_str().map(str::to_string);
    if object.get("kind").and_then(Value::as_str) != Some(kind.name()) {
        return Err(StoreError::Invalid(format!(
            "expected kind {} at this path",
            kind.name()
        )));
    }
    if let (Some(url_name), Some(body_name)) = (name, field(&object, "name")) {
        if url_name != body_name {
            return Err(StoreError::Invalid(format!(
                "name {body_name:?} does not match the URL's {url_name:?}"
            )));
        }
    }
    if let Some(ns) = namespace {
        match field(&object, "namespace") {
            Some(body_ns) if body_ns != ns => {
                return Err(StoreError::Invalid(format!(
                    "namespace {body_ns:?} does not match the URL's {ns:?}"
                )));
            }
            _ => object["metadata"]["namespace"] = json!(ns),
        }
    }
    if let Some(name) = name {
        object["metadata"]["name"] = json!(name);
    }
    Ok(object)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn status_response(status: StatusCode, reason: &str, message: &str) -> Response {
    json_response(status, &status_object(status.as_u16(), reason, message))
}

fn store_error_response(error: StoreError) -> Response {
    match error {
        StoreError::Invalid(m) => status_response(StatusCode::BAD_REQUEST, "BadRequest", &m),
        StoreError::NotFound(m) => {
            status_response(StatusCode::NOT_FOUND, "NotFound", &format!("{m} not found"))
        }
        StoreError::AlreadyExists(m) => status_response(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{m} already exists"),
        ),
        StoreError::Expired(m) => status_response(StatusCode::GONE, "Expired", &m),
    }
}
