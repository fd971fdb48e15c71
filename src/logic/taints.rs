//! Which taints the conditions ask for, and the changes that bring a node there.

use super::actions::{TaintChange, TaintRef};
use super::conditions::ConditionStatus;
use super::conditions::condition;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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
    let status_of = |type_: &str| condition(node, type_).map(|c| c.status.as_str());
    let mut keys = Vec::new();
    match status_of("Ready") {
        Some("False") => keys.push(NOT_READY),
        Some("Unknown") => keys.push(UNREACHABLE),
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
        ("PIDPressure", PID_PRESSURE),
    ] {
        if status_of(type_) == Some("True") {
            keys.push(key);
        }
    }
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if unschedulable {
        keys.push(UNSCHEDULABLE);
    }
    keys.into_iter()
        .map(|key| taint_ref(key, NO_SCHEDULE))
        .collect()
}

/// The change that brings the node's condition taints in step: missing ones added with
/// `timeAdded = now`, extra ones (among the condition keys, NoSchedule only) removed. `None` when
/// nothing differs (compared by key and effect only).
pub fn condition_taint_change(node: &Node, now: Timestamp) -> Option<TaintChange> {
    let desired = desired_condition_taints(node);
    let existing: Vec<TaintRef> = node_taints(node)
        .iter()
        .filter(|t| t.effect == NO_SCHEDULE && CONDITION_TAINT_KEYS.contains(&t.key.as_str()))
        .map(|t| taint_ref(&t.key, &t.effect))
        .collect();
    let mut remove: Vec<TaintRef> = Vec::new();
    for r in existing.iter().filter(|r| !desired.contains(r)) {
        if !remove.contains(r) {
            remove.push(r.clone());
        }
    }
    let add: Vec<Taint> = desired
        .iter()
        .filter(|r| !existing.contains(r))
        .map(|r| new_taint(&r.key, &r.effect, now))
        .collect();
    non_empty(TaintChange { add, remove })
}

/// The NoExecute taint key for a Ready status: `False` -> not-ready, `Unknown` -> unreachable,
/// anything else -> none.
pub fn no_execute_key_for(ready_status: ConditionStatus) -> Option<&'static str> {
    match ready_status {
        ConditionStatus::False => Some(NOT_READY),
        ConditionStatus::Unknown => Some(UNREACHABLE),
        ConditionStatus::True | ConditionStatus::Other => None,
    }
}

/// Whether the node carries the NoExecute taint with this key.
pub fn has_no_execute(node: &Node, key: &str) -> bool {
    node_taints(node)
        .iter()
        .any(|t| t.effect == NO_EXECUTE && t.key == key)
}

/// The change that makes `key` the node's only one of our two NoExecute taints.
///
/// The added taint keeps the `timeAdded` of the one it replaces (so a running countdown goes
/// on); with nothing to replace it gets `timeAdded = now`. `None` when the node already carries
/// exactly the right taint (it is not rewritten, its `timeAdded` stays).
///
/// A replaced taint without a `timeAdded` passes none on: the new taint then gets `now`.
pub fn no_execute_change(node: &Node, key: &str, now: Timestamp) -> Option<TaintChange> {
    let replaced: Vec<&Taint> = node_taints(node)
        .iter()
        .filter(|t| t.effect == NO_EXECUTE && t.key != key && is_ours(&t.key))
        .collect();
    let mut remove: Vec<TaintRef> = Vec::new();
    for t in &replaced {
        let r = taint_ref(&t.key, NO_EXECUTE);
        if !remove.contains(&r) {
            remove.push(r);
        }
    }
    let add = if has_no_execute(node, key) {
        Vec::new()
    } else {
        let since = replaced
            .iter()
            .find_map(|t| t.time_added.as_ref().map(|Time(ts)| *ts))
            .unwrap_or(now);
        vec![new_taint(key, NO_EXECUTE, since)]
    };
    non_empty(TaintChange { add, remove })
}

/// The change that removes both of our NoExecute taints. It names both whatever the cached
/// node shows: the writer applies it to the live node, where only what is there goes.
pub fn remove_no_execute() -> TaintChange {
    TaintChange {
        add: Vec::new(),
        remove: vec![
            taint_ref(NOT_READY, NO_EXECUTE),
            taint_ref(UNREACHABLE, NO_EXECUTE),
        ],
    }
}

/// Applies a change to a taint list in place; returns whether anything changed.
/// Removals match key and effect; an addition whose key and effect are present is skipped.
pub fn apply_change(taints: &mut Vec<Taint>, change: &TaintChange) -> bool {
    let before = taints.len();
    taints.retain(|t| {
        !change
            .remove
            .iter()
            .any(|r| r.key == t.key && r.effect == t.effect)
    });
    let mut changed = taints.len() != before;
    for add in &change.add {
        let present = taints
            .iter()
            .any(|t| t.key == add.key && t.effect == add.effect);
        if !present {
            taints.push(add.clone());
            changed = true;
        }
    }
    changed
}

/// The node's NoExecute taints, in order.
pub fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node_taints(node)
        .iter()
        .filter(|t| t.effect == NO_EXECUTE)
        .cloned()
        .collect()
}

/// The node's taints (empty without a spec or a list).
pub fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

fn is_ours(key: &str) -> bool {
    key == NOT_READY || key == UNREACHABLE
}

fn taint_ref(key: &str, effect: &str) -> TaintRef {
    TaintRef {
        key: key.to_string(),
        effect: effect.to_string(),
    }
}

fn new_taint(key: &str, effect: &str, time_added: Timestamp) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        value: None,
        time_added: Some(Time(time_added)),
    }
}

fn non_empty(change: TaintChange) -> Option<TaintChange> {
    (!change.is_empty()).then_some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn now() -> Timestamp {
        ts("2025-01-01T01:00:00Z")
    }

    fn earlier() -> Timestamp {
        ts("2025-01-01T00:20:00Z")
    }

    /// A node built step by step.
    #[derive(Default)]
    struct NodeBuilder(Node);

    impl NodeBuilder {
        fn condition(mut self, type_: &str, status: &str) -> Self {
            self.0
                .status
                .get_or_insert_with(NodeStatus::default)
                .conditions
                .get_or_insert_with(Vec::new)
                .push(NodeCondition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    ..NodeCondition::default()
                });
            self
        }
        fn taint(mut self, t: Taint) -> Self {
            self.0
                .spec
                .get_or_insert_with(NodeSpec::default)
                .taints
                .get_or_insert_with(Vec::new)
                .push(t);
            self
        }
        fn unschedulable(mut self, value: Option<bool>) -> Self {
            self.0
                .spec
                .get_or_insert_with(NodeSpec::default)
                .unschedulable = value;
            self
        }
        fn build(self) -> Node {
            self.0
        }
    }

    fn node() -> NodeBuilder {
        NodeBuilder::default()
    }

    fn taint(key: &str, effect: &str, added: Option<Timestamp>) -> Taint {
        Taint {
            key: key.to_string(),
            effect: effect.to_string(),
            value: None,
            time_added: added.map(Time),
        }
    }

    fn r(key: &str, effect: &str) -> TaintRef {
        TaintRef {
            key: key.to_string(),
            effect: effect.to_string(),
        }
    }

    fn keys(refs: &[TaintRef]) -> Vec<&str> {
        refs.iter().map(|r| r.key.as_str()).collect()
    }

    // desired_condition_taints

    #[test]
    fn a_healthy_node_asks_for_no_condition_taints() {
        let n = node()
            .condition("Ready", "True")
            .condition("MemoryPressure", "False")
            .condition("DiskPressure", "False")
            .condition("NetworkUnavailable", "False")
            .condition("PIDPressure", "False")
            .unschedulable(Some(false))
            .build();
        assert!(desired_condition_taints(&n).is_empty());
        assert!(desired_condition_taints(&Node::default()).is_empty());
    }

    #[test]
    fn ready_false_asks_for_not_ready() {
        let n = node().condition("Ready", "False").build();
        assert_eq!(desired_condition_taints(&n), [r(NOT_READY, NO_SCHEDULE)]);
    }

    #[test]
    fn ready_unknown_asks_for_unreachable() {
        let n = node().condition("Ready", "Unknown").build();
        assert_eq!(desired_condition_taints(&n), [r(UNREACHABLE, NO_SCHEDULE)]);
    }

    #[test]
    fn pressure_conditions_that_are_true_ask_for_their_taints() {
        let n = node()
            .condition("Ready", "True")
            .condition("MemoryPressure", "True")
            .condition("DiskPressure", "True")
            .condition("NetworkUnavailable", "True")
            .condition("PIDPressure", "True")
            .build();
        let desired = desired_condition_taints(&n);
        assert_eq!(
            keys(&desired),
            [
                MEMORY_PRESSURE,
                DISK_PRESSURE,
                NETWORK_UNAVAILABLE,
                PID_PRESSURE
            ]
        );
        assert!(desired.iter().all(|t| t.effect == NO_SCHEDULE));
    }

    #[test]
    fn unknown_pressure_conditions_ask_for_nothing() {
        let n = node()
            .condition("Ready", "Unknown")
            .condition("MemoryPressure", "Unknown")
            .condition("DiskPressure", "Unknown")
            .condition("PIDPressure", "Unknown")
            .build();
        assert_eq!(keys(&desired_condition_taints(&n)), [UNREACHABLE]);
    }

    #[test]
    fn an_unschedulable_node_asks_for_the_unschedulable_taint() {
        let n = node()
            .condition("Ready", "True")
            .unschedulable(Some(true))
            .build();
        assert_eq!(
            desired_condition_taints(&n),
            [r(UNSCHEDULABLE, NO_SCHEDULE)]
        );
        let unset = node().unschedulable(None).build();
        assert!(desired_condition_taints(&unset).is_empty());
    }

    // condition_taint_change

    #[test]
    fn missing_condition_taints_are_added_with_now() {
        let n = node()
            .condition("Ready", "False")
            .condition("DiskPressure", "True")
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        assert!(change.remove.is_empty());
        assert_eq!(
            change.add,
            [
                taint(NOT_READY, NO_SCHEDULE, Some(now())),
                taint(DISK_PRESSURE, NO_SCHEDULE, Some(now()))
            ]
        );
    }

    #[test]
    fn condition_taints_no_longer_asked_for_are_removed() {
        let n = node()
            .condition("Ready", "True")
            .taint(taint(NOT_READY, NO_SCHEDULE, Some(earlier())))
            .taint(taint(UNSCHEDULABLE, NO_SCHEDULE, None))
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        assert!(change.add.is_empty());
        assert_eq!(
            change.remove,
            [r(NOT_READY, NO_SCHEDULE), r(UNSCHEDULABLE, NO_SCHEDULE)]
        );
    }

    #[test]
    fn a_ready_flip_to_unknown_swaps_the_taints_in_one_change() {
        let n = node()
            .condition("Ready", "Unknown")
            .condition("MemoryPressure", "Unknown")
            .taint(taint(NOT_READY, NO_SCHEDULE, Some(earlier())))
            .taint(taint(MEMORY_PRESSURE, NO_SCHEDULE, Some(earlier())))
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        assert_eq!(change.add, [taint(UNREACHABLE, NO_SCHEDULE, Some(now()))]);
        assert_eq!(
            change.remove,
            [r(NOT_READY, NO_SCHEDULE), r(MEMORY_PRESSURE, NO_SCHEDULE)]
        );
    }

    #[test]
    fn condition_taints_in_place_mean_no_change_whatever_their_value_or_time() {
        let mut with_value = taint(UNREACHABLE, NO_SCHEDULE, None);
        with_value.value = Some("x".to_string());
        let n = node()
            .condition("Ready", "Unknown")
            .unschedulable(Some(true))
            .taint(with_value)
            .taint(taint(UNSCHEDULABLE, NO_SCHEDULE, Some(earlier())))
            .build();
        assert_eq!(condition_taint_change(&n, now()), None);
    }

    #[test]
    fn taints_outside_the_condition_set_are_left_alone() {
        let n = node()
            .condition("Ready", "True")
            .taint(taint("example.com/dedicated", NO_SCHEDULE, None))
            .taint(taint(UNREACHABLE, NO_EXECUTE, Some(earlier())))
            .taint(taint(NOT_READY, NO_EXECUTE, Some(earlier())))
            .taint(taint(MEMORY_PRESSURE, "PreferNoSchedule", None))
            .build();
        assert_eq!(condition_taint_change(&n, now()), None);
    }

    #[test]
    fn a_no_execute_taint_does_not_stand_in_for_the_no_schedule_one() {
        let n = node()
            .condition("Ready", "Unknown")
            .taint(taint(UNREACHABLE, NO_EXECUTE, Some(earlier())))
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        assert_eq!(change.add, [taint(UNREACHABLE, NO_SCHEDULE, Some(now()))]);
        assert!(change.remove.is_empty());
    }

    #[test]
    fn a_duplicated_extra_taint_is_removed_once() {
        let n = node()
            .taint(taint(PID_PRESSURE, NO_SCHEDULE, None))
            .taint(taint(PID_PRESSURE, NO_SCHEDULE, None))
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        assert_eq!(change.remove, [r(PID_PRESSURE, NO_SCHEDULE)]);
        let mut taints = n.spec.unwrap().taints.unwrap();
        assert!(apply_change(&mut taints, &change));
        assert!(taints.is_empty());
    }

    // no_execute_key_for / has_no_execute / no_execute_taints

    #[test]
    fn ready_status_maps_to_its_no_execute_key() {
        assert_eq!(no_execute_key_for(ConditionStatus::False), Some(NOT_READY));
        assert_eq!(
            no_execute_key_for(ConditionStatus::Unknown),
            Some(UNREACHABLE)
        );
        assert_eq!(no_execute_key_for(ConditionStatus::True), None);
        assert_eq!(no_execute_key_for(ConditionStatus::of("")), None);
        assert_eq!(no_execute_key_for(ConditionStatus::of("false")), None);
    }

    #[test]
    fn has_no_execute_needs_key_and_effect() {
        let n = node()
            .taint(taint(NOT_READY, NO_SCHEDULE, None))
            .taint(taint(UNREACHABLE, NO_EXECUTE, None))
            .build();
        assert!(has_no_execute(&n, UNREACHABLE));
        assert!(!has_no_execute(&n, NOT_READY));
        assert!(!has_no_execute(&Node::default(), UNREACHABLE));
    }

    #[test]
    fn no_execute_taints_lists_only_no_execute_in_order() {
        let n = node()
            .taint(taint("b", NO_EXECUTE, None))
            .taint(taint("c", NO_SCHEDULE, None))
            .taint(taint("a", NO_EXECUTE, Some(earlier())))
            .build();
        assert_eq!(
            no_execute_taints(&n),
            [
                taint("b", NO_EXECUTE, None),
                taint("a", NO_EXECUTE, Some(earlier()))
            ]
        );
        assert!(no_execute_taints(&Node::default()).is_empty());
    }

    // no_execute_change

    #[test]
    fn an_untainted_node_gets_the_taint_with_now() {
        let n = node()
            .taint(taint("other", NO_EXECUTE, Some(earlier())))
            .build();
        let change = no_execute_change(&n, UNREACHABLE, now()).unwrap();
        assert_eq!(change.add, [taint(UNREACHABLE, NO_EXECUTE, Some(now()))]);
        assert!(change.remove.is_empty());
    }

    #[test]
    fn a_node_with_exactly_the_right_taint_is_not_rewritten() {
        let n = node()
            .taint(taint(NOT_READY, NO_EXECUTE, Some(earlier())))
            .taint(taint(UNREACHABLE, NO_SCHEDULE, Some(earlier())))
            .build();
        assert_eq!(no_execute_change(&n, NOT_READY, now()), None);
    }

    #[test]
    fn a_swapped_taint_keeps_the_time_added_of_the_one_it_replaces() {
        let n = node()
            .taint(taint(UNREACHABLE, NO_EXECUTE, Some(earlier())))
            .build();
        let change = no_execute_change(&n, NOT_READY, now()).unwrap();
        assert_eq!(change.remove, [r(UNREACHABLE, NO_EXECUTE)]);
        assert_eq!(change.add, [taint(NOT_READY, NO_EXECUTE, Some(earlier()))]);

        let back = node()
            .taint(taint(NOT_READY, NO_EXECUTE, Some(earlier())))
            .build();
        let change = no_execute_change(&back, UNREACHABLE, now()).unwrap();
        assert_eq!(change.remove, [r(NOT_READY, NO_EXECUTE)]);
        assert_eq!(
            change.add,
            [taint(UNREACHABLE, NO_EXECUTE, Some(earlier()))]
        );
    }

    #[test]
    fn a_replaced_taint_without_time_added_passes_on_now() {
        let n = node().taint(taint(UNREACHABLE, NO_EXECUTE, None)).build();
        let change = no_execute_change(&n, NOT_READY, now()).unwrap();
        assert_eq!(change.add, [taint(NOT_READY, NO_EXECUTE, Some(now()))]);
    }

    #[test]
    fn with_both_taints_present_only_the_other_one_is_removed() {
        let n = node()
            .taint(taint(UNREACHABLE, NO_EXECUTE, Some(earlier())))
            .taint(taint(NOT_READY, NO_EXECUTE, Some(now())))
            .build();
        let change = no_execute_change(&n, NOT_READY, now()).unwrap();
        assert!(change.add.is_empty());
        assert_eq!(change.remove, [r(UNREACHABLE, NO_EXECUTE)]);
    }

    #[test]
    fn the_no_schedule_twin_is_neither_replaced_nor_counted() {
        let n = node()
            .taint(taint(UNREACHABLE, NO_SCHEDULE, Some(earlier())))
            .build();
        let change = no_execute_change(&n, NOT_READY, now()).unwrap();
        assert!(change.remove.is_empty());
        assert_eq!(change.add, [taint(NOT_READY, NO_EXECUTE, Some(now()))]);
    }

    #[test]
    fn applying_a_swap_leaves_one_taint_with_the_old_time() {
        let mut n = node()
            .taint(taint("keep", NO_SCHEDULE, None))
            .taint(taint(UNREACHABLE, NO_EXECUTE, Some(earlier())))
            .build();
        let change = no_execute_change(&n, NOT_READY, now()).unwrap();
        let taints = n.spec.as_mut().unwrap().taints.as_mut().unwrap();
        assert!(apply_change(taints, &change));
        assert_eq!(
            *taints,
            [
                taint("keep", NO_SCHEDULE, None),
                taint(NOT_READY, NO_EXECUTE, Some(earlier()))
            ]
        );
        assert_eq!(no_execute_change(&n, NOT_READY, now()), None);
    }

    // remove_no_execute

    fn taint_list(n: &Node) -> Vec<Taint> {
        n.spec
            .clone()
            .unwrap_or_default()
            .taints
            .unwrap_or_default()
    }

    #[test]
    fn removing_no_execute_taints_takes_both_of_ours_only() {
        let n = node()
            .taint(taint(NOT_READY, NO_EXECUTE, None))
            .taint(taint(UNREACHABLE, NO_EXECUTE, None))
            .taint(taint(UNREACHABLE, NO_SCHEDULE, None))
            .taint(taint("other", NO_EXECUTE, None))
            .build();
        let change = remove_no_execute();
        assert!(change.add.is_empty());
        assert_eq!(
            change.remove,
            [r(NOT_READY, NO_EXECUTE), r(UNREACHABLE, NO_EXECUTE)]
        );
        let mut list = taint_list(&n);
        assert!(apply_change(&mut list, &change));
        assert_eq!(
            list,
            [
                taint(UNREACHABLE, NO_SCHEDULE, None),
                taint("other", NO_EXECUTE, None)
            ]
        );
    }

    #[test]
    fn removing_from_a_node_without_our_taints_is_no_change() {
        let n = node()
            .taint(taint(UNREACHABLE, NO_SCHEDULE, None))
            .taint(taint("other", NO_EXECUTE, None))
            .build();
        let mut list = taint_list(&n);
        assert!(!apply_change(&mut list, &remove_no_execute()));
        assert_eq!(list, taint_list(&n));
        let mut empty = Vec::new();
        assert!(!apply_change(&mut empty, &remove_no_execute()));
    }

    #[test]
    fn removing_when_one_taint_is_present_removes_that_one() {
        let n = node().taint(taint(UNREACHABLE, NO_EXECUTE, None)).build();
        let mut list = taint_list(&n);
        assert!(apply_change(&mut list, &remove_no_execute()));
        assert!(list.is_empty());
    }

    // apply_change

    #[test]
    fn apply_change_removes_by_key_and_effect() {
        let mut taints = vec![
            taint("a", NO_EXECUTE, None),
            taint("a", NO_SCHEDULE, None),
            taint("b", NO_EXECUTE, None),
        ];
        let change = TaintChange {
            add: vec![],
            remove: vec![r("a", NO_EXECUTE)],
        };
        assert!(apply_change(&mut taints, &change));
        assert_eq!(
            taints,
            [taint("a", NO_SCHEDULE, None), taint("b", NO_EXECUTE, None)]
        );
    }

    #[test]
    fn apply_change_skips_an_addition_already_present_keeping_its_time() {
        let mut taints = vec![taint("a", NO_EXECUTE, Some(earlier()))];
        let change = TaintChange {
            add: vec![taint("a", NO_EXECUTE, Some(now()))],
            remove: vec![],
        };
        assert!(!apply_change(&mut taints, &change));
        assert_eq!(taints, [taint("a", NO_EXECUTE, Some(earlier()))]);
    }

    #[test]
    fn apply_change_appends_missing_additions() {
        let mut taints = vec![taint("a", NO_SCHEDULE, None)];
        let change = TaintChange {
            add: vec![taint("a", NO_EXECUTE, Some(now()))],
            remove: vec![],
        };
        assert!(apply_change(&mut taints, &change));
        assert_eq!(
            taints,
            [
                taint("a", NO_SCHEDULE, None),
                taint("a", NO_EXECUTE, Some(now()))
            ]
        );
    }

    #[test]
    fn apply_change_removes_before_adding() {
        let mut taints = vec![taint("a", NO_EXECUTE, Some(earlier()))];
        let change = TaintChange {
            add: vec![taint("a", NO_EXECUTE, Some(now()))],
            remove: vec![r("a", NO_EXECUTE)],
        };
        assert!(apply_change(&mut taints, &change));
        assert_eq!(taints, [taint("a", NO_EXECUTE, Some(now()))]);
    }

    #[test]
    fn apply_change_reports_no_change_when_nothing_matches() {
        let mut taints = vec![taint("a", NO_EXECUTE, None)];
        let change = TaintChange {
            add: vec![],
            remove: vec![r("a", NO_SCHEDULE), r("z", NO_EXECUTE)],
        };
        assert!(!apply_change(&mut taints, &change));
        assert_eq!(taints, [taint("a", NO_EXECUTE, None)]);
        let mut empty = Vec::new();
        assert!(!apply_change(&mut empty, &TaintChange::default()));
    }

    #[test]
    fn apply_change_adds_a_duplicate_addition_once() {
        let mut taints = Vec::new();
        let change = TaintChange {
            add: vec![
                taint("a", NO_EXECUTE, Some(now())),
                taint("a", NO_EXECUTE, Some(earlier())),
            ],
            remove: vec![],
        };
        assert!(apply_change(&mut taints, &change));
        assert_eq!(taints, [taint("a", NO_EXECUTE, Some(now()))]);
    }

    #[test]
    fn applying_the_condition_change_brings_the_node_in_step() {
        let mut n = node()
            .condition("Ready", "Unknown")
            .taint(taint(NOT_READY, NO_SCHEDULE, Some(earlier())))
            .taint(taint("mine", NO_SCHEDULE, None))
            .build();
        let change = condition_taint_change(&n, now()).unwrap();
        let taints = n.spec.as_mut().unwrap().taints.as_mut().unwrap();
        assert!(apply_change(taints, &change));
        assert_eq!(
            *taints,
            [
                taint("mine", NO_SCHEDULE, None),
                taint(UNREACHABLE, NO_SCHEDULE, Some(now()))
            ]
        );
        assert_eq!(condition_taint_change(&n, now()), None);
    }
}
