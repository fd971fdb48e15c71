//! The seam between the controller and a cluster: the object-level API the controller uses.
//!
//! `k8s::KubeCluster` implements it with `kube::Client`; `sim::SimCluster` with the simulator's
//! in-memory store (same semantics: resourceVersion conflicts, UID preconditions, NotFound, 429
//! for evictions a PodDisruptionBudget refuses). Everything above this trait — reflector caches,
//! decision core, loops, writer, leader gate — is shared by production and simulation.

use crate::cache::WatchedPod;
use crate::logic::actions::EventRecord;
pub use crate::logic::view::ObjectVersion;
use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use kube::runtime::watcher::{self, Event};
use std::collections::BTreeMap;
use std::future::Future;

/// Objects per page of the lists of names and versions, as kube's own watcher lists.
pub const VERSION_PAGE: u32 = 500;

/// Errors of API calls, by what the caller does about them.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// 409: the object changed since it was read (resourceVersion or UID precondition failed,
    /// or it already exists on create).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 429: e.g. an eviction refused by a PodDisruptionBudget.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// 403: RBAC does not allow the call.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The API server could not be reached or answered 5xx; worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (4xx that retrying will not fix).
    #[error("{0}")]
    Other(String),
}

impl ApiError {
    /// A static label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Conflict(_) => "conflict",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Other(_) => "other",
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A watch: a never-ending stream of kube-runtime watcher events. It re-lists by itself after
/// errors (yielding the error first), like `kube::runtime::watcher` with a backoff.
pub type WatchStream<K> = BoxStream<'static, Result<watcher::Event<K>>>;

/// The same event with its object(s) converted by `f`.
pub fn map_event<A, B>(event: Event<A>, mut f: impl FnMut(A) -> B) -> Event<B> {
    match event {
        Event::Apply(a) => Event::Apply(f(a)),
        Event::Delete(a) => Event::Delete(f(a)),
        Event::Init => Event::Init,
        Event::InitApply(a) => Event::InitApply(f(a)),
        Event::InitDone => Event::InitDone,
    }
}

// The patches the controller sends. Every write to a Node or Pod (objects other components
// own) carries only what it changes, so that fields this build's Kubernetes types do not know
// (a newer server's, an alpha feature's) are never written back without them, and the
// `metadata.resourceVersion` the decision was based on, which kube-apiserver takes as a
// precondition (409 Conflict if the object changed since).

/// JSON merge patch of `Cluster::patch_node_taints`: the whole taint list (`spec.taints` has no
/// merge key, so any patch replaces it whole; the resourceVersion makes that safe).
pub fn taints_patch(resource_version: &str, taints: &[Taint]) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "spec": { "taints": if taints.is_empty() { None } else { Some(taints) } },
    })
}

/// JSON merge patch of `Cluster::patch_node_labels`: the labels to set, the others untouched.
pub fn labels_patch(
    resource_version: &str,
    labels: &BTreeMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "resourceVersion": resource_version, "labels": labels },
    })
}

/// Strategic merge patch of `Cluster::patch_node_conditions` and `patch_pod_conditions`: the
/// changed conditions only. Conditions merge on their `type`, so the others, and every field of
/// these that the patch does not name, are kept as the server has them.
pub fn conditions_patch<C: serde::Serialize>(
    resource_version: &str,
    conditions: &[C],
) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "status": { "conditions": conditions },
    })
}

/// The calls the controller makes. Writes to Nodes and Pods are patches of what they change,
/// guarded by a resourceVersion (UIDs for deletions); only its own leader Lease is replaced.
pub trait Cluster: Clone + Send + Sync + 'static {
    fn get_node(&self, name: &str) -> impl Future<Output = Result<Node>> + Send;
    /// Every node's name and resourceVersion, read consistently (not from a cache).
    fn list_node_versions(&self) -> impl Future<Output = Result<Vec<ObjectVersion>>> + Send;
    /// PATCH nodes/{name} (`taints_patch`): the node's taints become `taints`, failing with
    /// `Conflict` unless the node is still at `resource_version`.
    fn patch_node_taints(
        &self,
        name: &str,
        resource_version: &str,
        taints: &[Taint],
    ) -> impl Future<Output = Result<()>> + Send;
    /// PATCH nodes/{name} (`labels_patch`): sets `labels`, guarded like `patch_node_taints`.
    fn patch_node_labels(
        &self,
        name: &str,
        resource_version: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// PATCH nodes/{name}/status (`conditions_patch`, strategic): sets these conditions (by
    /// type, the others kept), guarded like `patch_node_taints`.
    fn patch_node_conditions(
        &self,
        name: &str,
        resource_version: &str,
        conditions: &[NodeCondition],
    ) -> impl Future<Output = Result<()>> + Send;

    fn get_pod(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Pod>> + Send;
    /// PATCH pods/{name}/status (`conditions_patch`, strategic): sets these conditions (by
    /// type, the others kept), failing with `Conflict` unless the pod is still at
    /// `resource_version`.
    fn patch_pod_conditions(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        conditions: &[PodCondition],
    ) -> impl Future<Output = Result<()>> + Send;
    /// DELETE with a UID precondition (`Conflict` when the UID differs).
    fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// POST pods/{name}/eviction (policy/v1) with a UID precondition; `TooManyRequests` when a
    /// PodDisruptionBudget does not allow it now.
    fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Every Lease's name and resourceVersion in `namespace`, read like `list_node_versions`
    /// (`VERSION_PAGE` a page).
    fn list_lease_versions(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<ObjectVersion>>> + Send;
    fn get_lease(&self, namespace: &str, name: &str) -> impl Future<Output = Result<Lease>> + Send;
    fn create_lease(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;
    /// PUT, guarded by `metadata.resourceVersion`.
    fn replace_lease(&self, lease: &Lease) -> impl Future<Output = Result<Lease>> + Send;

    fn create_event(
        &self,
        event: &EventRecord,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;

    fn watch_nodes(&self) -> WatchStream<Node>;
    fn watch_leases(&self, namespace: &str) -> WatchStream<Lease>;
    /// Pods as the cache takes them in: an adapter may decode only the kept fields.
    fn watch_pods(&self) -> WatchStream<WatchedPod>;

    /// Resolves once what the cluster did up to the current instant has reached the watch
    /// streams' readers, so a timed pass never acts on data older than its own instant. A
    /// real API server has no "same instant" to wait for; a simulated one (virtual time) does.
    fn caught_up(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// This cluster with its requests sent at `priority` (a cheap copy). A cluster without a
    /// client-side limit has nothing to order, and returns itself.
    fn at(&self, priority: Priority) -> Self {
        let _ = priority;
        self.clone()
    }
}

/// What a request is for, most urgent first. Under the client-side rate limit the next token
/// goes to the most urgent request waiting (`k8s::throttle`); a path cannot say it (the GET of
/// a node before its NoExecute taint looks like the GET before a pod's NotReady mark), so the
/// caller says it, through `Cluster::at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// This process's leader-election Lease: a renewal that waits ends leadership.
    LeaderLease,
    /// NoExecute taints added, swapped or removed, and the reads they need: a zone's rate is
    /// counted from when they land, and an untaint stops a node's countdowns.
    NoExecute,
    /// Unknown marks and labels, with the reads they need (the Lease read that checks a mark's
    /// silence): 188 nodes of a zone lost together must be marked within a monitor period.
    NodeMarks,
    /// NoSchedule condition taints, each of which follows a landed Unknown mark: after the
    /// other marks, so that a pass that marks fifty nodes does not hold the last marks back
    /// behind fifty taints. The NoSchedule taint of the node its zone taints next goes at
    /// `NoExecute`, since that taint waits for it.
    ConditionTaints,
    /// The deletion (or Eviction) that ends an eviction whose DisruptionTarget landed: ahead of
    /// the next evictions' first requests, so that under the limit a wave completes pod by pod
    /// instead of patching every pod before deleting any.
    Deletions,
    /// Evictions' DisruptionTarget patches and the node reads before them.
    Evictions,
    /// Watch starts and restarts, lists, and anything not given a priority.
    Reads,
    /// Pods' Ready=False marks and the reads before them.
    PodMarks,
    /// Kubernetes Events: best effort.
    Events,
}

impl Priority {
    pub const ALL: [Priority; 9] = [
        Priority::LeaderLease,
        Priority::NoExecute,
        Priority::NodeMarks,
        Priority::ConditionTaints,
        Priority::Deletions,
        Priority::Evictions,
        Priority::Reads,
        Priority::PodMarks,
        Priority::Events,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Priority::LeaderLease => "leader_lease",
            Priority::NoExecute => "no_execute",
            Priority::ConditionTaints => "condition_taints",
            Priority::NodeMarks => "node_marks",
            Priority::Deletions => "deletions",
            Priority::Evictions => "evictions",
            Priority::Reads => "reads",
            Priority::PodMarks => "pod_marks",
            Priority::Events => "events",
        }
    }

    /// Whether requests of this priority must leave part of the burst to the others (pod
    /// marks and Events: a mass failure has thousands of them).
    pub fn leaves_a_reserve(self) -> bool {
        matches!(self, Priority::PodMarks | Priority::Events)
    }
}
