//! Watches over HTTP (`simulate --serve`): a bounded, resourceVersion-ordered history of each
//! resource's changes, lists with their resourceVersion, and the faults as such a watch sees them.

use super::watches::{Stored, Watchers};
use super::{State, Store, StoredPod};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::sync::Arc;

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
pub(super) struct History<K> {
    capacity: usize,
    events: std::collections::VecDeque<HistoryEvent<K>>,
    /// Watches from a resourceVersion older than this have missed dropped events.
    expired_before: u64,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl<K: Stored> History<K> {
    pub(super) fn new(
        capacity: usize,
        now: u64,
        changes: &Arc<tokio::sync::watch::Sender<u64>>,
    ) -> Self {
        History {
            capacity,
            events: std::collections::VecDeque::new(),
            expired_before: now,
            changes: Arc::clone(changes),
        }
    }

    pub(super) fn push(&mut self, kind: WatchEventType, namespace: Option<&str>, object: &K) {
        let resource_version = object.resource_version();
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

impl<K> History<K> {
    /// Forgets every change up to `now` (a restarted server's watch cache starts empty).
    pub(super) fn expire(&mut self, now: u64) {
        self.events.clear();
        self.expired_before = self.expired_before.max(now);
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

/// The changes after `since` that a watch over HTTP opened at `mark` should see now.
fn poll_watch<T: Stored, K>(
    state: &State,
    watchers: &Watchers<T>,
    mark: &WatchMark,
    namespace: Option<&str>,
    since: u64,
    read: impl Fn(&T) -> K,
) -> WatchPoll<K> {
    if state.faults.outages > 0 || state.faults.outage_epoch != mark.outage_epoch {
        return WatchPoll::Closed;
    }
    if state.faults.hangs > 0 {
        return WatchPoll::Stalled;
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
        .map(|e| (e.kind, read(&e.object)))
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
        self.lock().faults.outages > 0
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Marks the opening of a watch over HTTP (faults begun later concern it).
    pub fn watch_mark(&self) -> WatchMark {
        let state = self.lock();
        WatchMark {
            outage_epoch: state.faults.outage_epoch,
            stall_counter: state.faults.stall_counter,
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
    pub fn list_pods_at(&self, namespace: Option<&str>) -> (Vec<Arc<StoredPod>>, u64) {
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
        poll_watch(&state, &state.node_watchers, mark, None, since, |n| {
            Node::clone(n)
        })
    }

    pub fn poll_pod_watch(
        &self,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Pod> {
        let state = self.lock();
        poll_watch(&state, &state.pod_watchers, mark, namespace, since, |p| {
            p.to_pod()
        })
    }

    pub fn poll_lease_watch(
        &self,
        mark: &WatchMark,
        namespace: Option<&str>,
        since: u64,
    ) -> WatchPoll<Lease> {
        let state = self.lock();
        poll_watch(&state, &state.lease_watchers, mark, namespace, since, |l| {
            l.clone()
        })
    }
}
