//! [`Cluster`] on `kube::Client`.

use super::error::{api_error, watch_error};
use super::pod_digest::PodDigest;
use super::watch_backoff::WatchBackoff;
use crate::cache::WatchedPod;
use crate::cluster::{
    ApiError, Cluster, ObjectVersion, Priority, Result, WatchStream, conditions_patch,
    labels_patch, map_event, taints_patch,
};
use crate::logic::actions::{Component, EventRecord, EventType};
use crate::settings::InitialList;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, PodCondition, Taint};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::runtime::events::{self, Recorder, Reporter};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::warn;

/// The production cluster: every call is one request to the API server through the client of
/// its priority (`Cluster::at`).
#[derive(Clone)]
pub struct KubeCluster {
    /// One client per `Priority`, in `Priority::ALL`'s order, all sending through the one
    /// client given to `new` (its connections, rate limit and credentials).
    clients: Arc<[Client; Priority::ALL.len()]>,
    priority: Priority,
    node_lease_namespace: String,
    reporting_instance: Option<String>,
    initial_list: InitialList,
    /// Per watched resource: the API server refused a streaming list, so its watches use paged
    /// lists from then on. Shared by the clones, so that a restarted watch (the staleness
    /// guard's) does not ask again and warn again.
    streaming_refused: StreamingRefused,
}

#[derive(Clone, Default)]
struct StreamingRefused {
    nodes: Arc<AtomicBool>,
    leases: Arc<AtomicBool>,
    pods: Arc<AtomicBool>,
}

impl KubeCluster {
    /// `node_lease_namespace` (normally `kube-node-lease`) is used by the lease calls when they
    /// are given an empty namespace.
    pub fn new(client: Client, node_lease_namespace: &str) -> Self {
        let clients = Priority::ALL.map(|priority| {
            let namespace = client.default_namespace().to_string();
            let stamped = Stamped {
                priority,
                client: client.clone(),
            };
            kube::client::ClientBuilder::new(stamped, namespace).build()
        });
        KubeCluster {
            clients: Arc::new(clients),
            priority: Priority::Reads,
            node_lease_namespace: node_lease_namespace.to_string(),
            reporting_instance: None,
            initial_list: InitialList::Paged,
            streaming_refused: StreamingRefused::default(),
        }
    }

    /// How the watches get their first full state (`--initial-list`); paged without this.
    pub fn with_initial_list(mut self, initial_list: InitialList) -> Self {
        self.initial_list = initial_list;
        self
    }

    /// Sets the `reportingInstance` of the Events written (e.g. the pod name); without it the
    /// component name is used, as kube-runtime's recorder does.
    pub fn with_reporting_instance(mut self, instance: impl Into<String>) -> Self {
        self.reporting_instance = Some(instance.into());
        self
    }

    pub fn node_lease_namespace(&self) -> &str {
        &self.node_lease_namespace
    }

    /// The client of this handle's priority.
    fn client(&self) -> Client {
        self.clients[self.priority as usize].clone()
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client())
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client(), namespace)
    }

    /// A metadata-only list (`as=PartialObjectMetadataList`) of the collection at `path`,
    /// decoded down to names and resourceVersions, read consistently (no resourceVersion, so
    /// not from the API server's watch cache: the point is to see past a stale watch). In
    /// pages of [`VERSION_PAGE`], whose continue tokens keep the first page's snapshot: whole,
    /// the list of 10 000 nodes was 4 MB (their labels come along), one block of work for the
    /// server and for the decoder that held up evictions falling due meanwhile.
    async fn list_versions(&self, path: String) -> Result<Vec<ObjectVersion>> {
        let mut versions = Vec::new();
        let mut params = ListParams::default().limit(VERSION_PAGE);
        loop {
            let request = kube::core::Request::new(path.as_str())
                .list_metadata(&params)
                .map_err(|e| ApiError::Other(format!("building a metadata list request: {e}")))?;
            let page: VersionList = self.client().request(request).await.map_err(api_error)?;
            versions.extend(page.items.into_iter().flatten().map(|item| ObjectVersion {
                name: item.metadata.name,
                resource_version: item.metadata.resource_version,
            }));
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(versions),
            }
        }
    }

    /// `namespace`, or the node lease namespace when it is empty.
    fn lease_namespace<'a>(&'a self, namespace: &'a str) -> &'a str {
        if namespace.is_empty() {
            &self.node_lease_namespace
        } else {
            namespace
        }
    }

    fn leases(&self, namespace: &str) -> Api<Lease> {
        Api::namespaced(self.client(), self.lease_namespace(namespace))
    }

    fn recorder(&self, component: Component) -> Recorder {
        // A recorder per Event: kube-runtime's recorder folds Events that differ only in their
        // note into a series of the first one (its key has no note), which would turn
        // "Cancelling deletion of Pod …" into another count of "Marking for deletion of Pod …".
        let reporter = Reporter {
            controller: component.name().to_string(),
            instance: self.reporting_instance.clone(),
        };
        Recorder::new(self.client(), reporter)
    }
}

/// A client as a tower service that gives each request a priority before handing it to the
/// client underneath: how one connection pool and one rate limit serve every priority.
#[derive(Clone)]
struct Stamped {
    priority: Priority,
    client: Client,
}

impl tower::Service<http::Request<kube::client::Body>> for Stamped {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, std::result::Result<Self::Response, kube::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), kube::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<kube::client::Body>) -> Self::Future {
        request.extensions_mut().insert(self.priority);
        let client = self.client.clone();
        async move { client.send(request).await }.boxed()
    }
}

fn name_of(meta: &ObjectMeta, what: &str) -> Result<String> {
    meta.name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Other(format!("{what} has no metadata.name")))
}

fn uid_precondition(uid: &str) -> Preconditions {
    Preconditions {
        uid: Some(uid.to_string()),
        resource_version: None,
    }
}

use crate::cluster::VERSION_PAGE;

/// A `PartialObjectMetadataList` as far as the staleness guard reads it; serde skips the rest
/// (labels, annotations, managed fields) without allocating it.
#[derive(serde::Deserialize)]
struct VersionList {
    #[serde(default)]
    metadata: VersionListMeta,
    /// A real API server writes an empty list as `"items": null`.
    #[serde(default)]
    items: Option<Vec<VersionItem>>,
}

#[derive(Default, serde::Deserialize)]
struct VersionListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

#[derive(serde::Deserialize)]
struct VersionItem {
    metadata: VersionMeta,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resource_version: String,
}

/// How one watch gets its first full state.
enum Lists {
    Paged,
    /// Streaming, until the API server refuses it: then `refused` is set (for this watch and
    /// every later one of `resource`) and the watch goes on with paged lists.
    Streaming {
        resource: &'static str,
        refused: Arc<AtomicBool>,
    },
}

impl KubeCluster {
    fn lists(&self, resource: &'static str, refused: &Arc<AtomicBool>) -> Lists {
        match self.initial_list {
            InitialList::Streaming if !refused.load(Ordering::Relaxed) => Lists::Streaming {
                resource,
                refused: Arc::clone(refused),
            },
            _ => Lists::Paged,
        }
    }
}

/// `kube::runtime::watcher` with a short backoff ([`WatchBackoff`]), errors as
/// `ApiError::Unavailable`.
fn watch<K>(api: Api<K>, lists: Lists) -> WatchStream<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let events = match lists {
        Lists::Paged => watcher(api, watcher::Config::default()).boxed(),
        Lists::Streaming { resource, refused } => streaming_or_paged(api, resource, refused),
    };
    events
        .backoff(WatchBackoff::default())
        .map_err(watch_error)
        .boxed()
}

/// A watcher with streaming lists that, when the API server refuses them, warns once and goes
/// on as a watcher with paged lists, without passing the refusal on: the consumer sees the
/// paged watcher's `Init`, `InitApply`…, `InitDone` as the (first) list, as if nothing had
/// happened. The refusal comes before the streaming watcher's `Init`, so no partial list was
/// delivered.
fn streaming_or_paged<K>(
    api: Api<K>,
    resource: &'static str,
    refused: Arc<AtomicBool>,
) -> BoxStream<'static, watcher::Result<Event<K>>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let streaming = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let state = (streaming, Some(api), StreamingProbe::default());
    futures::stream::unfold(state, move |(mut events, mut fallback, mut probe)| {
        let refused = Arc::clone(&refused);
        async move {
            loop {
                let item = events.next().await?;
                if fallback.is_some()
                    && let Some(status) = probe.refusal(&item)
                    && let Some(api) = fallback.take()
                {
                    if !refused.swap(true, Ordering::Relaxed) {
                        warn!(
                            resource,
                            code = status.code,
                            reason = %status.reason,
                            error = %status.message,
                            "the API server refused a streaming list (is its WatchList feature \
                             gate off?): this watch uses paged lists from now on"
                        );
                    }
                    events = watcher(api, watcher::Config::default()).boxed();
                    continue;
                }
                return Some((item, (events, fallback, probe)));
            }
        }
    })
    .boxed()
}

/// Follows a streaming watcher's output to tell the API server's refusal of a streaming list
/// from other errors.
///
/// kube's watcher asks for a streaming list (`sendInitialEvents=true`) when it starts and after
/// a 410 Gone or a watch event without a resourceVersion; once listed, it resumes interrupted
/// watches from a resourceVersion without asking for one. A 422 or 400 refusing to start the
/// watch is the refusal of the streaming list only when one was asked for; a 400 or 422 on a
/// resumed watch is about something else, and paged lists would not help.
#[derive(Debug, Default)]
struct StreamingProbe {
    /// Past the initial list: the watcher resumes watches, asking for no streaming list.
    listed: bool,
}

impl StreamingProbe {
    /// Observes the watcher's next item; returns the Status of a refused streaming list.
    fn refusal<'a, K>(&mut self, item: &'a watcher::Result<Event<K>>) -> Option<&'a Status> {
        match item {
            Ok(Event::InitDone) => self.listed = true,
            Err(watcher::Error::WatchError(status)) if status.code == 410 => self.listed = false,
            Err(watcher::Error::NoResourceVersion) => self.listed = false,
            Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
                if !self.listed && matches!(status.code, 400 | 422) =>
            {
                return Some(status);
            }
            _ => {}
        }
        None
    }
}

impl Cluster for KubeCluster {
    fn at(&self, priority: Priority) -> Self {
        KubeCluster {
            priority,
            ..self.clone()
        }
    }

    async fn get_node(&self, name: &str) -> Result<Node> {
        self.nodes().get(name).await.map_err(api_error)
    }

    async fn list_node_versions(&self) -> Result<Vec<ObjectVersion>> {
        self.list_versions(Node::url_path(&(), None)).await
    }

    async fn patch_node_taints(
        &self,
        name: &str,
        resource_version: &str,
        taints: &[Taint],
    ) -> Result<()> {
        let patch = Patch::Merge(taints_patch(resource_version, taints));
        self.nodes()
            .patch(name, &PatchParams::default(), &patch)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn patch_node_labels(
        &self,
        name: &str,
        resource_version: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let patch = Patch::Merge(labels_patch(resource_version, labels));
        self.nodes()
            .patch(name, &PatchParams::default(), &patch)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn patch_node_conditions(
        &self,
        name: &str,
        resource_version: &str,
        conditions: &[NodeCondition],
    ) -> Result<()> {
        let patch = Patch::Strategic(conditions_patch(resource_version, conditions));
        self.nodes()
            .patch_status(name, &PatchParams::default(), &patch)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        self.pods(namespace).get(name).await.map_err(api_error)
    }

    async fn patch_pod_conditions(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        conditions: &[PodCondition],
    ) -> Result<()> {
        let patch = Patch::Strategic(conditions_patch(resource_version, conditions));
        self.pods(namespace)
            .patch_status(name, &PatchParams::default(), &patch)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.pods(namespace)
            .delete(name, &params)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn evict_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        // Not `Api::evict`: kube 5 sends its options as `delete_options`, a field the API server
        // does not know (it is `deleteOptions`), so the UID precondition would be dropped.
        let eviction = Eviction {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            delete_options: Some(DeleteOptions {
                preconditions: Some(uid_precondition(uid)),
                ..DeleteOptions::default()
            }),
        };
        self.pods(namespace)
            .create_subresource::<_, Status>("eviction", name, &PostParams::default(), &eviction)
            .await
            .map_err(api_error)?;
        Ok(())
    }

    async fn list_lease_versions(&self, namespace: &str) -> Result<Vec<ObjectVersion>> {
        let namespace = self.lease_namespace(namespace);
        self.list_versions(Lease::url_path(&(), Some(namespace)))
            .await
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.leases(namespace).get(name).await.map_err(api_error)
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let namespace = lease.metadata.namespace.as_deref().unwrap_or_default();
        self.leases(namespace)
            .create(&PostParams::default(), lease)
            .await
            .map_err(api_error)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        let name = name_of(&lease.metadata, "lease")?;
        let namespace = lease.metadata.namespace.as_deref().unwrap_or_default();
        self.leases(namespace)
            .replace(&name, &PostParams::default(), lease)
            .await
            .map_err(api_error)
    }

    /// Publishes through kube-runtime's recorder (events.k8s.io/v1), which stamps its own
    /// `eventTime`; `now` is not used. Events of cluster-scoped objects go to `default`.
    async fn create_event(&self, event: &EventRecord, _now: Timestamp) -> Result<()> {
        let object = &event.object;
        let reference = ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some(object.kind.to_string()),
            name: Some(object.name.clone()),
            namespace: Some(object.namespace.clone()).filter(|ns| !ns.is_empty()),
            uid: object.uid.clone(),
            ..ObjectReference::default()
        };
        let published = events::Event {
            type_: match event.event_type {
                EventType::Normal => events::EventType::Normal,
                EventType::Warning => events::EventType::Warning,
            },
            reason: event.reason.clone(),
            note: Some(event.message.clone()),
            action: event.reason.clone(),
            secondary: None,
        };
        self.recorder(event.component)
            .publish(&published, &reference)
            .await
            .map_err(api_error)
    }

    fn watch_nodes(&self) -> WatchStream<Node> {
        let lists = self.lists("nodes", &self.streaming_refused.nodes);
        watch(self.nodes(), lists)
    }

    fn watch_leases(&self, namespace: &str) -> WatchStream<Lease> {
        let lists = self.lists("leases", &self.streaming_refused.leases);
        watch(self.leases(namespace), lists)
    }

    /// Decoded as [`PodDigest`]s: only what the cache keeps (see `pod_digest`).
    fn watch_pods(&self) -> WatchStream<WatchedPod> {
        let lists = self.lists("pods", &self.streaming_refused.pods);
        watch(Api::<PodDigest>::all(self.client()), lists)
            .map_ok(|event| map_event(event, PodDigest::into_watched))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = watcher::Result<Event<Node>>;

    fn start_failed(code: u16) -> Item {
        let status = Status::failure("refused", "Invalid")
            .with_code(code)
            .boxed();
        Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
    }

    fn gone() -> Item {
        let status = Status::failure("too old resource version", "Expired").with_code(410);
        Err(watcher::Error::WatchError(Box::new(status)))
    }

    fn codes(probe: &mut StreamingProbe, items: &[Item]) -> Vec<Option<u16>> {
        items
            .iter()
            .map(|item| probe.refusal(item).map(|s| s.code))
            .collect()
    }

    #[test]
    fn a_422_or_400_starting_the_first_watch_is_a_refused_streaming_list() {
        for code in [422, 400] {
            let mut probe = StreamingProbe::default();
            assert_eq!(codes(&mut probe, &[start_failed(code)]), [Some(code)]);
        }
    }

    #[test]
    fn other_failures_to_start_the_first_watch_are_not_a_refusal() {
        let mut probe = StreamingProbe::default();
        let transport = Err(watcher::Error::WatchStartFailed(
            kube::Error::LinesCodecMaxLineLengthExceeded,
        ));
        assert_eq!(
            codes(
                &mut probe,
                &[
                    start_failed(403),
                    start_failed(500),
                    start_failed(404),
                    transport
                ]
            ),
            [None, None, None, None]
        );
    }

    #[test]
    fn once_listed_a_failing_resumed_watch_is_not_a_refusal_until_a_410_asks_for_a_list_again() {
        let mut probe = StreamingProbe::default();
        let items = [
            Ok(Event::Init),
            Ok(Event::InitDone),
            // Resumed watches carry no sendInitialEvents: their 422 is about something else.
            start_failed(422),
            gone(),
            // After a 410 the watcher asks for a streaming list again.
            start_failed(422),
        ];
        assert_eq!(
            codes(&mut probe, &items),
            [None, None, None, None, Some(422)]
        );
    }
}
