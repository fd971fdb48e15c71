//! The Unknown conditions the controller writes when a node's heartbeats stop.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The condition types set Unknown on heartbeat loss (not NetworkUnavailable), in upstream's order.
pub const UNKNOWN_ON_SILENCE: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Reason of a condition appended because the kubelet never posted it.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
/// Message of a condition appended because the kubelet never posted it.
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";
/// Reason of a condition set Unknown because the kubelet's heartbeats stopped.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// Message of a condition set Unknown because the kubelet's heartbeats stopped.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";

const UNKNOWN: &str = "Unknown";

/// The node's condition of this type.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

/// A condition's status: what the API writes as `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
    /// Anything else (the API allows no other value; kept apart rather than guessed).
    Other,
}

impl ConditionStatus {
    pub fn of(status: &str) -> Self {
        match status {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            "Unknown" => ConditionStatus::Unknown,
            _ => ConditionStatus::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
            ConditionStatus::Other => "Other",
        }
    }
}

/// The status of the node's Ready condition (`None` when it has none).
pub fn ready_status(node: &Node) -> Option<ConditionStatus> {
    condition(node, "Ready").map(|c| ConditionStatus::of(&c.status))
}

/// The Ready condition's `lastHeartbeatTime`.
pub fn ready_heartbeat(node: &Node) -> Option<Timestamp> {
    condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|Time(t)| *t)
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
    let created = node.metadata.creation_timestamp.clone();
    let conditions = node
        .status
        .get_or_insert_with(NodeStatus::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let mut changed = Vec::new();
    for type_ in UNKNOWN_ON_SILENCE {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => conditions.push(NodeCondition {
                type_: type_.to_string(),
                status: UNKNOWN.to_string(),
                reason: Some(REASON_NEVER_UPDATED.to_string()),
                message: Some(MESSAGE_NEVER_UPDATED.to_string()),
                last_heartbeat_time: created.clone(),
                last_transition_time: Some(Time(now)),
            }),
            Some(c) if c.status != UNKNOWN => {
                c.status = UNKNOWN.to_string();
                c.reason = Some(REASON_UNKNOWN.to_string());
                c.message = Some(MESSAGE_UNKNOWN.to_string());
                c.last_transition_time = Some(Time(now));
            }
            Some(_) => continue,
        }
        changed.push(type_.to_string());
    }
    changed
}

/// The conditions an Unknown mark sends, and which types it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownMark {
    /// The changed conditions only, with the fields the mark sets (all of them for a condition
    /// it adds): merged by type on the server, every other field of the live node, known to our
    /// types or not, stays as it is.
    pub conditions: Vec<NodeCondition>,
    /// The changed types, in `UNKNOWN_ON_SILENCE` order.
    pub changed: Vec<String>,
}

/// What marking `node` Unknown at `now` sends ([`mark_unknown`], reduced to a patch); `None`
/// when Ready itself would not change (upstream writes nothing then).
pub fn unknown_mark(mut node: Node, now: Timestamp) -> Option<UnknownMark> {
    let had: Vec<String> = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| c.type_.clone())
        .collect();
    let changed = mark_unknown(&mut node, now);
    if !changed.iter().any(|c| c == "Ready") {
        return None;
    }
    let conditions = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| changed.contains(&c.type_))
        .map(|c| NodeCondition {
            // A kept condition's heartbeat is the kubelet's: not sent.
            last_heartbeat_time: if had.contains(&c.type_) {
                None
            } else {
                c.last_heartbeat_time
            },
            ..c
        })
        .collect();
    Some(UnknownMark {
        conditions,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn created() -> Timestamp {
        ts("2025-01-01T00:00:00Z")
    }

    fn now() -> Timestamp {
        ts("2025-01-01T01:00:00Z")
    }

    fn cond(type_: &str, status: &str, heartbeat: &str, transition: &str) -> NodeCondition {
        NodeCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: Some("KubeletReady".to_string()),
            message: Some("kubelet is posting ready status".to_string()),
            last_heartbeat_time: Some(Time(ts(heartbeat))),
            last_transition_time: Some(Time(ts(transition))),
        }
    }

    fn node(conditions: Vec<NodeCondition>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".to_string());
        n.metadata.creation_timestamp = Some(Time(created()));
        n.status = Some(NodeStatus {
            conditions: Some(conditions),
            ..NodeStatus::default()
        });
        n
    }

    fn conditions_of(n: &Node) -> &[NodeCondition] {
        n.status.as_ref().unwrap().conditions.as_deref().unwrap()
    }

    const HB: &str = "2025-01-01T00:30:00Z";
    const TR: &str = "2025-01-01T00:10:00Z";

    #[test]
    fn condition_finds_the_condition_of_the_type() {
        let n = node(vec![
            cond("MemoryPressure", "False", HB, TR),
            cond("Ready", "True", HB, TR),
        ]);
        assert_eq!(condition(&n, "Ready").unwrap().status, "True");
        assert_eq!(condition(&n, "MemoryPressure").unwrap().status, "False");
        assert!(condition(&n, "DiskPressure").is_none());
    }

    #[test]
    fn a_node_without_status_has_no_conditions() {
        let n = Node::default();
        assert!(condition(&n, "Ready").is_none());
        assert_eq!(ready_status(&n), None);
        assert_eq!(ready_heartbeat(&n), None);
    }

    #[test]
    fn ready_status_and_heartbeat_come_from_the_ready_condition() {
        let n = node(vec![
            cond("DiskPressure", "False", "2025-01-01T00:00:05Z", TR),
            cond("Ready", "Unknown", HB, TR),
        ]);
        assert_eq!(ready_status(&n), Some(ConditionStatus::Unknown));
        assert_eq!(ready_heartbeat(&n), Some(ts(HB)));
    }

    #[test]
    fn ready_heartbeat_is_none_when_the_condition_has_none() {
        let mut c = cond("Ready", "True", HB, TR);
        c.last_heartbeat_time = None;
        assert_eq!(ready_heartbeat(&node(vec![c])), None);
    }

    #[test]
    fn healthy_conditions_turn_unknown_with_the_stopped_posting_reason() {
        let mut n = node(vec![
            cond("Ready", "True", HB, TR),
            cond("MemoryPressure", "False", HB, TR),
            cond("DiskPressure", "False", HB, TR),
            cond("PIDPressure", "False", HB, TR),
        ]);
        let changed = mark_unknown(&mut n, now());
        assert_eq!(
            changed,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
        );
        let cs = conditions_of(&n);
        assert_eq!(cs.len(), 4);
        for c in cs {
            assert_eq!(c.status, "Unknown");
            assert_eq!(c.reason.as_deref(), Some("NodeStatusUnknown"));
            assert_eq!(
                c.message.as_deref(),
                Some("Kubelet stopped posting node status.")
            );
            assert_eq!(c.last_transition_time, Some(Time(now())));
            assert_eq!(c.last_heartbeat_time, Some(Time(ts(HB))), "heartbeat kept");
        }
    }

    #[test]
    fn a_false_ready_condition_also_turns_unknown() {
        let mut n = node(vec![
            cond("Ready", "False", HB, TR),
            cond("MemoryPressure", "Unknown", HB, TR),
            cond("DiskPressure", "Unknown", HB, TR),
            cond("PIDPressure", "Unknown", HB, TR),
        ]);
        assert_eq!(mark_unknown(&mut n, now()), ["Ready"]);
        assert_eq!(ready_status(&n), Some(ConditionStatus::Unknown));
    }

    #[test]
    fn absent_conditions_are_appended_as_never_updated() {
        let mut n = node(vec![]);
        let changed = mark_unknown(&mut n, now());
        assert_eq!(
            changed,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
        );
        let cs = conditions_of(&n);
        let types: Vec<&str> = cs.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
        );
        for c in cs {
            assert_eq!(c.status, "Unknown");
            assert_eq!(c.reason.as_deref(), Some("NodeStatusNeverUpdated"));
            assert_eq!(
                c.message.as_deref(),
                Some("Kubelet never posted node status.")
            );
            assert_eq!(c.last_heartbeat_time, Some(Time(created())));
            assert_eq!(c.last_transition_time, Some(Time(now())));
        }
    }

    #[test]
    fn a_node_without_any_status_gets_the_conditions_appended() {
        let mut n = Node::default();
        n.metadata.creation_timestamp = Some(Time(created()));
        assert_eq!(mark_unknown(&mut n, now()).len(), 4);
        assert_eq!(ready_status(&n), Some(ConditionStatus::Unknown));
        assert_eq!(ready_heartbeat(&n), Some(created()));
    }

    #[test]
    fn without_a_creation_timestamp_appended_conditions_have_no_heartbeat() {
        let mut n = Node::default();
        mark_unknown(&mut n, now());
        assert_eq!(ready_heartbeat(&n), None);
    }

    #[test]
    fn already_unknown_conditions_are_left_untouched() {
        let original = vec![
            cond("Ready", "Unknown", HB, TR),
            cond("MemoryPressure", "Unknown", HB, TR),
            cond("DiskPressure", "Unknown", HB, TR),
            cond("PIDPressure", "Unknown", HB, TR),
        ];
        let mut n = node(original.clone());
        assert!(mark_unknown(&mut n, now()).is_empty());
        assert_eq!(conditions_of(&n), original.as_slice());
    }

    #[test]
    fn with_ready_already_unknown_only_the_others_are_reported() {
        let mut n = node(vec![
            cond("Ready", "Unknown", HB, TR),
            cond("MemoryPressure", "True", HB, TR),
            cond("DiskPressure", "Unknown", HB, TR),
        ]);
        let changed = mark_unknown(&mut n, now());
        assert_eq!(changed, ["MemoryPressure", "PIDPressure"]);
        assert!(!changed.contains(&"Ready".to_string()));
        let ready = condition(&n, "Ready").unwrap();
        assert_eq!(ready.last_transition_time, Some(Time(ts(TR))));
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        let mem = condition(&n, "MemoryPressure").unwrap();
        assert_eq!(mem.status, "Unknown");
        assert_eq!(mem.reason.as_deref(), Some("NodeStatusUnknown"));
        let pid = condition(&n, "PIDPressure").unwrap();
        assert_eq!(pid.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    }

    #[test]
    fn network_unavailable_and_other_conditions_are_not_touched() {
        let net = cond("NetworkUnavailable", "False", HB, TR);
        let custom = cond("KernelDeadlock", "False", HB, TR);
        let mut n = node(vec![
            net.clone(),
            cond("Ready", "True", HB, TR),
            custom.clone(),
        ]);
        let changed = mark_unknown(&mut n, now());
        assert!(!changed.contains(&"NetworkUnavailable".to_string()));
        assert_eq!(condition(&n, "NetworkUnavailable"), Some(&net));
        assert_eq!(condition(&n, "KernelDeadlock"), Some(&custom));
    }

    #[test]
    fn present_conditions_keep_their_place_and_missing_ones_go_last() {
        let mut n = node(vec![
            cond("DiskPressure", "False", HB, TR),
            cond("Ready", "True", HB, TR),
        ]);
        let changed = mark_unknown(&mut n, now());
        assert_eq!(
            changed,
            ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
        );
        let types: Vec<&str> = conditions_of(&n).iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["DiskPressure", "Ready", "MemoryPressure", "PIDPressure"]
        );
    }

    #[test]
    fn marking_twice_changes_nothing_the_second_time() {
        let mut n = node(vec![cond("Ready", "True", HB, TR)]);
        mark_unknown(&mut n, now());
        let after_first = n.clone();
        assert!(mark_unknown(&mut n, ts("2025-01-01T02:00:00Z")).is_empty());
        assert_eq!(n, after_first);
    }

    #[test]
    fn an_unknown_mark_sends_only_the_changed_conditions_and_the_heartbeats_it_adds() {
        let n = node(vec![
            cond("Ready", "True", HB, TR),
            cond("DiskPressure", "Unknown", HB, TR),
        ]);
        let mark = unknown_mark(n, now()).unwrap();
        assert_eq!(mark.changed, ["Ready", "MemoryPressure", "PIDPressure"]);
        let sent: Vec<(&str, Option<&Time>)> = mark
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.last_heartbeat_time.as_ref()))
            .collect();
        let added = Time(created());
        assert_eq!(
            sent,
            [
                ("Ready", None),
                ("MemoryPressure", Some(&added)),
                ("PIDPressure", Some(&added))
            ]
        );
    }

    #[test]
    fn an_unknown_mark_is_not_sent_when_ready_is_unknown_already() {
        let n = node(vec![cond("Ready", "Unknown", HB, TR)]);
        assert_eq!(unknown_mark(n, now()), None);
    }
}
