//! The taint manager's decisions: when each pod on a NoExecute-tainted node must go.
//!
//! SPEC Part A items 2 and 3: a pod's due time is the earliest `start_i + tolerationSeconds_i`
//! over the NoExecute taints it tolerates for a limited time, where `start_i` is the later of
//! the taint's start and the pod's binding, never later than now; it is recomputed whenever the
//! pod's tolerations or the node's taints change. An untolerated taint means "now".

use super::actions::Action;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};

/// What should happen to one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint, or every one is tolerated forever, or the pod is already terminating.
    Keep,
    /// Evict at this time (at once when it is not after `now`).
    At(Timestamp),
    /// A NoExecute taint is not tolerated at all: evict at once.
    Now,
}

/// The verdict for a pod from its tolerations, the node's NoExecute taints with the time each
/// started counting, and the time the pod was bound. Pure; `now` caps every start.
pub fn verdict(pod: &Pod, taints: &[(Taint, Timestamp)], bound_at: Timestamp, now: Timestamp) -> Verdict {
    todo!("{pod:?} {taints:?} {bound_at} {now}")
}

/// When a taint started counting, from API data alone: `timeAdded` rounded up to the next whole
/// second (never early), or `None` when the taint has no `timeAdded`.
pub fn taint_start_from_api(taint: &Taint) -> Option<Timestamp> {
    todo!("{taint:?}")
}

/// When the pod was bound, from API data alone: its `PodScheduled` condition's
/// lastTransitionTime, else its creationTimestamp, rounded up to the next whole second.
pub fn bound_at_from_api(pod: &Pod) -> Option<Timestamp> {
    todo!("{pod:?}")
}

/// The taint manager's memory: precise observation times and the current schedule.
#[derive(Debug, Default)]
pub struct TaintManager {
    // private fields chosen by the implementation
}

impl TaintManager {
    pub fn new() -> Self {
        todo!()
    }

    /// A node arrived through the watch. `listing` is true for objects of a (re)list: their
    /// taints were not seen appearing, so no precise time is recorded for them (but taints
    /// without `timeAdded` get `now` as their first-seen time).
    pub fn node_seen(&mut self, old: Option<&Node>, new: &Node, now: Timestamp, listing: bool) {
        todo!("{old:?} {new:?} {now} {listing}")
    }

    /// The node is gone from the cache.
    pub fn node_gone(&mut self, name: &str) {
        todo!("{name}")
    }

    /// A pod arrived through the watch (`listing` as for nodes: a binding seen appearing, i.e.
    /// `spec.nodeName` going from empty to set while not listing, records a precise time).
    pub fn pod_seen(&mut self, old: Option<&Pod>, new: &Pod, now: Timestamp, listing: bool) {
        todo!("{old:?} {new:?} {now} {listing}")
    }

    /// The pod is gone: forget it; a scheduled deletion is cancelled with upstream's
    /// "Cancelling deletion of Pod <ns>/<name>" event.
    pub fn pod_gone(&mut self, namespace: &str, name: &str) -> Vec<Action> {
        todo!("{namespace} {name}")
    }

    /// Recomputes the schedule of `pods` (all bound to `node_name`; `node` is `None` when the
    /// node is gone). Returns the actions due now: cancellation events for pods no longer
    /// scheduled, and for pods due at once an `EvictPod` preceded by upstream's
    /// "Marking for deletion Pod <ns>/<name>" event.
    pub fn reconcile(&mut self, node_name: &str, node: Option<&Node>, pods: &[&Pod], now: Timestamp) -> Vec<Action> {
        todo!("{node_name} {node:?} {pods:?} {now}")
    }

    /// The earliest scheduled due time, for the loop's timer.
    pub fn next_due(&self) -> Option<Timestamp> {
        todo!()
    }

    /// Fires every schedule that is due at `now` (marking event + `EvictPod`), in due-time
    /// order, then name order.
    pub fn fire_due(&mut self, now: Timestamp) -> Vec<Action> {
        todo!("{now}")
    }

    /// The due time currently scheduled for the pod, if any (for tests, metrics and logs).
    pub fn scheduled(&self, namespace: &str, name: &str) -> Option<Timestamp> {
        todo!("{namespace} {name}")
    }
}
