//! The Unknown conditions the controller writes when a node's heartbeats stop.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition};

/// The condition types set Unknown on heartbeat loss (not NetworkUnavailable), in upstream's order.
pub const UNKNOWN_ON_SILENCE: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The node's condition of this type.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    todo!("{node:?} {type_}")
}

/// The status of the node's Ready condition (`None` when it has none).
pub fn ready_status(node: &Node) -> Option<&str> {
    todo!("{node:?}")
}

/// The Ready condition's `lastHeartbeatTime`.
pub fn ready_heartbeat(node: &Node) -> Option<Timestamp> {
    todo!("{node:?}")
}

/// Sets the heartbeat-loss conditions Unknown in place, as upstream does:
/// absent -> appended with reason `NodeStatusNeverUpdated`, message "Kubelet never posted node
/// status.", lastHeartbeatTime = creationTimestamp, lastTransitionTime = now; present and not
/// Unknown -> status Unknown, reason `NodeStatusUnknown`, message "Kubelet stopped posting node
/// status.", lastTransitionTime = now (heartbeat kept); already Unknown -> untouched.
///
/// Returns the condition types it changed, in `UNKNOWN_ON_SILENCE` order. Upstream writes the
/// result only when Ready itself changed: callers check `contains("Ready")`.
pub fn mark_unknown(node: &mut Node, now: Timestamp) -> Vec<String> {
    todo!("{node:?} {now}")
}
