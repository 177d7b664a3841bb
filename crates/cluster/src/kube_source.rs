//! The in-cluster source: kube-rs watchers on Services, EndpointSlices and this node's Node,
//! reflected into stores, from which a snapshot is rebuilt after every change.

use std::future::Future;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::manifests_source::publish;
use crate::selector::{node_field_selector, LABEL_SELECTOR};
use crate::{ClusterError, Snapshot, SnapshotReceiver};

/// Events handled back to back before a snapshot is built: a burst of changes (say a rollout
/// touching many EndpointSlices) gives one snapshot, yet a busy stream cannot delay it forever.
const MAX_COALESCED_EVENTS: usize = 256;

/// Watches the API server behind `client` and publishes a snapshot for node `node_name` once the
/// Service and EndpointSlice lists are both complete, then after every change.
///
/// Services and EndpointSlices are watched in all namespaces with kube-proxy's label selector,
/// applied by the server; the Node with a field selector on its name. A missing Node object never
/// holds back the snapshots (they carry `node: None` until it appears). API errors are logged and
/// retried with kube-rs' default backoff; they neither end the future nor clear the snapshot, and
/// a relist (after a `410 Gone`) swaps the new state in atomically. The future runs until dropped.
pub fn kube_source(
    client: Client,
    node_name: &str,
) -> (
    SnapshotReceiver,
    impl Future<Output = Result<(), ClusterError>> + Send + 'static,
) {
    let (sender, receiver) = watch::channel(None);
    let node_name = node_name.to_string();
    let driver = async move {
        let (services, services_writer) = reflector::store::<Service>();
        let (slices, slices_writer) = reflector::store::<EndpointSlice>();
        let (nodes, nodes_writer) = reflector::store::<Node>();
        let selected = watcher::Config::default()
            .labels(LABEL_SELECTOR)
            .any_semantic();
        let ours = watcher::Config::default()
            .fields(&node_field_selector(&node_name))
            .any_semantic();

        let service_events = watcher(Api::<Service>::all(client.clone()), selected.clone())
            .default_backoff()
            .modify(|service| service.managed_fields_mut().clear())
            .reflect(services_writer);
        let slice_events = watcher(Api::<EndpointSlice>::all(client.clone()), selected)
            .default_backoff()
            .modify(|slice| slice.managed_fields_mut().clear())
            .reflect(slices_writer);
        let node_events = watcher(Api::<Node>::all(client), ours)
            .default_backoff()
            .modify(trim_node)
            .reflect(nodes_writer);
        let mut events = futures::stream::select_all([
            tagged(Watched::Services, service_events),
            tagged(Watched::EndpointSlices, slice_events),
            tagged(Watched::Node, node_events),
        ]);

        let mut listed = Listed::default();
        while let Some(first) = events.next().await {
            let mut changed = listed.note(first)?;
            for _ in 1..MAX_COALESCED_EVENTS {
                match events.next().now_or_never() {
                    Some(Some(next)) => changed |= listed.note(next)?,
                    _ => break,
                }
            }
            if changed && listed.services && listed.endpoint_slices {
                publish(&sender, snapshot(&services, &slices, &nodes, &node_name));
            }
        }
        // `select_all` only ends once every watcher ended, which `Listed::note` reports first.
        Err(ClusterError::WatcherEnded { resource: "every" })
    };
    (receiver, driver)
}

#[derive(Debug, Clone, Copy)]
enum Watched {
    Services,
    EndpointSlices,
    Node,
}

impl Watched {
    fn name(self) -> &'static str {
        match self {
            Watched::Services => "Service",
            Watched::EndpointSlices => "EndpointSlice",
            Watched::Node => "Node",
        }
    }
}

/// What one watcher reported, reduced to what decides whether to publish.
enum Report {
    /// The store changed (or, for `InitDone`, a list completed and was swapped in).
    Changed {
        list_done: bool,
    },
    /// Nothing visible: `Init`/`InitApply` are buffered by the store until `InitDone`.
    Buffered,
    Failed(watcher::Error),
    Ended,
}

/// Tags a reflected watcher stream with its resource and appends an `Ended` marker, so that the
/// merged stream says which watcher stopped.
fn tagged<K, S>(
    watched: Watched,
    stream: S,
) -> futures::stream::BoxStream<'static, (Watched, Report)>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    stream
        .map(move |item| {
            let report = match item {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    Report::Changed { list_done: false }
                }
                Ok(watcher::Event::InitDone) => Report::Changed { list_done: true },
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Report::Buffered,
                Err(error) => Report::Failed(error),
            };
            (watched, report)
        })
        .chain(futures::stream::once(
            async move { (watched, Report::Ended) },
        ))
        .boxed()
}

/// Which initial lists completed; a later relist does not reset them, because the store keeps
/// serving the previous state until the new list is swapped in whole.
#[derive(Debug, Default)]
struct Listed {
    services: bool,
    endpoint_slices: bool,
}

impl Listed {
    /// Records one report; true when the stores changed.
    fn note(&mut self, (watched, report): (Watched, Report)) -> Result<bool, ClusterError> {
        match report {
            Report::Changed { list_done } => {
                if list_done {
                    tracing::debug!(resource = watched.name(), "list complete");
                    match watched {
                        Watched::Services => self.services = true,
                        Watched::EndpointSlices => self.endpoint_slices = true,
                        Watched::Node => {}
                    }
                }
                Ok(true)
            }
            Report::Buffered => Ok(false),
            Report::Failed(error) => {
                tracing::warn!(resource = watched.name(), %error, "watch failed; retrying with backoff");
                Ok(false)
            }
            Report::Ended => Err(ClusterError::WatcherEnded {
                resource: watched.name(),
            }),
        }
    }
}

/// Drops the parts of a Node the proxy never reads but that can be large: managed fields and the
/// list of cached container images.
fn trim_node(node: &mut Node) {
    node.managed_fields_mut().clear();
    if let Some(status) = node.status.as_mut() {
        status.images = None;
    }
}

fn snapshot(
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    nodes: &Store<Node>,
    node_name: &str,
) -> Snapshot {
    // The field selector already narrows the watch; checking the name again costs nothing and
    // keeps a server that ignores field selectors from handing us another node.
    let node = nodes.find(|node| node.name_any() == node_name);
    Snapshot::new(services.state(), slices.state(), node)
}
