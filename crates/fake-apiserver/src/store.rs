//! The object store: current objects, the global resourceVersion counter, the change history that
//! watches resume from, and the broadcast that live watches follow.
//!
//! Like etcd behind the real API server there is ONE resourceVersion counter for all kinds, and
//! every change is recorded with the object before and after it, so that
//! - a watch resuming from resourceVersion R replays the changes after R (or gets 410 Expired when
//!   they were compacted away), and
//! - a paged LIST serves every page from the state at the first page's resourceVersion, by
//!   undoing the changes made since.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::selectors::Filter;

/// The resources this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Service,
    EndpointSlice,
    Node,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Service, Kind::EndpointSlice, Kind::Node];

    /// By `kind` name ("Service"), as in objects and in [`crate::FakeApiServer::delete`].
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Node => "Node",
        }
    }

    pub fn list_name(self) -> &'static str {
        match self {
            Kind::Service => "ServiceList",
            Kind::EndpointSlice => "EndpointSliceList",
            Kind::Node => "NodeList",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Service | Kind::Node => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
        }
    }

    /// The URL path prefix of the kind's API group version.
    pub fn api_prefix(self) -> &'static str {
        match self {
            Kind::Service | Kind::Node => "/api/v1",
            Kind::EndpointSlice => "/apis/discovery.k8s.io/v1",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Node => "nodes",
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Node)
    }
}

/// Why a store operation was refused; the HTTP layer maps each to a `Status` code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// 400: not an object this server can store.
    Invalid(String),
    /// 404
    NotFound(String),
    /// 409: create of an existing object.
    AlreadyExists(String),
    /// 410: the requested resourceVersion is older than the retained history.
    Expired(String),
}

/// One committed change; `old`/`new` are `None` for a create/delete.
#[derive(Debug)]
pub struct Change {
    pub resource_version: u64,
    pub kind: Kind,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// What live watches are told, in commit order.
#[derive(Debug, Clone)]
pub enum Notice {
    Change(Arc<Change>),
    /// Send a BOOKMARK now (watches that asked for bookmarks).
    Bookmark,
    /// History was compacted: every open watch is told 410 Expired and ends.
    Compacted,
    /// The server is going away: every open watch ends.
    Shutdown,
}

/// LIST and WATCH requests served for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCount {
    pub list: u64,
    pub watch: u64,
}

/// One page of a LIST.
#[derive(Debug)]
pub struct Page {
    pub resource_version: u64,
    pub items: Vec<Value>,
    pub continue_token: Option<String>,
}

/// Where a new watch starts.
#[derive(Debug)]
pub struct WatchStart {
    /// The events to send before following `notices`: synthetic ADDED objects for a watch
    /// "from any version", or the retained changes after the requested version.
    pub replay: Replay,
    /// The resourceVersion the watch is at once `replay` is sent.
    pub resource_version: u64,
    pub notices: broadcast::Receiver<Notice>,
}

#[derive(Debug)]
pub enum Replay {
    Objects(Vec<Value>),
    Changes(Vec<Arc<Change>>),
}

type ObjectKey = (Kind, String, String);

pub struct Store {
    resource_version: u64,
    objects: BTreeMap<ObjectKey, Value>,
    /// Every change with resourceVersion > `oldest_resumable`, oldest first.
    history: Vec<Arc<Change>>,
    /// The oldest resourceVersion a watch may resume from (or a continue token may carry).
    oldest_resumable: u64,
    next_uid: u64,
    counts: BTreeMap<Kind, RequestCount>,
    notices: broadcast::Sender<Notice>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            // Never hand out "0": to a watch it means "any version", not "this version".
            resource_version: 1,
            objects: BTreeMap::new(),
            history: Vec::new(),
            oldest_resumable: 0,
            next_uid: 1,
            counts: Kind::ALL
                .into_iter()
                .map(|k| (k, RequestCount::default()))
                .collect(),
            // A watch that falls this far behind is ended with 410, like the real watch cache.
            notices: broadcast::channel(4096).0,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// Creates (`create_only`: 409 when it exists) or replaces an object, filling in the
    /// server-owned metadata; returns the stored object.
    pub fn put(&mut self, mut object: Value, create_only: bool) -> Result<Value, StoreError> {
        let (kind, namespace, name) = identify(&mut object)?;
        let key = (kind, namespace, name);
        let old = self.objects.get(&key).cloned();
        if create_only && old.is_some() {
            return Err(StoreError::AlreadyExists(describe(&key)));
        }
        self.resource_version += 1;
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("identify checked metadata");
        let kept = |field: &str| old.as_ref().and_then(|o| o["metadata"].get(field)).cloned();
        let uid = kept("uid").unwrap_or_else(|| {
            self.next_uid += 1;
            json!(format!(
                "00000000-0000-4000-8000-{:012x}",
                self.next_uid - 1
            ))
        });
        let created = kept("creationTimestamp").unwrap_or_else(|| json!(now_rfc3339()));
        metadata.insert("uid".into(), uid);
        metadata.insert("creationTimestamp".into(), created);
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        self.objects.insert(key, object.clone());
        self.commit(kind, old, Some(object.clone()));
        Ok(object)
    }

    /// Removes an object; returns it as last stored.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<Value, StoreError> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        let key = (kind, namespace.to_string(), name.to_string());
        let old = self
            .objects
            .remove(&key)
            .ok_or_else(|| StoreError::NotFound(describe(&key)))?;
        self.resource_version += 1;
        self.commit(kind, Some(old.clone()), None);
        Ok(old)
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, StoreError> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        let key = (kind, namespace.to_string(), name.to_string());
        self.objects
            .get(&key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(describe(&key)))
    }

    fn commit(&mut self, kind: Kind, old: Option<Value>, new: Option<Value>) {
        let change = Arc::new(Change {
            resource_version: self.resource_version,
            kind,
            old,
            new,
        });
        self.history.push(change.clone());
        // Sent under the store lock, so watches see changes in resourceVersion order.
        let _ = self.notices.send(Notice::Change(change));
    }

    /// Forgets all history: bumps the resourceVersion so that every version handed out so far is
    /// too old to resume from, and ends every open watch with 410 Expired.
    pub fn compact(&mut self) {
        self.resource_version += 1;
        self.oldest_resumable = self.resource_version;
        self.history.clear();
        let _ = self.notices.send(Notice::Compacted);
    }

    pub fn notify(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    /// One LIST page of the objects of `kind` matching `filter`,
    /// ordered by namespace and name. `continue_token` comes from the previous page and pins the
    /// page to that page's resourceVersion.
    pub fn list(
        &mut self,
        kind: Kind,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.counts.entry(kind).or_default().list += 1;
        let (resource_version, after) = match continue_token {
            Some(token) => {
                let (rv, namespace, name) = parse_continue(token)?;
                (rv, Some((namespace, name)))
            }
            None => (self.resource_version, None),
        };
        let objects = self.objects_at(kind, resource_version)?;
        let mut matching = objects
            .into_iter()
            .filter(|((ns, name), _)| after.as_ref().is_none_or(|a| (ns, name) > (&a.0, &a.1)))
            .filter(|(_, object)| filter.matches(object));
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let items: Vec<_> = matching.by_ref().take(limit).collect();
        let continue_token = match (items.last(), matching.next()) {
            (Some(((ns, name), _)), Some(_)) => Some(format!("{resource_version}/{ns}/{name}")),
            _ => None,
        };
        Ok(Page {
            resource_version,
            items: items.into_iter().map(|(_, object)| object).collect(),
            continue_token,
        })
    }

    /// The objects of `kind` as they were at `resource_version`: the current ones with the
    /// retained changes made since undone, newest first.
    fn objects_at(
        &self,
        kind: Kind,
        resource_version: u64,
    ) -> Result<BTreeMap<(String, String), Value>, StoreError> {
        if resource_version < self.oldest_resumable {
            return Err(StoreError::Expired(format!(
                "resourceVersion {resource_version} is older than the retained history; restart the list"
            )));
        }
        let mut objects: BTreeMap<_, _> = self
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|((_, ns, name), object)| ((ns.clone(), name.clone()), object.clone()))
            .collect();
        let undo = self
            .history
            .iter()
            .rev()
            .take_while(|c| c.resource_version > resource_version);
        for change in undo.filter(|c| c.kind == kind) {
            let either = change
                .new
                .as_ref()
                .or(change.old.as_ref())
                .expect("a change has an object");
            let key = (
                metadata_str(either, "namespace"),
                metadata_str(either, "name"),
            );
            match &change.old {
                Some(old) => objects.insert(key, old.clone()),
                None => objects.remove(&key),
            };
        }
        Ok(objects)
    }

    /// Starts a watch on `kind`: from `resource_version` (None = "any": the current objects are
    /// replayed as ADDED), or 410 Expired when that version's successors were compacted away.
    pub fn watch(
        &mut self,
        kind: Kind,
        resource_version: Option<u64>,
    ) -> Result<WatchStart, StoreError> {
        self.counts.entry(kind).or_default().watch += 1;
        // Subscribed under the lock: nothing committed between the replay and the live notices.
        let notices = self.notices.subscribe();
        let replay = match resource_version {
            None => Replay::Objects(
                self.objects
                    .iter()
                    .filter(|((k, _, _), _)| *k == kind)
                    .map(|(_, o)| o.clone())
                    .collect(),
            ),
            Some(rv) if rv < self.oldest_resumable => {
                return Err(StoreError::Expired(format!(
                    "too old resource version: {rv} ({})",
                    self.oldest_resumable
                )));
            }
            Some(rv) => Replay::Changes(
                self.history
                    .iter()
                    .filter(|c| c.resource_version > rv)
                    .cloned()
                    .collect(),
            ),
        };
        Ok(WatchStart {
            replay,
            resource_version: self.resource_version.max(resource_version.unwrap_or(0)),
            notices,
        })
    }

    pub fn request_counts(&self) -> &BTreeMap<Kind, RequestCount> {
        &self.counts
    }
}

/// Checks apiVersion/kind/name, defaults a namespaced object's namespace to "default" and drops a
/// cluster-scoped one's; returns the object's key.
fn identify(object: &mut Value) -> Result<ObjectKey, StoreError> {
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or_default();
    let kind = Kind::from_name(field("kind"))
        .filter(|k| k.api_version() == field("apiVersion"))
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "unsupported apiVersion/kind {:?}/{:?}",
                field("apiVersion"),
                field("kind")
            ))
        })?;
    let metadata = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| StoreError::Invalid("object has no metadata".into()))?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(StoreError::Invalid("metadata.name is required".into()));
    }
    let namespace = if kind.namespaced() {
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        metadata.insert("namespace".into(), json!(namespace));
        namespace
    } else {
        metadata.remove("namespace");
        String::new()
    };
    Ok((kind, namespace, name))
}

fn metadata_str(object: &Value, field: &str) -> String {
    object["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn describe((kind, namespace, name): &ObjectKey) -> String {
    if namespace.is_empty() {
        format!("{}.{} {name:?}", kind.plural(), kind.api_version())
    } else {
        format!(
            "{}.{} {namespace}/{name}",
            kind.plural(),
            kind.api_version()
        )
    }
}

/// Continue tokens are "RV/NAMESPACE/NAME" of the last item served: opaque to clients, and
/// neither namespaces nor names can contain '/'.
fn parse_continue(token: &str) -> Result<(u64, String, String), StoreError> {
    let mut parts = token.splitn(3, '/');
    match (
        parts.next().and_then(|rv| rv.parse().ok()),
        parts.next(),
        parts.next(),
    ) {
        (Some(rv), Some(namespace), Some(name)) => {
            Ok((rv, namespace.to_string(), name.to_string()))
        }
        _ => Err(StoreError::Invalid(format!(
            "invalid continue token {token:?}"
        ))),
    }
}

fn now_rfc3339() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::new(seconds, 0)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "default", "labels": {"app": app}}})
    }

    #[test]
    fn put_fills_server_metadata_and_keeps_uid_on_replace() {
        let mut store = Store::new();
        let created = store.put(service("web", "a"), true).unwrap();
        assert_eq!(created["metadata"]["resourceVersion"], "2");
        assert!(created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        assert!(matches!(
            store.put(service("web", "a"), true),
            Err(StoreError::AlreadyExists(_))
        ));
        let replaced = store.put(service("web", "b"), false).unwrap();
        assert_eq!(replaced["metadata"]["resourceVersion"], "3");
        assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);
        assert!(matches!(
            store.put(json!({"kind": "Pod", "apiVersion": "v1"}), false),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn continued_pages_show_the_first_pages_version() {
        let mut store = Store::new();
        for name in ["a", "b", "c", "d"] {
            store.put(service(name, "x"), true).unwrap();
        }
        let all = Filter::default();
        let first = store.list(Kind::Service, &all, Some(2), None).unwrap();
        assert_eq!(first.items.len(), 2);
        // Changes after the first page are invisible to its continuation.
        store.remove(Kind::Service, "default", "c").unwrap();
        store.put(service("e", "x"), true).unwrap();
        store.put(service("d", "changed"), false).unwrap();
        let second = store
            .list(
                Kind::Service,
                &all,
                Some(2),
                first.continue_token.as_deref(),
            )
            .unwrap();
        let names: Vec<_> = second
            .items
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, ["c", "d"]);
        assert_eq!(second.items[1]["metadata"]["labels"]["app"], "x");
        assert_eq!(second.resource_version, first.resource_version);
        assert_eq!(second.continue_token, None);
        // After compaction the token is too old.
        store.compact();
        let expired = store.list(
            Kind::Service,
            &all,
            Some(2),
            first.continue_token.as_deref(),
        );
        assert!(matches!(expired, Err(StoreError::Expired(_))));
    }

    #[test]
    fn watch_resumes_from_history_until_compacted() {
        let mut store = Store::new();
        store.put(service("a", "x"), true).unwrap();
        let rv = store.resource_version();
        store.put(service("b", "x"), true).unwrap();
        let start = store.watch(Kind::Service, Some(rv)).unwrap();
        match start.replay {
            Replay::Changes(changes) => {
                assert_eq!(changes.len(), 1);
                assert_eq!(changes[0].new.as_ref().unwrap()["metadata"]["name"], "b");
            }
            Replay::Objects(_) => panic!("expected a change replay"),
        }
        store.compact();
        assert!(matches!(
            store.watch(Kind::Service, Some(rv)),
            Err(StoreError::Expired(_))
        ));
        assert!(store
            .watch(Kind::Service, Some(store.resource_version()))
            .is_ok());
        assert_eq!(store.request_counts()[&Kind::Service].watch, 3);
    }
}
