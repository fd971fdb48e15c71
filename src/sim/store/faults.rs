//! Faults the scenario injects: API outages (calls fail, watches are cut and re-list after),
//! watch stalls (watches deliver nothing until the stall ends) and slow version lists.

use super::{Store, StoredPod};
use crate::cluster::{ApiError, Result};
use crate::sim::scenario::WatchResource;
use k8s_openapi::api::core::v1::Node;
use std::sync::Arc;
use std::time::Duration;

/// The faults in progress.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Number of API outages in progress.
    pub(super) outages: u32,
    /// Counts the outages begun (a watch opened before the latest one is closed by it).
    pub(super) outage_epoch: u64,
    pub(super) stall_counter: u64,
    /// How long the controller's lists of node and Lease versions take to be answered.
    pub(super) version_list_delay: Duration,
}

pub(super) fn outage_error() -> ApiError {
    ApiError::Unavailable("simulated API outage: connection refused".to_string())
}

impl Store {
    /// Refuses a call during an API outage.
    pub(crate) fn check_available(&self) -> Result<()> {
        if self.lock().faults.outages > 0 {
            Err(outage_error())
        } else {
            Ok(())
        }
    }

    /// An API outage begins: the controller's calls fail and its open watches end with an error.
    pub fn begin_outage(&self) {
        let mut state = self.lock();
        state.faults.outages += 1;
        state.faults.outage_epoch += 1;
        state.changes.send_modify(|v| *v += 1);
        if state.faults.outages == 1 {
            let error = outage_error();
            state.node_watchers.disconnect_all(&error);
            state.pod_watchers.disconnect_all(&error);
            state.lease_watchers.disconnect_all(&error);
        }
    }

    /// An outage ends; when none is left, every cut watch re-lists.
    pub fn end_outage(&self) {
        let mut state = self.lock();
        state.faults.outages = state.faults.outages.saturating_sub(1);
        state.changes.send_modify(|v| *v += 1);
        if state.faults.outages == 0 {
            let state = &mut *state;
            let nodes: Vec<Arc<Node>> = state.nodes.values().cloned().collect();
            state.node_watchers.reconnect_all(|_| nodes.clone());
            let pods: Vec<Arc<StoredPod>> = state.pods.values().cloned().collect();
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
        state.faults.stall_counter += 1;
        let id = state.faults.stall_counter;
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

    /// Makes the controller's lists of node and Lease versions take `delay` to arrive: they
    /// hold the versions of when they were asked for (a slow API server).
    pub fn delay_version_lists(&self, delay: Duration) {
        self.lock().faults.version_list_delay = delay;
    }

    /// Waits as long as a list of versions is set to take to arrive.
    pub(crate) async fn version_list_delay(&self) {
        let delay = self.lock().faults.version_list_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}
