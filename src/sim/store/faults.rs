//! Faults the scenario injects: API outages (the controller's calls fail, its watches are cut
//! and re-list after), API hangs (every request and watch of anyone stalls, then all complete
//! at once), API restarts (everyone's requests are refused, watches are cut, and resuming one
//! afterwards answers 410 Gone), watch stalls (watches deliver nothing until the stall ends)
//! and slow version lists.

use super::{Store, StoredPod};
use crate::cluster::{ApiError, Result};
use crate::sim::scenario::WatchResource;
use k8s_openapi::api::core::v1::Node;
use std::sync::Arc;
use std::time::Duration;

/// The faults in progress.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Number of API outages and restarts in progress: both refuse the controller's calls.
    pub(super) outages: u32,
    /// Number of API restarts in progress (the server is down for kubelets too).
    pub(super) restarts: u32,
    /// A restart happened since the watches were cut: resuming them answers 410 Gone.
    pub(super) expired: bool,
    /// Number of API hangs in progress, and the stall that holds every watch meanwhile.
    pub(super) hangs: u32,
    pub(super) hang_stall: Option<u64>,
    /// Wakes the requests a hang holds, in the order they came (a `watch` channel would wake
    /// them in a random order, and the timeline must follow from the seed alone).
    pub(super) hang_over: Arc<tokio::sync::Notify>,
    /// Counts the outages begun (a watch opened before the latest one is closed by it).
    pub(super) outage_epoch: u64,
    pub(super) stall_counter: u64,
    /// How long the controller's lists of node and Lease versions take to be answered.
    pub(super) version_list_delay: Duration,
}

pub(super) fn outage_error() -> ApiError {
    ApiError::Unavailable("simulated API outage: connection refused".to_string())
}

pub(super) fn gone_error() -> ApiError {
    ApiError::Other(
        "simulated API restart: 410 Gone: too old resource version (the watch must re-list)"
            .to_string(),
    )
}

/// The API server as a kubelet meets it (an `api-outage` cuts the controller only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiState {
    /// Requests are answered at once.
    Up,
    /// Requests are held, unanswered, until the hang ends.
    Hung,
    /// Requests are refused (the server is restarting).
    Down,
}

/// Every cut watch re-lists the objects as they are now (after a restart, told 410 Gone first).
fn reconnect_cut_watches(state: &mut super::State) {
    let gone = std::mem::take(&mut state.faults.expired).then(gone_error);
    let gone = gone.as_ref();
    let nodes: Vec<Arc<Node>> = state.nodes.values().cloned().collect();
    state.node_watchers.reconnect_all(gone, |_| nodes.clone());
    let pods: Vec<Arc<StoredPod>> = state.pods.values().cloned().collect();
    state.pod_watchers.reconnect_all(gone, |_| pods.clone());
    let leases = &state.leases;
    let list = |ns: Option<&str>| {
        leases
            .iter()
            .filter(|((lns, _), _)| ns.is_none_or(|want| want == lns))
            .map(|(_, l)| l.clone())
            .collect()
    };
    state.lease_watchers.reconnect_all(gone, list);
}

impl Store {
    /// Refuses a call during an API outage or restart.
    pub(crate) fn check_available(&self) -> Result<()> {
        if self.lock().faults.outages > 0 {
            Err(outage_error())
        } else {
            Ok(())
        }
    }

    /// A controller's request: held while the API hangs (the caller's own timeout may give up
    /// first), then refused in an outage or restart, else answered.
    pub(crate) async fn answer(&self) -> Result<()> {
        self.through_hang().await;
        self.check_available()
    }

    /// Waits while the API hangs (a restart ends the wait: the held connection is reset).
    pub async fn through_hang(&self) {
        loop {
            let hang_over = Arc::clone(&self.lock().faults.hang_over);
            // Created before the check, so the end of the hang cannot slip in between.
            let woken = hang_over.notified();
            {
                let state = self.lock();
                if state.faults.hangs == 0 || state.faults.restarts > 0 {
                    return;
                }
            }
            woken.await;
        }
    }

    /// The API server as the kubelets meet it now.
    pub fn api_state(&self) -> ApiState {
        let state = self.lock();
        if state.faults.restarts > 0 {
            ApiState::Down
        } else if state.faults.hangs > 0 {
            ApiState::Hung
        } else {
            ApiState::Up
        }
    }

    /// An API hang begins: requests wait unanswered and every watch, open or opened meanwhile,
    /// delivers nothing until it ends.
    pub fn begin_hang(&self) {
        let mut state = self.lock();
        state.faults.hangs += 1;
        state.changes.send_modify(|v| *v += 1);
        if state.faults.hangs == 1 {
            state.faults.stall_counter += 1;
            let id = state.faults.stall_counter;
            state.faults.hang_stall = Some(id);
            state.node_watchers.hang(id);
            state.pod_watchers.hang(id);
            state.lease_watchers.hang(id);
        }
    }

    /// A hang ends; when none is left, held requests are answered and the watches deliver what
    /// they held. Returns whether the API answers again (no hang left, no restart).
    pub fn end_hang(&self) -> bool {
        let mut state = self.lock();
        state.faults.hangs = state.faults.hangs.saturating_sub(1);
        state.changes.send_modify(|v| *v += 1);
        if state.faults.hangs == 0
            && let Some(id) = state.faults.hang_stall.take()
        {
            state.node_watchers.unhang(id);
            state.pod_watchers.unhang(id);
            state.lease_watchers.unhang(id);
            state.faults.hang_over.notify_waiters();
            // A watch cut before or during the hang re-lists only now: its list was held too.
            if state.faults.outages == 0 {
                reconnect_cut_watches(&mut state);
            }
        }
        state.faults.hangs == 0 && state.faults.restarts == 0
    }

    /// An API restart begins: the server is gone for everyone (requests refused, held ones
    /// reset, watches cut), and the one that comes back has no watch history.
    pub fn begin_restart(&self) {
        {
            let mut state = self.lock();
            state.faults.restarts += 1;
            state.faults.hang_over.notify_waiters();
        }
        self.begin_outage();
    }

    /// A restart ends: the server answers again; watches cut by it are told 410 Gone when they
    /// resume, and re-list.
    pub fn end_restart(&self) {
        {
            let mut state = self.lock();
            state.faults.restarts = state.faults.restarts.saturating_sub(1);
            state.faults.expired = true;
            let state = &mut *state;
            let now = state.resource_version;
            state.node_watchers.expire_history(now);
            state.pod_watchers.expire_history(now);
            state.lease_watchers.expire_history(now);
        }
        self.end_outage();
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
        if state.faults.outages == 0 && state.faults.hangs == 0 {
            reconnect_cut_watches(&mut state);
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
