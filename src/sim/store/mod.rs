//! The simulated API server: objects in memory with resourceVersions, preconditions, watches,
//! PodDisruptionBudgets and fault injection, plus the timeline of what it applied from the
//! controller.
//!
//! Everything sits behind one `std::sync::Mutex`, never held across an `.await`; watch streams are
//! fed synchronously, at the moment the store changes, through unbounded channels. The modules
//! are what the server does: [`nodes`], [`pods`] (kept compact, [`stored_pod`]), [`leases`],
//! [`patch`] (merge and strategic merge patches), [`pdbs`] (the eviction subresource's budgets),
//! [`watches`] (fan-out to the controller's watches), [`history`] (watches over HTTP),
//! [`faults`] (outages, stalls, slow lists) and [`observer`] (what tests watch for).

mod faults;
mod history;
mod leases;
mod nodes;
pub mod observer;
pub mod patch;
mod pdbs;
mod pods;
pub mod stored_pod;
mod watches;

pub use faults::ApiState;
pub use history::{WatchEventType, WatchMark, WatchPoll};
pub use observer::Observer;
pub use patch::{PatchKind, apply_patch, merge_patch};

use super::timeline::{Entry, EntryKind};
use crate::clock::{Clock, TokioClock};
use crate::cluster::{ApiError, ObjectVersion, Result};
use crate::logic::actions::EventRecord;
use crate::logic::time::truncate_to_second;
use faults::Faults;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeStatus, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use pdbs::Budgets;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use stored_pod::{Sharing, StoredPod};
use watches::Watchers;

/// Who made a write: the controller (recorded in the timeline) or the simulated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Controller,
    World,
}

type Key = (String, String);

struct State {
    resource_version: u64,
    uid_counter: u64,
    /// Shared with lists (as pods are): listing 10 000 nodes copied each under the lock,
    /// holding up every request for tens of milliseconds.
    nodes: BTreeMap<String, Arc<Node>>,
    /// Compact and shared, so that a list's snapshot (`simulate --serve`) or a watch's
    /// initial events copy pointers, not 300 000 pods under the lock.
    pods: BTreeMap<Key, Arc<StoredPod>>,
    /// What stored pods share.
    sharing: Sharing,
    leases: BTreeMap<Key, Lease>,
    budgets: Budgets,
    faults: Faults,
    /// Bumped on every change a watch over HTTP may care about (objects and faults).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    node_watchers: Watchers<Arc<Node>>,
    pod_watchers: Watchers<Arc<StoredPod>>,
    lease_watchers: Watchers<Lease>,
    timeline: Vec<Entry>,
    observer: Option<Arc<dyn Observer>>,
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

fn truncate_pod_status(pod: &mut Pod) {
    let conditions: Option<&mut Vec<PodCondition>> =
        pod.status.as_mut().and_then(|s| s.conditions.as_mut());
    for c in conditions.into_iter().flatten() {
        truncate(&mut c.last_probe_time);
        truncate(&mut c.last_transition_time);
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
                sharing: Sharing::default(),
                leases: BTreeMap::new(),
                budgets: Budgets::default(),
                faults: Faults::default(),
                changes: Arc::new(tokio::sync::watch::channel(0).0),
                node_watchers: Watchers::new(),
                pod_watchers: Watchers::new(),
                lease_watchers: Watchers::new(),
                timeline: Vec::new(),
                observer: None,
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

    /// Tells `observer` what happens from now on (see [`Observer`]).
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.lock().observer = Some(observer);
    }

    /// The controller's staleness guard judged the watch of `resource` stale (or fresh).
    pub fn watch_judged(&self, resource: &str, stale: bool) {
        let t_ms = self.elapsed_ms();
        if let Some(observer) = self.lock().observer.clone() {
            observer.watch_stale(t_ms, resource, stale);
        }
    }

    /// Events are kept in the timeline only.
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
}
