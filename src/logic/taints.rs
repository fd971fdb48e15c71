//! Which taints the conditions ask for, and the changes that bring a node there.

use super::actions::{TaintChange, TaintRef};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// The NoSchedule taint keys the condition pass owns (everything else is left alone).
pub const CONDITION_TAINT_KEYS: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    NETWORK_UNAVAILABLE,
    PID_PRESSURE,
    UNSCHEDULABLE,
];

/// The NoSchedule taints the node's conditions (and `spec.unschedulable`) ask for.
pub fn desired_condition_taints(node: &Node) -> Vec<TaintRef> {
    todo!("{node:?}")
}

/// The change that brings the node's condition taints in step: missing ones added with
/// `timeAdded = now`, extra ones (among the condition keys, NoSchedule only) removed. `None` when
/// nothing differs (compared by key and effect only).
pub fn condition_taint_change(node: &Node, now: Timestamp) -> Option<TaintChange> {
    todo!("{node:?} {now}")
}

/// The NoExecute taint key for a Ready status: `False` -> not-ready, `Unknown` -> unreachable,
/// anything else -> none.
pub fn no_execute_key_for(ready_status: &str) -> Option<&'static str> {
    todo!("{ready_status}")
}

/// Whether the node carries the NoExecute taint with this key.
pub fn has_no_execute(node: &Node, key: &str) -> bool {
    todo!("{node:?} {key}")
}

/// The change that makes `key` the node's only one of our two NoExecute taints.
///
/// The added taint keeps the `timeAdded` of the one it replaces (so a running countdown goes
/// on); with nothing to replace it gets `timeAdded = now`. `None` when the node already carries
/// exactly the right taint (it is not rewritten, its `timeAdded` stays).
pub fn no_execute_change(node: &Node, key: &str, now: Timestamp) -> Option<TaintChange> {
    todo!("{node:?} {key} {now}")
}

/// The change that removes both of our NoExecute taints; `None` when the node has neither.
pub fn remove_no_execute_change(node: &Node) -> Option<TaintChange> {
    todo!("{node:?}")
}

/// Applies a change to a taint list in place; returns whether anything changed.
/// Removals match key and effect; an addition whose key and effect are present is skipped.
pub fn apply_change(taints: &mut Vec<Taint>, change: &TaintChange) -> bool {
    todo!("{taints:?} {change:?}")
}

/// The node's NoExecute taints, in order.
pub fn no_execute_taints(node: &Node) -> Vec<Taint> {
    todo!("{node:?}")
}
