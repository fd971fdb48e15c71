//! Feeding the controller's caches: each watch runs in its own task and forwards its events,
//! tagged with the resource and a generation, into the controller's single inbox. Restarting a
//! watch (the staleness guard) bumps the generation, so late events of the old stream are ignored.

use crate::cache::WatchedPod;
use crate::cluster::{ApiError, WatchStream};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::Event;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The resources the controller watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Nodes,
    Leases,
    Pods,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nodes => "nodes",
            Resource::Leases => "leases",
            Resource::Pods => "pods",
        }
    }
}

/// One watch event of any resource.
#[derive(Debug)]
pub enum ResourceEvent {
    Node(Box<Event<Node>>),
    Lease(Box<Event<Lease>>),
    Pod(Box<Event<WatchedPod>>),
    /// The watch failed; it re-lists by itself.
    Error(Resource, ApiError),
}

impl ResourceEvent {
    pub fn resource(&self) -> Resource {
        match self {
            ResourceEvent::Node(_) => Resource::Nodes,
            ResourceEvent::Lease(_) => Resource::Leases,
            ResourceEvent::Pod(_) => Resource::Pods,
            ResourceEvent::Error(r, _) => *r,
        }
    }
}

/// An event with the generation of the watch that produced it.
#[derive(Debug)]
pub struct StampedEvent {
    pub generation: u64,
    pub event: ResourceEvent,
}

/// Spawns a task that forwards every event of `stream` into `inbox`, wrapped by `wrap`.
pub fn forward<K: Send + 'static>(
    mut stream: WatchStream<K>,
    generation: u64,
    inbox: mpsc::Sender<StampedEvent>,
    resource: Resource,
    wrap: fn(Event<K>) -> ResourceEvent,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(event) => wrap(event),
                Err(e) => ResourceEvent::Error(resource, e),
            };
            if inbox
                .send(StampedEvent { generation, event })
                .await
                .is_err()
            {
                return;
            }
        }
    })
}
