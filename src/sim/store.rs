//! The simulated API server: objects in memory with resourceVersions, preconditions, watches,
//! PodDisruptionBudgets and fault injection, plus the timeline of what it applied from the
//! controller.
//!
//! Everything sits behind one `std::sync::Mutex`, never held across an `.await`; watch streams are
//! fed synchronously, at the moment the store changes, through unbounded channels.

use super::scenario::{IntOrPercent, PdbSpec, WatchResource};
use super::timeline::{Entry, EntryKind, taint_text};
use crate::clock::{Clock, TokioClock};
use crate::cluster::{
    ApiError, Cluster, ObjectVersion, Result, WatchStream, conditions_patch, labels_patch,
    taints_patch,
};
use crate::controller::Observer;
use crate::logic::actions::EventRecord;
use crate::logic::cached_pod::CachedPod;
use crate::logic::time::truncate_to_second;
use crate::logic::zones::ZoneState;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::watcher::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Who made a write: the controller (recorded in the timeline) or the simulated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Controller,
    World,
}

type Message<K> = Result<Event<K>>;

struct Watcher<K> {
    tx: mpsc::UnboundedSender<Message<K>>,
    /// Lease watches are per namespace.
    namespace: Option<String>,
    /// Cut off by an API outage; re-lists when it ends.
    disconnected: bool,
    /// The stalls this watch is stuck in; while any, messages wait in `buffer`.
    stalls: BTreeSet<u64>,
    buffer: Vec<Message<K>>,
}

impl<K: Clone> Watcher<K> {
    fn wants(&self, namespace: Option<&str>) -> bool {
        match (&self.namespace, namespace) {
            (Some(want), Some(ns)) => want == ns,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Hands a message on (or buffers it while stalled); false when the receiver is gone.
    fn push(&mut self, message: Message<K>) -> bool {
        if self.stalls.is_empty() {
            self.tx.send(message).is_ok()
        } else {
            self.buffer.push(message);
            !self.tx.is_closed()
        }
    }

    fn relist(&mut self, objects: Vec<K>) -> bool {
        let mut ok = self.push(Ok(Event::Init));
        for object in objects {
            ok &= self.push(Ok(Event::InitApply(object)));
        }
        ok & self.push(Ok(Event::InitDone))
    }
}

struct Watchers<K> {
    list: Vec<Watcher<K>>,
    /// The changes in resourceVersion order, for watches over HTTP (off unless enabled).
    history: Option<History<K>>,
    /// The stalls in progress on this resource (for watches over HTTP).
    active_stalls: BTreeSet<u64>,
}

impl<K: Clone + kube::Resource> Watchers<K> {
    fn new() -> Self {
        Watchers {
            list: Vec::new(),
            history: None,
            active_stalls: BTreeSet::new(),
        }
    }

    /// Delivers the creation of an object (an `ADDED` event in the history).
    fn deliver_created(&mut self, namespace: Option<&str>, object: K) {
        if let Some(history) = self.history.as_mut() {
            history.push(WatchEventType::Added, namespace, &object);
        }
        self.deliver_live(namespace, Event::Apply(object));
    }

    fn deliver(&mut self, namespace: Option<&str>, event: Event<K>) {
        if let Some(history) = self.history.as_mut() {
            match &event {
                Event::Apply(o) => history.push(WatchEventType::Modified, namespace, o),
                Event::Delete(o) => history.push(WatchEventType::Deleted, namespace, o),
                _ => {}
            }
        }
        self.deliver_live(namespace, event);
    }

    fn deliver_live(&mut self, namespace: Option<&str>, event: Event<K>) {
        self.list.retain_mut(|w| {
            if w.disconnected || !w.wants(namespace) {
                return !w.tx.is_closed();
            }
            w.push(Ok(event.clone()))
        });
    }

    fn disconnect_all(&mut self, error: &ApiError) {
        self.list.retain_mut(|w| {
            if w.disconnected {
                return !w.tx.is_closed();
            }
            w.disconnected = true;
            w.push(Err(error.clone()))
        });
    }

    fn reconnect_all(&mut self, list: impl Fn(Option<&str>) -> Vec<K>) {
        self.list.retain_mut(|w| {
            if !w.disconnected {
                return !w.tx.is_closed();
            }
            w.disconnected = false;
            let objects = list(w.namespace.as_deref());
            w.relist(objects)
        });
    }

    fn stall(&mut self, id: u64) {
        self.active_stalls.insert(id);
        for w in &mut self.list {
            w.stalls.insert(id);
        }
    }

    fn unstall(&mut self, id: u64) {
        self.active_stalls.remove(&id);
        self.list.retain_mut(|w| {
            if w.stalls.remove(&id) && w.stalls.is_empty() {
                for message in std::mem::take(&mut w.buffer) {
                    if w.tx.send(message).is_err() {
                        return false;
                    }
                }
            }
            !w.tx.is_closed()
        });
    }

    /// Opens a watch: it lists at once, or, during an outage, fails and waits for the end.
    fn open(
        &mut self,
        namespace: Option<String>,
        outage: bool,
        objects: Vec<K>,
    ) -> mpsc::UnboundedReceiver<Message<K>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut watcher = Watcher {
            tx,
            namespace,
            disconnected: false,
            stalls: BTreeSet::new(),
            buffer: Vec::new(),
        };
        if outage {
            watcher.disconnected = true;
            watcher.push(Err(outage_error()));
        } else {
            watcher.relist(objects);
        }
        self.list.push(watcher);
        rx
    }
}

/// The type of a change, as a watch over HTTP reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

struct HistoryEvent<K> {
    resource_version: u64,
    kind: WatchEventType,
    namespace: Option<String>,
    object: K,
}

/// A bounded, resourceVersion-ordered log of one resource's changes.
struct History<K> {
    capacity: usize,
    events: std::collections::VecDeque<HistoryEvent<K>>,
    /// Watches from a resourceVersion older than this have missed dropped events.
    expired_before: u64,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl<K: Clone + kube::Resource> History<K> {
    fn new(capacity: usize, now: u64, changes: &Arc<tokio::sync::watch::Sender<u64>>) -> Self {
        History {
            capacity,
            events: std::collections::VecDeque::new(),
            expired_before: now,
            changes: Arc::clone(changes),
        }
    }

    fn push(&mut self, kind: WatchEventType, namespace: Option<&str>, object: &K) {
        let resource_version = object
            .meta()
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        if self.events.len() >= self.capacity
            && let Some(dropped) = self.events.pop_front()
        {
            self.expired_before = dropped.resource_version;
        }
        self.events.push_back(HistoryEvent {
            resource_version,
            kind,
            namespace: namespace.map(str::to_string),
            object: object.clone(),
        });
        self.changes.send_replace(resource_version);
    }
}

/// What a watch over HTTP recorded when it opened, to tell which faults concern it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchMark {
    outage_epoch: u64,
    stall_counter: u64,
}

/// What a watch over HTTP has to do next.
#[derive(Debug, PartialEq)]
pub enum WatchPoll<K> {
    /// The changes after the cursor (possibly none), and the new cursor.
    Events(Vec<(WatchEventType, K)>, u64),
    /// A stall that began after the watch opened is in progress: deliver nothing.
    Stalled,
    /// An API outage began after the watch opened (or is in progress): close the watch.
    Closed,
    /// The cursor is older than the history kept: the client must re-list (410 Gone).
    Expired,
}

fn outage_error() -> ApiError {
    ApiError::Unavailable("simulated API outage: connection refused".to_string())
}

fn stream<K: Send + 'static>(rx: mpsc::UnboundedReceiver<Message<K>>) -> WatchStream<K> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }).boxed()
}

type Key = (String, String);

struct State {
    resource_version: u64,
    uid_counter: u64,
    /// Shared with lists (as pods are): listing 10 000 nodes copied each under the lock,
    /// holding up every request for tens of milliseconds.
    nodes: BTreeMap<String, Arc<Node>>,
    /// Shared, so that a list's snapshot (`simulate --serve`) copies pointers, not 300 000
    /// pods under the lock.
    pods: BTreeMap<Key, Arc<Pod>>,
    leases: BTreeMap<Key, Lease>,
    pdbs: Vec<PdbSpec>,
    /// Pods the controller removed, with their labels: their owners would replace them, so
    /// budgets keep counting them as expected (and unhealthy) until a pod of that name returns.
    disrupted: BTreeMap<Key, BTreeMap<String, String>>,
    /// Number of API outages in progress.
    outages: u32,
    /// Counts the outages begun (a watch opened before the latest one is closed by it).
    outage_epoch: u64,
    stall_counter: u64,
    /// Bumped on every change a watch over HTTP may care about (objects and faults).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    node_watchers: Watchers<Node>,
    pod_watchers: Watchers<Pod>,
    lease_watchers: Watchers<Lease>,
    timeline: Vec<Entry>,
    /// Every GET of a pod: (ms since the start, `namespace/name`), for tests of when the
    /// controller reads.
    #[cfg(test)]
    pod_reads: Vec<(u64, String)>,
    /// How long the controller's lists of node and Lease versions take to be answered, for
    /// tests of a slow API server.
    #[cfg(test)]
    list_delay: std::time::Duration,
    /// The staleness guard's verdicts: (ms since the start, resource, stale).
    #[cfg(test)]
    stale_verdicts: Vec<(u64, String, bool)>,
}

impl State {
    fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uid_counter)
    }

    fn list_leases(&self, namespace: Option<&str>) -> Vec<Lease> {
        self.leases
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, l)| l.clone())
            .collect()
    }
}

fn version_of<K: k8s_openapi::Metadata<Ty = ObjectMeta>>(object: &K) -> ObjectVersion {
    let meta = object.metadata();
    ObjectVersion {
        name: meta.name.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    }
}

/// What creating a namespaced object takes, whatever its kind: a name, a namespace (default
/// `default`), no object of that name yet; then a fresh UID and resourceVersion. Returns the key.
fn admit_create(
    state: &mut State,
    meta: &mut ObjectMeta,
    resource: &str,
    exists: impl Fn(&State, &(String, String)) -> bool,
) -> Result<(String, String)> {
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::Other(format!("{resource}: a name is required")));
    }
    let namespace = meta
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let key = (namespace.clone(), name.clone());
    if exists(state, &key) {
        return Err(ApiError::Conflict(format!(
            "{resource} \"{name}\" already exists"
        )));
    }
    meta.namespace = Some(namespace);
    meta.uid = Some(state.next_uid());
    meta.resource_version = Some(state.next_resource_version());
    Ok(key)
}

/// The simulated API server's state, shared by the world, the kubelets and `SimCluster`.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    clock: TokioClock,
}

fn check_preconditions(stored: &ObjectMeta, given: &ObjectMeta, what: &str) -> Result<()> {
    if let Some(rv) = given
        .resource_version
        .as_deref()
        .filter(|rv| !rv.is_empty())
        && stored.resource_version.as_deref() != Some(rv)
    {
        return Err(ApiError::Conflict(format!(
            "Operation cannot be fulfilled on {what}: the object has been modified; please apply your changes to the latest version and try again"
        )));
    }
    if let Some(uid) = given.uid.as_deref().filter(|u| !u.is_empty())
        && stored.uid.as_deref() != Some(uid)
    {
        return Err(ApiError::Conflict(format!(
            "Precondition failed for {what}: UID in precondition: {uid}, UID in object meta: {}",
            stored.uid.as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null` removes
/// a key, anything else (lists included) replaces what was there.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// `stored` with `patch` applied, decoded again (a result that is not a valid object is an
/// error, 422 on the served API).
fn patched<K: serde::Serialize + serde::de::DeserializeOwned>(
    stored: &K,
    patch: &serde_json::Value,
    kind: PatchKind,
    what: &str,
) -> Result<K> {
    let mut value = serde_json::to_value(stored)
        .map_err(|e| ApiError::Other(format!("{what} could not be encoded: {e}")))?;
    apply_patch(&mut value, patch, kind);
    serde_json::from_value(value)
        .map_err(|e| ApiError::Other(format!("the patched {what} is not valid: {e}")))
}

/// How a PATCH's body applies, as its Content-Type says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386): objects merge, lists are replaced.
    Merge,
    /// `application/strategic-merge-patch+json`, as far as the controller uses it: a merge
    /// patch, except that a `conditions` list merges with the one it patches element by element
    /// on `type` (the merge key kube-apiserver uses for Node and Pod conditions): an element of
    /// a new type is appended, the fields of an existing one are merged.
    Strategic,
}

/// Applies `patch` to `target` as `kind` says.
pub fn apply_patch(target: &mut serde_json::Value, patch: &serde_json::Value, kind: PatchKind) {
    use serde_json::Value;
    let (Value::Object(patch_map), PatchKind::Strategic) = (patch, kind) else {
        return merge_patch(target, patch);
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch_map {
        match (key.as_str(), value, target.get_mut(key)) {
            (_, Value::Null, _) => {
                target.remove(key);
            }
            ("conditions", Value::Array(patched), Some(Value::Array(existing))) => {
                for element in patched {
                    let kind_of = |c: &Value| c.get("type").cloned();
                    match existing
                        .iter_mut()
                        .find(|c| kind_of(c).is_some() && kind_of(c) == kind_of(element))
                    {
                        Some(c) => merge_patch(c, element),
                        None => existing.push(element.clone()),
                    }
                }
            }
            _ => apply_patch(
                target.entry(key.clone()).or_insert(Value::Null),
                value,
                PatchKind::Strategic,
            ),
        }
    }
}

/// Takes the user-settable metadata of `given` and keeps the server-owned fields of `stored`.
fn merge_metadata(stored: &ObjectMeta, given: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: stored.name.clone(),
        namespace: stored.namespace.clone(),
        uid: stored.uid.clone(),
        creation_timestamp: stored.creation_timestamp.clone(),
        deletion_timestamp: stored.deletion_timestamp.clone(),
        resource_version: stored.resource_version.clone(),
        generation: stored.generation,
        managed_fields: stored.managed_fields.clone(),
        ..given.clone()
    }
}

fn truncate(t: &mut Option<Time>) {
    if let Some(Time(ts)) = t {
        *ts = truncate_to_second(*ts);
    }
}

fn truncate_node_status(status: &mut Option<NodeStatus>) {
    for c in status
        .iter_mut()
        .flat_map(|s| s.conditions.iter_mut().flatten())
    {
        truncate(&mut c.last_heartbeat_time);
        truncate(&mut c.last_transition_time);
    }
}

fn truncate_node_spec(node: &mut Node) {
    for taint in node
        .spec
        .iter_mut()
        .flat_map(|s| s.taints.iter_mut().flatten())
    {
        truncate(&mut taint.time_added);
    }
}

fn node_condition_status<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

fn pod_condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.as_str())
}

fn pod_node(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn pod_ready(pod: &Pod) -> bool {
    pod_condition_status(pod, "Ready") == Some("True")
}

fn taint_list(node: &Node) -> Vec<(String, Option<String>, String)> {
    node.spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .map(|t| {
            (
                t.key.clone(),
                t.value.clone().filter(|v| !v.is_empty()),
                t.effect.clone(),
            )
        })
        .collect()
}

/// `ceil(percent × total / 100)`, as Kubernetes scales a percentage with rounding up.
fn scaled_up(value: &IntOrPercent, total: i64) -> i64 {
    match value {
        IntOrPercent::Int(n) => i64::from(*n),
        IntOrPercent::Percent(p) => (i64::from(*p) * total + 99) / 100,
    }
}

/// What a PodDisruptionBudget says about evicting a pod now.
fn pdb_verdict(
    pdb: &PdbSpec,
    pods: &[&Pod],
    missing: usize,
    pod: &Pod,
) -> std::result::Result<(), String> {
    let expected = (pods.len() + missing) as i64;
    let healthy = pods
        .iter()
        .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
        .count() as i64;
    let desired = match (&pdb.min_available, &pdb.max_unavailable) {
        (Some(min), _) => scaled_up(min, expected),
        (None, Some(max)) => (expected - scaled_up(max, expected)).max(0),
        (None, None) => 0,
    };
    let allowed = (healthy - desired).max(0);
    // policy/v1's default unhealthyPodEvictionPolicy (IfHealthyBudget): a pod that is not
    // Ready may go while the budget is met.
    if !pod_ready(pod) && healthy >= desired && desired > 0 {
        return Ok(());
    }
    if allowed > 0 {
        Ok(())
    } else {
        Err(format!(
            "DisruptionBudget {} allows no more disruptions (needs {desired} healthy pods and has {healthy} currently)",
            pdb.name
        ))
    }
}

impl Store {
    /// An empty store whose timeline counts from the clock's start.
    pub fn new(clock: TokioClock) -> Self {
        Store {
            state: Arc::new(Mutex::new(State {
                resource_version: 0,
                uid_counter: 0,
                nodes: BTreeMap::new(),
                pods: BTreeMap::new(),
                leases: BTreeMap::new(),
                pdbs: Vec::new(),
                disrupted: BTreeMap::new(),
                outages: 0,
                outage_epoch: 0,
                stall_counter: 0,
                changes: Arc::new(tokio::sync::watch::channel(0).0),
                node_watchers: Watchers::new(),
                pod_watchers: Watchers::new(),
                lease_watchers: Watchers::new(),
                timeline: Vec::new(),
                #[cfg(test)]
                pod_reads: Vec::new(),
                #[cfg(test)]
                list_delay: std::time::Duration::ZERO,
                #[cfg(test)]
                stale_verdicts: Vec::new(),
            })),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> TokioClock {
        self.clock
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn record_locked(&self, state: &mut State, kind: EntryKind) {
        let t_ms = self.elapsed_ms();
        state.timeline.push(Entry { t_ms, kind });
    }

    /// Adds an entry at the current virtual time.
    pub fn record(&self, kind: EntryKind) {
        let mut state = self.lock();
        self.record_locked(&mut state, kind);
    }

    /// The entries recorded so far, in order.
    pub fn timeline(&self) -> Vec<Entry> {
        self.lock().timeline.clone()
    }

    // ----- faults -----

    fn check_available(&self) -> Result<()> {
        if self.lock().outages > 0 {
            Err(outage_error())
        } else {
            Ok(())
        }
    }

    /// An API outage begins: the controller's calls fail and its open watches end with an error.
    pub fn begin_outage(&self) {
        let mut state = self.lock();
        state.outages += 1;
        state.outage_epoch += 1;
        state.changes.send_modify(|v| *v += 1);
        if state.outages == 1 {
            let error = outage_error();
            state.node_watchers.disconnect_all(&error);
            state.pod_watchers.disconnect_all(&error);
            state.lease_watchers.disconnect_all(&error);
        }
    }

    /// An outage ends; when none is left, every cut watch re-lists.
    pub fn end_outage(&self) {
        let mut state = self.lock();
        state.outages = state.outages.saturating_sub(1);
        state.changes.send_modify(|v| *v += 1);
        if state.outages == 0 {
            let state = &mut *state;
            let nodes: Vec<Node> = state.nodes.values().map(|n| Node::clone(n)).collect();
            state.node_watchers.reconnect_all(|_| nodes.clone());
            let pods: Vec<Pod> = state.pods.values().map(|p| Pod::clone(p)).collect();
            state.pod_watchers.reconnect_all(|_| pods.clone());
            let leases = &state.leases;
            let list = |ns: Option<&str>| {
                leases
                    .iter()
                    .filter(|((lns, _), _)| ns.is_none_or(|want| want == lns))
                    .map(|(_, l)| l.clone())
                    .collect()
            };
            state.lease_watchers.reconnect_all(list);
        }
    }

    /// The watches of `resource` open now deliver nothing until `end_stall` with the returned id.
    pub fn begin_stall(&self, resource: WatchResource) -> u64 {
        let mut state = self.lock();
        state.stall_counter += 1;
        let id = state.stall_counter;
        match resource {
            WatchResource::Nodes => state.node_watchers.stall(id),
            WatchResource::Pods => state.pod_watchers.stall(id),
            WatchResource::Leases => state.lease_watchers.stall(id),
        }
        id
    }

    /// Ends a stall: its watches deliver what they buffered (unless another stall holds them).
    pub fn end_stall(&self, resource: WatchResource, id: u64) {
        let mut state = self.lock();
        state.changes.send_modify(|v| *v += 1);
        match resource {
            WatchResource::Nodes => state.node_watchers.unstall(id),
            WatchResource::Pods => state.pod_watchers.unstall(id),
            WatchResource::Leases => state.lease_watchers.unstall(id),
        }
    }

    // ----- nodes -----

    /// Creates a node; the server sets uid, resourceVersion and (when missing) creationTimestamp.
    pub fn create_node(&self, node: &Node) -> Result<Node> {
        let mut state = self.lock();
        let name = node.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::Other("node name is required".to_string()));
        }
        if state.nodes.contains_key(&name) {
            return Err(ApiError::Conflict(format!(
                "nodes \"{name}\" already exists"
            )));
        }
        let mut node = node.clone();
        node.metadata.uid = Some(state.next_uid());
        node.metadata.resource_version = Some(state.next_resource_version());
        let created = node
            .metadata
            .creation_timestamp
            .take()
            .map_or(self.now(), |Time(t)| t);
        node.metadata.creation_timestamp = Some(Time(truncate_to_second(created)));
        truncate_node_spec(&mut node);
        truncate_node_status(&mut node.status);
        state.nodes.insert(name, Arc::new(node.clone()));
        state.node_watchers.deliver_created(None, node.clone());
        Ok(node)
    }

    pub fn get_node(&self, name: &str) -> Result<Node> {
        self.lock()
            .nodes
            .get(name)
            .map(|n| Node::clone(n))
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))
    }

    /// Every node's name and resourceVersion (a metadata-only list).
    pub fn node_versions(&self) -> Vec<ObjectVersion> {
        self.lock()
            .nodes
            .values()
            .map(|n| version_of(&**n))
            .collect()
    }

    /// PUT nodes/{name}: changes metadata and spec only.
    pub fn replace_node(&self, node: &Node, origin: Origin) -> Result<Node> {
        let mut state = self.lock();
        self.write_node(&mut state, node, origin)
    }

    fn write_node(&self, state: &mut State, node: &Node, origin: Origin) -> Result<Node> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let stored = state
            .nodes
            .get(&name)
            .map(|n| Node::clone(n))
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        check_preconditions(
            &stored.metadata,
            &node.metadata,
            &format!("nodes \"{name}\""),
        )?;
        let mut updated = stored.clone();
        updated.metadata = merge_metadata(&stored.metadata, &node.metadata);
        updated.spec = node.spec.clone();
        truncate_node_spec(&mut updated);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let before = taint_list(&stored);
            let after = taint_list(&updated);
            for t in after.iter().filter(|t| !before.contains(t)) {
                let kind = EntryKind::TaintAdded {
                    node: name.clone(),
                    taint: taint_text(&t.0, t.1.as_deref(), &t.2),
                };
                self.record_locked(state, kind);
            }
            for t in before.iter().filter(|t| !after.contains(t)) {
                let kind = EntryKind::TaintRemoved {
                    node: name.clone(),
                    taint: taint_text(&t.0, t.1.as_deref(), &t.2),
                };
                self.record_locked(state, kind);
            }
        }
        state.nodes.insert(name, Arc::new(updated.clone()));
        state
            .node_watchers
            .deliver(None, Event::Apply(updated.clone()));
        Ok(updated)
    }

    /// PUT nodes/{name}/status: changes status only.
    pub fn replace_node_status(&self, node: &Node, origin: Origin) -> Result<Node> {
        let mut state = self.lock();
        self.write_node_status(&mut state, node, origin)
    }

    /// PATCH nodes/{name} (or its status), under one hold of the lock as kube-apiserver
    /// applies a patch to the object as it is. A `metadata.resourceVersion` in the patch is a
    /// precondition (the patched object carries it, and must match); a write to the status
    /// takes only the status of the result, one to the node only its metadata and spec.
    pub fn patch_node(
        &self,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        status: bool,
        origin: Origin,
    ) -> Result<Node> {
        let mut state = self.lock();
        let stored = state
            .nodes
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        let node: Node = patched(&**stored, patch, kind, &format!("nodes \"{name}\""))?;
        if node.metadata.name.as_deref() != Some(name) {
            return Err(ApiError::Other(format!(
                "a patch of nodes \"{name}\" may not change metadata.name"
            )));
        }
        if status {
            self.write_node_status(&mut state, &node, origin)
        } else {
            self.write_node(&mut state, &node, origin)
        }
    }

    fn write_node_status(&self, state: &mut State, node: &Node, origin: Origin) -> Result<Node> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let stored = state
            .nodes
            .get(&name)
            .map(|n| Node::clone(n))
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        check_preconditions(
            &stored.metadata,
            &node.metadata,
            &format!("nodes \"{name}\""),
        )?;
        let mut updated = stored.clone();
        updated.status = node.status.clone();
        truncate_node_status(&mut updated.status);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let old: &[NodeCondition] = stored
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or(&[]);
            let new: &[NodeCondition] = updated
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or(&[]);
            let went_unknown: Vec<String> = new
                .iter()
                .filter(|c| {
                    c.status == "Unknown" && node_condition_status(old, &c.type_) != Some("Unknown")
                })
                .map(|c| c.type_.clone())
                .collect();
            if !went_unknown.is_empty() {
                let kind = EntryKind::NodeConditionsUnknown {
                    node: name.clone(),
                    conditions: went_unknown,
                };
                self.record_locked(state, kind);
            }
        }
        state.nodes.insert(name, Arc::new(updated.clone()));
        state
            .node_watchers
            .deliver(None, Event::Apply(updated.clone()));
        Ok(updated)
    }

    /// Applies `change` to the stored node (metadata and spec), unconditionally.
    pub fn update_node(&self, name: &str, change: impl FnOnce(&mut Node)) -> Result<Node> {
        let mut node = self.get_node(name)?;
        change(&mut node);
        node.metadata.resource_version = None;
        self.replace_node(&node, Origin::World)
    }

    /// Applies `change` to the stored node's status, unconditionally.
    pub fn update_node_status(&self, name: &str, change: impl FnOnce(&mut Node)) -> Result<Node> {
        let mut node = self.get_node(name)?;
        change(&mut node);
        node.metadata.resource_version = None;
        self.replace_node_status(&node, Origin::World)
    }

    /// Deletes a node, and its Lease in `lease_namespace` (owned by the node).
    pub fn delete_node(&self, name: &str, lease_namespace: &str) -> Result<()> {
        let mut state = self.lock();
        let mut node = state
            .nodes
            .remove(name)
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| ApiError::NotFound(format!("nodes \"{name}\" not found")))?;
        node.metadata.resource_version = Some(state.next_resource_version());
        state.node_watchers.deliver(None, Event::Delete(node));
        if let Some(mut lease) = state
            .leases
            .remove(&(lease_namespace.to_string(), name.to_string()))
        {
            lease.metadata.resource_version = Some(state.next_resource_version());
            state
                .lease_watchers
                .deliver(Some(lease_namespace), Event::Delete(lease));
        }
        Ok(())
    }

    // ----- pods -----

    pub fn create_pod(&self, pod: &Pod) -> Result<Pod> {
        let mut state = self.lock();
        let mut pod = pod.clone();
        let key = admit_create(&mut state, &mut pod.metadata, "pods", |st, k| {
            st.pods.contains_key(k)
        })?;
        let namespace = key.0.clone();
        let created = pod
            .metadata
            .creation_timestamp
            .take()
            .map_or(self.now(), |Time(t)| t);
        pod.metadata.creation_timestamp = Some(Time(truncate_to_second(created)));
        truncate_pod_status(&mut pod);
        state.disrupted.remove(&key);
        state.pods.insert(key, Arc::new(pod.clone()));
        state
            .pod_watchers
            .deliver_created(Some(&namespace), pod.clone());
        Ok(pod)
    }

    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        #[cfg(test)]
        {
            let t = self.elapsed_ms();
            self.lock()
                .pod_reads
                .push((t, format!("{namespace}/{name}")));
        }
        self.lock()
            .pods
            .get(&(namespace.to_string(), name.to_string()))
            .map(|p| Pod::clone(p))
            .ok_or_else(|| ApiError::NotFound(format!("pods \"{name}\" not found")))
    }

    /// Every GET of a pod so far: (ms since the start, `namespace/name`).
    #[cfg(test)]
    pub fn pod_reads(&self) -> Vec<(u64, String)> {
        self.lock().pod_reads.clone()
    }

    /// Makes the controller's lists of node and Lease versions take `delay` to arrive: they
    /// hold the versions of when they were asked for.
    #[cfg(test)]
    pub fn delay_version_lists(&self, delay: std::time::Duration) {
        self.lock().list_delay = delay;
    }

    /// Waits as long as a list of versions is set to take to arrive (not at all outside tests).
    async fn version_list_delay(&self) {
        #[cfg(test)]
        {
            let delay = self.lock().list_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// The staleness guard's verdicts so far: (ms since the start, resource, stale).
    #[cfg(test)]
    pub fn stale_verdicts(&self) -> Vec<(u64, String, bool)> {
        self.lock().stale_verdicts.clone()
    }

    pub fn list_pods(&self) -> Vec<Pod> {
        self.lock().pods.values().map(|p| Pod::clone(p)).collect()
    }

    /// PUT pods/{name}/status: changes status only.
    pub fn replace_pod_status(&self, pod: &Pod, origin: Origin) -> Result<Pod> {
        let mut state = self.lock();
        self.write_pod_status(&mut state, pod, origin)
    }

    /// PATCH pods/{name}/status, applied like `patch_node`'s.
    pub fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        origin: Origin,
    ) -> Result<Pod> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let stored = state
            .pods
            .get(&key)
            .ok_or_else(|| ApiError::NotFound(format!("pods \"{name}\" not found")))?;
        let pod: Pod = patched(&**stored, patch, kind, &format!("pods \"{name}\""))?;
        if pod.metadata.name.as_deref() != Some(name)
            || pod.metadata.namespace.as_deref() != Some(namespace)
        {
            return Err(ApiError::Other(format!(
                "a patch of pods \"{name}\" may not change its name or namespace"
            )));
        }
        self.write_pod_status(&mut state, &pod, origin)
    }

    fn write_pod_status(&self, state: &mut State, pod: &Pod, origin: Origin) -> Result<Pod> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (namespace.clone(), name.clone());
        let stored = state
            .pods
            .get(&key)
            .map(|p| Pod::clone(p))
            .ok_or_else(|| ApiError::NotFound(format!("pods \"{name}\" not found")))?;
        check_preconditions(&stored.metadata, &pod.metadata, &format!("pods \"{name}\""))?;
        let mut updated = stored.clone();
        updated.status = pod.status.clone();
        truncate_pod_status(&mut updated);
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        if origin == Origin::Controller {
            let pod_key = format!("{namespace}/{name}");
            let node = pod_node(&updated);
            if pod_condition_status(&updated, "Ready") == Some("False")
                && pod_condition_status(&stored, "Ready") != Some("False")
            {
                let kind = EntryKind::PodNotReady {
                    pod: pod_key.clone(),
                    node: node.clone(),
                };
                self.record_locked(state, kind);
            }
            if pod_condition_status(&updated, "DisruptionTarget") == Some("True")
                && pod_condition_status(&stored, "DisruptionTarget") != Some("True")
            {
                let kind = EntryKind::PodDisruptionTarget { pod: pod_key, node };
                self.record_locked(state, kind);
            }
        }
        state.pods.insert(key, Arc::new(updated.clone()));
        state
            .pod_watchers
            .deliver(Some(&namespace), Event::Apply(updated.clone()));
        Ok(updated)
    }

    /// Applies `change` to the stored pod's metadata and spec (the world's edits).
    pub fn update_pod(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Pod),
    ) -> Result<Pod> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let stored = state
            .pods
            .get(&key)
            .map(|p| Pod::clone(p))
            .ok_or_else(|| ApiError::NotFound(format!("pods \"{name}\" not found")))?;
        let mut updated = stored.clone();
        change(&mut updated);
        updated.metadata = merge_metadata(&stored.metadata, &updated.metadata);
        updated.status = stored.status.clone();
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        state.pods.insert(key, Arc::new(updated.clone()));
        state
            .pod_watchers
            .deliver(Some(namespace), Event::Apply(updated.clone()));
        Ok(updated)
    }

    fn remove_pod_locked(&self, state: &mut State, key: &Key) -> Option<Pod> {
        let mut pod = Arc::unwrap_or_clone(state.pods.remove(key)?);
        pod.metadata.resource_version = Some(state.next_resource_version());
        state
            .pod_watchers
            .deliver(Some(&key.0), Event::Delete(pod.clone()));
        Some(pod)
    }

    fn stored_pod_with_uid(state: &State, key: &Key, uid: &str) -> Result<Pod> {
        let pod = state
            .pods
            .get(key)
            .map(|p| Pod::clone(p))
            .ok_or_else(|| ApiError::NotFound(format!("pods \"{}\" not found", key.1)))?;
        if !uid.is_empty() && pod.metadata.uid.as_deref() != Some(uid) {
            return Err(ApiError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                pod.metadata.uid.as_deref().unwrap_or("")
            )));
        }
        Ok(pod)
    }

    /// DELETE with a UID precondition (an empty `uid` means none); the pod goes at once.
    pub fn delete_pod(&self, namespace: &str, name: &str, uid: &str, origin: Origin) -> Result<()> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let pod = Self::stored_pod_with_uid(&state, &key, uid)?;
        self.remove_pod_locked(&mut state, &key);
        if origin == Origin::Controller {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            state.disrupted.insert(key.clone(), labels);
            let kind = EntryKind::PodDeleted {
                pod: format!("{namespace}/{name}"),
                node: pod_node(&pod),
                via: "delete".to_string(),
            };
            self.record_locked(&mut state, kind);
        }
        Ok(())
    }

    /// POST pods/{name}/eviction (policy/v1) with a UID precondition.
    pub fn evict_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let pod = Self::stored_pod_with_uid(&state, &key, uid)?;
        let pod_key = format!("{namespace}/{name}");
        let node = pod_node(&pod);
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        let ignores_budgets = pod.metadata.deletion_timestamp.is_some()
            || matches!(phase, "Succeeded" | "Failed" | "Pending");
        if !ignores_budgets {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let matching: Vec<&PdbSpec> = state
                .pdbs
                .iter()
                .filter(|pdb| {
                    pdb.namespace == namespace
                        && pdb.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .collect();
            let verdict = match matching.as_slice() {
                [] => Ok(()),
                [pdb] => {
                    let selected: Vec<&Pod> = state
                        .pods
                        .iter()
                        .filter(|((ns, _), p)| {
                            ns == namespace && {
                                let l = p.metadata.labels.as_ref();
                                pdb.selector.iter().all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
                            }
                        })
                        .map(|(_, p)| &**p)
                        .collect();
                    let missing = state
                        .disrupted
                        .iter()
                        .filter(|((ns, _), l)| {
                            ns == namespace && pdb.selector.iter().all(|(k, v)| l.get(k) == Some(v))
                        })
                        .count();
                    pdb_verdict(pdb, &selected, missing, &pod).map_err(|reason| {
                        (
                            ApiError::TooManyRequests(
                                "Cannot evict pod as it would violate the pod's disruption budget."
                                    .to_string(),
                            ),
                            reason,
                        )
                    })
                }
                _ => Err((
                    ApiError::Unavailable(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                            .to_string(),
                    ),
                    "more than one PodDisruptionBudget selects the pod".to_string(),
                )),
            };
            if let Err((error, reason)) = verdict {
                let kind = EntryKind::PodEvictionRefused {
                    pod: pod_key,
                    node,
                    reason,
                };
                self.record_locked(&mut state, kind);
                return Err(error);
            }
        }
        self.remove_pod_locked(&mut state, &key);
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        state.disrupted.insert(key, labels);
        let kind = EntryKind::PodDeleted {
            pod: pod_key,
            node,
            via: "eviction".to_string(),
        };
        self.record_locked(&mut state, kind);
        Ok(())
    }

    // ----- PodDisruptionBudgets -----

    pub fn add_pdb(&self, pdb: PdbSpec) {
        self.lock().pdbs.push(pdb);
    }

    /// The budgets, as the scenario gave them.
    pub fn pdbs(&self) -> Vec<PdbSpec> {
        self.lock().pdbs.clone()
    }

    // ----- leases -----

    pub fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut state = self.lock();
        let mut lease = lease.clone();
        let key = admit_create(
            &mut state,
            &mut lease.metadata,
            "leases.coordination.k8s.io",
            |st, k| st.leases.contains_key(k),
        )?;
        let namespace = key.0.clone();
        lease.metadata.creation_timestamp = Some(Time(truncate_to_second(self.now())));
        state.leases.insert(key, lease.clone());
        state
            .lease_watchers
            .deliver_created(Some(&namespace), lease.clone());
        Ok(lease)
    }

    pub fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.lock()
            .leases
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("leases.coordination.k8s.io \"{name}\" not found"))
            })
    }

    /// Every Lease's name and resourceVersion in `namespace` (a metadata-only list).
    pub fn lease_versions(&self, namespace: &str) -> Vec<ObjectVersion> {
        self.lock()
            .leases
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, l)| version_of(l))
            .collect()
    }

    /// PUT, guarded by resourceVersion (and UID when given).
    pub fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut state = self.lock();
        let name = lease.metadata.name.clone().unwrap_or_default();
        let namespace = lease
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (namespace.clone(), name.clone());
        let stored = state.leases.get(&key).cloned().ok_or_else(|| {
            ApiError::NotFound(format!("leases.coordination.k8s.io \"{name}\" not found"))
        })?;
        check_preconditions(
            &stored.metadata,
            &lease.metadata,
            &format!("leases.coordination.k8s.io \"{name}\""),
        )?;
        let mut updated = stored.clone();
        updated.metadata = merge_metadata(&stored.metadata, &lease.metadata);
        updated.spec = lease.spec.clone();
        if updated == stored {
            return Ok(stored);
        }
        updated.metadata.resource_version = Some(state.next_resource_version());
        state.leases.insert(key, updated.clone());
        state
            .lease_watchers
            .deliver(Some(&namespace), Event::Apply(updated.clone()));
        Ok(updated)
    }

    // ----- events -----

    pub fn create_event(&self, event: &EventRecord) {
        let object = if event.object.namespace.is_empty() {
            format!("{}/{}", event.object.kind, event.object.name)
        } else {
            format!(
                "{}/{}/{}",
                event.object.kind, event.object.namespace, event.object.name
            )
        };
        self.record(EntryKind::Event {
            object,
            reason: event.reason.clone(),
            event_type: event.event_type.as_str().to_string(),
            message: event.message.clone(),
        });
    }

    // ----- watches -----

    pub fn watch_nodes(&self) -> WatchStream<Node> {
        let mut state = self.lock();
        let outage = state.outages > 0;
        let objects = state.nodes.values().map(|n| Node::clone(n)).collect();
        stream(state.node_watchers.open(None, outage, objects))
    }

    pub fn watch_pods(&self) -> WatchStream<Pod> {
        let mut state = self.lock();
        let outage = state.outages > 0;
        let objects = state.pods.values().map(|p| Pod::clone(p)).collect();
        stream(state.pod_watchers.open(None, outage, objects))
    }

    pub fn watch_leases(&self, namespace: &str) -> WatchStream<Lease> {
        let mut state = self.lock();
        let outage = state.outages > 0;
        let objects = state.list_leases(Some(namespace));
        stream(
            state
                .lease_watchers
                .open(Some(namespace.to_string()), outage, objects),
        )
    }
}

/// The changes after `since` that a watch over HTTP opened at `mark` should see now.
fn poll_watch<K: Clone + kube::Resource>(
    state: &State,
    watchers: &Watchers<K>,
    mark: &WatchMark,
    namespace: Option<&str>,
    since: u64,
) -> WatchPoll<K> {
    if state.outages > 0 || state.outage_epoch != mark.outage_epoch {
        return WatchPoll::Closed;
    }
    if watchers
        .active_stalls
        .range(mark.stall_counter + 1..)
        .next()
        .is_some()
    {
        return WatchPoll::Stalled;
    }
    let Some(history) = watchers.history.as_ref() else {
        return if since >= state.resource_version {
            WatchPoll::Events(Vec::new(), since)
        } else {
            WatchPoll::Expired
        };
    };
    if since < history.expired_before {
        return WatchPoll::Expired;
    }
    let start = history
        .events
        .partition_point(|e| e.resource_version <= since);
    let events = history
        .events
        .range(start..)
        .filter(|e| match (namespace, e.namespace.as_deref()) {
            (Some(want), Some(ns)) => want == ns,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .map(|e| (e.kind, e.object.clone()))
        .collect();
    WatchPoll::Events(events, state.resource_version.max(since))
}

/// Serving the store over HTTP (`simulate --serve`): resourceVersion-ordered watch history,
/// lists with their resourceVersion, and the faults as a watch over HTTP sees them.
impl Store {
    /// Starts keeping the last `capacity` changes of each resource for watches over HTTP
    /// (replay from a resourceVersion). Changes made before are not replayable.
    pub fn enable_watch_history(&self, capacity: usize) {
        let mut state = self.lock();
        let state = &mut *state;
        let capacity = capacity.max(1);
        let now = state.resource_version;
        state.node_watchers.history = Some(History::new(capacity, now, &state.changes));
        state.pod_watchers.history = Some(History::new(capacity, now, &state.changes));
        state.lease_watchers.history = Some(History::new(capacity, now, &state.changes));
    }

    /// Changes whenever an object or a fault changes.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.lock().changes.subscribe()
    }

    /// True during an API outage.
    pub fn in_outage(&self) -> bool {
        self.lock().outages > 0
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Marks the opening of a watch over HTTP (faults begun later concern it).
    pub fn watch_mark(&self) -> WatchMark {
        let state = self.lock();
        WatchMark {
            outage_epoch: state.outage_epoch,
            stall_counter: state.stall_counter,
        }
    }

    /// The nodes and the resourceVersion they are current at, shared with the store.
    pub fn list_nodes_at(&self) -> (Vec<Arc<Node>>, u64) {
        let state = self.lock();
        (
            state.nodes.values().cloned().collect(),
            state.resource_version,
        )
    }

    /// The pods (of `namespace`, or all) and the resourceVersion they are current at; the
    /// pods themselves are shared with the store (a copy-on-write snapshot).
    pub fn list_pods_at(&self, namespace: Option<&str>) -> (Vec<Arc<Pod>>, u64) {
        let state = self.lock();
        let pods = state
            .pods
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, p)| Arc::clone(p))
            .collect();
        (pods, state.resource_version)
    }

    /// The leases (of `namespace`, or all) and the resourceVersion they are current at.
    pub fn list_leases_at(&self, namespace: Option<&str>) -> (Vec<Lease>, u64) {
        let state = self.lock();
        (state.list_leases(namespace), state.resource_version)
    }

    pub fn poll_node_watch(&self, mark: &WatchMark, since: u64) -> WatchPoll<Node> {
        let state = self.lock();
        poll_watch(&state, &state.node_watchers, mark, None, since)
    }

    pub fn poll_pod_watch(
        &self,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Pod> {
        let state = self.lock();
        poll_watch(&state, &state.pod_watchers, mark, namespace, since)
    }

    pub fn poll_lease_watch(
        &self,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Lease> {
        let state = self.lock();
        poll_watch(&state, &state.lease_watchers, mark, namespace, since)
    }
}

fn truncate_pod_status(pod: &mut Pod) {
    let conditions: Option<&mut Vec<PodCondition>> =
        pod.status.as_mut().and_then(|s| s.conditions.as_mut());
    for c in conditions.into_iter().flatten() {
        truncate(&mut c.last_probe_time);
        truncate(&mut c.last_transition_time);
    }
}

/// The controller's view of the simulated API server: every call goes through the store's
/// semantics, fails during an API outage, and is recorded in the timeline when it applies.
#[derive(Clone)]
pub struct SimCluster {
    store: Store,
}

impl SimCluster {
    pub fn new(store: Store) -> Self {
        SimCluster { store }
    }

    /// The controller's PATCH of a node (or its status), refused like any call in an outage.
    fn controller_patch(
        &self,
        name: &str,
        patch: &serde_json::Value,
        kind: PatchKind,
        status: bool,
    ) -> Result<()> {
        self.store.check_available()?;
        self.store
            .patch_node(name, patch, kind, status, Origin::Controller)?;
        Ok(())
    }
}

impl Cluster for SimCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        self.store.check_available()?;
        self.store.get_node(name)
    }

    async fn list_node_versions(&self) -> Result<Vec<ObjectVersion>> {
        self.store.check_available()?;
        let versions = self.store.node_versions();
        self.store.version_list_delay().await;
        Ok(versions)
    }

    async fn patch_node_taints(
        &self,
        name: &str,
        resource_version: &str,
        taints: &[Taint],
    ) -> Result<()> {
        self.controller_patch(
            name,
            &taints_patch(resource_version, taints),
            PatchKind::Merge,
            false,
        )
    }

    async fn patch_node_labels(
        &self,
        name: &str,
        resource_version: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.controller_patch(
            name,
            &labels_patch(resource_version, labels),
            PatchKind::Merge,
            false,
        )
    }

    async fn patch_node_conditions(
        &self,
        name: &str,
        resource_version: &str,
        conditions: &[NodeCondition],
    ) -> Result<()> {
        let patch = conditions_patch(resource_version, conditions);
        self.controller_patch(name, &patch, PatchKind::Strategic, true)
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        self.store.check_available()?;
        self.store.get_pod(namespace, name)
    }

    async fn patch_pod_conditions(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        conditions: &[PodCondition],
    ) -> Result<()> {
        self.store.check_available()?;
        let patch = conditions_patch(resource_version, conditions);
        self.store.patch_pod_status(
            namespace,
            name,
            &patch,
            PatchKind::Strategic,
            Origin::Controller,
        )?;
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        self.store.check_available()?;
        self.store
            .delete_pod(namespace, name, uid, Origin::Controller)
    }

    async fn evict_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<()> {
        self.store.check_available()?;
        self.store.evict_pod(namespace, name, uid)
    }

    async fn list_lease_versions(&self, namespace: &str) -> Result<Vec<ObjectVersion>> {
        self.store.check_available()?;
        let versions = self.store.lease_versions(namespace);
        self.store.version_list_delay().await;
        Ok(versions)
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.store.check_available()?;
        self.store.get_lease(namespace, name)
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.store.check_available()?;
        self.store.create_lease(lease)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        self.store.check_available()?;
        self.store.replace_lease(lease)
    }

    async fn create_event(&self, event: &EventRecord, _now: Timestamp) -> Result<()> {
        self.store.check_available()?;
        self.store.create_event(event);
        Ok(())
    }

    fn watch_nodes(&self) -> WatchStream<Node> {
        self.store.watch_nodes()
    }

    fn watch_leases(&self, namespace: &str) -> WatchStream<Lease> {
        self.store.watch_leases(namespace)
    }

    fn watch_pods(&self) -> WatchStream<CachedPod> {
        self.store
            .watch_pods()
            .map_ok(|e| crate::cluster::map_event(e, CachedPod::from))
            .boxed()
    }

    /// Lets every task woken at this virtual instant run first: the world writes at the very
    /// instant a controller timer fires, and the watch forwarders pass those writes on. Four
    /// scheduler rounds: world step, forwarders, and a chained write and its forwarding (the
    /// golden timelines depend on it).
    async fn caught_up(&self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
}

/// Records the controller's zone state changes in the timeline.
pub struct SimHooks {
    store: Store,
}

impl SimHooks {
    pub fn new(store: Store) -> Self {
        SimHooks { store }
    }
}

impl Observer for SimHooks {
    fn zone_state(&self, zone: &str, state: ZoneState) {
        if state != ZoneState::Initial {
            self.store.record(EntryKind::ZoneState {
                zone: zone.to_string(),
                state: state.as_str().to_string(),
            });
        }
    }

    fn suspicion(&self, check: &'static str, detail: Option<&str>) {
        self.store.record(EntryKind::SuspectedMisconfiguration {
            check: check.to_string(),
            detail: detail.unwrap_or_default().to_string(),
        });
    }

    #[cfg(test)]
    fn watch_stale(&self, resource: &'static str, stale: bool) {
        let t = self.store.elapsed_ms();
        self.store
            .lock()
            .stale_verdicts
            .push((t, resource.to_string(), stale));
    }
}
