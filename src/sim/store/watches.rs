//! The controller's watches of the store: every change is handed to each open watch at once
//! (or buffered while a stall holds it), and an outage cuts them until they re-list.

use super::faults::outage_error;
use super::history::{History, WatchEventType};
use super::{Store, StoredPod};
use crate::cluster::{ApiError, Result, WatchStream};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::Event;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::mpsc;

type Message<K> = Result<Event<K>>;

/// What watches carry and the history keeps: objects as the store holds them (shared where the
/// store shares them), turned into API objects only as a watch's consumer reads them.
pub(super) trait Stored: Clone + Send + 'static {
    fn resource_version(&self) -> u64;
}

fn parse_version<K: kube::Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

impl Stored for Arc<Node> {
    fn resource_version(&self) -> u64 {
        parse_version(&**self)
    }
}

impl Stored for Lease {
    fn resource_version(&self) -> u64 {
        parse_version(self)
    }
}

impl Stored for Arc<StoredPod> {
    fn resource_version(&self) -> u64 {
        StoredPod::resource_version(self)
    }
}

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

impl<K: Stored> Watcher<K> {
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

pub(super) struct Watchers<K> {
    list: Vec<Watcher<K>>,
    /// The changes in resourceVersion order, for watches over HTTP (off unless enabled).
    pub(super) history: Option<History<K>>,
    /// The stalls in progress on this resource (for watches over HTTP).
    pub(super) active_stalls: BTreeSet<u64>,
    /// The stall of an API hang in progress, which holds watches opened during it too.
    hang: Option<u64>,
}

impl<K: Stored> Watchers<K> {
    pub(super) fn new() -> Self {
        Watchers {
            list: Vec::new(),
            history: None,
            active_stalls: BTreeSet::new(),
            hang: None,
        }
    }

    /// Delivers the creation of an object (an `ADDED` event in the history).
    pub(super) fn deliver_created(&mut self, namespace: Option<&str>, object: K) {
        if let Some(history) = self.history.as_mut() {
            history.push(WatchEventType::Added, namespace, &object);
        }
        self.deliver_live(namespace, Event::Apply(object));
    }

    pub(super) fn deliver(&mut self, namespace: Option<&str>, event: Event<K>) {
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

    pub(super) fn disconnect_all(&mut self, error: &ApiError) {
        self.list.retain_mut(|w| {
            if w.disconnected {
                return !w.tx.is_closed();
            }
            w.disconnected = true;
            w.push(Err(error.clone()))
        });
    }

    /// Re-lists every cut watch; `gone` first when resuming it is refused (after a restart).
    pub(super) fn reconnect_all(
        &mut self,
        gone: Option<&ApiError>,
        list: impl Fn(Option<&str>) -> Vec<K>,
    ) {
        self.list.retain_mut(|w| {
            if !w.disconnected {
                return !w.tx.is_closed();
            }
            w.disconnected = false;
            if let Some(gone) = gone
                && !w.push(Err(gone.clone()))
            {
                return false;
            }
            let objects = list(w.namespace.as_deref());
            w.relist(objects)
        });
    }

    /// An API hang holds every watch, and those opened before it ends, in stall `id`.
    pub(super) fn hang(&mut self, id: u64) {
        self.hang = Some(id);
        for w in &mut self.list {
            w.stalls.insert(id);
        }
    }

    pub(super) fn unhang(&mut self, id: u64) {
        self.hang = None;
        self.unstall(id);
    }

    /// A fresh API server's watch history starts now: resuming from before it answers 410.
    pub(super) fn expire_history(&mut self, now: u64) {
        if let Some(history) = self.history.as_mut() {
            history.expire(now);
        }
    }

    pub(super) fn stall(&mut self, id: u64) {
        self.active_stalls.insert(id);
        for w in &mut self.list {
            w.stalls.insert(id);
        }
    }

    pub(super) fn unstall(&mut self, id: u64) {
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
    pub(super) fn open(
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
            stalls: self.hang.into_iter().collect(),
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

/// The watch `rx` feeds, its objects turned into what the consumer reads by `read` as it reads
/// them.
fn stream<T: Send + 'static, K: Send + 'static>(
    rx: mpsc::UnboundedReceiver<Message<T>>,
    read: fn(T) -> K,
) -> WatchStream<K> {
    futures::stream::unfold(rx, move |mut rx| async move {
        let message = rx.recv().await?;
        Some((message.map(|e| crate::cluster::map_event(e, read)), rx))
    })
    .boxed()
}

impl Store {
    pub fn watch_nodes(&self) -> WatchStream<Node> {
        let mut state = self.lock();
        let outage = state.faults.outages > 0;
        let objects = state.nodes.values().cloned().collect();
        stream(
            state.node_watchers.open(None, outage, objects),
            Arc::unwrap_or_clone,
        )
    }

    pub fn watch_pods(&self) -> WatchStream<Pod> {
        self.watch_pods_as(|p| p.to_pod())
    }

    /// A watch of every pod, each read as `read` makes it.
    pub(crate) fn watch_pods_as<K: Send + 'static>(
        &self,
        read: fn(Arc<StoredPod>) -> K,
    ) -> WatchStream<K> {
        let mut state = self.lock();
        let outage = state.faults.outages > 0;
        let objects = state.pods.values().cloned().collect();
        stream(state.pod_watchers.open(None, outage, objects), read)
    }

    pub fn watch_leases(&self, namespace: &str) -> WatchStream<Lease> {
        let mut state = self.lock();
        let outage = state.faults.outages > 0;
        let objects = state.list_leases(Some(namespace));
        stream(
            state
                .lease_watchers
                .open(Some(namespace.to_string()), outage, objects),
            |l| l,
        )
    }
}
